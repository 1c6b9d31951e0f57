// Example specs used in the OpenAPI document and the README.
import type { AnalysisSpecInput } from './spec.js';

/** The textbook vanishing-gradient chain: 20 one-unit sigmoid layers, weights 0.17, input 1. */
export const TEXTBOOK_CHAIN_EXAMPLE: AnalysisSpecInput = {
  seed: 42,
  network: {
    depth: 20,
    width: 1,
    activation: 'sigmoid',
    outputActivation: 'sigmoid',
    useBias: false,
    init: { weights: { name: 'constant', value: 0.17 } },
  },
  data: { source: 'inline', x: [[1]] },
  loss: 'output',
};
