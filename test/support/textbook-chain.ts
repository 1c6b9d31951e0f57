// The textbook vanishing-gradient chain (20 one-unit sigmoid layers, w = 0.17, no bias, x = 1, loss = output):
// the spec is the API's own example (src/schemas/examples.ts, also in the OpenAPI document), so tests, docs
// and examples share one definition; the oracle is its closed form, computed here in float64.
import { TEXTBOOK_CHAIN_EXAMPLE } from '../../src/schemas/examples.js';

export const TEXTBOOK_CHAIN = TEXTBOOK_CHAIN_EXAMPLE;

/** The chain of another depth (everything else as in TEXTBOOK_CHAIN). */
export function textbookChainOfDepth(depth: number): typeof TEXTBOOK_CHAIN {
  return { ...TEXTBOOK_CHAIN, network: { ...TEXTBOOK_CHAIN.network, depth } };
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Closed form of a chain of 1-unit sigmoid layers, weight w, no bias, input x0, loss = output. */
export function sigmoidChain(depth: number, w: number, x0: number): { weightGrads: number[]; deltas: number[] } {
  const a = [x0];
  const h: number[] = [];
  for (let l = 0; l < depth; l++) {
    h.push(w * a[l]!);
    a.push(sigmoid(h[l]!));
  }
  const deltas = new Array<number>(depth);
  const ds = (l: number): number => sigmoid(h[l]!) * (1 - sigmoid(h[l]!));
  deltas[depth - 1] = ds(depth - 1);
  for (let l = depth - 2; l >= 0; l--) deltas[l] = ds(l) * w * deltas[l + 1]!;
  return { deltas, weightGrads: deltas.map((d, l) => d * a[l]!) };
}
