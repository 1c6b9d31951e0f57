// `gradlens analyze spec.json` on recurrent networks against the real server: the through-time summary. A linear
// RNN with recurrent weights ρ·Q (Q orthogonal), input at t = 0 only and the loss on the last step has
// ‖∂L/∂h_t‖ = ρ^(T−1−t)·‖∂L/∂h_{T−1}‖, so the printed slope is ln ρ, the factor ρ, the horizon ⌈ln 0.1 / ln ρ⌉,
// the sampled norms in ratio ρ^(T−1−t), and the sparkline (log scale) rises by one level every (T−1)/8 steps.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_BACKEND } from '../support/app.js';
import { CLI_ARGS, startServer, stop, type Server } from '../support/server.js';

const T = 20;
const F = 2;
const RHO = 0.8;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { GRADLENS_URL: _url, GRADLENS_API_KEY: _key, ...env } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Four sequences whose only input is at step 0 (or at the last step). */
function impulses(atLast: boolean): { x: number[][][]; y: number[][] } {
  const x = Array.from({ length: 4 }, (_, b) => Array.from({ length: T }, (_, t) =>
    Array.from({ length: F }, (_, f) => ((atLast ? t === T - 1 : t === 0) ? 0.5 + 0.1 * b + 0.2 * f : 0))));
  return { x, y: x.map(() => [1]) };
}

const linearRnn = (gain: number, atLast: boolean) => ({
  seed: 2, loss: 'mse',
  network: { input: [T, F], layers: [
    { kind: 'simple_rnn', units: 6, activation: 'linear', init: { recurrent: { name: 'orthogonal', gain } } },
    { kind: 'dense', units: 1 },
  ] },
  data: { source: 'inline', ...impulses(atLast) },
});

/** The through-time table's row of a layer (below its RECURRENT header), split on runs of two or more spaces. */
function summaryRow(stdout: string, path: string): string[] {
  const lines = stdout.split('\n');
  const head = lines.findIndex((l) => l.startsWith('RECURRENT '));
  expect(head, 'the through-time table').toBeGreaterThan(-1);
  return lines.slice(head + 1).find((l) => l.startsWith(`${path} `))!.split(/\s{2,}/);
}
/** The sparkline line of a layer: its characters and the sampled "t=k value" pairs. */
function sparkLine(stdout: string, path: string): { spark: string; samples: Map<number, string> } {
  const line = stdout.split('\n').find((l) => l.startsWith(`${path} `) && /t=0 /.test(l))!;
  const [, spark, rest] = /^\S+\s+(\S+)\s+(t=.*)$/.exec(line)!;
  return { spark: spark!, samples: new Map([...rest!.matchAll(/t=(\d+) (\S+)/g)].map((m) => [Number(m[1]), m[2]!])) };
}

describe('gradlens analyze: gradients through time', () => {
  let server: Server;
  let dir: string;
  const file = (name: string, spec: unknown): string => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(spec));
    return path;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gradlens-cli-tt-'));
    server = await startServer({ GRADLENS_BACKEND: TEST_BACKEND, GRADLENS_DB: ':memory:', GRADLENS_WORKERS: '1' });
  });
  afterAll(async () => {
    await stop(server, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints slope ln ρ, factor ρ, the closed-form horizon and verdict, sampled norms in ratio ρ^(T−1−t) and the sparkline', async () => {
    const run = await cli(['analyze', file('rnn.json', linearRnn(RHO, false)), '--url', server.url, '--expect', '{"maxLoss": 0}']);
    expect(run.stderr).toBe('');
    // analyze reports: a failing check is printed, the exit status stays 0.
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/maxLoss\s+0\s+\S+\s+FAIL/);
    const [path, kind, steps, verdict, slope, factor, r2, horizon] = summaryRow(run.stdout, 'rnn1');
    expect([path, kind, steps, verdict]).toEqual(['rnn1', 'simple_rnn', String(T), 'vanishing']);
    expect(Number(slope)).toBeCloseTo(Math.log(RHO), 3);
    expect(Number(factor)).toBeCloseTo(RHO, 3);
    expect(Number(r2)).toBeCloseTo(1, 3);
    expect(horizon).toBe(`${Math.ceil(Math.log(0.1) / Math.log(RHO))} steps`);
    const { spark, samples } = sparkLine(run.stdout, 'rnn1');
    // ln norm linear in t on the row's own range [t = 0, t = T−1]: level ⌊8t/(T−1)⌋, capped at the top one.
    expect(spark).toBe(Array.from({ length: T }, (_, t) => '▁▂▃▄▅▆▇█'[Math.min(7, Math.floor((8 * t) / (T - 1)))]).join(''));
    expect([...samples.keys()]).toEqual([0, 5, 10, 14, 19]);
    const last = Number(samples.get(T - 1));
    // Printed to 4 significant digits: the ratio of two is good to 1e-3.
    for (const [t, v] of samples) expect(Math.abs(Number(v) / last / RHO ** (T - 1 - t) - 1), `t=${t}`).toBeLessThan(1e-3);
  });

  it('marks overflowed norms with "!" and spells them out; exploding verdict', async () => {
    const spec = linearRnn(1e4, true);
    const run = await cli(['analyze', file('exploding.json', spec), '--url', server.url]);
    expect(run.code).toBe(0);
    expect(summaryRow(run.stdout, 'rnn1')[3]).toBe('exploding');
    const api = await (await fetch(`${server.url}/v1/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) })).json();
    const norms = api.result.throughTime[0].norms as (number | string)[];
    const { spark, samples } = sparkLine(run.stdout, 'rnn1');
    expect([...spark].map((c) => c === '!')).toEqual(norms.map((n) => typeof n === 'string'));
    expect(norms.filter((n) => typeof n === 'string').length).toBeGreaterThan(0);
    expect(samples.get(0)).toBe(String(norms[0]));
  });

  it('analyze refuses a training spec (use check) and prints no through-time block without recurrent layers', async () => {
    const training = await cli(['analyze', file('train.json', { kind: 'training', ...linearRnn(RHO, false), steps: 2 }), '--url', server.url]);
    expect(training.code).toBe(2);
    expect(training.stderr).toMatch(/analyze runs analyses, not a training: use check/);
    const dense = await cli(['analyze', file('dense.json', { network: { depth: 3, width: 8 }, data: { source: 'xor' } }), '--url', server.url]);
    expect(dense.code).toBe(0);
    expect(dense.stdout).not.toContain('through time');
  });
});
