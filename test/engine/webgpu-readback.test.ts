// On webgpu every read-back is a GPU round trip (and asynchronous only): an analysis reads each batch's
// statistics in one transfer, whatever the depth, and repeated analyses grow neither tensors nor GPU bytes.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { describeWebGpuAbsent } from '../support/webgpu-absent.js';
import { LOADED_BACKENDS, useBackend } from '../backends.js';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { runAnalysis } from '../../src/engine/measure/measure.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';

const spec = (depth: number, batches: number): AnalysisSpecInput => ({
  seed: 3, network: { depth, width: 16, activation: 'tanh' }, data: { source: 'moons', batchSize: 32, batches },
});

if (!LOADED_BACKENDS.includes('webgpu')) describeWebGpuAbsent();

describe.each(LOADED_BACKENDS.filter((b) => b === 'webgpu').map((b) => [b] as const))('%s read-back', (backend) => {
  let reads = 0;
  beforeAll(async () => {
    await useBackend(backend);
    const b = tf.backend() as unknown as { read(id: unknown): Promise<unknown> };
    const read = b.read.bind(b);
    b.read = (id) => { reads++; return read(id); };
  });

  it('one transfer per batch, not per layer: depth 3 and depth 12 read the same number of times', async () => {
    const counted = async (input: AnalysisSpecInput): Promise<number> => {
      const { spec: s, dataset } = normalizeSpec(input);
      reads = 0;
      await runAnalysis(s, dataset);
      return reads;
    };
    expect(await counted(spec(3, 1))).toBe(1);
    expect(await counted(spec(12, 1))).toBe(1);
    expect(await counted(spec(12, 3))).toBe(3);
  });

  it('200 analyses leave no tensors and no GPU bytes behind', async () => {
    const { spec: s, dataset } = normalizeSpec(spec(6, 1));
    await runAnalysis(s, dataset); // warm-up
    const before = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
    for (let i = 0; i < 200; i++) await runAnalysis(s, dataset);
    const after = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    expect(before.numBytesInGPU).toBeTypeOf('number');
    expect(after.numBytesInGPU).toBe(before.numBytesInGPU);
  });
});
