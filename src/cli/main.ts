// `gradlens check`: submits a spec to a gradlens server, waits for async jobs, prints the checks and exits 0/1/2/3 for CI.
// `gradlens check model.onnx` / `gradlens analyze model.onnx`: uploads the model first (model.ts), then the same.
// `gradlens analyze spec.json`: an analysis that only reports; recurrent layers add the through-time summary (through-time.ts).
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { isModelFile, modelRows, modelSpec, MODEL_OPTIONS, MODEL_USAGE, parseModelOptions, type ModelOptions, type ModelUpload } from './model.js';
import { throughTimeRows } from './through-time.js';
// An HTTP client only: the lists come from the vocabulary, the checks from the server's response.
import { isOneOf, JOB_KINDS, TERMINAL_STATUSES, type JobKind as WorkKind } from '../schemas/vocabulary.js';

export interface CliIo {
  fetch: typeof fetch;
  stdout(text: string): void;
  stderr(text: string): void;
  readFile(path: string): Promise<string>;
  /** A model file as bytes (the upload's body). */
  readBytes(path: string): Promise<Uint8Array>;
  sleep(ms: number): Promise<void>;
  now(): number;
  env: Record<string, string | undefined>;
}

export const EXIT_PASSED = 0;
export const EXIT_FAILED = 1;
export const EXIT_ERROR = 2;
/** --no-wait on a job whose spec has expect: submitted, but nothing was checked, so the gate is not green. */
export const EXIT_NOT_CHECKED = 3;

const KINDS = JOB_KINDS;
const ENDPOINT: Record<WorkKind, string> = { analysis: '/v1/analyses', training: '/v1/trainings', sweep: '/v1/sweeps' };
const TERMINAL = new Set<string>(TERMINAL_STATUSES);
const FIRST_POLL_MS = 500;
const MAX_POLL_MS = 5000;

export const USAGE = `Usage: gradlens check <spec.json> --url <http://host:3000> [options]
       gradlens check <model.onnx> --data <mnist|gaussian_images|data.json> --url <url> [options]
       gradlens analyze <model.onnx> --data <…> --url <url> [options]
       gradlens analyze <spec.json> --url <url> [options]
       gradlens worker   (a compute worker: needs GRADLENS_QUEUE=redis://… and GRADLENS_STORE=postgres://…)

Submits an analysis, training or sweep spec, waits for its result and prints its checks (from "expect"
in the spec). Trainings and sweeps run as jobs: the CLI polls them until they finish. An analysis of a
network with recurrent layers also prints its gradient through time (slope and factor per step, memory
horizon, verdict, a sparkline of the norms). analyze prints the same and only reports (exit 0 whatever the checks).
Exit status: 0 all checks pass (or none were asked for), 1 a check fails, 2 usage, HTTP or job errors
(or the timeout), 3 --no-wait left a job with "expect" unchecked.

Options:
  --url <url>        Server base URL (default: $GRADLENS_URL).
  --kind <kind>      analysis | training | sweep (default: the spec's "kind" field, else analysis).
  --no-wait          Submit a training or sweep and exit without waiting: nothing is checked, so the
                     exit status is 3 when the spec has "expect" (0 when it has none).
  --wait             Wait for jobs and gate on their checks (the default).
  --api-key <key>    Sent as "Authorization: Bearer <key>" (default: $GRADLENS_API_KEY).
  --timeout <s>      Give up after this many seconds, polling included (default 600).
  --expect <json>    CI expectations (a JSON object, or a file holding one), merged over the spec's "expect".
${MODEL_USAGE}  -h, --help         Show this help.
`;

class CliError extends Error {}

const defaultIo = (): CliIo => ({
  fetch: globalThis.fetch.bind(globalThis),
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  readFile: (p) => readFile(p, 'utf8'),
  readBytes: async (p) => new Uint8Array(await readFile(p)),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  now: () => Date.now(),
  env: process.env,
});

interface Options {
  /** check: exit 1 when a check fails; analyze: report only (models: print every parameter). */
  command: 'check' | 'analyze';
  file: string;
  url: string;
  kind: WorkKind | undefined;
  wait: boolean;
  apiKey: string | undefined;
  timeoutMs: number;
  /** --expect, as given (JSON text or a file name); read in check(). */
  expect: string | undefined;
  /** Set when the file is a model (.onnx). */
  model: ModelOptions | undefined;
}

function parse(argv: string[], env: CliIo['env']): Options | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      kind: { type: 'string' },
      wait: { type: 'boolean', default: false },
      'no-wait': { type: 'boolean', default: false },
      'api-key': { type: 'string' },
      timeout: { type: 'string' },
      expect: { type: 'string' },
      ...MODEL_OPTIONS,
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const [command, file, ...extra] = positionals;
  if (command !== 'check' && command !== 'analyze') throw new CliError(command ? `unknown command "${command}"` : 'missing command "check"');
  if (!file) throw new CliError(command === 'analyze' ? 'missing the model or spec file' : 'missing the spec file');
  const model = isModelFile(file) ? parseModelOptions(values, (m) => new CliError(m)) : undefined;
  if (!model) {
    const stray = Object.keys(MODEL_OPTIONS).find((k) => (values as Record<string, unknown>)[k] !== undefined && (values as Record<string, unknown>)[k] !== false);
    if (stray) throw new CliError(`--${stray} applies to a model file (.onnx), not to a spec`);
  }
  if (extra.length) throw new CliError(`unexpected argument "${extra[0]}"`);
  const url = values.url ?? env.GRADLENS_URL;
  if (!url) throw new CliError('missing --url (or $GRADLENS_URL)');
  try {
    new URL(url);
  } catch {
    throw new CliError(`--url "${url}" is not a URL`);
  }
  if (values.wait && values['no-wait']) throw new CliError('--wait and --no-wait contradict each other');
  if (values.kind !== undefined && !isOneOf(KINDS, values.kind)) {
    throw new CliError(`--kind must be one of ${KINDS.join(', ')}`);
  }
  const timeout = values.timeout === undefined ? 600 : Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new CliError('--timeout must be a positive number of seconds');
  if (model && values.kind !== undefined && values.kind !== 'analysis') throw new CliError('a model file is analysed: --kind must be analysis');
  return {
    command,
    file,
    expect: values.expect,
    model,
    url: url.replace(/\/+$/, ''),
    kind: values.kind as WorkKind | undefined,
    // A gate that does not wait checks nothing: waiting is the default.
    wait: !values['no-wait'],
    apiKey: values['api-key'] ?? env.GRADLENS_API_KEY,
    timeoutMs: timeout * 1000,
  };
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (Array.isArray(v)) return v.map(fmt).join(' | ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

/** Retry-After as seconds or an HTTP date, in ms; null when absent or unreadable. */
function retryAfterMs(res: Response, now: number): number | null {
  const h = res.headers.get('retry-after');
  if (!h) return null;
  const s = Number(h);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(h);
  return Number.isNaN(t) ? null : Math.max(0, t - now);
}

async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { code?: string; message?: string; field?: string; limit?: string };
    const where = body.field ? ` (field ${body.field})` : body.limit ? ` (limit ${body.limit})` : '';
    return `HTTP ${res.status}${body.code ? ` ${body.code}` : ''}: ${body.message ?? text}${where}`;
  } catch {
    return `HTTP ${res.status}: ${text.slice(0, 500) || res.statusText}`;
  }
}

type Job = {
  id?: string;
  kind?: string;
  status?: string;
  progress?: number;
  result?: Record<string, unknown>;
  error?: { code?: string; message?: string };
};

export async function main(argv: string[], ioOverrides: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = { ...defaultIo(), ...ioOverrides };
  let options: Options | 'help';
  try {
    options = parse(argv, io.env);
  } catch (err) {
    io.stderr(`gradlens: ${(err as Error).message}\n\n${USAGE}`);
    return EXIT_ERROR;
  }
  if (options === 'help') {
    io.stdout(USAGE);
    return EXIT_PASSED;
  }
  try {
    return await check(options, io);
  } catch (err) {
    io.stderr(`gradlens: ${err instanceof CliError ? err.message : `${(err as Error).name}: ${(err as Error).message}`}\n`);
    return EXIT_ERROR;
  }
}

/** The JSON object in a file (or, for --expect, given inline). */
async function readJsonObject(source: string, io: CliIo, what: string, inline = false): Promise<Record<string, unknown>> {
  let text = source;
  if (!inline || !source.trimStart().startsWith('{')) {
    try {
      text = await io.readFile(source);
    } catch (err) {
      throw new CliError(`cannot read ${source}: ${(err as Error).message}`);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${what} is not JSON: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new CliError(`${what} must hold a JSON object`);
  return value as Record<string, unknown>;
}

type Request = (url: string, init: RequestInit) => Promise<Response>;

/** The request helper: one request, retrying 429/502/503/504 after Retry-After (or a backoff) until the deadline. */
function requester(o: Options, io: CliIo, deadline: number): Request {
  return async (url, init) => {
    let delay = FIRST_POLL_MS;
    for (;;) {
      const remaining = deadline - io.now();
      if (remaining <= 0) throw new CliError(`timed out after ${o.timeoutMs / 1000} s`);
      let res: Response;
      try {
        res = await io.fetch(url, { ...init, signal: AbortSignal.timeout(Math.ceil(remaining)) });
      } catch (err) {
        const e = err as Error;
        if (e.name === 'TimeoutError') throw new CliError(`timed out after ${o.timeoutMs / 1000} s`);
        throw new CliError(`cannot reach ${url}: ${e.message}`);
      }
      if (![429, 502, 503, 504].includes(res.status)) return res;
      const wait = retryAfterMs(res, io.now()) ?? delay;
      await res.body?.cancel().catch(() => {});
      if (io.now() + wait >= deadline) throw new CliError(`${await errorText(res)}; still unavailable at the timeout`);
      io.stderr(`gradlens: HTTP ${res.status}, retrying in ${Math.round(wait / 100) / 10} s\n`);
      await io.sleep(wait);
      delay = Math.min(MAX_POLL_MS, Math.round(delay * 1.5));
    }
  };
}

/** A tfjs model's files as multipart parts, each under its own file name (the server matches them to the manifest). */
function formOf(files: { name: string; bytes: Uint8Array }[]): FormData {
  const form = new FormData();
  for (const f of files) form.append(f.name, new Blob([new Uint8Array(f.bytes)]), f.name);
  return form;
}

/** What to post where: the spec file's body and kind, or a model's analysis (uploaded first). */
async function workOf(o: Options, io: CliIo, request: Request, headers: Record<string, string>): Promise<{ kind: WorkKind; body: Record<string, unknown> }> {
  const expect = o.expect === undefined ? undefined : await readJsonObject(o.expect, io, '--expect', true);
  if (o.model) {
    const upload = async (model: ModelUpload): Promise<string> => {
      const res = await request(`${o.url}/v1/models`, model.kind === 'onnx'
        ? { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: new Blob([new Uint8Array(model.bytes)]) }
        // FormData: fetch writes the multipart body and its content-type (with the boundary) itself.
        : { method: 'POST', headers, body: formOf(model.files) });
      if (res.status !== 201) throw new CliError(`POST /v1/models: ${await errorText(res)}`);
      const id = ((await res.json()) as { id?: string }).id;
      if (!id) throw new CliError('POST /v1/models answered without an id');
      io.stderr(`gradlens: uploaded ${o.file} as model ${id}\n`);
      return id;
    };
    const readData = (path: string) => readJsonObject(path, io, path);
    const body = await modelSpec(o.file, o.model, { readBytes: io.readBytes, readData, upload, fail: (m) => new CliError(m) });
    return { kind: o.model.training ? 'training' : 'analysis', body: expect ? { ...body, expect } : body };
  }
  const spec = await readJsonObject(o.file, io, o.file);
  // "kind" tells the CLI where to post; the server's schemas do not know it.
  const { kind: fileKind, ...body } = spec;
  if (fileKind !== undefined && !isOneOf(KINDS, fileKind)) {
    throw new CliError(`"kind" in ${o.file} must be one of ${KINDS.join(', ')}`);
  }
  const kind: WorkKind = o.kind ?? (isOneOf(KINDS, fileKind) ? fileKind : 'analysis');
  if (o.command === 'analyze' && kind !== 'analysis') throw new CliError(`analyze runs analyses, not a ${kind}: use check`);
  return { kind, body: expect ? { ...body, expect: { ...(body.expect as object | undefined), ...expect } } : body };
}

async function check(o: Options, io: CliIo): Promise<number> {
  const deadline = io.now() + o.timeoutMs;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
  const request = requester(o, io, deadline);
  const { kind, body } = await workOf(o, io, request, headers);

  const postUrl = `${o.url}${ENDPOINT[kind]}`;
  const res = await request(postUrl, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 200 && res.status !== 201 && res.status !== 202) throw new CliError(`POST ${ENDPOINT[kind]}: ${await errorText(res)}`);
  let job = (await res.json()) as Job;

  if (res.status === 202) {
    const location = res.headers.get('location') ?? (job.id ? `/v1/jobs/${job.id}` : null);
    if (!location) throw new CliError('the server accepted the job but sent no Location');
    const jobUrl = new URL(location, `${o.url}/`).href;
    if (!o.wait) {
      io.stdout(`gradlens: ${kind} job ${job.id ?? ''} ${job.status ?? 'queued'}: ${jobUrl}\n`);
      if (!(body as { expect?: unknown }).expect) return EXIT_PASSED;
      io.stderr(`gradlens: --no-wait: the job's checks were not evaluated, so this is not a pass (exit ${EXIT_NOT_CHECKED})\n`);
      return EXIT_NOT_CHECKED;
    }
    job = await poll(jobUrl, headers, job, request, io, deadline, o);
  }

  if (job.status === 'failed' || job.status === 'canceled') {
    throw new CliError(`${kind} job ${job.id ?? ''} ${job.status}${job.error ? `: ${job.error.code ?? ''} ${job.error.message ?? ''}`.trimEnd() : ''}`);
  }
  const code = report(kind, job, (body as { expect?: unknown }).expect !== undefined, io, o.command === 'analyze');
  // analyze reports; check gates (a failing check is exit 1 there).
  return o.command === 'analyze' && code === EXIT_FAILED ? EXIT_PASSED : code;
}

async function poll(
  jobUrl: string,
  headers: Record<string, string>,
  initial: Job,
  request: (url: string, init: RequestInit) => Promise<Response>,
  io: CliIo,
  deadline: number,
  o: Options,
): Promise<Job> {
  let job = initial;
  let etag: string | null = null;
  let delay = FIRST_POLL_MS;
  while (!TERMINAL.has(job.status ?? '')) {
    const wait = Math.min(delay, Math.max(0, deadline - io.now()));
    if (io.now() + wait >= deadline) throw new CliError(`timed out after ${o.timeoutMs / 1000} s waiting for ${jobUrl} (status ${job.status}, progress ${fmt(job.progress)})`);
    await io.sleep(wait);
    delay = Math.min(MAX_POLL_MS, Math.round(delay * 1.5));
    const res = await request(jobUrl, { method: 'GET', headers: etag ? { ...headers, 'if-none-match': etag } : headers });
    if (res.status === 304) continue;
    if (res.status !== 200) throw new CliError(`GET ${new URL(jobUrl).pathname}: ${await errorText(res)}`);
    etag = res.headers.get('etag');
    job = (await res.json()) as Job;
    const after = retryAfterMs(res, io.now());
    if (after !== null) delay = after;
  }
  return job;
}

function headline(kind: WorkKind, result: Record<string, unknown>): string {
  if (kind === 'analysis') {
    const s = (result.summary ?? {}) as Record<string, unknown>;
    return `verdict: ${fmt(s.verdict ?? 'n/a')}   firstToLastRatio: ${fmt(s.firstToLastRatio)}   loss: ${fmt(result.loss)}`;
  }
  if (kind === 'training') {
    return `status: ${fmt(result.status)} (learns: ${fmt(result.learns)})   loss: ${fmt(result.initialLoss)} -> ${fmt(result.finalLoss)}   accuracy: ${fmt(result.finalAccuracy)}`;
  }
  const rows = (result.rows ?? []) as { verdict?: unknown }[];
  const verdicts = new Map<string, number>();
  for (const r of rows) verdicts.set(fmt(r.verdict ?? 'n/a'), (verdicts.get(fmt(r.verdict ?? 'n/a')) ?? 0) + 1);
  return `cells: ${rows.length}   verdicts: ${[...verdicts].map(([v, n]) => `${v} ×${n}`).join(', ') || '-'}`;
}

/** A layer graph's rows (they carry a path) as a table in graph order; null for the dense shorthand's rows. */
function graphRows(result: Record<string, unknown>): string | null {
  const layers = result.layers as { path?: string; kind?: string; outputShape?: number[]; block?: string | null; shortcut?: boolean; activation?: string; backpropNorm?: unknown; weightGradNorm?: unknown; deadFraction?: unknown }[] | undefined;
  if (!Array.isArray(layers) || layers.length === 0 || layers[0]!.path === undefined) return null;
  return table([
    ['LAYER', 'KIND', 'SHAPE', 'BLOCK', 'ACTIVATION', 'BACKPROP', 'WEIGHT GRAD', 'DEAD'],
    ...layers.map((l) => [
      `${l.path}${l.shortcut ? ' (shortcut)' : ''}`, fmt(l.kind), `[${(l.outputShape ?? []).join(', ')}]`, l.block ?? '-', fmt(l.activation),
      fmt(l.backpropNorm), fmt(l.weightGradNorm), l.deadFraction === null ? '-' : fmt(l.deadFraction),
    ]),
  ]);
}

function report(kind: WorkKind, job: Job, expected: boolean, io: CliIo, everyParameter = false): number {
  const result = job.result;
  if (!result || typeof result !== 'object') throw new CliError(`the ${kind} ${job.id ?? ''} has no result`);
  io.stdout(`gradlens: ${kind} ${job.id ?? ''} ${job.status ?? 'succeeded'}\n${headline(kind, result)}\n`);
  const rows = kind === 'analysis' ? modelRows(result, table, fmt, everyParameter) ?? graphRows(result) : null;
  if (rows) io.stdout('\n' + rows);
  const throughTime = kind === 'analysis' ? throughTimeRows(result, table, fmt) : null;
  if (throughTime) io.stdout('\n' + throughTime);
  const checks = result.checks as { name: string; expected: unknown; actual: unknown; passed: boolean }[] | undefined;
  // The server evaluates expect; a response without checks for a spec with expect cannot be gated.
  if (!Array.isArray(checks) && expected) {
    throw new CliError(`the server returned no checks for the spec's "expect" (${kind} ${job.id ?? ''}): nothing was checked`);
  }
  if (!Array.isArray(checks) || checks.length === 0) {
    io.stdout('no checks: add "expect" to the spec to gate on the result\n');
    return EXIT_PASSED;
  }
  io.stdout('\n' + table([
    ['CHECK', 'EXPECTED', 'ACTUAL', 'RESULT'],
    ...checks.map((c) => [c.name, fmt(c.expected), fmt(c.actual), c.passed ? 'PASS' : 'FAIL']),
  ]));
  const failed = checks.filter((c) => !c.passed).length;
  io.stdout(failed === 0
    ? `\nPASSED: ${checks.length} of ${checks.length} checks\n`
    : `\nFAILED: ${failed} of ${checks.length} checks\n`);
  return failed === 0 ? EXIT_PASSED : EXIT_FAILED;
}
