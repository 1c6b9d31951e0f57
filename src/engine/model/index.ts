// Room `model`: the network itself — activations, initialisers, parameters (and their per-thread cache),
// the differentiable forward pass and loss, and the optimizers of a training run.
export {
  normalizeActivation, activation, ACTIVATION_NAMES, type ActivationSpec, type ActivationName, type Activation,
} from './activations.js';
export {
  normalizeInitializer, initializerMoments, scalingOf, TRUNCATION_STD, INITIALIZER_NAMES,
  type InitializerSpec, type InitializerInput, type InitializerName,
} from './initializers.js';
export {
  planLayers, initParameters, forward, lossOf, activationsFor, auxIsVector, auxParameterCount,
  type LayerPlan, type NetworkParameters, type AuxName, type AuxTensor, type ForwardTaps,
} from './network.js';
export { cachedParameters, clearParameterCache } from './param-cache.js';
export { normalizeOptimizer, createOptimizer, type OptimizerConfig, type Optimizer } from './optimizers.js';
