// GET / and the dashboard's assets: the committed public/ build served by @fastify/static, offline (nothing from a CDN).
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * public/ at the package root, found by walking up from this module: routes/ under tsx and vitest,
 * dist/routes/ once compiled. Stops at the first package.json so it never picks up a stranger's public/.
 */
export function findPublicDir(from: string = dirname(fileURLToPath(import.meta.url))): string | null {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const candidate = join(dir, 'public');
      return existsSync(join(candidate, 'index.html')) ? candidate : null;
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

// The page stores an API key in localStorage, so it only runs its own script and talks only to this server.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'", // uPlot and the charts size elements through style attributes
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function setHeaders(res: { setHeader(name: string, value: string): unknown }, path: string): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  if (path.endsWith('.html')) {
    res.setHeader('Content-Security-Policy', CSP);
    // The page names its assets by content hash, so only the page itself must be revalidated.
    res.setHeader('Cache-Control', 'no-cache');
  } else if (basename(path) === 'app.js' || basename(path) === 'app.css') {
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
  } else {
    res.setHeader('Cache-Control', 'no-cache');
  }
}

export interface DashboardOptions {
  /** Where the built dashboard lives (default: public/ at the package root). */
  root?: string;
}

/**
 * When API keys are enforced, these routes must stay open: the page holds no data, and it is where the
 * user types the key that the API calls then carry.
 */
const dashboardRoutes: FastifyPluginAsync<DashboardOptions> = async (app, options) => {
  const root = options.root ?? findPublicDir();
  if (!root) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.status(503).type('text/plain; charset=utf-8').send('The gradlens dashboard is not built: run `npm run build:dashboard` (the API works without it).\n'));
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    // Only the files that exist at start get routes; unknown paths keep the API's normal 404.
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    cacheControl: false,
    serveDotFiles: false,
    setHeaders,
  });
};

export default dashboardRoutes;
