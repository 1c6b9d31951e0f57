// The job list: newest first, filterable by kind and status, refreshed with ETag polling that slows when nothing runs.
import { ApiError, getIfChanged, request } from './api.js';
import { h, fill } from './dom.js';
import { fmtTime } from './format.js';
import { describeSpec, listItems, TERMINAL, type Job } from './shapes.js';

export class JobsList {
  private etag: string | null = null;
  private timer = 0;
  private kind = '';
  private status = '';
  private readonly listEl: HTMLElement;
  private readonly noteEl: HTMLElement;
  private jobs: Job[] = [];
  private stopped = false;

  constructor(private readonly root: HTMLElement, private readonly onOpen: (job: Job) => void) {
    const select = (label: string, values: string[], onChange: (v: string) => void): HTMLElement =>
      h('label', { class: 'inline' }, label, h('select', { onchange: (e: Event) => onChange((e.target as HTMLSelectElement).value) },
        h('option', { value: '' }, 'all'), values.map((v) => h('option', { value: v }, v))));
    this.listEl = h('ul', { id: 'job-list', class: 'job-list', 'data-count': 0 });
    this.noteEl = h('p', { class: 'muted small' });
    fill(root,
      h('div', { class: 'section-head' }, h('h2', {}, 'Jobs'),
        h('div', { class: 'filters' },
          select('kind', ['analysis', 'training', 'sweep'], (v) => { this.kind = v; this.refreshNow(); }),
          select('status', ['queued', 'running', 'succeeded', 'failed', 'canceled'], (v) => { this.status = v; this.refreshNow(); }),
        )),
      this.noteEl,
      this.listEl,
    );
    document.addEventListener('visibilitychange', () => { if (!document.hidden) this.refreshNow(); });
  }

  disable(reason: string): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.noteEl.textContent = reason;
    this.listEl.replaceChildren();
  }

  /** Re-reads the list now (after a launch or a filter change) and resumes polling. */
  refreshNow(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.etag = null;
    void this.tick();
  }

  private async tick(): Promise<void> {
    let wait: number | null = null;
    const q = new URLSearchParams({ limit: '20' });
    if (this.kind) q.set('kind', this.kind);
    if (this.status) q.set('status', this.status);
    try {
      const res = await getIfChanged<unknown>(`/v1/jobs?${q}`, this.etag);
      if (res.changed) {
        this.etag = res.etag;
        this.jobs = listItems<Job>(res.data).items;
        this.render();
      }
      this.noteEl.textContent = '';
    } catch (e) {
      const err = e as ApiError;
      if (err.status === 404) return this.disable('This server has no job API: analyses run synchronously and are not listed.');
      this.noteEl.textContent = err.status === 401 || err.status === 403 ? 'The job list needs an API key (enter it above).' : `Job list: ${err.message}`;
      if (err.status === 401 || err.status === 403) return;
      // 429 and 503 say when to come back.
      if (err.retryAfter) wait = err.retryAfter * 1000;
    }
    if (this.stopped) return;
    // Poll often only while something is moving; hidden tabs wait for the visibilitychange above.
    const active = this.jobs.some((j) => !TERMINAL.includes(j.status));
    if (!document.hidden) this.timer = window.setTimeout(() => void this.tick(), wait ?? (active ? 2000 : 15000));
  }

  private render(): void {
    this.listEl.dataset.count = String(this.jobs.length);
    if (!this.jobs.length) {
      fill(this.listEl, h('li', { class: 'muted small' }, 'No jobs yet.'));
      return;
    }
    fill(this.listEl, this.jobs.map((job) => {
      const p = typeof job.progress === 'number' ? job.progress : job.status === 'succeeded' ? 1 : 0;
      return h('li', { class: 'job', 'data-id': job.id, 'data-status': job.status, 'data-kind': job.kind },
        h('button', { class: 'job-open', onclick: () => this.onOpen(job), title: describeSpec(job.spec) },
          h('span', { class: `kind kind-${job.kind}` }, job.kind),
          h('span', { class: `badge status-${job.status}` }, job.status),
          h('span', { class: 'job-desc' }, describeSpec(job.spec) || job.id.slice(0, 8)),
          h('span', { class: 'muted small' }, fmtTime(job.createdAt)),
          TERMINAL.includes(job.status) ? null : h('progress', { max: 1, value: p }),
        ),
        TERMINAL.includes(job.status) ? null : h('button', {
          class: 'link danger small', title: 'cancel this job',
          onclick: async () => {
            try {
              await request('POST', `/v1/jobs/${encodeURIComponent(job.id)}/cancel`);
            } catch (e) {
              this.noteEl.textContent = `Cancel failed: ${(e as Error).message}`;
            }
            this.refreshNow();
          },
        }, 'cancel'),
      );
    }));
  }
}
