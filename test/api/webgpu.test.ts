// The webgpu backend as the service runs it: GRADLENS_BACKEND=webgpu with its adapter in /health, /metrics
// and results; a clear start error when it cannot load; and what GRADLENS_GPU lets `auto` choose.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { sigmoidChain, TEXTBOOK_CHAIN } from '../support/textbook-chain.js';
import { LOADED_BACKENDS } from '../backends.js';
import { loadConfig, ConfigError } from '../../src/config.js';
import { autoRefusal, probeWebGpu, type WebGpuAdapter } from '../../src/engine/backends/webgpu.js';
import { SERVER_ARGS, TSX_ARGS } from '../support/server.js';

const LAVAPIPE: WebGpuAdapter = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe', description: '', isFallbackAdapter: true };
const DISCRETE: WebGpuAdapter = { vendor: 'nvidia', architecture: 'ada', device: 'NVIDIA L4', description: '', isFallbackAdapter: false };

describe('what GRADLENS_GPU lets GRADLENS_BACKEND=auto choose', () => {
  it('a real GPU by default, never a fallback (software) adapter unless GRADLENS_GPU=any, nothing with off', () => {
    expect(autoRefusal({ adapter: DISCRETE }, 'auto')).toBeNull();
    expect(autoRefusal({ adapter: LAVAPIPE }, 'auto')).toMatch(/only a fallback adapter \(mesa software, llvmpipe\); GRADLENS_GPU=any/);
    expect(autoRefusal({ adapter: LAVAPIPE }, 'any')).toBeNull();
    expect(autoRefusal({ adapter: DISCRETE }, 'off')).toBe('GRADLENS_GPU=off');
    expect(autoRefusal({ reason: 'Dawn found no WebGPU adapter' }, 'any')).toBe('Dawn found no WebGPU adapter');
  });

  it('GRADLENS_GPU and GRADLENS_WEBGPU_ADAPTER are read at start; a bad GRADLENS_GPU is refused by name', () => {
    expect(loadConfig({}).backendOptions).toMatchObject({ gpu: 'auto' });
    expect(loadConfig({}).backendOptions.webgpuAdapter).toBeUndefined();
    expect(loadConfig({ GRADLENS_GPU: 'any', GRADLENS_WEBGPU_ADAPTER: 'NVIDIA' }).backendOptions).toMatchObject({ gpu: 'any', webgpuAdapter: 'NVIDIA' });
    expect(() => loadConfig({ GRADLENS_GPU: 'yes' })).toThrow(ConfigError);
    expect(() => loadConfig({ GRADLENS_GPU: 'yes' })).toThrow(/GRADLENS_GPU must be one of auto, any, off/);
    expect(loadConfig({ GRADLENS_BACKEND: 'webgpu' }).backend).toBe('webgpu');
  });
});

describe.each(LOADED_BACKENDS.filter((b) => b === 'webgpu').map((b) => [b] as const))('GRADLENS_BACKEND=%s', (backend) => {
  // What Dawn offers, asked in a separate process (the same probe the tests use to decide that webgpu loads).
  const probe = probeWebGpu();
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp({ backend });
  });
  afterAll(async () => {
    await app.close();
  });

  it('/health names webgpu and the adapter', async () => {
    expect('adapter' in probe).toBe(true);
    const body = (await app.inject({ method: 'GET', url: '/health' })).json();
    expect(body.environment.backend).toBe('webgpu');
    expect(body.environment.tfjsBackend).toBe('webgpu');
    expect(body.environment.adapter).toEqual((probe as { adapter: WebGpuAdapter }).adapter);
  });

  it('/metrics carries the adapter as labels', async () => {
    const { adapter } = probe as { adapter: WebGpuAdapter };
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/gradlens_backend_info\{backend="webgpu",tfjs_backend="webgpu",/);
    expect(text).toContain(`gradlens_webgpu_adapter_info{vendor="${adapter.vendor}",architecture="${adapter.architecture}",device="${adapter.device}",fallback="${adapter.isFallbackAdapter}"} 1`);
  });

  it('an analysis of the textbook chain on the GPU: the closed form, and the adapter in its environment', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: TEXTBOOK_CHAIN });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const expected = sigmoidChain(20, Math.fround(0.17), 1).weightGrads;
    expect(body.result.layers[0].weightGradNorm / expected[0]!).toBeCloseTo(1, 4); // 2.079e-27
    expect(body.result.layers[19].weightGradNorm / expected[19]!).toBeCloseTo(1, 5);
    expect(body.environment.backend).toBe('webgpu');
    expect(body.environment.adapter.isFallbackAdapter).toBe((probe as { adapter: WebGpuAdapter }).adapter.isFallbackAdapter);
  });

  it('auto: a fallback adapter (lavapipe) is skipped with its reason by default, chosen with GRADLENS_GPU=any', () => {
    const { adapter } = probe as { adapter: WebGpuAdapter };
    const autoIn = (gpu: string): { name: string; skipped: { name: string; reason: string }[]; adapter?: WebGpuAdapter } => {
      // From the sources, as the server does: the configuration reads GRADLENS_GPU, the engine takes it as an option.
      const child = spawnSync(process.execPath, [...TSX_ARGS, '--input-type=module', '-e',
        "const { backendOptions } = await import('./src/config.ts'); const m = await import('./src/engine/backends/select.ts'); console.log('RESULT' + JSON.stringify(await m.initBackend('auto', backendOptions()))); process.exit(0);"],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, GRADLENS_GPU: gpu } });
      return JSON.parse(child.stdout.split('\n').find((l) => l.startsWith('RESULT'))!.slice('RESULT'.length));
    };
    const byDefault = autoIn('auto');
    if (adapter.isFallbackAdapter) {
      expect(byDefault.name).not.toBe('webgpu');
      expect(byDefault.skipped).toContainEqual({ name: 'webgpu', reason: expect.stringMatching(/^only a fallback adapter/) });
    } else {
      expect(byDefault.name).toBe('webgpu');
    }
    const any = autoIn('any');
    expect(any.name).toBe('webgpu');
    expect(any.adapter).toEqual(adapter);
    expect(autoIn('off').skipped).toContainEqual({ name: 'webgpu', reason: 'GRADLENS_GPU=off' });
  });

  it('an adapter that is not there: the server refuses to start, naming the variables (exit 2)', () => {
    const child = spawnSync(process.execPath, [...SERVER_ARGS], {
      encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, GRADLENS_BACKEND: 'webgpu', GRADLENS_WEBGPU_ADAPTER: 'no-such-gpu', GRADLENS_WORKERS: '1', GRADLENS_DB: ':memory:', PORT: '0', LOG_LEVEL: 'fatal' },
    });
    expect(child.status).toBe(2);
    expect(child.stderr).toMatch(/GRADLENS_BACKEND=webgpu was requested but cannot load: GRADLENS_WEBGPU_ADAPTER=no-such-gpu: no adapter .*'no-such-gpu' found Available adapters:/);
  });
});
