// The dashboard's layer-graph view in headless Chromium against the real server: an analysis of a small CNN with a
// projection block shows its rows in graph order (path, kind, output shape, block boxes, dead channels) and the
// graph columns of the numbers table; a training of the same graph names the heatmap's rows by path.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { startServer, stop, type Server } from '../support/server.js';

const LAYERS = [
  { kind: 'conv2d', filters: 4, kernel: 3, activation: 'relu' },
  { kind: 'residual', shortcut: 'projection', activation: 'relu', layers: [
    { kind: 'conv2d', filters: 6, kernel: 3, stride: 2, useBias: false }, { kind: 'batch_norm', activation: 'relu' }, { kind: 'conv2d', filters: 6, kernel: 3 },
  ] },
  { kind: 'global_avg_pool' },
  { kind: 'dense' },
];
const DATA = { source: 'shapes', height: 8, width: 8, samples: 64, batchSize: 16 };

const ROWS = [
  'conv1 conv2d 8×8×4 -', 'block1.conv1 conv2d 4×4×6 block1', 'block1.conv2 conv2d 4×4×6 block1', 'block1.shortcut conv2d 4×4×6 block1', 'dense1 dense 4 -',
];

async function graphRowsOf(page: Page, card: string): Promise<string[]> {
  return page.$$eval(`#${card} .graph-row`, (els) => els.map((e) => {
    const d = (e as HTMLElement).dataset;
    return `${d.path} ${d.kind} ${d.shape} ${d.block || '-'}`;
  }));
}

async function runFromEditor(page: Page, kind: string, body: unknown): Promise<void> {
  await page.selectOption('#spec-kind', kind);
  await page.fill('#spec-editor', JSON.stringify(body, null, 2));
  await page.click('#spec-run');
}

describe('the dashboard\'s layer-graph view', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await startServer({ GRADLENS_BACKEND: 'cpu', GRADLENS_WORKERS: '1', GRADLENS_DB: ':memory:' });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="true"]');
  });

  afterAll(async () => {
    await browser?.close();
    await stop(server, 'SIGTERM');
  });

  it('shows an analysis\' rows in graph order with kind, output shape, their block boxed, and dead channels', async () => {
    await runFromEditor(page, 'analysis', { seed: 1, network: { layers: LAYERS }, data: DATA });
    await page.waitForSelector('#view[data-kind="analysis"][data-state="ready"] #graph-rows');
    expect(await graphRowsOf(page, 'graph-rows')).toEqual(ROWS);
    expect(await page.getAttribute('#graph-rows', 'data-blocks')).toBe('1');
    // The block's three rows sit inside its box, the others outside.
    expect(await page.$$eval('#graph-rows .graph-block[data-block="block1"] .graph-row', (els) => els.length)).toBe(3);
    expect(await page.textContent('#graph-rows .graph-block-head')).toBe('block block1');
    // Per-channel dead fraction on every conv row, from the result's channelDeadFraction.
    const dead = await page.$$eval('#graph-rows .graph-row[data-kind="conv2d"] .graph-dead', (els) => els.map((e) => Number((e as HTMLElement).dataset.channelDead)));
    expect(dead).toHaveLength(4);
    for (const d of dead) expect(d).toBeGreaterThanOrEqual(0);
    const api = await (await fetch(`${server.url}/v1/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ seed: 1, network: { layers: LAYERS }, data: DATA }) })).json();
    expect(dead).toEqual(api.result.layers.filter((l: { kind: string }) => l.kind === 'conv2d').map((l: { channelDeadFraction: number }) => l.channelDeadFraction));
    // The numbers table has the graph columns.
    const heads = await page.$$eval('#layer-table thead th', (els) => els.map((e) => e.textContent));
    expect(heads.slice(0, 6)).toEqual(['#', 'layer', 'kind', 'output', 'block', 'dead channels']);
    expect(await page.locator('#layer-table tbody tr').nth(3).locator('td').nth(4).textContent()).toBe('block1 (shortcut)');
    expect(pageErrors).toEqual([]);
  });

  it('names a graph training\'s rows by path, with the last record\'s value per row', async () => {
    await runFromEditor(page, 'training', { seed: 1, network: { layers: LAYERS }, data: DATA, steps: 6, recordEvery: 3, optimizer: { name: 'adam', learningRate: 0.01 } });
    await page.waitForSelector('#view[data-kind="training"][data-status="succeeded"] #training-graph', { timeout: 90_000 });
    expect(await graphRowsOf(page, 'training-graph')).toEqual(ROWS);
    expect(await page.getAttribute('#training-heatmap', 'data-rows')).toBe('5');
    expect(await page.textContent('#training-graph .graph-row[data-path="dense1"] .graph-extra')).toMatch(/^weight-grad norm at step 6 \d/);
    await page.click('button[data-metric="backpropNorm"]');
    expect(await page.textContent('#training-graph .graph-row[data-path="dense1"] .graph-extra')).toMatch(/^backprop norm at step 6 \d/);
    expect(pageErrors).toEqual([]);
  });
});
