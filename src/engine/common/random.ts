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

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next() | 0;
    this.b = next() | 0;
    this.c = next() | 0;
    this.d = next() | 0;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    // The state is kept as int32 (the same bits as uint32) so V8 never boxes it into doubles.
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniformIn(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /**
   * Standard normal by the Ziggurat method (Marsaglia & Tsang 2000, 256 layers; tables below).
   * Each attempt takes two 32-bit draws: the second gives the layer (8 bits), the sign (1 bit) and
   * the low 21 bits of a 53-bit uniform whose high 32 bits are the first draw. About 98.8% of
   * attempts are accepted by the rectangle test alone, with one multiply and one compare.
   */
  normal(): number {
    const t1 = this.nextUint32();
    const t2 = this.nextUint32();
    const layer = t2 & 0xff;
    const z = (t1 * 2097152 + (t2 >>> 11)) * ZIG_U53 * ZIG_X[layer]!;
    if (z < ZIG_X[layer + 1]!) return (t2 & 0x100) === 0 ? z : -z;
    return this.normalSlow(layer, z, t2);
  }

  /**
   * The rare part of the Ziggurat (about 1.2% of draws): the wedge test for layers 1..255, the
   * tail beyond R (Marsaglia's exponential method) for layer 0, and fresh attempts on rejection.
   * `layer`, `z` and `t2` are those of an attempt that failed the rectangle test.
   */
  private normalSlow(layer: number, z: number, t2: number): number {
    for (;;) {
      if (layer === 0) {
        // Tail: x = R + a with a ~ Exp(R), accepted with probability exp(-a²/2).
        let a: number, b: number;
        do {
          a = -Math.log(1 - this.nextUint32() / 4294967296) / ZIG_R;
          b = -Math.log(1 - this.nextUint32() / 4294967296);
        } while (b + b < a * a);
        const x = ZIG_R + a;
        return (t2 & 0x100) === 0 ? x : -x;
      }
      // Wedge: accept if a uniform height in the layer lies under the density at z.
      const f0 = ZIG_F[layer]!;
      const y = f0 + (ZIG_F[layer + 1]! - f0) * (this.nextUint32() / 4294967296);
      if (y < Math.exp(-0.5 * z * z)) return (t2 & 0x100) === 0 ? z : -z;
      // Rejected: a fresh attempt.
      const t1 = this.nextUint32();
      t2 = this.nextUint32();
      layer = t2 & 0xff;
      z = (t1 * 2097152 + (t2 >>> 11)) * ZIG_U53 * ZIG_X[layer]!;
      if (z < ZIG_X[layer + 1]!) return (t2 & 0x100) === 0 ? z : -z;
    }
  }

  /**
   * out[i] = scale · normal() for every i, the same numbers as that loop: the generator's state
   * stays in locals for the rectangle test (instead of four property loads and stores per draw)
   * and goes back through `normalSlow` only for the rare wedge and tail cases.
   */
  fillNormal(out: Float32Array, scale: number): void {
    if (zigguratFill !== null && out.length >= NATIVE_FILL_MIN) {
      this.fillNormalNative(zigguratFill, out, scale);
      return;
    }
    const n = out.length;
    const X = ZIG_X;
    let a = this.a, b = this.b, c = this.c, d = this.d;
    for (let i = 0; i < n; i++) {
      // Two sfc32 steps in int32 arithmetic (the same bits as nextUint32, without heap doubles).
      const t1 = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t1) | 0;
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      const layer = t & 0xff;
      const z = ((t1 >>> 0) * 2097152 + (t >>> 11)) * ZIG_U53 * X[layer]!;
      if (z < X[layer + 1]!) {
        out[i] = scale * ((t & 0x100) === 0 ? z : -z);
      } else {
        this.a = a;
        this.b = b;
        this.c = c;
        this.d = d;
        out[i] = scale * this.normalSlow(layer, z, t);
        a = this.a;
        b = this.b;
        c = this.c;
        d = this.d;
      }
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /**
   * fillNormal in C (the native addon's zigguratFill: the same integer steps, the same one rounded product and
   * V8's own exp for the wedge, so the same bits); each of the rare draws that reach the tail is finished here
   * by normalSlow (Math.log), then C goes on from the next entry.
   */
  private fillNormalNative(fill: ZigguratFill, out: Float32Array, scale: number): void {
    const state = FILL_STATE;
    const slow = FILL_SLOW;
    const n = out.length;
    state[0] = this.a; state[1] = this.b; state[2] = this.c; state[3] = this.d;
    for (let i = fill(out, 0, scale, state, ZIG_X, ZIG_F, slow); i < n; i = fill(out, i + 1, scale, state, ZIG_X, ZIG_F, slow)) {
      this.a = state[0]!; this.b = state[1]!; this.c = state[2]!; this.d = state[3]!;
      out[i] = scale * this.normalSlow(slow[0]!, slow[1]!, slow[2]!);
      state[0] = this.a; state[1] = this.b; state[2] = this.c; state[3] = this.d;
    }
    this.a = state[0]!; this.b = state[1]!; this.c = state[2]!; this.d = state[3]!;
  }

  /** out[i] = uniformIn(lo, hi) for every i, the same numbers as that loop, without a call per draw. */
  fillUniform(out: Float32Array, lo: number, hi: number): void {
    let a = this.a, b = this.b, c = this.c, d = this.d;
    const span = hi - lo;
    for (let i = 0; i < out.length; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      out[i] = lo + span * ((t >>> 0) / 4294967296);
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

/**
 * Ziggurat tables for the standard normal, 256 layers of equal area V under f(x) = exp(-x²/2),
 * computed once at module load in float64. V8's Math.exp/log/sqrt are fdlibm ports (sqrt is
 * correctly rounded), so the tables, and hence every seeded draw, are identical on every machine.
 *
 * Rather than hard-coding Marsaglia & Tsang's 10-digit R and V (which leave the top layer's area
 * slightly off), R is solved by bisection so that the chain of layers closes exactly: with
 * V = R·f(R) + ∫_R^∞ f, x_1 = R and x_{i+1} = f⁻¹(V/x_i + f(x_i)), the top layer [0, x_255] ×
 * [f(x_255), 1] must also have area V. R comes out at 3.65415288536100…
 *
 * ZIG_X[0] = V/f(R) is the base layer's width (rectangle plus tail), ZIG_X[256] = 0, and
 * ZIG_F[i] = f(ZIG_X[i]) with ZIG_F[256] = 1.
 */
const ZIG_LAYERS = 256;
const ZIG_U53 = 1 / 9007199254740992; // 2^-53

/** ∫_r^∞ exp(-t²/2) dt by the Laplace continued fraction f(r) / (r + 1/(r + 2/(r + 3/(r + …)))), for r ≥ 3. */
function gaussTail(r: number): number {
  let frac = r;
  for (let k = 200; k >= 1; k--) frac = r + k / frac;
  return Math.exp(-0.5 * r * r) / frac;
}

/** Builds x_0..x_256 for a trial R; returns the top-layer area error (NaN when the layers overshoot). */
function zigChain(r: number, x: Float64Array): number {
  const v = r * Math.exp(-0.5 * r * r) + gaussTail(r);
  x[0] = v / Math.exp(-0.5 * r * r);
  x[1] = r;
  for (let i = 1; i < ZIG_LAYERS - 1; i++) {
    const y = v / x[i]! + Math.exp(-0.5 * x[i]! * x[i]!);
    if (!(y < 1)) return Number.NaN;
    x[i + 1] = Math.sqrt(-2 * Math.log(y));
  }
  x[ZIG_LAYERS] = 0;
  const top = x[ZIG_LAYERS - 1]!;
  return v - top * (1 - Math.exp(-0.5 * top * top));
}

const { ZIG_R, ZIG_X, ZIG_F } = (() => {
  const x = new Float64Array(ZIG_LAYERS + 1);
  let lo = 3.5, hi = 3.8; // R too small: chain overshoots (NaN) or leaves the top layer too small.
  for (let it = 0; it < 200; it++) {
    const mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    const err = zigChain(mid, x);
    if (Number.isNaN(err) || err > 0) lo = mid;
    else hi = mid;
  }
  zigChain(hi, x);
  const f = new Float64Array(ZIG_LAYERS + 1);
  for (let i = 0; i <= ZIG_LAYERS; i++) f[i] = Math.exp(-0.5 * x[i]! * x[i]!);
  f[ZIG_LAYERS] = 1;
  return { ZIG_R: hi, ZIG_X: x, ZIG_F: f };
})();

/**
 * The native addon's Ziggurat loop (native/src/gradlens_native.c zigguratFill): fills out from `start` with the
 * generator state in `state`, stops at a draw that reaches the tail (its layer, z and second draw in `slow`) and
 * returns its index, or out.length.
 */
export type ZigguratFill = (out: Float32Array, start: number, scale: number, state: Int32Array, x: Float64Array, f: Float64Array, slow: Float64Array) => number;

let zigguratFill: ZigguratFill | null = null;
/** Below this many draws the call into C costs more than it saves. */
const NATIVE_FILL_MIN = 4096;
const FILL_STATE = new Int32Array(4);
const FILL_SLOW = new Float64Array(3);

/**
 * Makes fillNormal use the native loop (null: JavaScript again). Set by the native kernels while they are
 * registered (backends/native-kernels.ts): the numbers are the same either way (tested), only faster.
 */
export function setZigguratFill(fill: ZigguratFill | null): void {
  zigguratFill = fill;
}

/** The solved Ziggurat constants, for tests. */
export const ZIGGURAT = { layers: ZIG_LAYERS, r: ZIG_R, x: ZIG_X, f: ZIG_F } as const;

/** Derives a named sub-seed so that, e.g., weights and batches use separate streams. */
export function deriveSeed(seed: number, label: string): number {
  let h = (seed >>> 0) ^ 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h >>> 0;
}
