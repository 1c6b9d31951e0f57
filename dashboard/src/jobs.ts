// Following jobs politely: server-sent events where the server has them, otherwise ETag polling that backs off and pauses in hidden tabs.
import { ApiError, getIfChanged, subscribe, type Conditional } from './api.js';
import { isObject, TERMINAL, type Job } from './shapes.js';

const isJob = (v: unknown): v is Job => isObject(v) && typeof v.id === 'string' && typeof v.status === 'string';

export interface FollowHandlers {
  onJob(job: Job): void;
  onRecord?(record: unknown): void;
  onError?(err: ApiError): void;
}

/** Waits `ms`, but no longer than until the tab is visible again plus `ms` (hidden tabs do not poll). */
function politeDelay(ms: number, stopped: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const tick = (): void => {
      if (stopped()) return resolve();
      if (document.hidden) {
        document.addEventListener('visibilitychange', function onVis() {
          document.removeEventListener('visibilitychange', onVis);
          setTimeout(resolve, 0);
        });
        return;
      }
      resolve();
    };
    setTimeout(tick, ms);
  });
}

/** Polls GET path with If-None-Match until `done(data)`; 304s cost the server no body. */
export async function pollWithEtag<T>(path: string, onData: (data: T) => boolean, stopped: () => boolean, onError?: (e: ApiError) => void): Promise<void> {
  let etag: string | null = null;
  let delay = 750;
  while (!stopped()) {
    try {
      const res: Conditional<T> = await getIfChanged<T>(path, etag);
      if (res.changed) {
        etag = res.etag;
        delay = 750;
        if (onData(res.data)) return;
      } else {
        // Unchanged: slow down gently, up to 5 s between polls.
        delay = Math.min(5000, delay * 1.5);
      }
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, 'NETWORK', String(e));
      onError?.(err);
      if (err.status === 404 || err.status === 401 || err.status === 403) return;
      delay = err.retryAfter ? err.retryAfter * 1000 : Math.min(15000, delay * 2);
    }
    await politeDelay(delay, stopped);
  }
}

/**
 * Follows one job to its end: events for progress and training records when the server streams them,
 * ETag polling otherwise. Returns a function that stops following.
 */
export function followJob(id: string, h: FollowHandlers): () => void {
  let stopped = false;
  let closeStream: (() => void) | null = null;
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  const isStopped = (): boolean => stopped;
  const poll = (): void => {
    void pollWithEtag<Job>(path, (job) => {
      h.onJob(job);
      return TERMINAL.includes(job.status);
    }, isStopped, h.onError);
  };
  // The terminal events carry the whole job (with its result); without one, a final GET fetches it.
  const finish = (data: unknown): void => {
    closeStream?.();
    closeStream = null;
    if (isJob(data) && TERMINAL.includes(data.status)) h.onJob(data);
    else poll();
  };

  void (async () => {
    let job: Job;
    try {
      const first: Conditional<Job> = await getIfChanged<Job>(path, null);
      if (!first.changed) return;
      job = first.data;
    } catch (e) {
      h.onError?.(e instanceof ApiError ? e : new ApiError(0, 'NETWORK', String(e)));
      return;
    }
    if (stopped) return;
    h.onJob(job);
    if (TERMINAL.includes(job.status)) return;
    let current = job;
    // Events: state (the job), progress ({ progress }), record ({ record, progress }), then done/failed/canceled (the job).
    closeStream = subscribe(`${path}/events`, {
      state: (data) => {
        if (isJob(data)) {
          current = data;
          h.onJob(current);
        }
      },
      progress: (data) => {
        if (isObject(data) && typeof data.progress === 'number') {
          current = { ...current, progress: data.progress, status: current.status === 'queued' ? 'running' : current.status };
          h.onJob(current);
        }
      },
      record: (data) => h.onRecord?.(isObject(data) && 'record' in data ? data.record : data),
      done: finish,
      failed: finish,
      canceled: finish,
    }, () => {
      if (!stopped) poll();
    });
  })();

  return () => {
    stopped = true;
    closeStream?.();
  };
}
