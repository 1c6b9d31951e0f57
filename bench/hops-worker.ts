// The compute worker of bench/hops.ts: the real src/jobs/worker.js, with the time a task arrives and the time
// its reply leaves reported in a 'hops' message just before each reply. Bench only.
import { parentPort } from 'node:worker_threads';

const port = parentPort!;
const clock = (): number => performance.timeOrigin + performance.now();
let receivedAt = 0;
// Registered before worker.js's own listener, so it runs first.
port.on('message', () => { receivedAt = clock(); });
const post = port.postMessage.bind(port);
port.postMessage = (msg: { type?: string; taskId?: number }) => {
  if (msg.type !== 'done' && msg.type !== 'error') return post(msg);
  // Before the reply: once the reply is in, the benchmark may start its next request.
  post({ type: 'hops', taskId: msg.taskId, receivedAt, sentAt: clock() });
  post(msg);
};
await import('../src/jobs/worker.js');
