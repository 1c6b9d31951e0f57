// Launch presets: the textbook chain, sigmoid vs relu at depth 30, residual on/off, a what-if, a short training, a sweep.

import type { JobKind } from '../../src/schemas/vocabulary.js';

/** What a preset launches: one of the API's job kinds. */
export type LaunchKind = JobKind;

export interface Preset {
  id: string;
  label: string;
  hint: string;
  kind: LaunchKind;
  /** The request body of POST /v1/analyses, /v1/trainings or /v1/sweeps. */
  body: Record<string, unknown>;
}

export const TEXTBOOK_CHAIN = {
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

const DEEP_BASE = {
  seed: 42,
  network: { depth: 30, width: 64, activation: 'sigmoid', init: { weights: 'glorot_uniform' } },
  data: { source: 'moons', batchSize: 64 },
};

export const PRESETS: Preset[] = [
  {
    id: 'textbook',
    label: 'Textbook sigmoid chain',
    hint: '20 one-unit sigmoid layers, weights 0.17, no bias, input 1: the classic vanishing gradient.',
    kind: 'analysis',
    body: TEXTBOOK_CHAIN,
  },
  {
    id: 'sigmoid-vs-relu',
    label: 'Sigmoid vs ReLU, depth 30',
    hint: 'Activation × initialiser at depth 30, width 64: only ReLU with He keeps the signal.',
    kind: 'sweep',
    body: { base: DEEP_BASE, grid: { 'network.activation': ['sigmoid', 'relu'], 'network.init.weights': ['glorot_uniform', 'he_normal'] } },
  },
  {
    id: 'residual',
    label: 'Residual on / off',
    hint: 'The same deep sigmoid network with and without skip connections every 2 layers.',
    kind: 'sweep',
    body: { base: DEEP_BASE, grid: { 'network.residual.every': [0, 2] } },
  },
  {
    id: 'what-if',
    label: 'What-if on a deep sigmoid net',
    hint: 'Runs the deep sigmoid/Glorot network and each standard cure, ranked by how well it restores the flow.',
    kind: 'analysis',
    body: { ...DEEP_BASE, whatIf: true },
  },
  {
    id: 'training',
    label: 'Short training (Iris)',
    hint: 'Trains a depth-8 ReLU/He network on Iris for 60 steps and records per-layer norms every 2 steps.',
    kind: 'training',
    body: {
      seed: 42,
      network: { depth: 8, width: 32, activation: 'relu', init: { weights: 'he_normal' } },
      data: { source: 'iris', batchSize: 32 },
      steps: 60,
      recordEvery: 2,
      optimizer: { name: 'adam', learningRate: 0.01 },
    },
  },
  {
    id: 'sweep',
    label: 'Sweep: activation × init',
    hint: 'A server-side sweep over four activations and three initialisers at depth 20.',
    kind: 'sweep',
    body: {
      base: { seed: 42, network: { depth: 20, width: 32 }, data: { source: 'moons', batchSize: 64 } },
      grid: {
        'network.activation': ['sigmoid', 'tanh', 'relu', 'selu'],
        'network.init.weights': ['glorot_uniform', 'he_normal', 'lecun_normal'],
      },
    },
  },
];

/**
 * A deep copy of `spec` with `path` (dot-separated) set to `value`, creating objects along the way: how a
 * sweep builds each cell's spec from its base, so a cell's analysis can be run again on its own.
 */
export function setPath(spec: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(spec);
  const keys = path.split('.');
  let cur: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = structuredClone(value);
  return copy;
}

export function valueLabel(v: unknown): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    if (typeof o.name === 'string') return o.name;
  }
  return JSON.stringify(v);
}
