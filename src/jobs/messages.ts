// The messages between the pool (main thread) and a compute worker thread: the worker's init data, the
// pool's requests and the worker's replies. Their own file so that pool.ts and worker.ts share them
// without importing each other.
import type { BackendChoice, BackendInfo, BackendOptions, SpecLimits } from '../engine/index.js';
import type { SerializedError } from './errors.js';
import type { ComputeTask } from './tasks.js';

export interface WorkerInit {
  backend: BackendChoice;
  /** From the configuration (src/config.ts): the worker reads no environment either. */
  backendOptions: BackendOptions;
  limits: SpecLimits;
  /** Int32 on shared memory: the pool writes 1 to cancel the running task, 0 when it hands over a new one. */
  cancelFlag: SharedArrayBuffer;
}

export type WorkerRequest = { type: 'run'; taskId: number; task: ComputeTask };
export type WorkerReply =
  | { type: 'ready'; backend: BackendInfo }
  | { type: 'init-failed'; error: SerializedError }
  | { type: 'record'; taskId: number; record: unknown; progress: number }
  | { type: 'done'; taskId: number; output: unknown }
  | { type: 'error'; taskId: number; error: SerializedError };
