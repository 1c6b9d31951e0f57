// The gradlens CLI against a stub fetch: pass/fail exit codes, the checks table, async polling with ETag/304, errors.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { main, type CliIo } from '../../src/cli/main.js';

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };

/** Headers as a plain object (lower-case names), for toEqual. */
function headerObject(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => { out[name] = value; });
  return out;
}

/** A fetch that answers from a script of replies, recording every request. */
function stubFetch(replies: Reply[]): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetchStub = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    calls.push({
      url: String(input),
      method: init.method ?? 'GET',
      headers: headerObject(new Headers(init.headers)),
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
    });
    const reply = replies.shift();
    if (!reply) throw new Error('no more scripted replies');
    const body = reply.status === 304 || reply.body === undefined ? null : JSON.stringify(reply.body);
    return new Response(body, { status: reply.status, headers: { 'content-type': 'application/json', ...reply.headers } });
  };
  return { fetch: fetchStub as typeof fetch, calls };
}

function harness(files: Record<string, unknown>, replies: Reply[]) {
  const out: string[] = [];
  const err: string[] = [];
  const sleeps: number[] = [];
  let clock = 0;
  const { fetch, calls } = stubFetch(replies);
  const io: Partial<CliIo> = {
    fetch,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    readFile: async (p) => {
      if (!(p in files)) throw new Error(`ENOENT: no such file '${p}'`);
      return typeof files[p] === 'string' ? (files[p] as string) : JSON.stringify(files[p]);
    },
    sleep: async (ms) => { sleeps.push(ms); clock += ms; },
    now: () => clock,
    env: {},
  };
  return { io, calls, sleeps, stdout: () => out.join(''), stderr: () => err.join('') };
}

const analysisSpec = {
  network: { depth: 20, width: 1, activation: 'sigmoid' },
  data: { source: 'inline', x: [[1]] },
  loss: 'output',
  expect: { verdict: 'healthy', minFirstToLastRatio: 0.01 },
};

const analysisJob = (passed: boolean) => ({
  id: 'a1', kind: 'analysis', status: 'succeeded',
  result: {
    loss: 0.6,
    summary: { verdict: passed ? 'healthy' : 'vanishing', firstToLastRatio: passed ? 0.5 : 2.01e-27 },
    checks: [
      { name: 'verdict', expected: 'healthy', actual: passed ? 'healthy' : 'vanishing', passed },
      { name: 'minFirstToLastRatio', expected: 0.01, actual: passed ? 0.5 : 2.01e-27, passed },
    ],
    passed,
  },
});

describe('gradlens check', () => {
  it('posts an analysis, prints the checks table and exits 0 when all pass', async () => {
    const h = harness({ 'spec.json': analysisSpec }, [{ status: 200, body: analysisJob(true) }]);
    const code = await main(['check', 'spec.json', '--url', 'http://host:3000/', '--api-key', 'k3y'], h.io);
    expect(code).toBe(0);
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]).toMatchObject({ url: 'http://host:3000/v1/analyses', method: 'POST', body: analysisSpec });
    expect(h.calls[0]!.headers).toMatchObject({ authorization: 'Bearer k3y', 'content-type': 'application/json' });
    // The server reads the key from Authorization only; the help says so.
    expect(h.calls[0]!.headers).not.toHaveProperty('x-api-key');
    const out = h.stdout();
    expect(out).toMatch(/verdict: healthy/);
    expect(out).toMatch(/CHECK\s+EXPECTED\s+ACTUAL\s+RESULT/);
    expect(out).toMatch(/minFirstToLastRatio\s+0\.01\s+0\.5\s+PASS/);
    expect(out).toMatch(/PASSED: 2 of 2 checks/);
  });

  it('prints a layer graph\'s rows with path, kind, shape and block columns (the dense shorthand\'s rows are not listed)', async () => {
    const rows = [
      { path: 'stem.conv', kind: 'conv2d', outputShape: [28, 28, 16], block: null, shortcut: false, activation: 'relu', backpropNorm: 2.16, weightGradNorm: 1.97, deadFraction: 0 },
      { path: 'stage2.block1.shortcut', kind: 'conv2d', outputShape: [14, 14, 32], block: 'stage2.block1', shortcut: true, activation: 'linear', backpropNorm: 0.382, weightGradNorm: 1.91, deadFraction: 0 },
      { path: 'head.dense', kind: 'dense', outputShape: [10], block: null, shortcut: false, activation: 'softmax', backpropNorm: 1.34, weightGradNorm: 9.95, deadFraction: null },
    ];
    const job = analysisJob(true);
    const h = harness({ 'spec.json': analysisSpec }, [{ status: 200, body: { ...job, result: { ...job.result, layers: rows } } }]);
    expect(await main(['check', 'spec.json', '--url', 'http://host:3000'], h.io)).toBe(0);
    const out = h.stdout();
    expect(out).toMatch(/LAYER\s+KIND\s+SHAPE\s+BLOCK\s+ACTIVATION\s+BACKPROP\s+WEIGHT GRAD\s+DEAD/);
    expect(out).toMatch(/stem\.conv\s+conv2d\s+\[28, 28, 16\]\s+-\s+relu\s+2\.16\s+1\.97\s+0\n/);
    expect(out).toMatch(/stage2\.block1\.shortcut \(shortcut\)\s+conv2d\s+\[14, 14, 32\]\s+stage2\.block1\s+linear/);
    expect(out).toMatch(/head\.dense\s+dense\s+\[10\]\s+-\s+softmax\s+1\.34\s+9\.95\s+-\n/);
    const dense = harness({ 'spec.json': analysisSpec }, [{ status: 200, body: { ...job, result: { ...job.result, layers: [{ name: 'dense_0', backpropNorm: 1 }] } } }]);
    await main(['check', 'spec.json', '--url', 'http://host:3000'], dense.io);
    expect(dense.stdout()).not.toMatch(/LAYER\s+KIND/);
  });

  it('exits 1 when a check fails', async () => {
    const h = harness({ 'spec.json': analysisSpec }, [{ status: 200, body: analysisJob(false) }]);
    expect(await main(['check', 'spec.json', '--url', 'http://host:3000'], h.io)).toBe(1);
    expect(h.stdout()).toMatch(/verdict\s+healthy\s+vanishing\s+FAIL/);
    expect(h.stdout()).toMatch(/minFirstToLastRatio\s+0\.01\s+2\.01e-27\s+FAIL/);
    expect(h.stdout()).toMatch(/FAILED: 2 of 2 checks/);
  });

  it('takes the kind from the file, strips it from the body, and by default waits for the job, polling with ETag/304', async () => {
    const spec = { kind: 'training', network: { depth: 3 }, data: { source: 'iris' }, steps: 100, expect: { learns: true, minAccuracy: 0.9 } };
    const running = { id: 'j1', kind: 'training', status: 'running', progress: 0.4 };
    const done = {
      id: 'j1', kind: 'training', status: 'succeeded', progress: 1,
      result: {
        status: 'learning', learns: true, initialLoss: 1.1, finalLoss: 0.2, finalAccuracy: 0.96,
        checks: [
          { name: 'learns', expected: true, actual: true, passed: true },
          { name: 'minAccuracy', expected: 0.9, actual: 0.96, passed: true },
        ],
        passed: true,
      },
    };
    const h = harness({ 't.json': spec }, [
      { status: 202, body: { id: 'j1', kind: 'training', status: 'queued', progress: 0 }, headers: { location: '/v1/jobs/j1' } },
      { status: 200, body: running, headers: { etag: '"e1"' } },
      { status: 304 },
      { status: 304 },
      { status: 200, body: done, headers: { etag: '"e2"' } },
    ]);
    const code = await main(['check', 't.json', '--url', 'http://host:3000'], h.io);
    expect(code).toBe(0);
    expect(h.calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'POST http://host:3000/v1/trainings',
      'GET http://host:3000/v1/jobs/j1',
      'GET http://host:3000/v1/jobs/j1',
      'GET http://host:3000/v1/jobs/j1',
      'GET http://host:3000/v1/jobs/j1',
    ]);
    expect(h.calls[0]!.body).not.toHaveProperty('kind');
    expect(h.calls[1]!.headers['if-none-match']).toBeUndefined();
    expect(h.calls.slice(2).map((c) => c.headers['if-none-match'])).toEqual(['"e1"', '"e1"', '"e1"']);
    // Backs off between polls.
    expect(h.sleeps).toEqual([500, 750, 1125, 1688]);
    expect(h.stdout()).toMatch(/status: learning \(learns: true\)/);
    expect(h.stdout()).toMatch(/minAccuracy\s+0\.9\s+0\.96\s+PASS/);
  });

  it('--kind overrides the file; --no-wait reports the job and exits 3 when expect goes unchecked, 0 without expect', async () => {
    const accepted = { status: 202, body: { id: 's1', kind: 'sweep', status: 'queued' }, headers: { location: '/v1/jobs/s1' } };
    let h = harness({ 's.json': { kind: 'training', base: {}, grid: {}, expect: { verdict: 'healthy' } } }, [accepted]);
    expect(await main(['check', 's.json', '--url', 'http://host:3000', '--kind', 'sweep', '--no-wait'], h.io)).toBe(3);
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]!.url).toBe('http://host:3000/v1/sweeps');
    expect(h.stdout()).toMatch(/sweep job s1 queued: http:\/\/host:3000\/v1\/jobs\/s1/);
    expect(h.stderr()).toMatch(/not evaluated, so this is not a pass \(exit 3\)/);
    h = harness({ 's.json': { base: {}, grid: {} } }, [accepted]);
    expect(await main(['check', 's.json', '--url', 'http://host:3000', '--kind', 'sweep', '--no-wait'], h.io)).toBe(0);
    h = harness({ 's.json': { base: {}, grid: {} } }, []);
    expect(await main(['check', 's.json', '--url', 'http://host:3000', '--wait', '--no-wait'], h.io)).toBe(2);
    expect(h.stderr()).toMatch(/contradict/);
  });

  it('exits 2 on usage errors, unreadable files, HTTP errors and failed jobs', async () => {
    let h = harness({}, []);
    expect(await main(['check', 'spec.json'], h.io)).toBe(2);
    expect(h.stderr()).toMatch(/missing --url/);
    h = harness({}, []);
    expect(await main(['check', 'spec.json', '--url', 'http://h', '--kind', 'nope'], h.io)).toBe(2);
    h = harness({}, []);
    expect(await main(['check', 'spec.json', '--url', 'http://h', '--bogus'], h.io)).toBe(2);
    h = harness({}, []);
    expect(await main(['check', 'missing.json', '--url', 'http://h'], h.io)).toBe(2);
    expect(h.stderr()).toMatch(/cannot read missing.json/);
    h = harness({ 'bad.json': '{ nope' }, []);
    expect(await main(['check', 'bad.json', '--url', 'http://h'], h.io)).toBe(2);

    h = harness({ 'spec.json': analysisSpec }, [
      { status: 400, body: { statusCode: 400, code: 'INVALID_SPEC', error: 'Bad Request', message: 'network.depth is 1000 but the limit is 200', field: 'network.depth' } },
    ]);
    expect(await main(['check', 'spec.json', '--url', 'http://h'], h.io)).toBe(2);
    expect(h.stderr()).toMatch(/HTTP 400 INVALID_SPEC: network.depth is 1000 but the limit is 200 \(field network.depth\)/);

    h = harness({ 't.json': { kind: 'training' } }, [
      { status: 202, body: { id: 'j2', status: 'queued' }, headers: { location: '/v1/jobs/j2' } },
      { status: 200, body: { id: 'j2', status: 'failed', error: { code: 'INTERNAL_ERROR', message: 'worker crashed' } } },
    ]);
    expect(await main(['check', 't.json', '--url', 'http://h'], h.io)).toBe(2);
    expect(h.stderr()).toMatch(/training job j2 failed: INTERNAL_ERROR worker crashed/);
  });

  it('retries 503 after Retry-After and gives up at --timeout', async () => {
    let h = harness({ 'spec.json': analysisSpec }, [
      { status: 503, body: { code: 'QUEUE_FULL', message: 'busy' }, headers: { 'retry-after': '2' } },
      { status: 200, body: analysisJob(true) },
    ]);
    expect(await main(['check', 'spec.json', '--url', 'http://h'], h.io)).toBe(0);
    expect(h.sleeps).toEqual([2000]);

    const running = { status: 200, body: { id: 'j3', status: 'running' }, headers: { etag: '"r"' } };
    h = harness({ 't.json': { kind: 'training' } }, [
      { status: 202, body: { id: 'j3', status: 'queued' }, headers: { location: '/v1/jobs/j3' } },
      running, ...Array.from({ length: 20 }, () => ({ status: 304 })),
    ]);
    expect(await main(['check', 't.json', '--url', 'http://h', '--timeout', '10'], h.io)).toBe(2);
    expect(h.stderr()).toMatch(/timed out after 10 s waiting for http:\/\/h\/v1\/jobs\/j3 \(status running/);
    expect(h.sleeps.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10_000);
  });

  it('refuses to gate when the server returns no checks for expect (it never evaluates them itself), and passes when nothing is expected', async () => {
    const job = { id: 'a2', status: 'succeeded', result: { loss: 1, summary: { firstToLastRatio: 1e-9, backpropFirstToLastRatio: 1e-9 }, layers: [] } };
    let h = harness({ 'spec.json': { ...analysisSpec, expect: { minFirstToLastRatio: 0.01 } } }, [{ status: 200, body: job }]);
    expect(await main(['check', 'spec.json', '--url', 'http://h'], h.io)).toBe(2);
    expect(h.stderr()).toMatch(/the server returned no checks for the spec's "expect"/);
    const { expect: _none, ...noExpect } = analysisSpec;
    h = harness({ 'spec.json': noExpect }, [{ status: 200, body: job }]);
    expect(await main(['check', 'spec.json', '--url', 'http://h'], h.io)).toBe(0);
    expect(h.stdout()).toMatch(/no checks/);
  });

  it('the bin entry starts with a shebang (tsc keeps it in dist/src/cli/gradlens.js)', () => {
    const source = readFileSync(new URL('../../src/cli/gradlens.ts', import.meta.url), 'utf8');
    expect(source.startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});

describe('the CLI is an HTTP client', () => {
  it('imports nothing from the engine', () => {
    const source = readFileSync(new URL('../../src/cli/main.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/from '\.\.\/engine\//);
  });
});
