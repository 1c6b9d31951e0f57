// The activation catalogue: tfjs ops for the network, scalar forms for theory and derivatives for statistics.
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../common/errors.js';

import { ACTIVATION_NAMES, type ActivationName } from '../../schemas/vocabulary.js';

// The catalogue's names are the API's vocabulary; build() below has a case for each.
export { ACTIVATION_NAMES, type ActivationName };

/** What a request may say: a bare name or `{ name, alpha }`. */
export type ActivationInput = string | { name: string; alpha?: number };

/** Normalised activation spec: every parameter filled in. */
export interface ActivationSpec {
  name: ActivationName;
  alpha?: number;
}

export interface Activation {
  spec: ActivationSpec;
  /** The tfjs op used in the forward pass (differentiated by autodiff). */
  apply(h: tf.Tensor): tf.Tensor;
  /** Elementwise derivative φ'(h); null for softmax, which is not elementwise. */
  derivative: ((h: tf.Tensor) => tf.Tensor) | null;
  /** Scalar φ and φ' for mean-field integrals and closed forms; null for softmax. */
  f: ((x: number) => number) | null;
  df: ((x: number) => number) | null;
  /** Largest |φ'| anywhere: saturation is measured relative to it. */
  peakDerivative: number;
  /**
   * Every x where φ or a derivative of it is not smooth (a kink of φ, a jump of φ' or φ''), in increasing
   * order. Mean-field quadrature puts a cell edge at each (theory/mean-field.ts): inside a cell a kink costs O(h²).
   */
  breakpoints: readonly number[];
  /**
   * Whether the activation has a flat asymptote that is not its "off" state. Only these get a
   * saturatedFraction; ReLU-like "off" regions are counted by deadFraction instead.
   */
  saturating: boolean;
}

export const SELU_LAMBDA = 1.0507009873554805;
export const SELU_ALPHA = 1.6732632423543772;
const SQRT1_2 = Math.SQRT1_2;

/** erf with absolute error below 1.2e-7 (Numerical Recipes' erfc Chebyshev fit). */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
          t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

const sigmoidScalar = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const softplusScalar = (x: number): number => (x > 30 ? x : Math.log1p(Math.exp(x)));
const normalPdf = (x: number): number => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

/** exp(min(h, 0)) - 1: the negative branch of ELU without overflowing exp for large positive h. */
function expm1Negative(h: tf.Tensor): tf.Tensor {
  return tf.sub(tf.exp(tf.minimum(h, 0)), 1);
}

function build(spec: ActivationSpec): Activation {
  switch (spec.name) {
    case 'linear':
      return {
        spec, apply: (h) => h, derivative: (h) => tf.onesLike(h),
        f: (x) => x, df: () => 1, peakDerivative: 1, saturating: false, breakpoints: [],
      };
    case 'sigmoid':
      return {
        spec, apply: (h) => tf.sigmoid(h),
        derivative: (h) => tf.tidy(() => { const s = tf.sigmoid(h); return tf.mul(s, tf.sub(1, s)); }),
        f: sigmoidScalar, df: (x) => { const s = sigmoidScalar(x); return s * (1 - s); },
        peakDerivative: 0.25, saturating: true, breakpoints: [],
      };
    case 'tanh':
      return {
        spec, apply: (h) => tf.tanh(h),
        derivative: (h) => tf.tidy(() => tf.sub(1, tf.square(tf.tanh(h)))),
        f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2, peakDerivative: 1, saturating: true, breakpoints: [],
      };
    case 'relu':
      return {
        spec, apply: (h) => tf.relu(h), derivative: (h) => tf.step(h),
        f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : 0), peakDerivative: 1, saturating: false, breakpoints: [0],
      };
    case 'leaky_relu': {
      const a = spec.alpha ?? 0.01;
      return {
        spec, apply: (h) => tf.leakyRelu(h, a),
        derivative: (h) => tf.tidy(() => tf.where(tf.greater(h, 0), tf.onesLike(h), tf.fill(h.shape, a))),
        f: (x) => (x > 0 ? x : a * x), df: (x) => (x > 0 ? 1 : a), peakDerivative: Math.max(1, Math.abs(a)),
        saturating: false, breakpoints: [0],
      };
    }
    case 'elu': {
      const a = spec.alpha ?? 1;
      return {
        spec,
        // relu(h) + α(e^min(h,0) − 1) rather than tf.where(h > 0, …): autodiff cannot pass through tf.greater.
        apply: (h) => tf.tidy(() => tf.add(tf.relu(h), tf.mul(a, expm1Negative(h)))),
        derivative: (h) => tf.tidy(() => tf.where(tf.greater(h, 0), tf.onesLike(h), tf.mul(a, tf.exp(tf.minimum(h, 0))))),
        f: (x) => (x > 0 ? x : a * Math.expm1(x)), df: (x) => (x > 0 ? 1 : a * Math.exp(x)),
        // φ' jumps at 0 unless α = 1, and φ'' always does.
        peakDerivative: Math.max(1, a), saturating: true, breakpoints: [0],
      };
    }
    case 'selu':
      return {
        spec,
        apply: (h) => tf.tidy(() =>
          tf.mul(SELU_LAMBDA, tf.add(tf.relu(h), tf.mul(SELU_ALPHA, expm1Negative(h))))),
        derivative: (h) => tf.tidy(() => tf.mul(SELU_LAMBDA,
          tf.where(tf.greater(h, 0), tf.onesLike(h), tf.mul(SELU_ALPHA, tf.exp(tf.minimum(h, 0)))))),
        f: (x) => SELU_LAMBDA * (x > 0 ? x : SELU_ALPHA * Math.expm1(x)),
        df: (x) => SELU_LAMBDA * (x > 0 ? 1 : SELU_ALPHA * Math.exp(x)),
        peakDerivative: SELU_LAMBDA * SELU_ALPHA, saturating: true, breakpoints: [0],
      };
    case 'gelu':
      // Exact (erf) GELU, as PyTorch's default and Keras' approximate=False.
      return {
        spec,
        apply: (h) => tf.tidy(() => tf.mul(tf.mul(0.5, h), tf.add(1, tf.erf(tf.mul(h, SQRT1_2))))),
        derivative: (h) => tf.tidy(() => {
          const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(h, SQRT1_2))));
          const pdf = tf.mul(1 / Math.sqrt(2 * Math.PI), tf.exp(tf.mul(-0.5, tf.square(h))));
          return tf.add(cdf, tf.mul(h, pdf));
        }),
        f: (x) => 0.5 * x * (1 + erf(x * SQRT1_2)),
        df: (x) => 0.5 * (1 + erf(x * SQRT1_2)) + x * normalPdf(x),
        peakDerivative: 1.1289, saturating: false, breakpoints: [],
      };
    case 'swish':
    case 'silu':
      return {
        spec, apply: (h) => tf.tidy(() => tf.mul(h, tf.sigmoid(h))),
        derivative: (h) => tf.tidy(() => {
          const s = tf.sigmoid(h);
          return tf.add(s, tf.mul(h, tf.mul(s, tf.sub(1, s))));
        }),
        f: (x) => x * sigmoidScalar(x),
        df: (x) => { const s = sigmoidScalar(x); return s + x * s * (1 - s); },
        peakDerivative: 1.0998, saturating: false, breakpoints: [],
      };
    case 'softplus':
      return {
        spec, apply: (h) => tf.softplus(h), derivative: (h) => tf.sigmoid(h),
        f: softplusScalar, df: sigmoidScalar, peakDerivative: 1, saturating: false, breakpoints: [],
      };
    case 'softsign':
      return {
        spec, apply: (h) => tf.tidy(() => tf.div(h, tf.add(1, tf.abs(h)))),
        derivative: (h) => tf.tidy(() => tf.reciprocal(tf.square(tf.add(1, tf.abs(h))))),
        f: (x) => x / (1 + Math.abs(x)), df: (x) => 1 / (1 + Math.abs(x)) ** 2,
        // |x|: φ'' jumps at 0.
        peakDerivative: 1, saturating: true, breakpoints: [0],
      };
    case 'hard_sigmoid':
      // relu6(x + 3) / 6, the PyTorch and Keras 3 definition (Keras 2 used clip(0.2x + 0.5)).
      return {
        spec, apply: (h) => tf.tidy(() => tf.div(tf.relu6(tf.add(h, 3)), 6)),
        derivative: (h) => tf.tidy(() =>
          tf.mul(1 / 6, tf.cast(tf.logicalAnd(tf.greater(h, -3), tf.less(h, 3)), 'float32'))),
        f: (x) => Math.min(Math.max(x + 3, 0), 6) / 6, df: (x) => (x > -3 && x < 3 ? 1 / 6 : 0),
        peakDerivative: 1 / 6, saturating: true, breakpoints: [-3, 3],
      };
    case 'relu6':
      return {
        spec, apply: (h) => tf.relu6(h),
        derivative: (h) => tf.tidy(() => tf.cast(tf.logicalAnd(tf.greater(h, 0), tf.less(h, 6)), 'float32')),
        f: (x) => Math.min(Math.max(x, 0), 6), df: (x) => (x > 0 && x < 6 ? 1 : 0),
        peakDerivative: 1, saturating: true, breakpoints: [0, 6],
      };
    case 'mish':
      return {
        spec, apply: (h) => tf.tidy(() => tf.mul(h, tf.tanh(tf.softplus(h)))),
        derivative: (h) => tf.tidy(() => {
          const t = tf.tanh(tf.softplus(h));
          return tf.add(t, tf.mul(h, tf.mul(tf.sub(1, tf.square(t)), tf.sigmoid(h))));
        }),
        f: (x) => x * Math.tanh(softplusScalar(x)),
        df: (x) => { const t = Math.tanh(softplusScalar(x)); return t + x * (1 - t * t) * sigmoidScalar(x); },
        peakDerivative: 1.0886, saturating: false, breakpoints: [],
      };
    case 'softmax':
      return {
        spec, apply: (h) => tf.softmax(h), derivative: null, f: null, df: null,
        peakDerivative: 0.25, saturating: true, breakpoints: [],
      };
  }
}

/** Resolves a request's activation into the normalised spec, naming `field` on error. */
export function normalizeActivation(input: ActivationInput, field: string): ActivationSpec {
  const raw = typeof input === 'string' ? { name: input } : input;
  const name = raw.name.toLowerCase();
  if (!(ACTIVATION_NAMES as readonly string[]).includes(name)) {
    throw new SpecError(field, `${field} "${raw.name}" is not a known activation; use one of ${ACTIVATION_NAMES.join(', ')}`);
  }
  const spec: ActivationSpec = { name: name as ActivationName };
  if (name === 'leaky_relu' || name === 'elu') {
    const alpha = raw.alpha ?? (name === 'elu' ? 1 : 0.01);
    if (!Number.isFinite(alpha)) throw new SpecError(`${field}.alpha`, `${field}.alpha must be a finite number`);
    spec.alpha = alpha;
  } else if (raw.alpha !== undefined) {
    throw new SpecError(`${field}.alpha`, `${field}.alpha is only meaningful for leaky_relu and elu`);
  }
  return spec;
}

export function activation(spec: ActivationSpec): Activation {
  return build(spec);
}
