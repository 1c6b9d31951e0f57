// The last few initialised networks per thread: a split analysis's workers and its combining step, sweep cells and what-if runs that share a seed and an initialiser draw the same weights.
import { initParameters, planLayers, type NetworkParameters } from './network.js';
import type { NormalizedNetwork } from '../spec/normalize.js';

/**
 * Bytes of weights kept per thread. The MNIST 784-19x256-10 network is 5.8 MB; weights are drawn in
 * JavaScript (bit-reproducible Box-Muller, ~30 ms for that network), so a hit saves real time.
 */
const MAX_BYTES = 48 * 1024 * 1024;

const cache = new Map<string, { params: NetworkParameters; bytes: number }>();
let bytes = 0;

function sizeOf(p: NetworkParameters): number {
  let n = 0;
  for (const w of p.weights) n += w.byteLength;
  for (const b of p.biases) n += b?.byteLength ?? 0;
  for (const a of p.aux ?? []) n += a.values.byteLength;
  return n;
}

/**
 * initParameters(net, seed), shared with earlier calls for the same network and seed. The arrays are
 * read-only by contract: every consumer (tensors, statistics, `include: parameters`) only reads them,
 * and a tfjs kernel never writes into its inputs.
 */
export function cachedParameters(net: NormalizedNetwork, seed: number): NetworkParameters {
  // Everything the draws depend on: sizes, initialisers, bias, residual blocks and normalisation, not
  // the activations, so cells of a sweep over activations share their weights; the layer plan (which
  // names the activations) is made fresh for each call.
  const key = JSON.stringify([seed, net.depth, net.inputUnits, net.outputUnits, net.widths, net.useBias, net.init, net.residual, net.normalization, net.blocks]);
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return { ...hit.params, layers: planLayers(net) };
  }
  const params = initParameters(net, seed);
  const size = sizeOf(params);
  if (size > MAX_BYTES) return params;
  cache.set(key, { params, bytes: size });
  bytes += size;
  for (const [k, v] of cache) {
    if (bytes <= MAX_BYTES) break;
    cache.delete(k);
    bytes -= v.bytes;
  }
  return params;
}

/** Tests: start from an empty cache. */
export function clearParameterCache(): void {
  cache.clear();
  bytes = 0;
}
