// /docs under helmet's CSP in headless Chromium: the Swagger UI renders the API with no CSP violation, keys or not.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { startServer, stop, type Server } from '../support/server.js';

describe('the Swagger UI at /docs in a browser', () => {
  let browser: Browser;
  let server: Server;
  beforeAll(async () => {
    [browser, server] = await Promise.all([
      launchBrowser(),
      startServer({ GRADLENS_BACKEND: 'wasm', GRADLENS_WORKERS: '1', GRADLENS_DB: ':memory:', GRADLENS_API_KEYS: 'docs-browser-key-0123456789' }),
    ]);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stop(server, 'SIGTERM');
  });

  it('renders every operation, offers Authorize, and the browser reports no CSP violation', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error' || /Content Security Policy/i.test(msg.text())) problems.push(msg.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
    });
    const response = await page.goto(`${server.url}/docs/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toMatch(/script-src 'self'/);
    await page.waitForSelector('.swagger-ui .info .title', { timeout: 30_000 });
    expect(await page.textContent('.swagger-ui .info .title')).toMatch(/gradlens/);
    await page.waitForSelector('.opblock-summary-path', { timeout: 30_000 });
    const paths = await page.$$eval('.opblock-summary-path', (els) => els.map((e) => e.getAttribute('data-path')));
    expect(paths).toEqual(expect.arrayContaining(['/v1/analyses', '/v1/jobs/{id}/events', '/ready', '/metrics']));
    expect(await page.$('.auth-wrapper .authorize')).not.toBeNull();
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);
});
