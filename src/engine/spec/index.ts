// Room `spec`: a request's spec made whole — normalisation (every default filled in, limits enforced),
// cost estimates against the FLOP budgets, and the verdict thresholds.
export {
  normalizeSpec, normalizeSpecShape, isNormalizedSpec, specToInput, targetUnits, DEFAULT_LIMITS, DEFAULT_SEED, DEFAULT_WIDTH, DEFAULT_BATCH_SIZE,
  type NormalizedSpec, type NormalizedNetwork, type SpecLimits, type NormalizationKind, type ResidualVariant,
} from './normalize.js';
export { estimateCost, checkCost, FLOP_BUDGETS, type CostEstimate, type CostCheck, type FlopBudget } from './cost.js';
export { DEFAULT_THRESHOLDS, normalizeThresholds, type Thresholds } from './thresholds.js';
