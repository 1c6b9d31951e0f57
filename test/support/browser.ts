// Headless Chromium for the browser tests, started in a container's locale (LANG=C.UTF-8), never skipped.
import { chromium as playwright, type Browser } from 'playwright-core';
import { existsSync } from 'node:fs';

const DEBIAN_CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/**
 * The environment of a container or kiosk: LANG=C.UTF-8 and nothing that overrides it. Chromium derives its
 * default locale from it and reports navigator.language "en-US@posix", which is not a BCP-47 tag; the pages
 * are opened without a `locale` override so that the whole suite runs in it, as users' browsers there do.
 */
export function containerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(LC_|LANGUAGE$)/.test(k)) env[k] = v;
  return { ...env, LANG: 'C.UTF-8' };
}

/**
 * Chromium from the npm package @sparticuz/chromium (no system packages, no download), else Debian's
 * chromium, else GRADLENS_CHROMIUM. Never skips: without a browser the dashboard would go untested.
 */
export async function launchBrowser(): Promise<Browser> {
  const failures: string[] = [];
  const env = containerEnv();
  try {
    const chromium = (await import('@sparticuz/chromium')).default;
    const executablePath = await chromium.executablePath();
    return await playwright.launch({ executablePath, args: chromium.args, headless: true, env });
  } catch (err) {
    failures.push(`@sparticuz/chromium: ${(err as Error).message.split('\n')[0]}`);
  }
  const candidates = [process.env.GRADLENS_CHROMIUM, ...DEBIAN_CHROMIUM].filter((p): p is string => !!p && existsSync(p));
  for (const executablePath of candidates) {
    try {
      return await playwright.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu'], env });
    } catch (err) {
      failures.push(`${executablePath}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (!candidates.length) failures.push(`no ${DEBIAN_CHROMIUM.join(' or ')} (and GRADLENS_CHROMIUM unset)`);
  throw new Error(
    'The browser tests need a headless Chromium and none could start.\n' +
    '  - `npm ci` installs @sparticuz/chromium (a devDependency), which unpacks its own Chromium into /tmp;\n' +
    '  - or install Debian\'s browser: `apt-get install chromium`;\n' +
    '  - or point GRADLENS_CHROMIUM at a Chromium/Chrome binary.\n' +
    `Tried:\n  ${failures.join('\n  ')}`,
  );
}
