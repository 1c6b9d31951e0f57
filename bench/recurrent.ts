// The LSTM workload of the benchmark (issue 14): one lstm layer of 128 units on the adding problem at length 100,
// batch 32, then a dense head — one whole analysis over HTTP (result.layers and result.throughTime) — and its
// FLOPs. bench/torch_reference.py's lstm_analysis() does the same work in PyTorch: the same data, the same
// initialisers, one forward with a zero probe at every step's h_t and at each row's output, one backward, the
// weight, bias, row and per-step norms and the forget gate's statistics read to the host.
export const RECURRENT_WORKLOADS = ['LSTM-100'] as const;
export type RecurrentWorkload = (typeof RECURRENT_WORKLOADS)[number];

export const LSTM_NET = { steps: 100, features: 2, units: 128, batch: 32 } as const;

/** One sample's request: the adding problem (u_t and a marker, so 2 features), lstm 128, dense 1, mse. */
export function lstmAnalysisSpec(seed: number): Record<string, unknown> {
  const n = LSTM_NET;
  return {
    seed,
    network: { layers: [{ kind: 'lstm', units: n.units }, { kind: 'dense' }] },
    data: { source: 'adding', length: n.steps, samples: n.batch, batchSize: n.batch, batches: 1 },
  };
}

/**
 * FLOPs of one forward and backward (2 per multiply-add; forward, input gradient, weight gradient): per step the
 * input product x_t·W [F, 4U] and the recurrent one h·U [U, 4U], and the head. The cell's element-wise work
 * and the statistics are left out. gradlens's analysis makes this pass twice (layers, then through time).
 */
export function lstmFlops(n = LSTM_NET): number {
  return 6 * n.batch * (n.steps * (n.features + n.units) * 4 * n.units + n.units);
}
