// Optimizer update rules written out in tfjs ops, so the math is the documented one and testable by hand.
import * as tf from '@tensorflow/tfjs';
import type { OptimizerInput, OptimizerName } from '../../schemas/training.js';
import { SpecError } from '../common/errors.js';

export interface OptimizerConfig {
  name: OptimizerName;
  learningRate: number;
  momentum?: number;
  nesterov?: boolean;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  rho?: number;
}

type Param = Exclude<keyof OptimizerConfig, 'name' | 'learningRate'>;

const DEFAULTS: Record<OptimizerName, Omit<OptimizerConfig, 'name'>> = {
  sgd: { learningRate: 0.01 },
  momentum: { learningRate: 0.01, momentum: 0.9, nesterov: false },
  adam: { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 },
  rmsprop: { learningRate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7 },
};

/** Fills in the defaults; a parameter the optimizer does not use is an error, not silently ignored. */
export function normalizeOptimizer(input: OptimizerInput | undefined): OptimizerConfig {
  const given = input ?? { name: 'sgd' as const };
  const defaults = DEFAULTS[given.name];
  for (const key of Object.keys(given) as (keyof OptimizerInput)[]) {
    if (key === 'name' || key === 'learningRate' || given[key] === undefined) continue;
    if (!(key in defaults)) {
      const users = (Object.keys(DEFAULTS) as OptimizerName[]).filter((n) => key in DEFAULTS[n]);
      throw new SpecError(`optimizer.${key}`, `optimizer.${key} is used by ${users.join(' and ')}, not by ${given.name}`);
    }
  }
  const config: OptimizerConfig = { name: given.name, ...defaults };
  for (const key of Object.keys(defaults) as (keyof typeof defaults)[]) {
    const v = given[key as keyof OptimizerInput];
    if (v !== undefined) (config as unknown as Record<string, unknown>)[key] = v;
  }
  return config;
}

export interface Optimizer {
  /** Update count so far (Adam's t). */
  readonly iterations: number;
  /**
   * Returns the updated parameters as new tensors; call inside tf.tidy and dispose the old ones.
   * The optimizer's own state is kept outside the tidy scope and replaced in place.
   */
  step(params: tf.Tensor[], grads: tf.Tensor[]): tf.Tensor[];
  dispose(): void;
}

/** A stateful optimizer over a fixed list of parameter shapes (one slot set per parameter). */
export function createOptimizer(config: OptimizerConfig): Optimizer {
  const slots = new Map<string, tf.Tensor>();
  let t = 0;
  const num = (key: Param): number => config[key] as number;

  /** Replaces slot `key` of parameter i with a value kept past the caller's tidy. */
  const swap = (i: number, key: string, value: tf.Tensor): tf.Tensor => {
    const id = `${i}:${key}`;
    slots.get(id)?.dispose();
    slots.set(id, tf.keep(value));
    return value;
  };
  const slot = (i: number, key: string, like: tf.Tensor): tf.Tensor => slots.get(`${i}:${key}`) ?? tf.zerosLike(like);

  return {
    get iterations() {
      return t;
    },
    step(params, grads) {
      t += 1;
      const lr = config.learningRate;
      return params.map((p, i) => {
        const g = grads[i]!;
        switch (config.name) {
          case 'sgd':
            return tf.sub(p, tf.mul(lr, g));
          case 'momentum': {
            const mu = num('momentum');
            const b = swap(i, 'b', tf.add(tf.mul(mu, slot(i, 'b', p)), g));
            const direction = config.nesterov ? tf.add(g, tf.mul(mu, b)) : b;
            return tf.sub(p, tf.mul(lr, direction));
          }
          case 'adam': {
            const b1 = num('beta1');
            const b2 = num('beta2');
            const m = swap(i, 'm', tf.add(tf.mul(b1, slot(i, 'm', p)), tf.mul(1 - b1, g)));
            const v = swap(i, 'v', tf.add(tf.mul(b2, slot(i, 'v', p)), tf.mul(1 - b2, tf.square(g))));
            // Bias corrections in float64 on the host: 1 − β^t loses digits in float32 for small t.
            const mHat = tf.div(m, 1 - b1 ** t);
            const vHat = tf.div(v, 1 - b2 ** t);
            return tf.sub(p, tf.mul(lr, tf.div(mHat, tf.add(tf.sqrt(vHat), num('epsilon')))));
          }
          case 'rmsprop': {
            const rho = num('rho');
            const mu = num('momentum');
            const v = swap(i, 'v', tf.add(tf.mul(rho, slot(i, 'v', p)), tf.mul(1 - rho, tf.square(g))));
            let u = tf.div(g, tf.add(tf.sqrt(v), num('epsilon')));
            if (mu > 0) u = swap(i, 'b', tf.add(tf.mul(mu, slot(i, 'b', p)), u));
            return tf.sub(p, tf.mul(lr, u));
          }
        }
      });
    },
    dispose() {
      slots.forEach((s) => s.dispose());
      slots.clear();
    },
  };
}
