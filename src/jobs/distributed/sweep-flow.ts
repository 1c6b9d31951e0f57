// Sweeps fanned out over the distributed queue: the worker that takes a sweep plans it as a BullMQ flow (a parent
// `sweep` whose children are one `cell` job per grid cell, ids <job>.cell.<i>), any worker computes any cell, and the
// parent runs once every cell is done and aggregates their rows into the same table as the embedded mode
// (sweep-runner.ts). At-least-once delivery with idempotent results: a cell's row is its child's return value,
// keyed by job id and cell, so a cell re-run after a crash replaces nothing and the table has each cell once.
import { FlowProducer, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { expandSweep, sweepResult, sweepRow, type SweepRow } from '../../engine/index.js';
import type { Config } from '../../config.js';
import type { SweepSpecInput } from '../../schemas/sweep.js';
import type { JobManager } from '../manager.js';
import type { JobRecord, JobStore } from '../store-types.js';
import { TERMINAL_STATUSES } from '../store-types.js';
import { JobCanceledError, JobTimeoutError, jobErrorOf } from '../errors.js';
import { QUEUE_NAME, jobOptions, sweepParentJobId, type BullJobQueue, type QueuedWork } from './bull-queue.js';
import { redisConnection } from './redis.js';
import { isModelSweep } from '../model-sweep.js';

export interface SweepFlowOptions {
  config: Config;
  manager: JobManager;
  store: JobStore;
  queue: BullJobQueue;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

const cellJobId = (id: string, cell: number): string => `${id}.cell.${cell}`;
/** Cells whose row is stored, per sweep: progress counts each cell once however often it ran. */
const doneKey = (prefix: string, id: string): string => `${prefix}:sweep-cells:${id}`;

/** Errors of the work itself (a bad cell, a budget): the sweep fails at once, as in the embedded mode; no retry. */
const DETERMINISTIC = new Set(['INVALID_SPEC', 'LIMIT_EXCEEDED', 'TIMEOUT']);

function withExpect(job: JobRecord): SweepSpecInput {
  const spec = job.spec as SweepSpecInput;
  return (job.expect === null || job.expect === undefined ? spec : { ...spec, expect: job.expect }) as SweepSpecInput;
}

export function sweepFlow(o: SweepFlowOptions): {
  plan(id: string): Promise<'planned' | 'skipped' | 'not-a-sweep'>;
  cell(work: Required<QueuedWork>, job: Job): Promise<unknown>;
  aggregate(id: string, job: Job): Promise<unknown>;
} {
  const d = o.config.jobs.distributed;
  const { limits } = o.config;
  const maxCells = o.config.jobs.maxSweepCells;
  const redis: Redis = o.queue.connection;
  let producer: FlowProducer | undefined;
  /** Cells computing in this process, by sweep: a cancel from any process aborts them. */
  const running = new Map<string, Set<AbortController>>();
  o.manager.onRemoteCancel((id) => {
    for (const controller of running.get(id) ?? []) controller.abort(new JobCanceledError());
  });

  return {
    /** Starts the sweep and adds its flow (idempotent: ids are fixed, a second plan adds nothing). */
    async plan(id) {
      let job = await o.store.get(id);
      // A sweep of an uploaded model runs whole on the worker that took it (its cells read the model store).
      if (job && (job.kind !== 'sweep' || isModelSweep(job.spec))) return 'not-a-sweep';
      if (!job || TERMINAL_STATUSES.has(job.status)) return 'skipped';
      if (job.status === 'queued') {
        const started = await o.store.start(id);
        if (!started) return 'skipped';
        job = started;
        o.manager.announce(id, { type: 'state', job });
      }
      const { cells } = expandSweep(withExpect(job), limits, maxCells);
      producer ??= new FlowProducer({ connection: redisConnection(d.queue!, 'worker'), prefix: d.prefix });
      const opts = (jobId: string) => jobOptions({ attempts: o.config.jobs.maxAttempts, backoffMs: d.backoffMs }, jobId);
      await producer.add({
        name: 'sweep', queueName: QUEUE_NAME, data: { id } satisfies QueuedWork, opts: opts(sweepParentJobId(id)),
        children: cells.map((_, cell) => ({
          name: 'cell', queueName: QUEUE_NAME, data: { id, cell } satisfies QueuedWork,
          // A cell that fails for good fails the parent (consumer.ts then fails the sweep in the store).
          opts: { ...opts(cellJobId(id, cell)), failParentOnFailure: true },
        })),
      });
      o.log.info({ job: id, cells: cells.length }, 'sweep fanned out');
      return 'planned';
    },

    /** Computes one cell on this process's pool; its row is the BullMQ job's return value. */
    async cell({ id, cell }, bullJob) {
      const job = await o.store.get(id);
      if (!job || TERMINAL_STATUSES.has(job.status)) return null; // canceled or failed meanwhile: nothing to compute
      const startedAt = job.startedAt ? Date.parse(job.startedAt) : Date.now();
      const timeoutMs = o.config.jobs.timeoutMs;
      const controller = new AbortController();
      let set = running.get(id);
      if (!set) running.set(id, (set = new Set()));
      set.add(controller);
      const left = timeoutMs > 0 ? timeoutMs - (Date.now() - startedAt) : Infinity;
      const timer = Number.isFinite(left) ? setTimeout(() => controller.abort(new JobTimeoutError(timeoutMs)), Math.max(0, left)) : undefined;
      try {
        const { cells } = expandSweep(withExpect(job), limits, maxCells);
        const spec = cells[cell]!;
        o.log.info({ job: id, cell, attempt: bullJob.attemptsMade + 1, bullJob: bullJob.id }, 'computing sweep cell');
        const output = await o.manager.runner.analyze(spec.spec, { signal: controller.signal });
        if (controller.signal.aborted) throw controller.signal.reason;
        const row = sweepRow(spec, output);
        o.log.info({ job: id, cell, attempt: bullJob.attemptsMade + 1, bullJob: bullJob.id }, 'computed sweep cell');
        await redis.multi().hset(doneKey(d.prefix, id), String(cell), '1').expire(doneKey(d.prefix, id), 86_400).exec();
        const done = await redis.hlen(doneKey(d.prefix, id));
        const progress = done / cells.length;
        await o.store.progress(id, progress).catch(() => undefined);
        o.manager.announce(id, { type: 'progress', progress });
        return row;
      } catch (err) {
        const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
        if (reason instanceof JobCanceledError) return null; // the cancel is stored already
        const error = jobErrorOf(reason);
        if (!DETERMINISTIC.has(error.code)) throw reason; // a crash: BullMQ retries the cell with backoff
        const stored = await o.store.finish(id, { status: 'failed', error });
        if (stored) o.manager.announce(id, { type: 'failed', job: stored });
        return null;
      } finally {
        clearTimeout(timer);
        set.delete(controller);
        if (set.size === 0) running.delete(id);
      }
    },

    /** Every cell is done: the table, in cell order, stored as the sweep's outcome. */
    async aggregate(id, bullJob) {
      const job = await o.store.get(id);
      if (!job || TERMINAL_STATUSES.has(job.status)) return 'skipped';
      const t0 = performance.now();
      const input = withExpect(job);
      const { paths, cells, cost } = expandSweep(input, limits, maxCells);
      const values = await bullJob.getChildrenValues<SweepRow | null>();
      const rows: (SweepRow | null)[] = new Array(cells.length).fill(null);
      for (const [key, row] of Object.entries(values)) {
        const m = /\.cell\.(\d+)$/.exec(key);
        if (m) rows[Number(m[1])] = row;
      }
      // A cell that saw the sweep finished (canceled, failed) returned null: its outcome is stored already.
      if (rows.some((r) => r === null)) return 'skipped';
      const result = sweepResult(paths, rows as SweepRow[], input.expect);
      const computeMs = job.startedAt ? Date.now() - Date.parse(job.startedAt) : 0;
      const output = {
        spec: job.spec, result, cost,
        timings: { buildMs: performance.now() - t0, computeMs, totalMs: computeMs },
        environment: o.manager.environment(),
      };
      const stored = await o.store.finish(id, { status: 'succeeded', output });
      if (stored) o.manager.announce(id, { type: 'done', job: stored });
      await redis.del(doneKey(d.prefix, id)).catch(() => undefined);
      return 'aggregated';
    },
  };
}
