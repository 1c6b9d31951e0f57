// Room `backends`: which tfjs backend computes, chosen once per process, and the kernels gradlens swaps in
// (native OpenBLAS, wasm transposed products). select.ts loads the native addon and
// @tensorflow/tfjs-backend-wasm lazily (dynamic import) only when a backend asks for them; this door
// re-exports functions only, so importing it loads neither.
export {
  initBackend, backendInfo, activateBackend, BackendUnavailableError, BACKEND_CHOICES, IN_PROCESS_BACKENDS,
  type BackendChoice, type BackendInfo, type BackendOptions, type InProcessBackend, type NativeDesign,
} from './select.js';
export {
  loadNativeKernels, registerNativeKernels, registerNativeWasmMatMul, nativeKernelsIssue, nativeKernelStats,
  nativeReductions, type NativeReductions,
} from './native-kernels.js';
