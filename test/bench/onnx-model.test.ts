// The R18-onnx row of the benchmark (issue 13): bench/onnx-model.ts's layer plan and FLOP count of torchvision's ResNet-18
// against the model PyTorch itself builds (forward hooks on every conv and linear), its registration in the bench, and the
// figures README.md and bench/README.md quote, against the committed raw results they name.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { PairSummary } from '../../bench/pairs.js';
import { R18, r18Convs, r18Flops } from '../../bench/onnx-model.js';
import { ROW_PLANS, WORKLOAD_INFO } from '../../bench/workloads.js';

const PYTHON = process.env.GRADLENS_TEST_PYTHON ?? '/usr/bin/python3';

/** Multiply-adds of one forward pass per conv/linear, and the parameter count, as torchvision's model reports them. */
const PROBE = `
import json, sys, torch, torchvision
torch.set_num_threads(1)
shape = [int(d) for d in sys.argv[1].split(',')]
m = torchvision.models.resnet18(num_classes=10)
macs = []
def hook(mod, inp, out):
    if isinstance(mod, torch.nn.Conv2d):
        macs.append(out[0].numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1])
    else:
        macs.append(mod.in_features * mod.out_features)
for mod in m.modules():
    if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
        mod.register_forward_hook(hook)
with torch.no_grad():
    m(torch.zeros(1, *shape[1:]))
print(json.dumps({"macs": macs, "parameters": sum(p.numel() for p in m.parameters())}))
`;

describe('R18-onnx workload', () => {
  it('counts the multiply-adds and parameters torchvision\'s resnet18 has at 64 × 64', () => {
    const run = spawnSync(PYTHON, ['-c', PROBE, R18.shape.join(',')], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } });
    expect(run.status, run.stderr).toBe(0);
    const torch = JSON.parse(run.stdout) as { macs: number[]; parameters: number };
    const convs = r18Convs();
    // Same layers in the same multiset (hooks fire in execution order; the plan lists a block's shortcut last).
    const planMacs = [...convs.map(([cIn, cOut, k, out]) => cIn * cOut * k * k * out * out), 512 * R18.classes];
    expect([...planMacs].sort((a, b) => a - b)).toEqual([...torch.macs].sort((a, b) => a - b));
    const batch = R18.shape[0];
    expect(r18Flops()).toBe(6 * batch * torch.macs.reduce((a, b) => a + b, 0));
    // Every conv is followed by a BN (γ, β); the fc has a bias.
    const params = convs.reduce((n, [cIn, cOut, k]) => n + cIn * cOut * k * k + 2 * cOut, 0) + 512 * R18.classes + R18.classes;
    expect(params).toBe(torch.parameters);
  }, 120_000);

  it('is a 1v1 row of npm run bench, timed in-process', () => {
    expect(ROW_PLANS).toContainEqual({ workload: 'R18-onnx', pairing: '1v1' });
    expect(WORKLOAD_INFO['R18-onnx'].via).toBe('engine');
    expect(WORKLOAD_INFO['R18-onnx'].flops).toBe(r18Flops());
  });
});

describe('R18-onnx figures in the docs', () => {
  const text = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8').replace(/\s+/g, ' ');
  const file = JSON.parse(text('bench/results/2026-12-02-r18-transpose.json')) as { rows: { workload: string; summary: Required<PairSummary> }[] };
  const s = file.rows.find((r) => r.workload === 'R18-onnx')!.summary;
  const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const x = (r: number): string => `${r.toFixed(0)}×`;

  it('README quotes the medians and ratios of bench/results/2026-12-02-r18-transpose.json', () => {
    const readme = text('README.md');
    expect(readme).toContain(`**${sec(s.gradlens.medianMs)} wall, ${sec(s.gradlens.cpuMedianMs)} CPU**`);
    expect(readme).toContain(`${s.torch.medianMs.toFixed(0)} ms (${s.torch.cpuMedianMs.toFixed(0)} ms CPU): **${x(s.ratio.median)} PyTorch**`);
    expect(readme).toContain(`median of ${s.pairs} alternated pairs; ${x(s.cpuRatio.median)} in CPU time`);
  });

  it('bench/README.md quotes the same with p95 and quartiles', () => {
    expect(text('bench/README.md')).toContain(`gradlens ${sec(s.gradlens.medianMs)} wall (p95 ${sec(s.gradlens.p95Ms)}), ${sec(s.gradlens.cpuMedianMs)} CPU per analysis; `
      + `PyTorch ${s.torch.medianMs.toFixed(0)} ms wall, ${s.torch.cpuMedianMs.toFixed(0)} ms CPU; per-pair ratio ${x(s.ratio.median)} wall `
      + `(IQR ${s.ratio.q25.toFixed(0)}–${x(s.ratio.q75)}), ${x(s.cpuRatio.median)} CPU (${s.cpuRatio.q25.toFixed(0)}–${x(s.cpuRatio.q75)}), ${s.pairs} pairs`);
  });
});
