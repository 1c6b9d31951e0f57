// Room `diagnosis`: what a measurement means — the verdict with reasons and flags, zero-by-design
// structure, what-if cures, and the CI checks (`expect`) evaluated against a finished result.
export { withDiagnosis, type DiagnosedResult, type DiagnosedSummary } from './with-diagnosis.js';
export { diagnose, fmt, type Verdict, type Diagnosis } from './verdict.js';
export { prepareWhatIf, runWhatIf, type PreparedWhatIf, type WhatIfResult } from './what-if.js';
export {
  evaluateChecks, validateExpect, analysisFacts,
  type WorkKind, type CheckReport, type AnalysisFacts, type CellChecks, type Check, type JsonNumber,
} from './checks.js';
export { structuralZeros, isZeroInitializer, type StructuralZeros } from './zero-by-design.js';
