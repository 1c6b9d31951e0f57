// Dashboard entry: header and API key, launch presets and editor, job list, and a hash router for the main view.
// First: uPlot reads navigator.language when its module is evaluated, which must not throw (locale.ts).
import './locale.js';
import 'uplot/dist/uPlot.min.css';
import '../styles.css';
import { ApiError, getApiKey, request, setApiKey } from './api.js';
import { AnalysisView } from './analysis-view.js';
import { byId, fill, h } from './dom.js';
import { Editor, type EditorSubmit } from './editor.js';
import { followJob } from './jobs.js';
import { JobsList } from './jobs-list.js';
import { MatrixView } from './matrix-view.js';
import { PRESETS, type Preset } from './presets.js';
import { describeSpec, isObject, TERMINAL, type AnalysisResponse, type Job } from './shapes.js';
import { TrainingView } from './training-view.js';
import { cellSpec, sweepAxes, sweepCells } from './sweep.js';

const view = byId('view');
const analyses = new Map<string, AnalysisResponse>();
/** Analysis id of each opened sweep cell ("sweepId/index"), so going back and forth does not recompute. */
const cellAnalyses = new Map<string, string>();
let teardown: (() => void) | null = null;
let editor: Editor;
let jobsList: JobsList | null = null;

function setView(kind: string, state: string): void {
  view.dataset.kind = kind;
  view.dataset.state = state;
}

function resetView(): void {
  teardown?.();
  teardown = null;
  view.replaceChildren();
}

function showError(title: string, err: unknown): void {
  const e = err instanceof ApiError ? err : new ApiError(0, 'ERROR', String(err));
  fill(view, h('div', { class: 'error-box', id: 'view-error', 'data-code': e.code },
    h('strong', {}, title), h('p', {}, `${e.status ? `${e.status} ` : ''}${e.code}: ${e.message}`)));
  setView('error', 'error');
}

function showLoading(text: string): void {
  fill(view, h('div', { class: 'loading' }, h('span', { class: 'spinner' }), text));
  setView('loading', 'loading');
}

function welcome(): void {
  fill(view,
    h('div', { class: 'welcome' },
      h('h2', {}, 'How do gradients flow through your network?'),
      h('p', {}, 'Pick a preset on the left or write a spec. gradlens builds the network, runs real batches forward and backward, and shows every layer\'s gradient by depth: one ordered view instead of hundreds of panels.'),
      h('button', { class: 'primary', onclick: () => runPreset(PRESETS[0]!) }, 'Start with the textbook sigmoid chain'),
    ));
  setView('welcome', 'empty');
}

function renderAnalysis(res: AnalysisResponse, title?: string, back?: { href: string; label: string }): void {
  resetView();
  const holder = h('div', {});
  if (back) view.append(h('a', { class: 'back', href: back.href }, `← ${back.label}`));
  view.append(holder);
  const v = new AnalysisView(holder, (spec, cureTitle) => void launch({ kind: 'analysis', body: spec }, cureTitle));
  v.render(res, title);
  setView('analysis', 'ready');
  teardown = () => v.destroy();
}

/** A job that is not (yet) something to draw: queued, running without live view, failed or canceled. */
function renderJobState(job: Job): void {
  const p = typeof job.progress === 'number' ? job.progress : 0;
  fill(view,
    h('div', { class: 'view-head' },
      h('div', {}, h('h2', {}, `${job.kind[0]?.toUpperCase() ?? ''}${job.kind.slice(1)}`), h('p', { class: 'spec-line' }, describeSpec(job.spec)), h('p', { class: 'muted small' }, `job ${job.id}`)),
      h('div', { class: 'job-status' },
        h('span', { class: `badge status-${job.status}`, 'data-status': job.status }, job.status),
        TERMINAL.includes(job.status) ? null : h('progress', { max: 1, value: p }),
        TERMINAL.includes(job.status) ? null : h('button', { class: 'link danger', onclick: () => void cancelJob(job.id) }, 'cancel'),
      ),
    ),
    job.status === 'failed' || job.status === 'canceled'
      ? h('div', { class: 'error-box', id: 'view-error', 'data-code': job.error?.code ?? job.status }, h('strong', {}, job.error?.code ?? job.status), h('p', {}, job.error?.message ?? `The job was ${job.status}.`))
      : h('div', { class: 'loading' }, h('span', { class: 'spinner' }), job.status === 'queued' ? 'Waiting for a worker…' : 'Computing…'),
  );
  setView('job', job.status);
  view.dataset.status = job.status;
}

async function cancelJob(id: string): Promise<void> {
  try {
    await request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  } catch (e) {
    showError('Could not cancel', e);
  }
  jobsList?.refreshNow();
}

/** Shows any job by its kind, following it live until it ends. */
function openJob(id: string, cellIndex?: number): void {
  resetView();
  showLoading('Loading job…');
  let training: TrainingView | null = null;
  let matrix: MatrixView | null = null;
  let lastStatus = '';
  const stop = followJob(id, {
    onJob: (job) => {
      if (job.kind === 'training') {
        if (!training) {
          view.replaceChildren();
          training = new TrainingView(view);
          training.start(job);
        } else training.update(job);
        setView('training', job.status);
        view.dataset.status = job.status;
      } else if (job.kind === 'sweep') {
        if (cellIndex !== undefined) {
          if (TERMINAL.includes(job.status)) void openSweepCell(job, cellIndex);
          return;
        }
        if (!matrix) {
          view.replaceChildren();
          const head = h('div', { class: 'view-head' }, h('div', {}, h('h2', {}, 'Sweep'), h('p', { class: 'spec-line' }, `base: ${describeSpec(job.spec)}`), h('p', { class: 'muted small' }, `job ${job.id}`)), h('div', { class: 'job-status', id: 'sweep-status' }));
          const holder = h('section', { class: 'card' });
          view.append(head, holder);
          matrix = new MatrixView(holder);
        }
        const statusEl = document.getElementById('sweep-status');
        if (statusEl) fill(statusEl, h('span', { class: `badge status-${job.status}`, 'data-status': job.status }, job.status), TERMINAL.includes(job.status) ? null : h('progress', { max: 1, value: job.progress ?? 0 }));
        matrix.render(sweepAxes(job), sweepCells(job, (i) => { location.hash = `#/job/${encodeURIComponent(job.id)}/cell/${i}`; }));
        setView('sweep', job.status);
        view.dataset.status = job.status;
      } else if (job.status === 'succeeded' && isObject(job.result)) {
        const res = { ...job, kind: 'analysis' } as unknown as AnalysisResponse;
        analyses.set(job.id, res);
        renderAnalysis(res);
      } else if (job.status !== lastStatus) {
        renderJobState(job);
      }
      lastStatus = job.status;
      if (TERMINAL.includes(job.status)) jobsList?.refreshNow();
    },
    onRecord: (rec) => training?.addRecord(rec),
    onError: (err) => showError(err.status === 404 ? 'No such job on this server' : 'Could not load the job', err),
  });
  teardown = () => {
    stop();
    (training as TrainingView | null)?.destroy();
  };
}

/**
 * A sweep stores one summary row per cell, not the cell's full analysis: the page runs the cell's spec
 * (the sweep's base with the cell's values) as a synchronous analysis, which reproduces it exactly (same seed).
 */
async function openSweepCell(job: Job, index: number): Promise<void> {
  const cell = sweepCells(job, () => undefined)[index];
  const back = { href: `#/job/${encodeURIComponent(job.id)}`, label: 'back to the sweep' };
  if (!cell) return showError('No such cell', new ApiError(0, 'NO_CELL', `the sweep has no cell ${index}`));
  const key = `${job.id}/${index}`;
  const known = cellAnalyses.get(key);
  const cached = known ? analyses.get(known) : undefined;
  if (cached) return renderAnalysis(cached, `Sweep cell: ${cell.label}`, back);
  showLoading(`Analysing the cell ${cell.label}…`);
  try {
    const res = (await request<AnalysisResponse>('POST', '/v1/analyses', cellSpec(job, cell))).data;
    analyses.set(res.id, res);
    cellAnalyses.set(key, res.id);
    if (location.hash === `#/job/${encodeURIComponent(job.id)}/cell/${index}`) renderAnalysis(res, `Sweep cell: ${cell.label}`, back);
    jobsList?.refreshNow();
  } catch (e) {
    showError('Could not analyse this cell', e);
  }
}

async function launch(s: EditorSubmit, title?: string): Promise<void> {
  editor.setBusy(true);
  try {
    if (s.kind === 'analysis') {
      showLoading('Analysing…');
      const res = (await request<AnalysisResponse>('POST', '/v1/analyses', s.body)).data;
      analyses.set(res.id, res);
      if (title) res.title = title;
      location.hash = `#/analysis/${encodeURIComponent(res.id)}`;
    } else if (s.kind === 'analysis-async') {
      const res = await request<Job | AnalysisResponse>('POST', '/v1/analyses', s.body, { prefer: 'respond-async' });
      if (res.status === 200 && 'result' in res.data && isObject(res.data.result)) {
        analyses.set(res.data.id, res.data as AnalysisResponse);
        location.hash = `#/analysis/${encodeURIComponent(res.data.id)}`;
      } else location.hash = `#/job/${encodeURIComponent(jobIdOf(res.data, res.headers))}`;
    } else if (s.kind === 'training' || s.kind === 'sweep') {
      const res = await request<Job>('POST', s.kind === 'training' ? '/v1/trainings' : '/v1/sweeps', s.body);
      location.hash = `#/job/${encodeURIComponent(jobIdOf(res.data, res.headers))}`;
    }
    jobsList?.refreshNow();
  } catch (e) {
    if (e instanceof ApiError) {
      editor.showApiError(e);
      // The error belongs to the editor; the main view goes back to what it showed.
      if (view.dataset.state === 'loading') route();
    } else showError('Something went wrong', e);
  } finally {
    editor.setBusy(false);
  }
}

function jobIdOf(body: unknown, headers: Headers): string {
  if (isObject(body) && typeof body.id === 'string') return body.id;
  if (isObject(body) && isObject(body.job) && typeof body.job.id === 'string') return body.job.id;
  const loc = headers.get('location') ?? '';
  return loc.split('/').pop() ?? '';
}

function runPreset(p: Preset): void {
  editor.load(p.kind, p.body);
  void launch({ kind: p.kind, body: p.body }, p.label);
}

function route(): void {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const [section, id, sub, cell] = parts;
  if (section === 'analysis' && id) {
    const cached = analyses.get(id);
    if (cached) return renderAnalysis(cached, typeof cached.title === 'string' ? cached.title : undefined);
    return openJob(id);
  }
  if (section === 'job' && id) return openJob(id, sub === 'cell' && cell !== undefined ? Number(cell) : undefined);
  resetView();
  welcome();
}

function header(): void {
  const input = h('input', { id: 'api-key', type: 'password', placeholder: 'API key (if the server needs one)', autocomplete: 'off', value: getApiKey() });
  const note = h('span', { class: 'muted small', id: 'api-key-note' }, getApiKey() ? 'key saved in this browser' : '');
  const save = (): void => {
    setApiKey(input.value.trim());
    note.textContent = input.value.trim() ? 'key saved in this browser' : 'no key';
    jobsList?.refreshNow();
  };
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') save(); });
  fill(byId('key-box'), input, h('button', { id: 'api-key-save', onclick: save }, 'Save'), note);
}

async function serverInfo(): Promise<void> {
  try {
    const health = (await request<{ environment?: { backend?: string; tfjsVersion?: string; gradlensVersion?: string } }>('GET', '/health')).data;
    const env = health.environment ?? {};
    byId('server-info').textContent = `gradlens ${env.gradlensVersion ?? '?'} · ${env.backend ?? '?'} backend · tfjs ${env.tfjsVersion ?? '?'}`;
  } catch (e) {
    byId('server-info').textContent = `server unreachable: ${(e as Error).message}`;
  }
}

function presetsPanel(): void {
  fill(byId('presets'),
    h('div', { class: 'section-head' }, h('h2', {}, 'Presets')),
    h('div', { class: 'preset-list' }, PRESETS.map((p) =>
      h('button', { class: 'preset', 'data-preset': p.id, onclick: () => runPreset(p), title: p.hint },
        h('strong', {}, p.label), h('span', { class: 'small muted' }, p.hint)))),
  );
}

async function main(): Promise<void> {
  header();
  presetsPanel();
  editor = new Editor(byId('editor'), (s) => void launch(s));
  editor.load('analysis', PRESETS[0]!.body);
  void serverInfo();
  jobsList = new JobsList(byId('jobs'), (job) => { location.hash = `#/job/${encodeURIComponent(job.id)}`; });
  jobsList.refreshNow();
  window.addEventListener('hashchange', route);
  route();
  document.body.dataset.ready = 'true';
}

void main();
