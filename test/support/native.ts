// Native-only tests without silent skips: where the addon is absent, one test says why (and fails if CI requires it).
import { describe, it, expect } from 'vitest';
import { loadNativeKernels } from '../../src/engine/backends/native-kernels.js';
import { TEST_BACKEND_OPTIONS } from '../backends.js';

export const native = loadNativeKernels({ addonPath: TEST_BACKEND_OPTIONS.nativeAddonPath });

function absentTest(name: string): void {
  it(`${name}: the addon is absent for a stated reason (GRADLENS_REQUIRE_NATIVE=1 makes this fail)`, () => {
    if (native.loaded) return;
    if (process.env.GRADLENS_REQUIRE_NATIVE === '1') {
      throw new Error(`GRADLENS_REQUIRE_NATIVE=1 but the native addon is not available: ${native.reason}. Build it with \`npm run build:native\` (needs libopenblas-dev).`);
    }
    expect(native.reason).toMatch(/gradlens_native\.node/);
  });
}

/** `describe` for tests that need the native addon. */
export function describeNative(name: string, body: () => void): void {
  if (native.loaded) describe(name, body);
  else describe(name, () => absentTest(name));
}

/** `it` for one test that needs the native addon. */
export function itNative(name: string, body: () => void | Promise<void>): void {
  if (native.loaded) it(name, body);
  else absentTest(name);
}
