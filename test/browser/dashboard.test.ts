// The dashboard end to end: the real app on a free port, driven in headless Chromium (playwright-core); screenshots go to test-artifacts/.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { SERVER_ARGS, freePort } from '../support/server.js';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildDashboardFiles, readPublicFiles, typecheckDashboard } from '../../scripts/build-dashboard.mjs';
import { EMPTY_COLOR, NONFINITE_COLOR, VERDICT_COLORS, ZERO_COLOR, viridis } from '../../dashboard/src/colors.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

interface Server {
  url: string;
  stop(): Promise<void>;
}

/**
 * The real server (from the sources, test/support/server.ts) in its own process: Chromium and the build checks here must not stall
 * the server's event loop (it sheds load when its loop lags), and this is the entry point users run.
 */
async function startServer(env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  let output = '';
  const child: ChildProcess = spawn(process.execPath, [...SERVER_ARGS], {
    env: {
      ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      GRADLENS_BACKEND: 'cpu', GRADLENS_WORKERS: '1', GRADLENS_DB: ':memory:', ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${output}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return { url, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`server did not answer /health within 60 s: ${output}`);
}

type Rgba = [number, number, number, number];
const decoders = new WeakMap<Browser, Page>();

/**
 * Decodes a PNG screenshot in a blank page of the same browser (no page CSP there) and returns the pixels at
 * `points` (CSS px at device scale 1) and the most frequent colour with its share of all pixels.
 */
async function readPixels(browser: Browser, png: Buffer, points: [number, number][] = []): Promise<{ at: Rgba[]; dominant: Rgba; share: number }> {
  // One decoder page per browser, kept open: @sparticuz/chromium runs --single-process, and closing a page's
  // context can take the whole browser down.
  let decoder = decoders.get(browser);
  if (!decoder) decoders.set(browser, decoder = await browser.newPage());
  return decoder.evaluate(async ({ b64, points }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    const ctx = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d')!;
    ctx.drawImage(bitmap, 0, 0);
    const d = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const px = (x: number, y: number): [number, number, number, number] => {
      const i = (Math.floor(y) * bitmap.width + Math.floor(x)) * 4;
      return [d[i]!, d[i + 1]!, d[i + 2]!, d[i + 3]!];
    };
    const counts = new Map<number, number>();
    for (let i = 0; i < d.length; i += 4) {
      const key = (d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const [key, n] = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a));
    return { at: points.map(([x, y]) => px(x, y)), dominant: [key >> 16, (key >> 8) & 255, key & 255, 255] as [number, number, number, number], share: n / (d.length / 4) };
  }, { b64: png.toString('base64'), points });
}

const hexRgb = (hex: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
const cssRgb = (css: string): [number, number, number] => css.match(/\d+/g)!.slice(0, 3).map(Number) as [number, number, number];
const distance = (a: readonly number[], b: readonly number[]): number => Math.max(...[0, 1, 2].map((i) => Math.abs(a[i]! - b[i]!)));

/**
 * Every cell of the training heatmap, read from the screenshot's pixels at the cell's centre: opaque and on
 * the colour scale (viridis, or the zero / non-finite colours), never the empty grid's grey.
 */
async function expectHeatmapCellsColoured(browser: Browser, page: Page, cols: number, rows: number): Promise<void> {
  const heat = page.locator('#training-heatmap');
  const [left, top, cw, rh] = (await heat.getAttribute('data-grid'))!.split(' ').map(Number) as [number, number, number, number];
  const points: [number, number][] = [];
  for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) points.push([left + (c + 0.5) * cw, top + (r + 0.5) * rh]);
  const { at } = await readPixels(browser, await heat.screenshot(), points);
  const scale = [...Array.from({ length: 1001 }, (_, i) => cssRgb(viridis(i / 1000))), hexRgb(ZERO_COLOR), hexRgb(NONFINITE_COLOR)];
  const offScale = at.map((p, i) => ({ cell: `col ${Math.floor(i / rows)} row ${i % rows}`, p, off: Math.min(...scale.map((s) => distance(p, s))) }))
    .filter((x) => x.p[3] !== 255 || x.off > 3 || distance(x.p, hexRgb(EMPTY_COLOR)) === 0);
  expect(offScale, 'heatmap cells whose pixels are not on the colour scale').toEqual([]);
  // A training's gradients span the scale: more than one colour.
  expect(new Set(at.map((p) => p.join())).size).toBeGreaterThan(1);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}dashboard-${name}.png`, fullPage: true });
}

/** The editor's kind and body, then Run: the same path a user takes for any spec. */
async function runFromEditor(page: Page, kind: string, body: unknown): Promise<void> {
  await page.selectOption('#spec-kind', kind);
  await page.fill('#spec-editor', typeof body === 'string' ? body : JSON.stringify(body, null, 2));
  await page.click('#spec-run');
}

describe('the committed dashboard build', () => {
  it('type-checks', async () => {
    await typecheckDashboard();
  });

  it('equals a fresh build of dashboard/ (run `npm run build:dashboard` after changing it)', async () => {
    const fresh: Map<string, Buffer> = await buildDashboardFiles();
    const committed: Map<string, Buffer> = readPublicFiles();
    expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort());
    for (const [name, buf] of fresh) expect(committed.get(name)?.equals(buf), `public/${name} is stale`).toBe(true);
  });

  it('builds reproducibly', async () => {
    const a: Map<string, Buffer> = await buildDashboardFiles();
    const b: Map<string, Buffer> = await buildDashboardFiles();
    for (const [name, buf] of a) expect(b.get(name)?.equals(buf), name).toBe(true);
  });
});

describe('dashboard in a real browser', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  let base: string;
  const pageErrors: string[] = [];
  const external: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // One compute worker: trainings run off the event loop, so their records stream while they run.
    server = await startServer();
    base = server.url;
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('request', (req) => {
      if (!req.url().startsWith(base) && !req.url().startsWith('data:')) external.push(req.url());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('serves the page with its assets, from this server only', async () => {
    const res = await page.goto(`${base}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'self'");
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('#server-info')).toContain('cpu backend');
    expect(external).toEqual([]);
  });

  it('shows the 20 layers of the textbook chain, by depth, with the numbers underneath', async () => {
    await page.click('button[data-preset="textbook"]');
    await page.waitForSelector('#view[data-kind="analysis"][data-state="ready"]');
    expect(await page.getAttribute('#grad-chart', 'data-layers')).toBe('20');
    expect(await page.locator('#grad-chart canvas').count()).toBeGreaterThan(0);
    const rows = page.locator('#layer-table tbody tr');
    expect(await rows.count()).toBe(20);
    expect(await rows.nth(0).getAttribute('data-index')).toBe('0');
    expect(await rows.nth(19).locator('td').nth(1).textContent()).toBe('output');
    // The first layer's gradient is ~1e-27 of the last one's: shown in scientific notation, not as 0.
    expect(await rows.nth(0).locator('td').nth(4).textContent()).toMatch(/^2\.\d\de-27$/);
    expect(await page.getAttribute('#verdict', 'data-verdict')).toBe('vanishing');
    expect(await page.getAttribute('#verdict', 'data-onset')).toMatch(/^\d+$/);
    expect(await page.locator('#reasons li').count()).toBeGreaterThan(0);
    // Constant weights: mean-field theory declines, and the page says so instead of drawing a line.
    expect(await page.getAttribute('#grad-chart', 'data-series')).toBe('weightGradNorm,backpropNorm');
    expect(await page.textContent('#theory-note')).toContain('no prediction');
    await shot(page, 'analysis-textbook');
  });

  it('shows the API\'s 400 next to the editor, naming the field, and catches bad JSON locally', async () => {
    await runFromEditor(page, 'analysis', { network: { depth: 0 }, data: { source: 'xor' } });
    await page.waitForSelector('#editor-error:not([hidden])');
    expect(await page.getAttribute('#editor-error', 'data-status')).toBe('400');
    expect(await page.textContent('#editor-error')).toContain('network.depth');
    await shot(page, 'editor-error');
    await runFromEditor(page, 'analysis', '{ "network": { "depth": 3 }, ');
    await page.waitForSelector('#editor-error[data-code="INVALID_JSON"]');
    expect(await page.textContent('#editor-error')).toContain('line');
  });

  it('spells out NaN and Infinity instead of drawing them as 0', async () => {
    // σ_w = 30 with ReLU overflows float32 within a few layers: every gradient is NaN.
    await runFromEditor(page, 'analysis', {
      network: { depth: 40, width: 64, activation: 'relu', init: { weights: { name: 'random_normal', stddev: 30 } } },
      data: { source: 'moons', batchSize: 16 },
    });
    await page.waitForSelector('#view[data-kind="analysis"][data-state="ready"] #verdict[data-verdict="exploding"]');
    expect(await page.getAttribute('#grad-chart', 'data-nonfinite-layers')).toBe('40');
    const firstGrad = page.locator('#layer-table tbody tr').first().locator('td').nth(4);
    expect(await firstGrad.textContent()).toMatch(/^(NaN|Infinity|-Infinity)$/);
    expect(await firstGrad.locator('.nonfinite').count()).toBe(1);
    await shot(page, 'non-finite');
  });

  it('fills the layers × steps heatmap of a training from its event stream', async () => {
    const training = {
      seed: 7,
      network: { depth: 6, width: 32, activation: 'relu', init: { weights: 'he_normal' } },
      data: { source: 'iris', batchSize: 32 },
      steps: 400,
      recordEvery: 10,
      optimizer: { name: 'adam', learningRate: 0.01 },
    };
    await runFromEditor(page, 'training', training);
    await page.waitForSelector('#view[data-kind="training"]');
    await page.waitForSelector('#view[data-kind="training"][data-status="succeeded"]', { timeout: 90_000 });
    const heat = page.locator('#training-heatmap');
    // Records at steps 0, 10, …, 400: 41 columns of 6 layers, every cell coloured (read from the pixels).
    await expect.poll(() => heat.getAttribute('data-cols')).toBe('41');
    expect(await heat.getAttribute('data-rows')).toBe('6');
    expect(await heat.getAttribute('data-filled')).toBe(String(41 * 6));
    await expectHeatmapCellsColoured(browser, page, 41, 6);
    // Records arrived over SSE while the job ran, not only from the final result.
    expect(Number(await heat.getAttribute('data-streamed'))).toBeGreaterThan(0);
    expect(await page.getAttribute('#loss-chart', 'data-points')).toBe('41');
    expect(await page.getAttribute('#training-outcome', 'data-outcome')).toMatch(/^(learning|stalled|diverged)$/);
    await page.waitForSelector('#job-list li[data-kind="training"][data-status="succeeded"]');
    await shot(page, 'training');
  });

  it('ranks the what-if cures and draws the mean-field line', async () => {
    await page.click('button[data-preset="what-if"]');
    await page.waitForSelector('#what-if', { timeout: 90_000 });
    expect(await page.getAttribute('#verdict', 'data-verdict')).toBe('vanishing');
    expect(await page.getAttribute('#grad-chart', 'data-series')).toContain('theory');
    expect(Number(await page.getAttribute('#what-if', 'data-rows'))).toBeGreaterThan(2);
    // Some cure beats leaving the deep sigmoid network alone.
    expect(await page.locator('#what-if tbody tr').first().getAttribute('data-id')).not.toBe('none');
    await shot(page, 'what-if');
  });

  it('colours a sweep matrix by verdict and opens a cell\'s analysis', async () => {
    await page.click('button[data-preset="sigmoid-vs-relu"]');
    await page.waitForSelector('#view[data-kind="sweep"][data-status="succeeded"]', { timeout: 90_000 });
    expect(await page.getAttribute('#sweep-matrix', 'data-cells')).toBe('4');
    expect(await page.getAttribute('#sweep-matrix', 'data-mode')).toBe('verdict');
    const cells = page.locator('#sweep-matrix button.matrix-cell');
    const verdicts = await cells.evaluateAll((els) => els.map((e) => e.getAttribute('data-verdict')));
    // Row-major: (sigmoid, glorot_uniform), (sigmoid, he_normal), (relu, glorot_uniform), (relu, he_normal).
    expect(verdicts[0]).toBe('vanishing');
    expect(verdicts[3]).toBe('healthy');
    for (const r of await cells.evaluateAll((els) => els.map((e) => e.getAttribute('data-ratio')))) expect(r).not.toBe('');
    // Each cell's pixels: its background (the colour most of its pixels have) is its verdict's colour.
    expect(await cells.count()).toBe(4);
    for (let i = 0; i < 4; i++) {
      const { dominant, share } = await readPixels(browser, await cells.nth(i).screenshot());
      expect(distance(dominant, hexRgb(VERDICT_COLORS[verdicts[i]!]!)), `cell ${i} (${verdicts[i]}) is drawn rgb(${dominant.slice(0, 3).join(',')})`).toBeLessThanOrEqual(2);
      expect(share, `cell ${i}: share of its pixels in the background colour`).toBeGreaterThan(0.5);
    }
    await shot(page, 'sweep');
    await cells.nth(3).click();
    await page.waitForSelector('#view[data-kind="analysis"][data-state="ready"]');
    expect(await page.getAttribute('#grad-chart', 'data-layers')).toBe('30');
    expect(await page.textContent('#view h2')).toContain('activation=relu');
    expect(await page.getAttribute('#verdict', 'data-verdict')).toBe('healthy');
    await shot(page, 'sweep-cell');
  });

  it('raised no errors in the page', () => {
    expect(pageErrors).toEqual([]);
    expect(external).toEqual([]);
  });
});

describe('dashboard under locales that are not BCP-47 tags', () => {
  let server: Server;
  let browser: Browser;

  beforeAll(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('the browser\'s own locale under LANG=C.UTF-8 is one (so every page in this file runs in it)', async () => {
    // Pages stay open until the browser closes (--single-process: closing one can take the browser down).
    const blank = await browser.newPage();
    const own = await blank.evaluate(() => {
      try {
        new Intl.NumberFormat(navigator.language);
        return { language: navigator.language, throws: false };
      } catch {
        return { language: navigator.language, throws: true };
      }
    });
    expect(own).toEqual({ language: 'en-US@posix', throws: true });
  });

  for (const [locale, shown] of [['en-US@posix', 'en-US'], ['de-DE.UTF-8', 'de-DE'], ['C', 'en-US']] as const) {
    it(`draws the textbook chain when navigator.language is "${locale}"`, async () => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, locale });
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      expect(await page.evaluate(() => navigator.language)).toBe(locale);
      await page.goto(`${server.url}/`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
      await page.click('button[data-preset="textbook"]');
      await page.waitForSelector('#view[data-kind="analysis"][data-state="ready"]');
      expect(await page.getAttribute('#grad-chart', 'data-layers')).toBe('20');
      expect(await page.locator('#grad-chart canvas').count()).toBeGreaterThan(0);
      // The page's replacement, kept as close to the browser's tag as it can be read.
      expect(await page.evaluate(() => navigator.language)).toBe(shown);
      expect(errors).toEqual([]);
    });
  }
});

describe('dashboard with API keys configured', () => {
  const KEY = 'dashboard-test-key-0123456789';
  let server: Server;
  let browser: Browser;
  let page: Page;
  const eventUrls: string[] = [];

  beforeAll(async () => {
    server = await startServer({ GRADLENS_API_KEYS: KEY });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('request', (req) => {
      if (req.url().includes('/events')) eventUrls.push(req.url());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('loads without a key, asks for one, then sends it as Bearer and to EventSource as ?access_token=', async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('button[data-preset="textbook"]');
    await page.waitForSelector('#editor-error[data-status="401"]');
    expect(await page.textContent('#editor-error')).toContain('API key');

    await page.fill('#api-key', KEY);
    await page.click('#api-key-save');
    expect(await page.evaluate(() => localStorage.getItem('gradlens.apiKey'))).toBe(KEY);
    await page.click('button[data-preset="textbook"]');
    await page.waitForSelector('#view[data-kind="analysis"][data-state="ready"]');
    expect(await page.getAttribute('#grad-chart', 'data-layers')).toBe('20');

    // Long enough (seconds) to be still running when the dashboard first looks: it opens the event
    // stream only for a job that has not finished yet (dashboard/src/jobs.ts). 16 records, as before.
    await runFromEditor(page, 'training', {
      network: { depth: 4, width: 16 }, data: { source: 'iris', batchSize: 16 }, steps: 3000, recordEvery: 200,
    });
    await page.waitForSelector('#view[data-kind="training"][data-status="succeeded"]', { timeout: 90_000 });
    expect(await page.getAttribute('#training-heatmap', 'data-filled')).toBe(String(16 * 4));
    expect(eventUrls.length).toBeGreaterThan(0);
    expect(eventUrls.every((u) => new URL(u).searchParams.get('access_token') === KEY)).toBe(true);
    await shot(page, 'api-key');
  });
});
