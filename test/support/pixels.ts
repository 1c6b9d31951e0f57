// Pixels of a screenshot, decoded in the browser itself (no PNG decoder in the dependencies), and the inverse of
// the dashboard's viridis scale: where on the scale a drawn colour lies, so a test can compare it with the norms.
import type { Browser, Page } from 'playwright-core';
import { viridis } from '../../dashboard/src/colors.js';

export type Rgba = [number, number, number, number];
const decoders = new WeakMap<Browser, Page>();

/** The RGBA values at `points` (CSS px at device scale 1) of a PNG screenshot. */
export async function pixelsAt(browser: Browser, png: Buffer, points: [number, number][]): Promise<Rgba[]> {
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
    return points.map(([x, y]) => {
      const i = (Math.floor(y) * bitmap.width + Math.floor(x)) * 4;
      return [d[i]!, d[i + 1]!, d[i + 2]!, d[i + 3]!] as Rgba;
    });
  }, { b64: png.toString('base64'), points });
}

export const hexRgb = (hex: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
export const cssRgb = (css: string): [number, number, number] => css.match(/\d+/g)!.slice(0, 3).map(Number) as [number, number, number];
/** Largest channel difference. */
export const colorDistance = (a: readonly number[], b: readonly number[]): number => Math.max(...[0, 1, 2].map((i) => Math.abs(a[i]! - b[i]!)));

const SAMPLES = 2000;
const SCALE = Array.from({ length: SAMPLES + 1 }, (_, i) => cssRgb(viridis(i / SAMPLES)));

/** The position in [0, 1] on the viridis scale nearest to a pixel, and how far (in channel levels) it lies off it. */
export function viridisPosition(p: readonly number[]): { at: number; off: number } {
  let best = 0;
  let off = Infinity;
  SCALE.forEach((s, i) => {
    const d = colorDistance(p, s);
    if (d < off) { off = d; best = i; }
  });
  return { at: best / SAMPLES, off };
}
