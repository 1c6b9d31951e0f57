// data.source "tokens" (issue 14): integer token sequences from a seeded synthetic grammar, for transformers.
//
// The grammar is a random first-order one: every token v has `branching` allowed successors, drawn once from
// the grammar's own stream (so samples and length do not change it). A sentence starts at a uniform token and
// walks the grammar. Targets: next_token (the class is a successor of the last token, drawn from the grammar:
// predictable from the last step) or grammatical (binary: half the sentences have one step replaced by a token
// the grammar forbids after its predecessor; label 1 = grammatical). Ids are stored as floats, never normalised.
import { Rng, deriveSeed } from '../common/random.js';
import type { TokenTarget } from '../../schemas/vocabulary.js';

export interface TokenSpec {
  vocab?: number;
  length?: number;
  branching?: number;
  target?: TokenTarget;
}

export const TOKEN_DEFAULTS = { vocab: 16, length: 32, branching: 2, target: 'next_token' as TokenTarget };
export const TOKEN_LIMITS = { maxVocab: 1000, maxLength: 4096 };

type IntParam = (value: number | undefined, fallback: number, field: string, min: number, max: number) => number;

export interface TokenPlan {
  n: number;
  inputSize: number;
  inputShape: number[];
  task: 'classification' | 'binary';
  outputSize: number;
  numClasses: number;
  what: string;
  draw(rng: Rng, seed: number): { x: Float32Array; y: Float32Array; labels: Int32Array; n: number; inputSize: number };
}

/** successors[v·b + j]: the j-th token allowed after v (distinct for each v). */
function drawGrammar(V: number, b: number, rng: Rng): Int32Array {
  const out = new Int32Array(V * b);
  const order = new Int32Array(V);
  for (let v = 0; v < V; v++) {
    for (let i = 0; i < V; i++) order[i] = i;
    rng.shuffle(order);
    out.set(order.subarray(0, b), v * b);
  }
  return out;
}

function sentence(x: Float32Array, at: number, T: number, grammar: Int32Array, V: number, b: number, rng: Rng): number {
  let v = rng.int(V);
  for (let t = 0; t < T; t++) {
    x[at + t] = v;
    if (t < T - 1) v = grammar[v * b + rng.int(b)]!;
  }
  return v;
}

/** A token the grammar forbids after `prev` (uniform among the V − b). */
function forbidden(prev: number, grammar: Int32Array, V: number, b: number, rng: Rng): number {
  const allowed = new Set(grammar.subarray(prev * b, (prev + 1) * b));
  for (;;) {
    const v = rng.int(V);
    if (!allowed.has(v)) return v;
  }
}

/** Validates data.tokens (DataSpecError through intParam) and says what it would draw. */
export function tokenPlan(spec: TokenSpec | undefined, samples: number, intParam: IntParam): TokenPlan {
  const V = intParam(spec?.vocab, TOKEN_DEFAULTS.vocab, 'data.tokens.vocab', 2, TOKEN_LIMITS.maxVocab);
  const T = intParam(spec?.length, TOKEN_DEFAULTS.length, 'data.tokens.length', 2, TOKEN_LIMITS.maxLength);
  const target = spec?.target ?? TOKEN_DEFAULTS.target;
  // grammatical needs a forbidden token after every token: at most V − 1 successors.
  const b = intParam(spec?.branching, Math.min(TOKEN_DEFAULTS.branching, V - 1), 'data.tokens.branching', 1, target === 'grammatical' ? V - 1 : V);
  const n = samples;
  const base = { n, inputSize: T, inputShape: [T] };
  const grammarOf = (seed: number): Int32Array => drawGrammar(V, b, new Rng(deriveSeed(seed, 'data:tokens:grammar')));
  const grammarText = `a random grammar over ${V} tokens with ${b} allowed successors each`;
  if (target === 'next_token') {
    return {
      ...base, task: 'classification', outputSize: V, numClasses: V,
      what: `Tokens: ${n} sentences of ${T} token ids from ${grammarText}; the class is the next token (drawn from the grammar after the last)`,
      draw: (rng, seed) => {
        const g = grammarOf(seed);
        const x = new Float32Array(n * T), labels = new Int32Array(n), y = new Float32Array(n * V);
        for (let i = 0; i < n; i++) {
          const last = sentence(x, i * T, T, g, V, b, rng);
          labels[i] = g[last * b + rng.int(b)]!;
          y[i * V + labels[i]!] = 1;
        }
        return { x, y, labels, n, inputSize: T };
      },
    };
  }
  return {
    ...base, task: 'binary', outputSize: 1, numClasses: 2,
    what: `Tokens: ${n} sentences of ${T} token ids from ${grammarText}; label 1 for a grammatical sentence, 0 for one with a forbidden token at one step (half of them)`,
    draw: (rng, seed) => {
      const g = grammarOf(seed);
      const x = new Float32Array(n * T), labels = new Int32Array(n), y = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        sentence(x, i * T, T, g, V, b, rng);
        const ok = i % 2 === 0;
        if (!ok) {
          const t = 1 + rng.int(T - 1);
          x[i * T + t] = forbidden(x[i * T + t - 1]!, g, V, b, rng);
        }
        labels[i] = ok ? 1 : 0;
        y[i] = labels[i]!;
      }
      return { x, y, labels, n, inputSize: T };
    },
  };
}
