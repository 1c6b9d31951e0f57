// Picks and initialises the tfjs backend once per process, and says which one is running.
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import type { WebGpuAdapter, WebGpuOptions } from './webgpu.js';

import { BACKEND_CHOICES, type BackendName, type GpuPolicy } from '../../schemas/vocabulary.js';

export { BACKEND_CHOICES };
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendInfo {
  /** What the process computes with: tensorflow, tensorflow-gpu, webgpu (Dawn), native (cpu + OpenBLAS kernels), wasm or cpu. */
  name: BackendName;
  /** The tfjs backend name underneath (`tensorflow`, `webgpu`, `wasm`, `cpu`). */
  tfjsBackend: string;
  tfjsVersion: string;
  requested: BackendChoice;
  /** Backends tried before this one and why each did not load (only with `auto`). */
  skipped: { name: string; reason: string }[];
  simd?: boolean;
  nativeKernels?: string[];
  /** The GPU adapter (webgpu only): vendor, architecture, device, and whether it is a fallback (software) one. */
  adapter?: WebGpuAdapter;
}

export class BackendUnavailableError extends Error {
  readonly code = 'BACKEND_UNAVAILABLE';
  constructor(readonly backend: string, reason: string) {
    super(`GRADLENS_BACKEND=${backend} was requested but cannot load: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}

const require = createRequire(import.meta.url);
let current: Promise<BackendInfo> | null = null;

function reasonOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0]!.slice(0, 300);
}

async function tryTensorflow(pkg: '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu'): Promise<void> {
  // tfjs-node registers the 'tensorflow' backend on the shared tfjs-core when required; it must be
  // required at most once per process (it breaks when loaded again in another worker, tfjs #8388).
  require(pkg);
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`${pkg} loaded but the tensorflow backend did not initialise`);
}

/**
 * The two native designs of the performance notes: 'cpu' (tfjs's cpu backend with OpenBLAS matmul and
 * native element-wise kernels, and statistics read in place) and 'wasm' (the wasm backend with only its
 * matmul replaced). On whole analyses the cpu design was as fast or faster (README, performance
 * section: W2 statistics 24-27 vs 29-34 ms of CPU, MNIST analyses alike), so it is the default;
 * GRADLENS_NATIVE_DESIGN=wasm selects the other for comparison.
 */
export type NativeDesign = 'cpu' | 'wasm';

/**
 * What the configuration says about loading backends. The engine reads no environment: src/config.ts
 * reads these variables and the job layer passes them in (to each worker through its init message).
 */
export interface BackendOptions {
  /** GRADLENS_DISABLE_NATIVE=1: `auto` skips the native kernels (CI tests the pure-npm path so). */
  disableNative?: boolean;
  /** GRADLENS_NATIVE_ADDON: where the native addon is, instead of the search. */
  nativeAddonPath?: string;
  /** GRADLENS_NATIVE_DESIGN; 'cpu' when unset. */
  nativeDesign?: NativeDesign;
  /** GRADLENS_GPU: may `auto` choose webgpu: auto (a real GPU only, the default), any (lavapipe too), off. */
  gpu?: GpuPolicy;
  /** GRADLENS_WEBGPU_ADAPTER: picks one of several adapters (Dawn's adapter= option, part of its name). */
  webgpuAdapter?: string;
}

/** The webgpu backend's part of the options, as webgpu.ts takes it. */
function webGpuOptionsOf(options: BackendOptions): WebGpuOptions {
  return { ...(options.webgpuAdapter ? { adapter: options.webgpuAdapter } : {}), ...(options.gpu ? { gpu: options.gpu } : {}) };
}

/** Undoes the kernel replacements of the other in-process backends (only tests switch backends in one process). */
async function restoreReplacedKernels(keep: 'native-cpu' | 'native-wasm' | 'wasm' | 'none'): Promise<void> {
  if (keep !== 'native-cpu' && keep !== 'native-wasm') {
    const { restoreStockKernels } = await import('./native-kernels.js');
    restoreStockKernels(tf);
  }
  if (keep !== 'wasm') {
    const { restoreWasmMatMul } = await import('./wasm-kernels.js');
    restoreWasmMatMul(tf);
  }
}

async function tryNative(options: BackendOptions): Promise<string[]> {
  const mod = await import('./native-kernels.js');
  const loaded = mod.loadNativeKernels({ addonPath: options.nativeAddonPath });
  if (!loaded.loaded) throw new Error(loaded.reason);
  if (options.nativeDesign === 'wasm') {
    await restoreReplacedKernels('native-wasm');
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
    if (!mod.registerNativeWasmMatMul(tf)) throw new Error(mod.nativeKernelsIssue() ?? 'the native wasm matmul did not register');
    // tf.grads through conv2d needs the filter gradient, which tfjs-backend-wasm lacks.
    (await import('./wasm-kernels.js')).registerWasmConvBackpropFilter(tf);
    return ['wasm:BatchMatMul'];
  }
  await restoreReplacedKernels('native-cpu');
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
  const kernels = mod.registerNativeKernels(tf);
  // An empty list means the addon loaded but refused to register (e.g. an untested tfjs version).
  if (kernels.length === 0) throw new Error(mod.nativeKernelsIssue() ?? 'no native kernels registered');
  return kernels;
}

async function tryWasm(): Promise<boolean> {
  await restoreReplacedKernels('wasm');
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
  // Transposed products through XNNPACK instead of the scalar fallback: W2 step ~390 -> ~60-90 ms.
  const { registerWasmTransposedMatMul, registerWasmConvBackpropFilter } = await import('./wasm-kernels.js');
  registerWasmTransposedMatMul(tf);
  registerWasmConvBackpropFilter(tf);
  return tf.env().getBool('WASM_HAS_SIMD_SUPPORT') as boolean;
}

async function tryCpu(): Promise<void> {
  await restoreReplacedKernels('none');
  if (!(await tf.setBackend('cpu'))) throw new BackendUnavailableError('cpu', 'the cpu backend did not initialise');
}

/** The backends that run in-process with tfjs itself (no tfjs-node): what the tests compare. */
export const IN_PROCESS_BACKENDS = ['native', 'wasm', 'cpu', 'webgpu'] as const;
export type InProcessBackend = (typeof IN_PROCESS_BACKENDS)[number];

/**
 * Makes `name` the running backend exactly as the service sets it up (the same kernels replaced),
 * undoing what another in-process backend replaced. The service picks one backend per process through
 * initBackend; tests call this to run the same numbers on each backend in one process. Throws
 * BackendUnavailableError when the backend cannot load (e.g. native without the addon).
 */
export async function activateBackend(name: InProcessBackend, options: BackendOptions = {}): Promise<Pick<BackendInfo, 'simd' | 'nativeKernels' | 'adapter'>> {
  try {
    if (name === 'webgpu') {
      await restoreReplacedKernels('none');
      const { activateWebGpu } = await import('./webgpu.js');
      return { adapter: await activateWebGpu(webGpuOptionsOf(options)) };
    }
    if (name === 'native') return { nativeKernels: await tryNative(options) };
    if (name === 'wasm') return { simd: await tryWasm() };
    await tryCpu();
    return {};
  } catch (err) {
    if (err instanceof BackendUnavailableError) throw err;
    throw new BackendUnavailableError(name, reasonOf(err));
  }
}

async function load(requested: BackendChoice, options: BackendOptions): Promise<BackendInfo> {
  const skipped: { name: string; reason: string }[] = [];
  const info = (name: BackendInfo['name'], extra: Partial<BackendInfo> = {}): BackendInfo => ({
    name, tfjsBackend: tf.getBackend(), tfjsVersion: tf.version.tfjs, requested, skipped, ...extra,
  });
  const attempt = async <T>(name: BackendInfo['name'], fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      if (requested !== 'auto') throw new BackendUnavailableError(name, reasonOf(err));
      skipped.push({ name, reason: reasonOf(err) });
      return undefined;
    }
  };

  if (requested === 'tensorflow' || requested === 'tensorflow-gpu') {
    const pkg = requested === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu';
    await attempt(requested, () => tryTensorflow(pkg));
    return info(requested);
  }
  if (requested === 'auto') {
    const ok = await attempt('tensorflow', async () => { await tryTensorflow('@tensorflow/tfjs-node'); return true; });
    if (ok) return info('tensorflow');
  }
  if (requested === 'webgpu' || requested === 'auto') {
    const { activateWebGpu, autoRefusal, probeWebGpu } = await import('./webgpu.js');
    const webgpu = webGpuOptionsOf(options);
    // auto asks a child process first, so that Dawn is loaded here only when it will be used.
    const policy = webgpu.gpu ?? 'auto';
    const refusal = requested !== 'auto' ? null : policy === 'off' ? 'GRADLENS_GPU=off' : autoRefusal(probeWebGpu(webgpu), policy);
    if (refusal) skipped.push({ name: 'webgpu', reason: refusal });
    else {
      const adapter = await attempt('webgpu', async () => { await restoreReplacedKernels('none'); return activateWebGpu(webgpu); });
      if (adapter) return info('webgpu', { adapter });
    }
  }
  if (requested === 'auto' && options.disableNative) {
    skipped.push({ name: 'native', reason: 'GRADLENS_DISABLE_NATIVE=1' });
  } else if (requested === 'auto' || requested === 'native') {
    const kernels = await attempt('native', () => tryNative(options));
    if (kernels) return info('native', { nativeKernels: kernels });
  }
  if (requested === 'auto' || requested === 'wasm') {
    const simd = await attempt('wasm', tryWasm);
    if (simd !== undefined) return info('wasm', { simd });
  }
  await tryCpu();
  return info('cpu');
}

const NODE_BACKEND_BANNER = 'install our node backend';

/**
 * tfjs's cpu backend prints a plain-text banner ("... install our node backend ...", console.warn) on its
 * first tensor write in Node: it landed among the server's JSON log lines. Its only switch, the PROD flag,
 * also silences every other tfjs warning, so instead that first write happens here, with exactly that
 * message dropped and anything else passed through.
 */
function absorbNodeBackendBanner(): void {
  if (tf.getBackend() !== 'cpu') return; // only the cpu backend prints it
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!args.some((a) => typeof a === 'string' && a.includes(NODE_BACKEND_BANNER))) warn(...args);
  };
  try {
    tf.scalar(0).dispose();
  } finally {
    console.warn = warn;
  }
}

/** Initialises the backend on first call; later calls return the same answer (whatever they ask). */
export function initBackend(requested: BackendChoice, options: BackendOptions = {}): Promise<BackendInfo> {
  current ??= load(requested, options).then(async (info) => {
    await tf.ready();
    absorbNodeBackendBanner();
    return info;
  });
  return current;
}

/** The backend already chosen; throws if initBackend has not been awaited. */
export async function backendInfo(): Promise<BackendInfo> {
  if (!current) throw new Error('initBackend() has not been called');
  return current;
}
