// A weight layer's initialisers, in a file of its own so that the layer-kind type files (graph-types.ts,
// transformer-types.ts, recurrent-types.ts) can all use it without importing one another.
import type { InitializerSpec } from '../model/initializers.js';

export interface LayerInits {
  weights: InitializerSpec;
  bias: InitializerSpec;
}
