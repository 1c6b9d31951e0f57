// The MNIST batch an analysis of an uploaded model draws (data.source mnist), written as JSON for PyTorch:
// scripts/onnx-fixtures.py --mnist-batch FILE computes its reference figures on exactly these digits.
//
//   npx tsx scripts/mnist-batch.ts --batch-size 8 --seed 42 > /tmp/mnist-batch.json
//   /usr/bin/python3 scripts/onnx-fixtures.py --mnist-batch /tmp/mnist-batch.json --out test/fixtures/onnx-mnist
import { parseArgs } from 'node:util';
import { mnistExamples } from '../src/engine/index.js';

const { values } = parseArgs({ options: { 'batch-size': { type: 'string', default: '8' }, seed: { type: 'string', default: '42' } } });
const batchSize = Number(values['batch-size']);
const seed = Number(values.seed);
const { x, labels } = mnistExamples({ batchSize, seed });
process.stdout.write(`${JSON.stringify({ batchSize, seed, normalize: 'standardize', shape: [batchSize, 1, 28, 28], data: Array.from(x), labels: Array.from(labels) })}\n`);
