// Cost estimates for a spec, checked against the limits before any compute runs.
import { LimitError } from './errors.js';
import type { NormalizedSpec, SpecLimits } from './spec.js';

export interface CostEstimate {
  parameters: number;
  /** Floating-point operations of one forward + backward pass over one batch (≈ 6 per weight per example). */
  flopsPerStep: number;
  /** flopsPerStep × batches. */
  flops: number;
}

export function estimateCost(spec: NormalizedSpec): CostEstimate {
  const net = spec.network;
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

/** Throws LimitError naming the limit when the estimate is over it. */
export function checkCost(cost: CostEstimate, limits: SpecLimits, multiplier = 1, what = 'analysis'): void {
  if (cost.parameters > limits.maxParameters) {
    throw new LimitError('maxParameters', cost.parameters, limits.maxParameters,
      `the network has ${cost.parameters} parameters but the limit (GRADLENS_MAX_PARAMETERS) is ${limits.maxParameters}`);
  }
  const flops = cost.flops * multiplier;
  if (flops > limits.maxAnalysisFlops) {
    throw new LimitError('maxAnalysisFlops', flops, limits.maxAnalysisFlops,
      `this ${what} needs about ${flops.toExponential(2)} floating-point operations but the limit (GRADLENS_MAX_ANALYSIS_FLOPS) is ${limits.maxAnalysisFlops.toExponential(2)}`);
  }
}
