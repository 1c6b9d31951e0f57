// Room `backends`: which tfjs backend computes, chosen once per process, and the kernels gradlens swaps in
// (native OpenBLAS, wasm transposed products), and the webgpu backend (webgpu.ts, Dawn). select.ts loads the
// native addon, @tensorflow/tfjs-backend-wasm and Dawn lazily (dynamic import) only when a backend asks for them; this door
// re-exports functions only, so importing it loads none of them.
export {
  initBackend, backendInfo, activateBackend, BackendUnavailableError, BACKEND_CHOICES, IN_PROCESS_BACKENDS,
  type BackendChoice, type BackendInfo, type BackendOptions, type InProcessBackend, type NativeDesign,
} from './select.js';
export {
  loadNativeKernels, registerNativeKernels, registerNativeWasmMatMul, nativeKernelsIssue, nativeKernelStats,
  nativeReductions, type NativeReductions,
} from './native-kernels.js';
// Types and the policy list only: Dawn and tfjs-backend-webgpu load when the webgpu backend is asked for.
export { GPU_POLICIES, type GpuPolicy, type WebGpuAdapter } from './webgpu.js';
