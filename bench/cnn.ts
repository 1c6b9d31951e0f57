// The CNN workloads of the benchmark (issue 12): ResNet-20 and its plain counterpart as gradlens specs, their layers and FLOPs,
// and the sentence a row is skipped with when the server does not know the preset yet.
//
// bench/torch_reference.py's cnn_plan() builds the same layers in PyTorch; test/bench/cnn.test.ts checks the two agree.
import type { Reply } from './http.js';

export const CNN_WORKLOADS = ['CNN-resnet20', 'CNN-plain20'] as const;
export type CnnWorkload = (typeof CNN_WORKLOADS)[number];

/** He et al. 2016's CIFAR networks with n = 3: 6n + 2 = 20 layers, on MNIST's 28 x 28 x 1 digits, batch 64. */
export interface CnnNet {
  stages: readonly number[];
  blocksPerStage: number;
  batch: number;
  /** [height, width, channels] (square images). */
  input: readonly [number, number, number];
  classes: number;
}

export const CNN_NET: CnnNet = { stages: [16, 32, 64], blocksPerStage: 3, batch: 64, input: [28, 28, 1], classes: 10 };

export const CNN_PRESETS: Record<CnnWorkload, { preset: 'resnet' | 'plain_cnn'; residual: boolean }> = {
  'CNN-resnet20': { preset: 'resnet', residual: true },
  'CNN-plain20': { preset: 'plain_cnn', residual: false },
};

/**
 * The request of one CNN sample: the layer-graph preset of issue 12, He-normal weights, a batch of 64 MNIST digits
 * (as images: the network's input is [28, 28, 1]). A plain object, not AnalysisSpecInput: the preset is not in
 * this build's schema until the layer-graph code lands.
 */
export function cnnAnalysisSpec(workload: CnnWorkload, seed: number): Record<string, unknown> {
  return {
    seed,
    network: { preset: CNN_PRESETS[workload].preset, stages: [...CNN_NET.stages], blocksPerStage: CNN_NET.blocksPerStage, init: { weights: 'he_normal' } },
    data: { source: 'mnist', batchSize: CNN_NET.batch, batches: 1 },
  };
}

export interface CnnLayer {
  /** As bench/torch_reference.py names it: stem, stage2.block1.conv1, stage2.block1.shortcut, dense. */
  name: string;
  kind: 'conv2d' | 'dense';
  cIn: number;
  cOut: number;
  /** Kernel side (convolutions). */
  kernel?: number;
  stride?: number;
  /** Output shape: [c, h, w] for convolutions (PyTorch's order, as the reference reports it), [units] for dense. */
  out: number[];
  /** Weights, BN gamma and beta, dense bias. */
  parameters: number;
}

/**
 * The parameterised layers in graph order: a 3x3 stem, per stage blocksPerStage blocks of two 3x3 convolutions
 * (the first block of every stage after the first with stride 2), each followed by BN; with shortcuts, a 1x1
 * stride-2 projection without BN where the shape changes; global average pooling and a dense output.
 */
export function cnnLayers(residual: boolean, net: CnnNet = CNN_NET): CnnLayer[] {
  const layers: CnnLayer[] = [];
  let hw = net.input[0];
  let c = net.input[2];
  const conv = (name: string, cIn: number, cOut: number, kernel: number, stride: number, size: number, bn = true): number => {
    const out = Math.floor((size + 2 * Math.floor(kernel / 2) - kernel) / stride) + 1;
    layers.push({ name, kind: 'conv2d', cIn, cOut, kernel, stride, out: [cOut, out, out], parameters: kernel * kernel * cIn * cOut + (bn ? 2 * cOut : 0) });
    return out;
  };
  hw = conv('stem', c, net.stages[0]!, 3, 1, hw);
  c = net.stages[0]!;
  net.stages.forEach((width, s) => {
    for (let b = 0; b < net.blocksPerStage; b++) {
      const block = `stage${s + 1}.block${b + 1}`;
      const stride = s > 0 && b === 0 ? 2 : 1;
      const inSize = hw;
      hw = conv(`${block}.conv1`, c, width, 3, stride, inSize);
      conv(`${block}.conv2`, width, width, 3, 1, hw);
      if (residual && (stride !== 1 || c !== width)) conv(`${block}.shortcut`, c, width, 1, stride, inSize, false);
      c = width;
    }
  });
  layers.push({ name: 'dense', kind: 'dense', cIn: c, cOut: net.classes, out: [net.classes], parameters: c * net.classes + net.classes });
  return layers;
}

/**
 * FLOPs of one analysis: per layer three products of 2 multiply-adds' worth per output element and weight tap
 * (forward, input gradient, weight gradient), as denseFlops counts dense layers. BN, ReLU, pooling and the
 * statistics are left out (a few percent).
 */
export function cnnFlops(residual: boolean, net: CnnNet = CNN_NET): number {
  return cnnLayers(residual, net).reduce((f, l) => {
    const positions = l.kind === 'conv2d' ? l.out[1]! * l.out[2]! : 1;
    const taps = l.kind === 'conv2d' ? l.kernel! * l.kernel! : 1;
    return f + 6 * net.batch * positions * taps * l.cIn * l.cOut;
  }, 0);
}

/**
 * Why a CNN row cannot run, from the server's answer to its first request: a 400 means this build does not know
 * the layer-graph preset (the code of issue 12 has not landed), and the row is skipped with that said; null when
 * the server took the request.
 */
export function presetRefusal(workload: CnnWorkload, reply: Reply): string | null {
  if (reply.status === 200 || reply.status === 202) return null;
  const body = reply.body as { message?: unknown } | null;
  const message = typeof body?.message === 'string' ? body.message : JSON.stringify(body).slice(0, 300);
  const preset = CNN_PRESETS[workload].preset;
  if (reply.status === 400) {
    return `this server refuses network.preset "${preset}" (400: ${message}); the layer-graph code of issue 12 is not in this build, so ${workload} is skipped`;
  }
  return `POST /v1/analyses for ${workload} answered ${reply.status}: ${message}`;
}
