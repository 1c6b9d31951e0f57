// Compute worker thread: initialises its own tfjs backend, then runs the pool's tasks one at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../engine/index.js';
import { serializeError } from './errors.js';
import { executeTask } from './tasks.js';
import type { WorkerInit, WorkerRequest, WorkerReply } from './messages.js';

const port = parentPort;
if (!port) throw new Error('worker.js must run as a worker thread');
const init = workerData as WorkerInit;
const flag = new Int32Array(init.cancelFlag);
const post = (msg: WorkerReply): void => port.postMessage(msg);

try {
  post({ type: 'ready', backend: await initBackend(init.backend, init.backendOptions) });
} catch (err) {
  // The pool terminates this thread when it reads the message.
  post({ type: 'init-failed', error: serializeError(err) });
}

port.on('message', (msg: WorkerRequest) => {
  if (msg.type !== 'run') return;
  const { taskId, task } = msg;
  // The flag is shared memory, so the engine sees a cancel between steps even while this thread
  // never returns to its event loop (a message would wait until the task ends).
  executeTask(task, init.limits, {
    onRecord: (record, progress) => post({ type: 'record', taskId, record, progress }),
    isCancelled: () => Atomics.load(flag, 0) === 1,
  }).then(
    (output) => post({ type: 'done', taskId, output }),
    (err: unknown) => post({ type: 'error', taskId, error: serializeError(err) }),
  );
});
