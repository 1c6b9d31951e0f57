// Configuration flows in: src/config.ts reads the backend variables, and they reach the engine only as
// options — in a worker thread through its init message (the worker's own environment says otherwise).
import { describe, it, expect } from 'vitest';
import { backendOptions, loadConfig } from '../../src/config.js';
import { WorkerPool } from '../../src/jobs/pool.js';
import { BackendUnavailableError } from '../../src/engine/backends/select.js';
import { DEFAULT_LIMITS } from '../../src/engine/spec/normalize.js';
import { TEST_BACKEND_OPTIONS } from '../backends.js';

const MISSING_ADDON = '/nonexistent/configured/gradlens_native.node';

describe('backend options from the configuration', () => {
  it('are read from the environment by src/config.ts only', () => {
    expect(backendOptions({})).toEqual({ disableNative: false, nativeDesign: 'cpu', gpu: 'auto' });
    const env = {
      GRADLENS_DISABLE_NATIVE: '1', GRADLENS_NATIVE_ADDON: MISSING_ADDON, GRADLENS_NATIVE_DESIGN: 'wasm',
      GRADLENS_GPU: 'any', GRADLENS_WEBGPU_ADAPTER: 'NVIDIA',
    };
    expect(loadConfig(env).backendOptions).toEqual({
      disableNative: true, nativeAddonPath: MISSING_ADDON, nativeDesign: 'wasm', gpu: 'any', webgpuAdapter: 'NVIDIA',
    });
  });

  it('are what the test set-up passes to the engine (test/backends.ts reads the same variables)', () => {
    expect(TEST_BACKEND_OPTIONS).toEqual(backendOptions());
  });

  it('reach a worker through its init message: a configured addon path that does not exist makes native unavailable', async () => {
    const pool = new WorkerPool({ size: 1, backend: 'native', backendOptions: { nativeAddonPath: MISSING_ADDON }, limits: DEFAULT_LIMITS });
    try {
      const err = await pool.ready().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect((err as Error).message).toContain(MISSING_ADDON);
    } finally {
      await pool.close();
    }
  });

  it('reach a worker through its init message: disableNative makes auto skip native, saying why', async () => {
    const pool = new WorkerPool({ size: 1, backend: 'auto', backendOptions: { disableNative: true }, limits: DEFAULT_LIMITS });
    try {
      const info = await pool.ready();
      expect(info.name).not.toBe('native');
      expect(info.skipped).toContainEqual({ name: 'native', reason: 'GRADLENS_DISABLE_NATIVE=1' });
    } finally {
      await pool.close();
    }
  });
});
