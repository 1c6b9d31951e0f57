// Real gradlens processes for e2e, fault and browser tests: the server and the CLI run from the TypeScript
// sources through tsx (`node --import tsx src/server.ts`), so a test needs no build and never tests a stale
// dist/; production (`npm start`, the Dockerfile, `npm run bench`) runs the build. Also: free ports, JSON over fetch.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** tsx's loader by absolute URL: a child started in another working directory still finds it. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const source = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));

/** Node arguments that load TypeScript sources through tsx (the two below, or a script of a test's own). */
export const TSX_ARGS: readonly string[] = ['--import', TSX];
/** Node arguments that start the server from its sources: `spawn(process.execPath, SERVER_ARGS)`. */
export const SERVER_ARGS: readonly string[] = ['--import', TSX, source('src/server.ts')];
/** Node arguments that run the CLI from its sources; the CLI's own arguments follow. */
export const CLI_ARGS: readonly string[] = ['--import', TSX, source('src/cli/gradlens.ts')];

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface Server {
  url: string;
  child: ChildProcess;
  /** stdout and stderr as they came, interleaved. */
  output(): string;
  /** stdout alone (the JSON log). */
  stdout(): string;
  /** Resolves with the exit code (or signal name) once the process has gone. */
  exited: Promise<number | string>;
}

export async function startServer(env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  let output = '';
  let stdout = '';
  const child = spawn(process.execPath, [...SERVER_ARGS], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => { output += d; stdout += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited (${child.exitCode ?? child.signalCode}): ${output}`);
    try {
      if ((await fetch(`${url}/ready`)).ok) return { url, child, output: () => output, stdout: () => stdout, exited };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`server was not ready within 60 s: ${output}`);
}

export async function stop(server: Server | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | string | undefined> {
  if (!server || server.child.exitCode !== null || server.child.signalCode !== null) return undefined;
  server.child.kill(signal);
  return server.exited;
}

export async function json(url: string, init?: RequestInit): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}
