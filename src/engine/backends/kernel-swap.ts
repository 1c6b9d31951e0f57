// Replaces a registered tfjs kernel with another implementation, keeping the stock one's setup and dispose hooks.
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs';

type Tf = typeof import('@tensorflow/tfjs');

/** Registers `kernelFunc` in place of `stock` (same name and backend); returns `stock` so it can be restored. */
export function swapKernel(tf: Tf, stock: KernelConfig, kernelFunc: KernelFunc): KernelConfig {
  tf.unregisterKernel(stock.kernelName, stock.backendName);
  const config: KernelConfig = { kernelName: stock.kernelName, backendName: stock.backendName, kernelFunc };
  if (stock.setupFunc) config.setupFunc = stock.setupFunc;
  if (stock.disposeFunc) config.disposeFunc = stock.disposeFunc;
  tf.registerKernel(config);
  return stock;
}
