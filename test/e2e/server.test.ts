// Starts the real server (src/server.ts through tsx, see test/support/server.ts) on a free port and talks to it over HTTP.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { sigmoidChain, TEXTBOOK_CHAIN } from '../support/textbook-chain.js';
import { SERVER_ARGS, freePort, startServer, stop } from '../support/server.js';
import { loadNativeKernels } from '../../src/engine/backends/native-kernels.js';
import { TEST_BACKEND_OPTIONS } from '../backends.js';


describe('the real server over HTTP', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer({ GRADLENS_BACKEND: 'wasm', GRADLENS_DB: ':memory:' });
  });
  afterAll(async () => {
    await stop(server, 'SIGTERM');
  });

  it('reports its backend on /health', async () => {
    const res = await fetch(`${server.url}/health`);
    const body = await res.json();
    expect(body.status).toBe('ok');
    expect(body.environment.backend).toBe('wasm');
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('analyses the textbook chain and matches the closed form', async () => {
    const res = await fetch(`${server.url}/v1/analyses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(TEXTBOOK_CHAIN),
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    const expected = sigmoidChain(20, Math.fround(0.17), 1);
    expect(body.result.layers[0].weightGradNorm / expected.weightGrads[0]!).toBeCloseTo(1, 4);
    expect(body.environment.backend).toBe('wasm');
  });

  it('serves the OpenAPI document and the docs UI', async () => {
    const doc = await (await fetch(`${server.url}/openapi.json`)).json();
    expect(doc.paths['/v1/analyses'].post).toBeTruthy();
    const docs = await fetch(`${server.url}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toMatch(/swagger/i);
  });

  it('with GRADLENS_BACKEND=auto picks the native kernels where the addon loads, else wasm, and says why', async () => {
    const auto = await startServer({ GRADLENS_BACKEND: 'auto', GRADLENS_DB: ':memory:', GRADLENS_WORKERS: '1' });
    try {
      const health = await (await fetch(`${auto.url}/health`)).json();
      const native = loadNativeKernels({ addonPath: TEST_BACKEND_OPTIONS.nativeAddonPath });
      // tfjs-node is never installed by npm ci here (its download fails, tfjs #8742), so auto goes on to native or wasm.
      expect(health.environment.backend).toBe(native.loaded ? 'native' : 'wasm');
      if (process.env.GRADLENS_REQUIRE_NATIVE === '1') expect(health.environment.backend).toBe('native');
      const res = await fetch(`${auto.url}/v1/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(TEXTBOOK_CHAIN) });
      const body = await res.json();
      expect(body.environment.backend).toBe(health.environment.backend);
      const expected = sigmoidChain(20, Math.fround(0.17), 1);
      expect(body.result.layers[0].weightGradNorm / expected.weightGrads[0]!).toBeCloseTo(1, 4);
    } finally {
      await stop(auto, 'SIGTERM');
    }
  });

  it('refuses to start with an invalid configuration, naming the variable', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [...SERVER_ARGS], { env: { ...process.env, PORT: String(port), GRADLENS_BACKEND: 'quantum' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => { err += d; });
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(2);
    expect(err).toMatch(/GRADLENS_BACKEND must be one of auto, tensorflow, tensorflow-gpu, webgpu, native, wasm, cpu/);
  });

  it('fails to start when an explicitly requested backend cannot load', async () => {
    // tfjs-node-gpu is never installed by npm ci here (it needs CUDA 11.2 and a download): the start must fail loudly.
    let installed = true;
    try {
      createRequire(import.meta.url).resolve('@tensorflow/tfjs-node-gpu');
    } catch {
      installed = false;
    }
    expect(installed, 'this test expects @tensorflow/tfjs-node-gpu to be absent').toBe(false);
    const port = await freePort();
    const child = spawn(process.execPath, [...SERVER_ARGS], { env: { ...process.env, PORT: String(port), GRADLENS_BACKEND: 'tensorflow-gpu' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => { err += d; });
    child.stdout!.on('data', (d) => { err += d; });
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).not.toBe(0);
    expect(err).toMatch(/tensorflow-gpu/);
  });
});
