// The gradlens CLI as a CI pipeline runs it: the bin as a child process against the real server (both from the sources through tsx); exit codes and output.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sigmoidChain, TEXTBOOK_CHAIN } from '../support/textbook-chain.js';
import { TEST_BACKEND } from '../support/app.js';
import { CLI_ARGS, json, startServer, stop, type Server } from '../support/server.js';
import { until } from '../support/until.js';

const KEY = 'cli-e2e-key-0123456789abcdef';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the bin with a clean environment (no GRADLENS_URL / GRADLENS_API_KEY unless given). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const { GRADLENS_URL: _url, GRADLENS_API_KEY: _key, ...inherited } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const TRAINING = {
  kind: 'training',
  network: { depth: 3, width: 16, activation: 'tanh' },
  data: { source: 'iris' },
  steps: 150,
  optimizer: { name: 'adam', learningRate: 0.01 },
};

describe('gradlens check against the real server', () => {
  let open: Server;
  let keyed: Server;
  let dir: string;
  const file = (name: string, spec: unknown): string => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(spec));
    return path;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gradlens-cli-'));
    const env = { GRADLENS_BACKEND: TEST_BACKEND, GRADLENS_DB: ':memory:', GRADLENS_WORKERS: '1' };
    [open, keyed] = await Promise.all([startServer(env), startServer({ ...env, GRADLENS_API_KEYS: KEY })]);
  });
  afterAll(async () => {
    await Promise.all([stop(open, 'SIGTERM'), stop(keyed, 'SIGTERM')]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 0 when an analysis passes, printing the ratio the closed form gives', async () => {
    const chain = sigmoidChain(20, Math.fround(0.17), 1);
    const ratio = chain.weightGrads[0]! / chain.weightGrads[19]!;
    const spec = file('pass.json', { ...TEXTBOOK_CHAIN, expect: { verdict: 'vanishing', maxFirstToLastRatio: 1e-20 } });
    const run = await cli(['check', spec, '--url', open.url]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const row = /maxFirstToLastRatio\s+1e-20\s+(\S+)\s+PASS/.exec(run.stdout);
    expect(row).not.toBeNull();
    expect(Number(row![1]) / ratio).toBeCloseTo(1, 3);
    expect(run.stdout).toMatch(/verdict\s+vanishing\s+vanishing\s+PASS/);
    expect(run.stdout).toMatch(/PASSED: 2 of 2 checks/);
  });

  it('exits 1 when a check fails', async () => {
    const spec = file('fail.json', { ...TEXTBOOK_CHAIN, expect: { minFirstToLastRatio: 0.01 } });
    const run = await cli(['check', spec, '--url', open.url]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/minFirstToLastRatio\s+0\.01\s+\S+\s+FAIL/);
    expect(run.stdout).toMatch(/FAILED: 1 of 1 checks/);
  });

  it('waits for a training by default and gates on its checks (0, then 1 for the opposite expectation)', async () => {
    const pass = await cli(['check', file('train.json', { ...TRAINING, expect: { learns: true, maxNonFinite: 0 } }), '--url', open.url]);
    expect(pass.stdout).toMatch(/status: \S+ \(learns: true\)/);
    expect(pass.stdout).toMatch(/learns\s+true\s+true\s+PASS/);
    expect(pass.code).toBe(0);
    const fail = await cli(['check', file('train-fail.json', { ...TRAINING, expect: { learns: false } }), '--url', open.url]);
    expect(fail.stdout).toMatch(/learns\s+false\s+true\s+FAIL/);
    expect(fail.code).toBe(1);
  });

  it('--no-wait submits the training and exits 3: its checks were not evaluated', async () => {
    const run = await cli(['check', file('nowait.json', { ...TRAINING, expect: { learns: true } }), '--url', open.url, '--no-wait']);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/not evaluated/);
    const url = /training job \S+ queued: (\S+)/.exec(run.stdout)?.[1];
    expect(url).toBeTruthy();
    // The job is real: it runs to the end on the server.
    const done = await until(() => json(url!), (r) => r.body?.status === 'succeeded' || r.body?.status === 'failed');
    expect(done.body.status).toBe('succeeded');
  });

  it('exits 2 for a spec the server refuses, naming the field, and for a server that is not there', async () => {
    const bad = await cli(['check', file('bad.json', { ...TEXTBOOK_CHAIN, network: { ...TEXTBOOK_CHAIN.network, depth: 100_000 } }), '--url', open.url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/HTTP 400 INVALID_SPEC: .*network\.depth.*\(field network\.depth\)/);
    const gone = await cli(['check', file('gone.json', TEXTBOOK_CHAIN), '--url', 'http://127.0.0.1:9', '--timeout', '5']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/cannot reach/);
  });

  it('sends --api-key (or $GRADLENS_API_KEY) as the Bearer key the server checks; a wrong or missing key exits 2', async () => {
    const spec = file('keyed.json', { ...TEXTBOOK_CHAIN, expect: { verdict: 'vanishing' } });
    expect((await cli(['check', spec, '--url', keyed.url, '--api-key', KEY])).code).toBe(0);
    expect((await cli(['check', spec], { GRADLENS_URL: keyed.url, GRADLENS_API_KEY: KEY })).code).toBe(0);
    const wrong = await cli(['check', spec, '--url', keyed.url, '--api-key', `${KEY}-wrong`]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/HTTP 401 INVALID_API_KEY/);
    const missing = await cli(['check', spec, '--url', keyed.url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/HTTP 401 UNAUTHORIZED/);
  });

  it('--help describes what the bin does: waiting by default, --no-wait, the Bearer header only', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/--no-wait/);
    expect(run.stdout).toMatch(/"Authorization: Bearer <key>"/);
    expect(run.stdout).not.toMatch(/X-API-Key/i);
  });
});
