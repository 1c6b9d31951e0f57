// The dashboard's through-time heatmap in headless Chromium against the real server: an analysis of two stacked
// simple RNNs draws one row per recurrent layer and one column per step, each cell's colour (read from the
// screenshot's pixels) where its norm lies on the log scale; the second layer is linear with recurrent weights
// 0.8·Q (Q orthogonal) and the loss on the last step, so ‖∂L/∂h_t‖ ∝ 0.8^(T−1−t): its colours step along the
// scale in equal increments (closed form). Norms that overflow (recurrent gain 1e4) are drawn in the NaN / ∞
// colour and spelled out in the tooltip.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { startServer, stop, type Server } from '../support/server.js';
import { colorDistance, hexRgb, pixelsAt, viridisPosition } from '../support/pixels.js';
import { EMPTY_COLOR, NONFINITE_COLOR } from '../../dashboard/src/colors.js';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

const T = 12;
const F = 2;
const RHO = 0.8;

/** Four sequences with one input, at step 0 (or at the last step): the state's gradient then only flows back. */
function impulses(atLast: boolean): { x: number[][][]; y: number[][] } {
  const x = Array.from({ length: 4 }, (_, b) => Array.from({ length: T }, (_, t) =>
    Array.from({ length: F }, (_, f) => ((atLast ? t === T - 1 : t === 0) ? 0.5 + 0.1 * b + 0.2 * f : 0))));
  return { x, y: x.map(() => [1]) };
}

const spec = (gain: number, atLast: boolean) => ({
  seed: 2, loss: 'mse',
  network: { input: [T, F], layers: [
    { kind: 'simple_rnn', units: 4, activation: 'tanh', returnSequences: true },
    { kind: 'simple_rnn', units: 4, activation: 'linear', init: { recurrent: { name: 'orthogonal', gain } } },
    { kind: 'dense', units: 1 },
  ] },
  data: { source: 'inline', ...impulses(atLast) },
});

type Norm = number | 'NaN' | 'Infinity' | '-Infinity';
interface Entry { path: string; norms: Norm[]; memoryHorizon: number | null; verdict: string }

/** Runs the spec from the editor and returns the throughTime the page received. */
async function analyse(page: Page, body: unknown): Promise<Entry[]> {
  await page.selectOption('#spec-kind', 'analysis');
  await page.fill('#spec-editor', JSON.stringify(body, null, 2));
  const response = page.waitForResponse((r) => r.url().endsWith('/v1/analyses') && r.request().method() === 'POST');
  await page.click('#spec-run');
  const json = await (await response).json() as { result: { throughTime: Entry[] } };
  await page.waitForSelector('#view[data-kind="analysis"][data-state="ready"] #through-time-heatmap[data-grid]');
  return json.result.throughTime;
}

/** Centre of the cell (row r, step t) in the canvas, from the grid it publishes. */
async function cellCentres(page: Page, rows: number, cols: number): Promise<[number, number][][]> {
  const [left, top, cw, rh] = (await page.getAttribute('#through-time-heatmap', 'data-grid'))!.split(' ').map(Number) as [number, number, number, number];
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, t) => [left + (t + 0.5) * cw, top + (r + 0.5) * rh] as [number, number]));
}

async function cellPixels(browser: Browser, page: Page, rows: number, cols: number): Promise<number[][][]> {
  const centres = await cellCentres(page, rows, cols);
  const png = await page.locator('#through-time-heatmap').screenshot();
  const flat = await pixelsAt(browser, png, centres.flat());
  return centres.map((row, r) => row.map((_, t) => flat[r * cols + t]!));
}

async function tipAt(page: Page, r: number, t: number, rows: number, cols: number): Promise<string> {
  const [x, y] = (await cellCentres(page, rows, cols))[r]![t]!;
  await page.locator('#through-time-heatmap').hover({ position: { x, y } });
  await page.waitForSelector('#through-time .heatmap-tip:not([hidden])');
  return (await page.textContent('#through-time .heatmap-tip'))!;
}

describe('the dashboard\'s through-time heatmap', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await startServer({ GRADLENS_BACKEND: 'cpu', GRADLENS_WORKERS: '1', GRADLENS_DB: ':memory:' });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="true"]');
  });

  afterAll(async () => {
    await browser?.close();
    await stop(server, 'SIGTERM');
  });

  it('draws T columns × one row per recurrent layer, each colour where its norm lies on the log scale', async () => {
    const entries = await analyse(page, spec(RHO, false));
    expect(entries.map((e) => e.path)).toEqual(['rnn1', 'rnn2']);
    expect(await page.getAttribute('#through-time-heatmap', 'data-rows')).toBe('2');
    expect(await page.getAttribute('#through-time-heatmap', 'data-cols')).toBe(String(T));
    const norms = entries.map((e) => e.norms.map(Number));
    for (const row of norms) expect(row.every((n) => Number.isFinite(n) && n > 0)).toBe(true);
    const logs = norms.flat().map(Math.log10);
    const lo = Math.min(...logs);
    const hi = Math.max(...logs);
    const pixels = await cellPixels(browser, page, 2, T);
    await page.locator('#through-time').screenshot({ path: `${ARTIFACTS}dashboard-through-time.png` });
    const at = pixels.map((row, r) => row.map((p, t) => {
      const { at: pos, off } = viridisPosition(p);
      expect(off, `row ${r} step ${t}: pixel ${p.join(',')} is off the colour scale`).toBeLessThanOrEqual(3);
      expect(colorDistance(p, hexRgb(EMPTY_COLOR))).toBeGreaterThan(0);
      return pos;
    }));
    // Every cell's colour sits where its log10 norm lies between the smallest and the largest of the map.
    at.forEach((row, r) => row.forEach((pos, t) => {
      expect(Math.abs(pos - (Math.log10(norms[r]![t]!) - lo) / (hi - lo)), `row ${r} step ${t}`).toBeLessThan(0.02);
    }));
    // The hottest cell is the largest norm's, the coldest the smallest's.
    const flatAt = at.flat();
    expect(flatAt.indexOf(Math.max(...flatAt))).toBe(logs.indexOf(hi));
    expect(flatAt.indexOf(Math.min(...flatAt))).toBe(logs.indexOf(lo));
    // Closed form for the linear layer: ln norm is linear in t, so its colours step by equal amounts toward the last step.
    const steps = at[1]!.slice(1).map((p, t) => p - at[1]![t]!);
    const expectedStep = -Math.log10(RHO) / (hi - lo);
    for (const s of steps) expect(Math.abs(s - expectedStep)).toBeLessThan(0.01);
    // The table: the closed-form horizon ⌈ln 0.1 / ln 0.8⌉ = 11 and the verdict.
    const row = page.locator('#through-time-table tbody tr[data-path="rnn2"]');
    expect(await row.getAttribute('data-verdict')).toBe('vanishing');
    expect(await row.locator('td').nth(6).textContent()).toBe(`${Math.ceil(Math.log(0.1) / Math.log(RHO))} steps`);
    // The tooltip gives the cell's value.
    const tip = await tipAt(page, 1, T - 1, 2, T);
    expect(tip).toContain(`rnn2 · t = ${T - 1}`);
    expect(Number(/= (\S+)$/.exec(tip)![1]) / norms[1]![T - 1]!).toBeCloseTo(1, 3);
    expect(pageErrors).toEqual([]);
  });

  it('shows overflowing norms in the NaN / ∞ colour, counts them in the legend and spells them out', async () => {
    const entries = await analyse(page, spec(1e4, true));
    const nonFinite = entries.map((e) => e.norms.map((n) => typeof n === 'string'));
    const count = nonFinite.flat().filter(Boolean).length;
    expect(count).toBeGreaterThan(0);
    expect(await page.getAttribute('#through-time-legend', 'data-nonfinite')).toBe(String(count));
    const pixels = await cellPixels(browser, page, 2, T);
    await page.locator('#through-time').screenshot({ path: `${ARTIFACTS}dashboard-through-time-nonfinite.png` });
    nonFinite.forEach((row, r) => row.forEach((bad, t) => {
      const p = pixels[r]![t]!;
      if (bad) expect(colorDistance(p, hexRgb(NONFINITE_COLOR)), `row ${r} step ${t}`).toBeLessThanOrEqual(1);
      else expect(viridisPosition(p).off, `row ${r} step ${t}`).toBeLessThanOrEqual(3);
    }));
    const r = 1;
    const t = entries[r]!.norms.findIndex((n) => typeof n === 'string');
    expect(await tipAt(page, r, t, 2, T)).toMatch(new RegExp(`t = ${t}: .* = ${String(entries[r]!.norms[t])}$`));
    expect(pageErrors).toEqual([]);
  });

  it('shows no through-time card for a network without recurrent layers', async () => {
    await page.click('button[data-preset="textbook"]');
    await page.waitForSelector('#grad-chart[data-layers="20"]');
    expect(await page.locator('#through-time').count()).toBe(0);
  });
});
