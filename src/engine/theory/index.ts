// Room `theory`: mean-field predictions — the length map, fixed point, χ₁ and depth scale for identical
// layers (GET /v1/theory) and, layer by layer, for an analysed network beside what was measured.
export { criticalSigmaW2, uniformTheory, chi1, phaseOf, type Phase, type UniformTheory } from './mean-field.js';
export { networkTheory, type NetworkTheory, type LayerTheory } from './network-theory.js';
export { theoryReport, type TheoryReport } from './report.js';
