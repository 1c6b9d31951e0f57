// The per-backend test set-up does what it says: each numeric file takes its backend from the helper, and each backend is set up as the service sets it up.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { LOADED_BACKENDS, NATIVE_ABSENT_REASON, NATIVE_REQUIRED, NUMERIC_TEST_FILES, testBackendName, useBackend, useTestBackend } from './backends.js';
import { nativeKernelStats, nativeReductions } from '../src/engine/backends/native-kernels.js';
import { wasmMatMulStats } from '../src/engine/backends/wasm-kernels.js';
import { itNative } from './support/native.js';

describe('per-backend test set-up', () => {
  afterAll(async () => {
    await useTestBackend();
  });

  it('every numeric test file takes its backend from useTestBackend(), never from a fixed tf.setBackend', () => {
    expect(NUMERIC_TEST_FILES.length).toBeGreaterThan(5);
    for (const file of NUMERIC_TEST_FILES) {
      const source = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
      expect(source, file).toContain('useTestBackend()');
      expect(source, file).not.toMatch(/tf\.setBackend\(/);
    }
  });

  it('lists cpu and wasm always, native where the addon loads or is required', () => {
    expect(LOADED_BACKENDS.slice(0, 2)).toEqual(['cpu', 'wasm']);
    expect(LOADED_BACKENDS.includes('native')).toBe(NATIVE_ABSENT_REASON === null || NATIVE_REQUIRED);
    if (NATIVE_REQUIRED) expect(NATIVE_ABSENT_REASON, 'GRADLENS_REQUIRE_NATIVE=1 but the addon does not load').toBeNull();
  });

  it('reads GRADLENS_TEST_BACKEND and refuses names it cannot run', () => {
    expect(testBackendName({})).toBe('cpu');
    expect(testBackendName({ GRADLENS_TEST_BACKEND: 'wasm' })).toBe('wasm');
    expect(() => testBackendName({ GRADLENS_TEST_BACKEND: 'webgl' })).toThrow(/GRADLENS_TEST_BACKEND=webgl/);
  });

  const product = (): void => {
    tf.tidy(() => tf.matMul(tf.ones([4, 3]), tf.ones([5, 3]), false, true).dataSync());
  };

  it('wasm: the wasm backend with the transposed-product kernel the service registers, no native reductions', async () => {
    await useBackend('wasm');
    expect(tf.getBackend()).toBe('wasm');
    const before = wasmMatMulStats().transposed;
    product();
    expect(wasmMatMulStats().transposed).toBe(before + 1);
    expect(nativeReductions()).toBeNull();
  });

  it('cpu: the stock JavaScript kernels', async () => {
    await useBackend('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const before = nativeKernelStats()['BatchMatMul']?.native ?? 0;
    product();
    expect(nativeKernelStats()['BatchMatMul']?.native ?? 0).toBe(before);
    expect(nativeReductions()).toBeNull();
  });

  itNative('native: the cpu backend with the OpenBLAS kernels and native reductions, and back to stock cpu', async () => {
    await useBackend('native');
    expect(tf.getBackend()).toBe('cpu');
    const before = nativeKernelStats()['BatchMatMul']?.native ?? 0;
    product();
    expect(nativeKernelStats()['BatchMatMul']!.native).toBe(before + 1);
    expect(nativeReductions()).not.toBeNull();
    await useBackend('cpu');
    expect(nativeReductions()).toBeNull();
  });
});
