// Where engine work runs: the interface the routes use, and the in-process implementation.
import { analyze, type AnalysisOutput } from '../engine/analyze.js';
import type { AnalysisSpecInput } from '../schemas/spec.js';
import type { SpecLimits } from '../engine/spec.js';

export interface Runner {
  analyze(input: AnalysisSpecInput): Promise<AnalysisOutput>;
  close(): Promise<void>;
}

/** Runs the engine on the calling thread: used in unit tests and as the simplest deployment. */
export class InProcessRunner implements Runner {
  constructor(private readonly limits: SpecLimits) {}

  async analyze(input: AnalysisSpecInput): Promise<AnalysisOutput> {
    return analyze(input, this.limits);
  }

  async close(): Promise<void> {}
}
