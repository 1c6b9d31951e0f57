// Cost estimates for a spec, checked against the limits before any compute runs: one FLOP budget per kind of work.
import { LimitError } from '../common/errors.js';
import type { NormalizedSpec, SpecLimits } from './normalize.js';

export interface CostEstimate {
  parameters: number;
  /** Floating-point operations of one forward + backward pass over one batch (≈ 6 per weight per example). */
  flopsPerStep: number;
  /** flopsPerStep × batches. */
  flops: number;
}

/**
 * The FLOP budgets, by the kind of work they admit: a synchronous analysis holds its HTTP request open,
 * so its budget is tight; work that runs as a job (an analysis with Prefer: respond-async, every cell of
 * a sweep, a training) is bounded by its own budget and, behind it, by the job timeout. `limit` is the
 * SpecLimits field, `variable` the environment variable config.ts reads it from (named in every 422).
 */
export const FLOP_BUDGETS = {
  analysis: { limit: 'maxAnalysisFlops', variable: 'GRADLENS_MAX_ANALYSIS_FLOPS' },
  asyncAnalysis: { limit: 'maxAsyncAnalysisFlops', variable: 'GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS' },
  training: { limit: 'maxTrainingFlops', variable: 'GRADLENS_MAX_TRAINING_FLOPS' },
  sweep: { limit: 'maxSweepFlops', variable: 'GRADLENS_MAX_SWEEP_FLOPS' },
} as const satisfies Record<string, { limit: keyof SpecLimits; variable: string }>;

export type FlopBudget = keyof typeof FLOP_BUDGETS;

export function estimateCost(spec: NormalizedSpec): CostEstimate {
  const net = spec.network;
  if (net.graph) {
    // A layer graph: 2 FLOPs per multiply-add of every dense and conv2d layer (2·kh·kw·c_in·c_out·h_out·w_out
    // for a convolution), three such products per layer as above, and ~20 element-wise operations per
    // output entry of every layer (activations, normalisation, pooling, probes, statistics).
    const flopsPerStep = spec.data.batchSize * (3 * net.graph.weightFlopsPerExample + 20 * net.graph.elementsPerExample);
    return { parameters: net.graph.parameters, flopsPerStep, flops: flopsPerStep * spec.data.batches };
  }
  const sizes = [net.inputUnits, ...net.widths, net.outputUnits];
  let weights = 0;
  let units = 0;
  for (let l = 0; l < net.depth; l++) {
    weights += sizes[l]! * sizes[l + 1]!;
    units += sizes[l + 1]!;
  }
  const parameters = weights + (net.useBias ? units : 0);
  // 2 FLOPs per multiply-add, three matrix products per layer (forward, input grad, weight grad),
  // plus ~20 element-wise operations per unit for activations, probes and statistics.
  const flopsPerStep = spec.data.batchSize * (6 * weights + 20 * units);
  return { parameters, flopsPerStep, flops: flopsPerStep * spec.data.batches };
}

export interface CostCheck {
  /** Which FLOP budget admits this work. */
  budget: FlopBudget;
  /** The estimate's flops are multiplied by this (an analysis with its what-if runs). */
  multiplier?: number;
  /** What the message calls the work. */
  what?: string;
}

/** Throws LimitError naming the limit and its environment variable when the estimate is over it. */
export function checkCost(cost: CostEstimate, limits: SpecLimits, check: CostCheck): void {
  if (cost.parameters > limits.maxParameters) {
    throw new LimitError('maxParameters', cost.parameters, limits.maxParameters,
      `the network has ${cost.parameters} parameters but the limit (GRADLENS_MAX_PARAMETERS) is ${limits.maxParameters}`, 'GRADLENS_MAX_PARAMETERS');
  }
  const { limit, variable } = FLOP_BUDGETS[check.budget];
  const max = limits[limit];
  const flops = cost.flops * (check.multiplier ?? 1);
  if (flops > max) {
    throw new LimitError(limit, flops, max,
      `this ${check.what ?? 'analysis'} needs about ${flops.toExponential(2)} floating-point operations but the limit (${variable}) is ${max.toExponential(2)}`, variable);
  }
}
