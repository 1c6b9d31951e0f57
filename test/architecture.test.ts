// The shape of the code, checked on the real import graph (madge, resolving the TypeScript ESM `.js`
// specifiers through tsconfig.json): no import cycles; one direction, engine ← jobs ← HTTP; the engine
// pure (only itself, the shared schemas and packages); src/engine/index.ts the only door into the engine.
import { describe, expect, it, beforeAll } from 'vitest';
import madge from 'madge';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Everything but the tests (they test internals and may import deep engine paths). */
const SCANNED = ['src', 'routes', 'scripts', 'bench'];
const ENGINE_DOOR = 'src/engine/index.ts';
/** The HTTP layer: routes, plugins, the app and the server around them. */
const HTTP = [/^routes\//, /^src\/plugins\//, /^src\/app\.ts$/, /^src\/server\.ts$/, /^src\/openapi\.ts$/];
/** The only files that may read the environment: the configuration, and the CLI (a client) at its entry. */
const ENV_READERS = new Set(['src/config.ts', 'src/cli/gradlens.ts', 'src/cli/main.ts']);

type Graph = Record<string, string[]>;
let graph: Graph;
let cycles: string[][];

const isEngine = (f: string): boolean => f.startsWith('src/engine/');
const isHttp = (f: string): boolean => HTTP.some((re) => re.test(f));
const edges = (keep: (from: string, to: string) => boolean): string[] =>
  Object.entries(graph).flatMap(([from, deps]) => deps.filter((to) => keep(from, to)).map((to) => `${from} -> ${to}`));

beforeAll(async () => {
  // madge's TypeScript parser trips a deprecation warning of typescript-estree per file: not ours to fix.
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  let result: Awaited<ReturnType<typeof madge>>;
  try {
    result = await madge(SCANNED, {
      baseDir: ROOT,
      fileExtensions: ['ts'],
      tsConfig: join(ROOT, 'tsconfig.json'),
      // Type-only imports count: the cycles this test guards against were made of types.
      detectiveOptions: { ts: { skipTypeImports: false } },
    });
  } finally {
    process.noDeprecation = quiet;
  }
  graph = result.obj();
  cycles = result.circular();
  expect(result.warnings().skipped).toEqual([]);
}, 60_000);

describe('the import graph', () => {
  it('is the real one: madge resolved the .js specifiers to the .ts files', () => {
    expect(Object.keys(graph).length).toBeGreaterThan(50);
    expect(graph['src/jobs/pool.ts']).toContain(ENGINE_DOOR);
    expect(graph['src/engine/measure/measure.ts']).toContain('src/engine/model/network.ts');
    expect(graph['routes/analyses.ts']).toContain(ENGINE_DOOR);
  });

  it('has no cycles', () => {
    expect(cycles).toEqual([]);
  });

  it('keeps the engine pure: files in src/engine import only src/engine, src/schemas and packages', () => {
    expect(edges((from, to) => isEngine(from) && !isEngine(to) && !to.startsWith('src/schemas/'))).toEqual([]);
  });

  it('lets nothing outside src/engine import a deep engine path, only src/engine/index.ts', () => {
    expect(edges((from, to) => !isEngine(from) && isEngine(to) && to !== ENGINE_DOOR)).toEqual([]);
  });

  it('points one way, engine <- jobs <- HTTP: the job layer never imports the HTTP layer or the CLI', () => {
    expect(edges((from, to) => from.startsWith('src/jobs/') && (isHttp(to) || to.startsWith('src/cli/')))).toEqual([]);
  });

  it('keeps the shared schemas free of every layer: src/schemas imports only src/schemas', () => {
    expect(edges((from, to) => from.startsWith('src/schemas/') && !to.startsWith('src/schemas/'))).toEqual([]);
  });
});

describe("the engine's rooms", () => {
  const ENGINE = join(ROOT, 'src', 'engine');
  const rooms = readdirSync(ENGINE).filter((f) => statSync(join(ENGINE, f)).isDirectory());

  it('every folder of src/engine has an index.ts door and a row in docs/architecture.md', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
    expect(rooms).toContain('import');
    // data/ is one file (datasets.ts), imported by path as it was before rooms had doors.
    const ONE_FILE_ROOMS = new Set(['data']);
    expect(rooms.filter((r) => !ONE_FILE_ROOMS.has(r) && !graph[`src/engine/${r}/index.ts`])).toEqual([]);
    expect(rooms.filter((r) => !doc.includes(`| \`${r}/\` |`))).toEqual([]);
  });

  it('reads the ONNX protobuf schema only in the import room (src/engine/import)', () => {
    const readers = Object.keys(graph)
      .filter((f) => /from '(onnx-proto|protobufjs)(\/[^']*)?'/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(readers.length).toBeGreaterThan(0);
    expect(readers.filter((f) => !f.startsWith('src/engine/import/'))).toEqual([]);
  });
});

describe('configuration flows in', () => {
  it('reads process.env only in src/config.ts (and the CLI, a client) among src/ and routes/', () => {
    const readers = Object.keys(graph)
      .filter((f) => (f.startsWith('src/') || f.startsWith('routes/')) && !ENV_READERS.has(f))
      .filter((f) => /process\.env\b/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(readers).toEqual([]);
  });
});
