// Generated image sets (issue 12): Gaussian class templates and simple drawn shapes, in NHWC, each example flattened (row, column, channel).
//
// Both draw class by class (counts from the caller, balanced) and leave shuffling, one-hot targets and
// normalisation to datasets.ts, as the other generated sets do.
import type { Rng } from '../common/random.js';

export interface ImageSize {
  height: number;
  width: number;
  channels: number;
}

/** The shapes of data.source "shapes", in class order: class c is SHAPE_KINDS[c]. */
export const SHAPE_KINDS = ['square', 'circle', 'cross', 'triangle'] as const;
export type ShapeKind = (typeof SHAPE_KINDS)[number];

/** Smallest side of a shapes image: below it a cross and a triangle are no longer told apart by their pixels. */
export const MIN_SHAPES_SIDE = 8;

export interface DrawnImages {
  x: Float32Array;
  labels: Int32Array;
}

const valuesPerImage = (s: ImageSize): number => s.height * s.width * s.channels;

/**
 * gaussian_images: example i of class c is template_c + noise · ε_i, ε_i i.i.d. N(0, 1) per value, where every
 * template_c is itself i.i.d. N(0, 1) per value, drawn once from `templateRng` (its own stream, so that
 * changing samples or noise keeps the same templates). Large noise approaches i.i.d. Gaussian pixels; at the
 * default noise 1 every value has variance 2 and the class is the template it is closest to.
 */
export function drawGaussianImages(counts: number[], size: ImageSize, noise: number, templateRng: Rng, rng: Rng): DrawnImages {
  const d = valuesPerImage(size);
  const templates = new Float32Array(counts.length * d);
  templateRng.fillNormal(templates, 1);
  const n = counts.reduce((s, c) => s + c, 0);
  const x = new Float32Array(n * d);
  // The noise first (one fill of the whole array), then each example's template added to it.
  if (noise > 0) rng.fillNormal(x, noise);
  const labels = new Int32Array(n);
  let row = 0;
  counts.forEach((count, c) => {
    const t = templates.subarray(c * d, (c + 1) * d);
    for (let i = 0; i < count; i++, row++) {
      const base = row * d;
      for (let j = 0; j < d; j++) x[base + j] = x[base + j]! + t[j]!;
      labels[row] = c;
    }
  });
  return { x, labels };
}

/**
 * Whether the pixel whose centre is (dy, dx) from a shape's centre is inside the shape of half-size r:
 * square |dy|, |dx| ≤ r; circle of radius r; cross (a plus sign) of two bars 2r long and 2r/5 thick;
 * triangle pointing up with its apex at dy = -r and its base, 2r wide, at dy = r.
 */
export function insideShape(kind: ShapeKind, dy: number, dx: number, r: number): boolean {
  const ay = Math.abs(dy), ax = Math.abs(dx);
  switch (kind) {
    case 'square':
      return ay <= r && ax <= r;
    case 'circle':
      return dy * dy + dx * dx <= r * r;
    case 'cross': {
      const t = Math.max(0.5, r / 5);
      return (ay <= t && ax <= r) || (ax <= t && ay <= r);
    }
    case 'triangle':
      return ay <= r && ax <= (dy + r) / 2;
  }
}

/**
 * shapes: example i of class c is SHAPE_KINDS[c] drawn on a black background at a random half-size
 * r ~ U[m/8, 0.3 m] (m the smaller side) and a random centre that keeps it inside the image, filled in each
 * channel with its own brightness ~ U[0.5, 1]; then noise · N(0, 1) is added to every value.
 */
export function drawShapes(counts: number[], size: ImageSize, noise: number, rng: Rng): DrawnImages {
  const { height: h, width: w, channels: ch } = size;
  const d = valuesPerImage(size);
  const n = counts.reduce((s, c) => s + c, 0);
  const x = new Float32Array(n * d);
  const labels = new Int32Array(n);
  const m = Math.min(h, w);
  const colour = new Float64Array(ch);
  let row = 0;
  counts.forEach((count, c) => {
    const kind = SHAPE_KINDS[c]!;
    for (let i = 0; i < count; i++, row++) {
      const r = rng.uniformIn(m / 8, 0.3 * m);
      const cy = rng.uniformIn(r, h - r);
      const cx = rng.uniformIn(r, w - r);
      for (let k = 0; k < ch; k++) colour[k] = rng.uniformIn(0.5, 1);
      const base = row * d;
      // Only the shape's bounding box can be lit.
      for (let py = Math.max(0, Math.floor(cy - r)); py < Math.min(h, Math.ceil(cy + r)); py++) {
        for (let px = Math.max(0, Math.floor(cx - r)); px < Math.min(w, Math.ceil(cx + r)); px++) {
          if (!insideShape(kind, py + 0.5 - cy, px + 0.5 - cx, r)) continue;
          const at = base + (py * w + px) * ch;
          for (let k = 0; k < ch; k++) x[at + k] = colour[k]!;
        }
      }
      labels[row] = c;
    }
  });
  if (noise > 0) {
    const eps = new Float32Array(x.length);
    rng.fillNormal(eps, noise);
    for (let j = 0; j < x.length; j++) x[j] = x[j]! + eps[j]!;
  }
  return { x, labels };
}
