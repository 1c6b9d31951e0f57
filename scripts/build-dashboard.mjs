// Builds the dashboard (dashboard/ → public/): type-checks it, bundles it with esbuild, and writes reproducible files.
//
//   node scripts/build-dashboard.mjs          type-check, bundle, write public/
//   node scripts/build-dashboard.mjs --dev    unminified with an inline source map, for debugging (do not commit)
//
// public/ is committed, like openapi/openapi.json: the Docker build copies it and `npm pack` ships it
// without needing esbuild. A test rebuilds in memory and fails when the committed copy has drifted.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const PUBLIC_DIR = join(root, 'public');
const SRC = join(root, 'dashboard');

const shortHash = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 12);

/** Type-checks dashboard/ with its own tsconfig (DOM, bundler resolution); esbuild strips types unchecked. */
export async function typecheckDashboard() {
  const ts = (await import('typescript')).default;
  const configPath = join(SRC, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, SRC);
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length) {
    const text = ts.formatDiagnosticsWithColorAndContext(diagnostics, {
      getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n',
    });
    throw new Error(`dashboard type errors:\n${text}`);
  }
}

/**
 * Builds every file of public/ in memory: { 'index.html': Buffer, 'app.js': Buffer, ... }. Deterministic:
 * no timestamps, content hashes instead of build numbers, paths relative to the repository.
 */
export async function buildDashboardFiles({ dev = false } = {}) {
  const result = await build({
    entryPoints: { app: join(SRC, 'src', 'main.ts') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari16'],
    minify: !dev,
    sourcemap: dev ? 'inline' : false,
    legalComments: 'none',
    outdir: PUBLIC_DIR,
    absWorkingDir: root,
    write: false,
    logLevel: 'silent',
    charset: 'utf8',
  });
  const files = new Map();
  for (const out of result.outputFiles) files.set(relative(PUBLIC_DIR, out.path), Buffer.from(out.contents));
  const js = files.get('app.js');
  const css = files.get('app.css');
  if (!js || !css) throw new Error(`esbuild produced ${[...files.keys()].join(', ')}; expected app.js and app.css`);
  // uPlot is MIT: its notice travels with the bundle (minification drops its header comment).
  const notice = '/*! gradlens dashboard. Bundles uPlot (MIT, Copyright (c) Leon Sorokin), see THIRD-PARTY-LICENSES.txt */\n';
  files.set('app.js', Buffer.concat([Buffer.from(notice), js]));
  files.set('THIRD-PARTY-LICENSES.txt', Buffer.from(`uPlot ${JSON.parse(readFileSync(join(root, 'node_modules/uplot/package.json'), 'utf8')).version}\n\n${readFileSync(join(root, 'node_modules/uplot/LICENSE'), 'utf8')}`));
  // Content hashes in the asset URLs: a new build is never mixed with a cached old one.
  const html = readFileSync(join(SRC, 'index.html'), 'utf8')
    .replace('__JS_HASH__', shortHash(files.get('app.js')))
    .replace('__CSS_HASH__', shortHash(css));
  files.set('index.html', Buffer.from(html));
  return files;
}

/** Replaces public/ with a fresh build and returns the file sizes. */
export async function buildDashboard({ dev = false, typecheck = true } = {}) {
  if (typecheck) await typecheckDashboard();
  const files = await buildDashboardFiles({ dev });
  rmSync(PUBLIC_DIR, { recursive: true, force: true });
  mkdirSync(PUBLIC_DIR, { recursive: true });
  for (const [name, buf] of [...files].sort(([a], [b]) => a.localeCompare(b))) writeFileSync(join(PUBLIC_DIR, name), buf);
  return Object.fromEntries([...files].map(([n, b]) => [n, b.length]));
}

/** The files currently in public/, for the drift check. */
export function readPublicFiles() {
  const files = new Map();
  for (const name of readdirSync(PUBLIC_DIR)) files.set(name, readFileSync(join(PUBLIC_DIR, name)));
  return files;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dev = process.argv.includes('--dev');
  try {
    const sizes = await buildDashboard({ dev });
    const { gzipSync } = await import('node:zlib');
    for (const [name, size] of Object.entries(sizes)) {
      const gz = gzipSync(readFileSync(join(PUBLIC_DIR, name))).length;
      console.log(`public/${name.padEnd(26)} ${(size / 1024).toFixed(1).padStart(7)} KiB  (${(gz / 1024).toFixed(1)} KiB gzip)`);
    }
    if (dev) console.log('dev build: unminified with source maps; run without --dev before committing public/');
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
