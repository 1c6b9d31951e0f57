// Reading a tensor in a test the way every backend allows: asynchronously (webgpu has no dataSync in Node).
import * as tf from '@tensorflow/tfjs';

/** Runs `make` in a tidy scope, reads its tensor with `await data()` and disposes it. */
export async function readOut(make: () => tf.Tensor): Promise<Float32Array> {
  const t = tf.tidy(make);
  try {
    return Float32Array.from((await t.data()) as ArrayLike<number>);
  } finally {
    t.dispose();
  }
}
