// network.preset written out as plain network.layers: He et al. 2016's CIFAR ResNets and their plain counterparts.
import type { LayerInput, PlainLayerInput } from '../../schemas/layers.js';
import type { NetworkPreset } from '../../schemas/vocabulary.js';

export const DEFAULT_STAGES = [16, 32, 64];
export const DEFAULT_BLOCKS_PER_STAGE = 3;

const conv = (name: string, filters: number, stride = 1): PlainLayerInput => ({ kind: 'conv2d', name, filters, kernel: 3, stride, padding: 'same', useBias: false });
const bn = (name: string, relu: boolean): PlainLayerInput => (relu ? { kind: 'batch_norm', name, activation: 'relu' } : { kind: 'batch_norm', name });

/**
 * He et al. 2016, section 4.2: conv3×3(stages[0])-BN-relu; per stage, `blocks` basic blocks
 * conv3×3-BN-relu-conv3×3-BN + shortcut, relu after the addition; the first block of every later stage
 * halves the resolution (stride 2) and doubles the channels, with a projection shortcut (their option B);
 * global average pooling and a dense head. 2 + 2·blocks·stages weight layers (ResNet-20: blocks 3).
 * plain_cnn: the same layers, the shortcuts left out (relu where the addition was), names unchanged.
 */
export function expandPreset(preset: NetworkPreset, stages: number[], blocks: number): LayerInput[] {
  const layers: LayerInput[] = [conv('stem.conv', stages[0]!), bn('stem.bn', true)];
  let channels = stages[0]!;
  stages.forEach((filters, s) => {
    for (let b = 0; b < blocks; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      const block = `stage${s + 1}.block${b + 1}`;
      const branch: PlainLayerInput[] = [conv('conv1', filters, stride), bn('bn1', true), conv('conv2', filters), bn('bn2', false)];
      const changes = stride !== 1 || filters !== channels;
      if (preset === 'resnet') {
        layers.push({ kind: 'residual', name: block, layers: branch, shortcut: changes ? 'projection' : 'identity', activation: 'relu' });
      } else {
        for (const l of branch) layers.push({ ...l, name: `${block}.${l.name}` } as PlainLayerInput);
        layers.push({ kind: 'activation', name: `${block}.relu`, activation: 'relu' });
      }
      channels = filters;
    }
  });
  layers.push({ kind: 'global_avg_pool', name: 'head.pool' }, { kind: 'dense', name: 'head.dense' });
  return layers;
}
