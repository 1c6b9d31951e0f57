// The diagnosis of a layer graph: the dense path's verdict, onset, slopes and flags over the rows in graph
// order (projection shortcuts left out of the depth-wise judgement), with the graph's own theory.
import type { NormalizedSpec } from '../spec/normalize.js';
import type { AnalysisResult, InputMoments } from '../measure/measure.js';
import { noStructuralZeros } from './zero-by-design.js';
import { diagnose } from './verdict.js';
import { graphTheory } from '../theory/graph-theory.js';
import { attachDiagnosis, type DiagnosedResult } from './with-diagnosis.js';
import { transformerReasons } from './transformer-reasons.js';

export function withGraphDiagnosis(spec: NormalizedSpec, input: InputMoments, result: AnalysisResult): DiagnosedResult {
  const graph = spec.network.graph!;
  const theory = graphTheory(spec, input, result);
  const offPath = new Set(graph.rows.filter((r) => r.shortcut).map((r) => r.index));
  const d = diagnose(result, noStructuralZeros(graph.rows.length), theory, spec.thresholds, offPath);
  const reasons: string[] = [];
  if (graph.norms.some((n) => n.kind === 'batch_norm') && !graph.layers.some((l) => l.kind === 'residual')) {
    reasons.push('Batch normalisation in a plain (shortcut-free) network makes gradients grow toward the input at initialisation (Yang et al. 2019, "A Mean Field Theory of Batch Normalization"): the per-layer growth above is what it measured here; residual shortcuts tame it.');
  }
  if (offPath.size > 0) reasons.push(`Projection shortcut rows (${[...offPath].map((r) => graph.rows[r]!.node.path).join(', ')}) are reported but left out of the ratios and fits: they are not on the main path's chain.`);
  reasons.push(...transformerReasons(result));
  return attachDiagnosis(spec, result, d, theory, reasons);
}
