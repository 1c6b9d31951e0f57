// Seeded pseudo-random numbers for weights and batches, identical on every tfjs backend.
/**
 * A small, fast, seedable generator (sfc32 seeded through splitmix32). We draw every random
 * number in JavaScript rather than through tfjs so that the same seed gives the same weights and
 * batches whatever backend runs the maths.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniformIn(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * out[i] = scale · normal() for every i, the same numbers as that loop (spare included), about twice
   * as fast: the generator's state stays in locals instead of going through four property loads and
   * stores per draw, which made weight initialisation the largest cost of a whole MNIST analysis.
   */
  fillNormal(out: Float32Array, scale: number): void {
    const n = out.length;
    let i = 0;
    if (n > 0 && this.spareNormal !== null) {
      out[i++] = scale * this.spareNormal;
      this.spareNormal = null;
    }
    let a = this.a, b = this.b, c = this.c, d = this.d;
    while (i < n) {
      let u = 0;
      while (u === 0) {
        const t = (((a + b) >>> 0) + d) >>> 0;
        d = (d + 1) >>> 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) >>> 0;
        c = ((c << 21) | (c >>> 11)) >>> 0;
        c = (c + t) >>> 0;
        u = t / 4294967296;
      }
      const t = (((a + b) >>> 0) + d) >>> 0;
      d = (d + 1) >>> 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) >>> 0;
      c = ((c << 21) | (c >>> 11)) >>> 0;
      c = (c + t) >>> 0;
      const v = t / 4294967296;
      const r = Math.sqrt(-2 * Math.log(u));
      out[i++] = scale * (r * Math.cos(2 * Math.PI * v));
      const spare = r * Math.sin(2 * Math.PI * v);
      if (i < n) out[i++] = scale * spare;
      else this.spareNormal = spare;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /** out[i] = uniformIn(lo, hi) for every i, the same numbers as that loop, without a call per draw. */
  fillUniform(out: Float32Array, lo: number, hi: number): void {
    let a = this.a, b = this.b, c = this.c, d = this.d;
    const span = hi - lo;
    for (let i = 0; i < out.length; i++) {
      const t = (((a + b) >>> 0) + d) >>> 0;
      d = (d + 1) >>> 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) >>> 0;
      c = ((c << 21) | (c >>> 11)) >>> 0;
      c = (c + t) >>> 0;
      out[i] = lo + span * (t / 4294967296);
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** A fresh generator derived from this one, so independent streams stay reproducible. */
  fork(): Rng {
    return new Rng(this.nextUint32());
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(items: T[] | Int32Array | Uint32Array): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
  }
}

/** Derives a named sub-seed so that, e.g., weights and batches use separate streams. */
export function deriveSeed(seed: number, label: string): number {
  let h = (seed >>> 0) ^ 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h >>> 0;
}
