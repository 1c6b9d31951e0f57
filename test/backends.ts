// Which tfjs backends load in this process, and how tests run the engine's numbers on each of them.
//
// Two ways, both through the service's own set-up (activateBackend in src/engine/backends/select.ts):
// - whole files: the engine's numeric test files (NUMERIC_TEST_FILES) call useTestBackend() instead of
//   tf.setBackend('cpu'), and vitest.config.ts runs them once per loaded backend, one backend per
//   process as in the service (a project per backend with GRADLENS_TEST_BACKEND set);
// - in one process: useBackend(name) switches between them, for tests that compare backends directly.
//
// No static import of tfjs here: vitest.config.ts reads the lists below.
import { loadNativeKernels } from '../src/engine/backends/native-kernels.js';
import { probeWebGpu } from '../src/engine/backends/webgpu.js';
import type { InProcessBackend } from '../src/engine/backends/select.js';

export type { InProcessBackend } from '../src/engine/backends/select.js';

/**
 * The engine's numeric test files: closed forms, references and invariants that must hold on every
 * backend. Each calls useTestBackend() (test/backends.test.ts checks that it does).
 */
export const NUMERIC_TEST_FILES: readonly string[] = [
  'test/engine/textbook-chain.test.ts',
  'test/engine/activations.test.ts',
  'test/engine/batch-stats.test.ts',
  'test/engine/shards.test.ts',
  'test/engine/training.test.ts',
  'test/engine/verdict.test.ts',
  'test/engine/whatif.test.ts',
  'test/engine/sweep.test.ts',
  'test/engine/memory.test.ts',
  'test/engine/gradcheck.test.ts',
  'test/engine/device-layout.test.ts',
  'test/engine/graph-gradcheck.test.ts',
  'test/engine/graph-training.test.ts',
  'test/engine/graph-dropout.test.ts',
  'test/engine/graph-depth.test.ts',
  'test/engine/onnx-import.test.ts',
  'test/engine/graph-whatif.test.ts',
  'test/engine/layers-import.test.ts',
  'test/engine/onnx-analyze.test.ts',
  'test/engine/onnx-train.test.ts',
  'test/engine/onnx-ops.test.ts',
  'test/engine/recurrent-gradcheck.test.ts',
  'test/engine/through-time.test.ts',
  'test/engine/recurrent-fixture.test.ts',
  'test/engine/transformer-gradcheck.test.ts',
  'test/engine/transformer-depth.test.ts',
];

/**
 * Files whose result does not depend on the backend's plumbing but that take minutes (a training of 1 200 steps):
 * the native pass runs them; the pure-npm fallback pass, which re-runs the suite for the service's own choice of
 * backend (GRADLENS_TEST_NUMERIC_DONE=1, vitest.config.ts), leaves them out with the numeric files.
 */
export const ONCE_PER_RUN_FILES: readonly string[] = [
  'test/engine/adding-problem.test.ts',
];

/**
 * How this test process's backends load, read from the environment exactly as src/config.ts's
 * backendOptions() reads it (the engine reads no environment; test/backends.test.ts checks the two agree).
 * Not imported from src/config.ts: that imports tfjs, which vitest.config.ts (a reader of this file) must not.
 * .ci/run's wasm run sets GRADLENS_NATIVE_ADDON=/nonexistent/… so that native does not load here.
 */
export const TEST_BACKEND_OPTIONS = {
  disableNative: process.env['GRADLENS_DISABLE_NATIVE'] === '1',
  ...(process.env['GRADLENS_NATIVE_ADDON'] ? { nativeAddonPath: process.env['GRADLENS_NATIVE_ADDON'] } : {}),
  nativeDesign: process.env['GRADLENS_NATIVE_DESIGN'] === 'wasm' ? ('wasm' as const) : ('cpu' as const),
  gpu: (['any', 'off'] as const).find((p) => p === process.env['GRADLENS_GPU']) ?? ('auto' as const),
  ...(process.env['GRADLENS_WEBGPU_ADAPTER'] ? { webgpuAdapter: process.env['GRADLENS_WEBGPU_ADAPTER'] } : {}),
};

const native = loadNativeKernels({ addonPath: TEST_BACKEND_OPTIONS.nativeAddonPath });

/** Why the native backend does not load here, or null when it does. */
export const NATIVE_ABSENT_REASON: string | null = native.loaded ? null : native.reason;

/** GRADLENS_REQUIRE_NATIVE=1 (CI's native run): a missing addon fails the tests instead of leaving native out. */
export const NATIVE_REQUIRED = process.env['GRADLENS_REQUIRE_NATIVE'] === '1';

/**
 * Which WebGPU adapter Dawn offers here (asked in a child process, so that a driver fault cannot abort
 * the test runner); any adapter counts, lavapipe included: software Vulkan checks correctness.
 */
const webgpu = process.env['GRADLENS_TEST_WEBGPU'] === '0' && process.env['GRADLENS_REQUIRE_WEBGPU'] !== '1' ? { reason: 'GRADLENS_TEST_WEBGPU=0' }
  : probeWebGpu(TEST_BACKEND_OPTIONS.webgpuAdapter ? { adapter: TEST_BACKEND_OPTIONS.webgpuAdapter } : {});

/** Why webgpu does not load here, or null when it does. */
export const WEBGPU_ABSENT_REASON: string | null = 'reason' in webgpu ? webgpu.reason : null;

/** GRADLENS_REQUIRE_WEBGPU=1 (CI's webgpu run): no adapter fails the tests instead of leaving webgpu out. */
export const WEBGPU_REQUIRED = process.env['GRADLENS_REQUIRE_WEBGPU'] === '1';

/**
 * GRADLENS_TEST_WEBGPU=0 leaves webgpu out of this run: CI's native and wasm runs, because its own step
 * runs the webgpu tests once (software Vulkan takes minutes; twice more would double that).
 */
const WEBGPU_LEFT_OUT = process.env['GRADLENS_TEST_WEBGPU'] === '0' && !WEBGPU_REQUIRED;

/**
 * The backends these tests run on: cpu (pure JavaScript, the reference) and wasm (an npm dependency)
 * always; native where the addon loads and webgpu where Dawn finds an adapter, or wherever either is
 * required (then its absence fails loudly).
 */
export const LOADED_BACKENDS: readonly InProcessBackend[] = [
  'cpu', 'wasm', ...(native.loaded || NATIVE_REQUIRED ? (['native'] as const) : []),
  ...((WEBGPU_ABSENT_REASON === null && !WEBGPU_LEFT_OUT) || WEBGPU_REQUIRED ? (['webgpu'] as const) : []),
];

/** Why webgpu is not among LOADED_BACKENDS (left out, or no adapter), or null when it is. */
export const WEBGPU_NOT_RUN_REASON: string | null = LOADED_BACKENDS.includes('webgpu')
  ? null
  : WEBGPU_LEFT_OUT ? 'GRADLENS_TEST_WEBGPU=0' : WEBGPU_ABSENT_REASON;

const TEST_BACKENDS = ['native', 'wasm', 'cpu', 'webgpu'] as const;

/** The backend of this test process: GRADLENS_TEST_BACKEND (native, wasm, cpu or webgpu), cpu when unset. */
export function testBackendName(env: Record<string, string | undefined> = process.env): InProcessBackend {
  const name = env['GRADLENS_TEST_BACKEND'] ?? 'cpu';
  if (!(TEST_BACKENDS as readonly string[]).includes(name)) {
    throw new Error(`GRADLENS_TEST_BACKEND=${name}: the engine's numeric tests run on native, wasm, cpu or webgpu`);
  }
  return name as InProcessBackend;
}

/** Switches this process to `name` as the service sets it up (throws when it cannot load). */
export async function useBackend(name: InProcessBackend): Promise<void> {
  const [{ activateBackend }, tf] = await Promise.all([import('../src/engine/backends/select.js'), import('@tensorflow/tfjs')]);
  await activateBackend(name, TEST_BACKEND_OPTIONS);
  await tf.ready();
  const expected = name === 'wasm' || name === 'webgpu' ? name : 'cpu';
  if (tf.getBackend() !== expected) throw new Error(`useBackend(${name}): tfjs runs ${tf.getBackend()}, expected ${expected}`);
}

/** What a numeric test file calls in beforeAll: the process's backend (testBackendName()). Returns its name. */
export async function useTestBackend(): Promise<InProcessBackend> {
  const name = testBackendName();
  await useBackend(name);
  return name;
}
