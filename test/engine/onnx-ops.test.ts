// Operators the PyTorch fixtures do not emit, each in a one-node ONNX graph built with onnx-proto, against
// values computed here by hand: Identity, ReduceSum, GlobalMaxPool, Exp, Log, Neg, Abs, Reciprocal, Pad
// (reflect), Gather along an axis, Slice with a negative step, Clip with only a max.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import { useTestBackend } from '../backends.js';
import { importOnnx } from '../../src/engine/import/index.js';

const { onnx } = onnxProto;
const X = [[1, -2, 3], [-4, 5, -6]];
const flat = X.flat();

/** A model of one node reading `x` [2, 3] (and int64 constants given as initializers) and writing `y`. */
function oneNode(opType: string, attributes: Record<string, number | number[] | string> = {}, constants: Record<string, number[]> = {}, opset = 13): Uint8Array {
  const attribute = Object.entries(attributes).map(([name, v]) => (typeof v === 'string'
    ? { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v) }
    : Array.isArray(v) ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v } : { name, type: onnx.AttributeProto.AttributeType.INT, i: v }));
  const initializer = Object.entries(constants).map(([name, v]) => ({ name, dims: [v.length], dataType: onnx.TensorProto.DataType.INT64, int64Data: v }));
  const floatInput = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }, { dimValue: 3 }] } } } });
  const model = onnx.ModelProto.create({
    irVersion: 7, opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: 'g', node: [{ name: 'n', opType, input: ['x', ...Object.keys(constants)], output: ['y'], attribute }],
      input: [floatInput('x')], output: [{ name: 'y' }], initializer,
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

async function run(bytes: Uint8Array, x: number[][] = X): Promise<{ shape: number[]; values: number[] }> {
  const model = importOnnx(bytes);
  const y = tf.tidy(() => model.forward([tf.tensor(x)]).outputs[0]!);
  const out = { shape: y.shape, values: Array.from(await y.data()) };
  y.dispose();
  model.dispose();
  return out;
}

beforeAll(async () => {
  await useTestBackend();
});

describe('single operators against hand-computed values', () => {
  it('Identity, Neg, Abs, Exp, Log, Reciprocal', async () => {
    expect((await run(oneNode('Identity'))).values).toEqual(flat);
    expect((await run(oneNode('Neg'))).values).toEqual(flat.map((v) => -v));
    expect((await run(oneNode('Abs'))).values).toEqual(flat.map(Math.abs));
    const exp = (await run(oneNode('Exp'))).values;
    exp.forEach((v, i) => expect(v).toBeCloseTo(Math.exp(flat[i]!), 3));
    const pos = [[1, 2, 3], [4, 5, 6]];
    (await run(oneNode('Log'), pos)).values.forEach((v, i) => expect(v).toBeCloseTo(Math.log(i + 1), 6));
    (await run(oneNode('Reciprocal'), pos)).values.forEach((v, i) => expect(v).toBeCloseTo(1 / (i + 1), 6));
  });

  it('ReduceSum over axis 1 (axes an input at opset 13), keepdims 0', async () => {
    expect(await run(oneNode('ReduceSum', { keepdims: 0 }, { axes: [1] }))).toEqual({ shape: [2], values: [2, -5] });
  });

  it('Gather along axis 1 with a negative index', async () => {
    expect(await run(oneNode('Gather', { axis: 1 }, { idx: [-1, 0] }))).toEqual({ shape: [2, 2], values: [3, 1, -6, -4] });
  });

  it('Slice with a negative step reverses', async () => {
    const r = await run(oneNode('Slice', {}, { starts: [-1], ends: [-1e18], axes: [1], steps: [-1] }));
    expect(r).toEqual({ shape: [2, 3], values: [3, -2, 1, -6, 5, -4] });
  });

  it('Pad in reflect mode', async () => {
    const r = await run(oneNode('Pad', { mode: 'reflect' }, { pads: [0, 1, 0, 1] }));
    expect(r).toEqual({ shape: [2, 5], values: [-2, 1, -2, 3, -2, 5, -4, 5, -6, 5] });
  });

  it('Clip with only a max (min left out)', async () => {
    const bytes = (() => {
      const m = onnx.ModelProto.decode(oneNode('Clip'));
      m.graph!.node![0]!.input = ['x', '', 'hi'];
      m.graph!.initializer = [{ name: 'hi', dims: [], dataType: onnx.TensorProto.DataType.FLOAT, floatData: [2] }];
      return onnx.ModelProto.encode(m).finish();
    })();
    expect((await run(bytes)).values).toEqual(flat.map((v) => Math.min(v, 2)));
  });

  it('GlobalMaxPool over the spatial axes', async () => {
    const bytes = (() => {
      const m = onnx.ModelProto.decode(oneNode('GlobalMaxPool'));
      m.graph!.input![0]!.type!.tensorType!.shape!.dim = [{ dimValue: 1 }, { dimValue: 2 }, { dimValue: 1 }, { dimValue: 3 }];
      return onnx.ModelProto.encode(m).finish();
    })();
    const model = importOnnx(bytes);
    const y = tf.tidy(() => model.forward([tf.tensor(flat, [1, 2, 1, 3])]).outputs[0]!);
    expect(y.shape).toEqual([1, 2, 1, 1]);
    expect(Array.from(await y.data())).toEqual([3, 5]);
    y.dispose();
    model.dispose();
  });
});
