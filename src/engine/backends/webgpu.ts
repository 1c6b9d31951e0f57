// The webgpu backend: tfjs's own WebGPU backend (@tensorflow/tfjs-backend-webgpu) inside Node through Dawn's
// Node bindings (npm `webgpu`), both optional dependencies. Runs on any GPU with a Vulkan driver and, through
// Mesa's software Vulkan (lavapipe), on a machine without one (correctness only, README Backends section).
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

/** The adapter Dawn gave tfjs, as /health, /metrics and every result report it. */
export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software or otherwise fallback adapter (lavapipe): correct, far slower than the native CPU path. */
  isFallbackAdapter: boolean;
}

import type { GpuPolicy } from '../../schemas/vocabulary.js';

export { GPU_POLICIES, type GpuPolicy } from '../../schemas/vocabulary.js';

export interface WebGpuOptions {
  /** GRADLENS_WEBGPU_ADAPTER: Dawn's `adapter=` option, a substring of the adapter's name. */
  adapter?: string;
  gpu?: GpuPolicy;
}

/** Dawn's options for create(): Vulkan on Linux (the only backend verified), and the chosen adapter. */
export function dawnOptions(options: WebGpuOptions): string[] {
  return [...(process.platform === 'linux' ? ['backend=vulkan'] : []), ...(options.adapter ? [`adapter=${options.adapter}`] : [])];
}

const require = createRequire(import.meta.url);

// Minimal shapes of what is used from Dawn, so that this file type-checks without the optional packages.
interface GpuAdapterLike {
  info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapterLike | null>;
}
/** Through a variable: the packages are optional, and a literal specifier would make tsc require them. */
const importOptional = (name: string): Promise<unknown> => import(name);
let active: Promise<WebGpuAdapter> | null = null;

function adapterOf(adapter: GpuAdapterLike): WebGpuAdapter {
  const info = adapter.info;
  const legacy = adapter.isFallbackAdapter;
  return {
    vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
    isFallbackAdapter: info.isFallbackAdapter ?? legacy ?? false,
  };
}

/**
 * Puts Dawn's GPU object on navigator.gpu. It must be there before tfjs-backend-webgpu is imported: the
 * backend registers itself only if navigator.gpu exists at import. Node 20 has no global navigator.
 */
async function installGpu(options: WebGpuOptions): Promise<GpuLike> {
  const { create, globals } = (await importOptional('webgpu')) as { create(o: string[]): GpuLike; globals: object };
  Object.assign(globalThis, globals); // GPUBufferUsage, GPUMapMode, ... which the backend reads
  const gpu = create(dawnOptions(options));
  const g = globalThis as { navigator?: object };
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(g.navigator!, 'gpu', { value: gpu, configurable: true });
  return gpu;
}

async function load(options: WebGpuOptions): Promise<WebGpuAdapter> {
  const gpu = await installGpu(options);
  // The same request tfjs makes, to report the adapter it will get.
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    // Dawn lists the available adapters on the following lines: keep them on one.
    const why = (err instanceof Error ? err.message : String(err)).trim().replace(/\s*\n\s*/g, ' ');
    throw new Error(options.adapter ? `GRADLENS_WEBGPU_ADAPTER=${options.adapter}: ${why}` : why);
  }
  if (!adapter) throw new Error(`Dawn found no WebGPU adapter (${dawnOptions(options).join(', ') || 'default options'}): is a Vulkan driver installed (libvulkan1 and the GPU's ICD; VK_DRIVER_FILES)?`);
  await importOptional('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend(\'webgpu\') returned false: the webgpu backend did not initialise');
  // Node has no OffscreenCanvas, which the backend's dataSync needs: say what to do instead of a ReferenceError.
  const backend = tf.backend() as unknown as { readSync(id: unknown): unknown };
  backend.readSync = () => {
    throw new Error('the webgpu backend cannot read tensors synchronously in Node: use await tensor.data()');
  };
  return adapterOf(adapter);
}

/** Makes webgpu the running tfjs backend (once per thread); throws with the reason when it cannot load. */
export function activateWebGpu(options: WebGpuOptions = {}): Promise<WebGpuAdapter> {
  active ??= load(options).catch((err: unknown) => {
    active = null;
    throw err;
  });
  return active.then(async (adapter) => {
    if (tf.getBackend() !== 'webgpu' && !(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise');
    return adapter;
  });
}

export type WebGpuProbe = { adapter: WebGpuAdapter } | { reason: string };

/** The probe's answers in this thread, by Dawn's options (the engine reads no environment to share them). */
const probes = new Map<string, WebGpuProbe>();

/**
 * Which adapter Dawn offers, asked in a child process: loading Dawn in this process only to decide
 * (auto, tests) would keep a GPU instance in every worker, and a driver fault aborts only the child.
 * The answer is cached per thread (with auto only the pool's first worker probes). Never throws.
 */
export function probeWebGpu(options: WebGpuOptions = {}): WebGpuProbe {
  const key = JSON.stringify(dawnOptions(options));
  const cached = probes.get(key);
  if (cached) return cached;
  const answer = askDawn(key);
  probes.set(key, answer);
  return answer;
}

function askDawn(key: string): WebGpuProbe {
  let answer: WebGpuProbe;
  let entry: string;
  try {
    entry = require.resolve('webgpu');
  } catch {
    return { reason: 'the optional dependency `webgpu` is not installed' };
  }
  const script = `const { create } = await import(${JSON.stringify(`file://${entry}`)});
const a = await create(${key}).requestAdapter({ powerPreference: 'high-performance' });
const i = a && a.info;
console.log(JSON.stringify(a ? { adapter: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
  isFallbackAdapter: i.isFallbackAdapter ?? a.isFallbackAdapter ?? false } } : { reason: 'Dawn found no WebGPU adapter' }));
process.exit(0);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  const line = child.stdout?.trim().split('\n').pop() ?? '';
  try {
    answer = JSON.parse(line) as typeof answer;
  } catch {
    const why = child.error?.message ?? (child.stderr?.trim().split('\n').pop() || `exit ${child.status ?? child.signal}`);
    answer = { reason: `the WebGPU probe failed: ${why.slice(0, 300)}` };
  }
  return answer;
}

/** Why `auto` does not choose webgpu under this policy, or null when it may. */
export function autoRefusal(probe: ReturnType<typeof probeWebGpu>, gpu: GpuPolicy): string | null {
  if (gpu === 'off') return 'GRADLENS_GPU=off';
  if ('reason' in probe) return probe.reason;
  if (probe.adapter.isFallbackAdapter && gpu !== 'any') {
    return `only a fallback adapter (${probe.adapter.vendor} ${probe.adapter.architecture}, ${probe.adapter.device}); GRADLENS_GPU=any lets auto use it`;
  }
  return null;
}
