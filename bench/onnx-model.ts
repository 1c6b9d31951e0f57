// The imported-model workload of the benchmark (issue 13, "fast enough for CI"): torchvision's ResNet-18
// exported to ONNX by scripts/onnx-fixtures.py, analysed by the engine entry a `"model": {"id"}` job runs.
//
// The export (45 MB, not committed) is made once at setup into the OS temp folder and reused by later runs;
// bench/torch_onnx_model.py reads the same folder for the batch, so both sides work on the same 4 × 3 × 64 × 64
// inputs and labels. Without /usr/bin/python3 with torch and torchvision nothing can be exported: the row is
// skipped with that said.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** torchvision's resnet18(num_classes=10) on a batch of 4 × 3 × 64 × 64, as scripts/onnx-fixtures.py --resnet18 exports it. */
export const R18 = { shape: [4, 3, 64, 64] as const, classes: 10 };

/** Where the export lives; bench/torch_onnx_model.py computes the same path (tempfile.gettempdir()). */
export const r18Dir = (): string => join(tmpdir(), `gradlens-bench-r18-${R18.shape.join('x')}`);

/** The export's record beside the .onnx file: the batch (NCHW) and labels the fixture script drew. */
interface R18Record {
  input: { shape: number[]; data: number[] };
  target: number[];
}

/**
 * The folder holding resnet18.onnx + resnet18.json, exported now if absent (into a fresh folder renamed into
 * place, so an interrupted export never leaves half a file to reuse); throws the reason it cannot.
 */
export function ensureR18Export(root: string, python = process.env['GRADLENS_BENCH_PYTHON'] ?? '/usr/bin/python3'): string {
  const dir = r18Dir();
  if (existsSync(join(dir, 'resnet18.onnx')) && existsSync(join(dir, 'resnet18.json'))) return dir;
  const check = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (check.error || check.status !== 0) {
    throw new Error(`${python} -c 'import torch, torchvision' failed (install python3-torch and python3-torchvision): R18-onnx needs them to export ResNet-18, so it is skipped`);
  }
  const work = mkdtempSync(`${dir}.partial-`);
  try {
    const run = spawnSync(python, [join(root, 'scripts', 'onnx-fixtures.py'), '--resnet18', '--shape', R18.shape.join(','), '--out', work], { encoding: 'utf8' });
    if (run.error || run.status !== 0) throw new Error(`scripts/onnx-fixtures.py --resnet18 failed: ${(run.stderr ?? String(run.error)).trim().split('\n').slice(-2).join(' | ')}`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return dir;
}

/** NCHW nested arrays from the flat record, the layout inline data takes for a PyTorch export. */
function nest(data: readonly number[], shape: readonly number[]): unknown {
  if (shape.length === 1) return data.slice(0, shape[0]);
  const step = shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0]! }, (_, i) => nest(data.slice(i * step, (i + 1) * step), shape.slice(1)));
}

/** ResNet-18's parameterised layers at this input size: [cIn, cOut, kernel, output side] per conv, then the fc. */
export function r18Convs(side: number = R18.shape[2]): [number, number, number, number][] {
  const convs: [number, number, number, number][] = [];
  let hw = Math.ceil(side / 2);
  convs.push([3, 64, 7, hw]);
  hw = Math.ceil(hw / 2); // max pool 3x3 stride 2, pad 1
  let c = 64;
  for (const [stage, width] of [64, 128, 256, 512].entries()) {
    for (let b = 0; b < 2; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const out = Math.ceil(hw / stride);
      convs.push([c, width, 3, out], [width, width, 3, out]);
      if (stride !== 1 || c !== width) convs.push([c, width, 1, out]);
      c = width;
      hw = out;
    }
  }
  return convs;
}

/**
 * FLOPs of one analysis as bench/cnn.ts counts them: three products (forward, input gradient, weight gradient)
 * of 2 per multiply-add, per conv and the fc; BN, ReLU, pooling and the statistics left out.
 */
export function r18Flops(): number {
  const [batch, , side] = R18.shape;
  const convs = r18Convs(side).reduce((f, [cIn, cOut, k, out]) => f + cIn * cOut * k * k * out * out, 0);
  return 6 * batch * (convs + 512 * R18.classes);
}

/**
 * One sample: the job's own task ({@link executeTask} on a `model-analysis` task, what a pool worker runs
 * for POST /v1/analyses with `"model": {"id"}`): the file imported, forward, backward, every parameter's and
 * layer's statistics read back, verdict, output encoded. Training mode (BN on batch statistics) and
 * categorical cross-entropy on the logits, the defaults of such a request.
 */
export async function r18Workload(root: string): Promise<{ run: () => Promise<unknown> }> {
  const dir = ensureR18Export(root);
  const { executeTask } = await import('../src/jobs/tasks.js');
  const { loadConfig } = await import('../src/config.js');
  const { normalizeThresholds } = await import('../src/engine/index.js');
  const record = JSON.parse(readFileSync(join(dir, 'resnet18.json'), 'utf8')) as R18Record;
  const file = new Uint8Array(readFileSync(join(dir, 'resnet18.onnx')));
  const data = { source: 'inline' as const, inputs: nest(record.input.data, record.input.shape), targets: record.target };
  const input = { data, loss: 'categorical_crossentropy' as const, mode: 'train' as const, thresholds: normalizeThresholds(undefined) };
  const limits = loadConfig().limits;
  return { run: () => executeTask({ kind: 'model-analysis', file, input, spec: { model: { id: 'bench-r18' } } }, limits) };
}
