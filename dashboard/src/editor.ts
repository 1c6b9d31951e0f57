// JSON spec editor: parses locally first (with line and column), then shows the API's 400/422 errors beside it, pointing at the field.
import type { ApiError } from './api.js';
import { h, fill } from './dom.js';
import type { LaunchKind } from './presets.js';

export interface EditorSubmit {
  kind: LaunchKind | 'analysis-async';
  body: Record<string, unknown>;
}

/** "body/network/depth must be >= 1" (Fastify's schema errors) → "network.depth". */
export function fieldFromMessage(message: string): string | undefined {
  const m = /^body\/(\S+)/.exec(message);
  return m ? m[1]!.replace(/\//g, '.') : undefined;
}

function lineCol(text: string, pos: number): { line: number; col: number } {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  return { line, col: pos - before.lastIndexOf('\n') };
}

/** Character range of the last key of a dotted path in the JSON text, so the user sees where the problem is. */
function findField(text: string, field: string): [number, number] | null {
  const key = field.replace(/\[\d+\]$/, '').split('.').pop();
  if (!key) return null;
  const i = text.lastIndexOf(`"${key}"`);
  return i < 0 ? null : [i, i + key.length + 2];
}

export class Editor {
  readonly textarea: HTMLTextAreaElement;
  private readonly kindSelect: HTMLSelectElement;
  private readonly errorEl: HTMLElement;
  private readonly runButton: HTMLButtonElement;

  constructor(root: HTMLElement, private readonly onSubmit: (s: EditorSubmit) => void) {
    this.textarea = h('textarea', { id: 'spec-editor', spellcheck: 'false', rows: 14, 'aria-label': 'request body (JSON)' });
    this.kindSelect = h('select', { id: 'spec-kind' },
      h('option', { value: 'analysis' }, 'analysis (synchronous)'),
      h('option', { value: 'analysis-async' }, 'analysis as a job'),
      h('option', { value: 'training' }, 'training'),
      h('option', { value: 'sweep' }, 'sweep'),
    );
    this.errorEl = h('div', { id: 'editor-error', class: 'editor-error', role: 'alert', hidden: true });
    this.runButton = h('button', { id: 'spec-run', class: 'primary', onclick: () => this.submit() }, 'Run');
    this.textarea.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) this.submit();
    });
    fill(root,
      h('div', { class: 'section-head' }, h('h2', {}, 'Spec editor'), h('span', { class: 'muted small' }, 'Ctrl+Enter runs')),
      this.textarea,
      h('div', { class: 'editor-bar' },
        this.kindSelect,
        h('button', { onclick: () => this.format() }, 'Format'),
        this.runButton,
      ),
      this.errorEl,
    );
  }

  load(kind: EditorSubmit['kind'], body: unknown): void {
    this.kindSelect.value = kind;
    this.textarea.value = JSON.stringify(body, null, 2);
    this.clearError();
  }

  setBusy(busy: boolean): void {
    this.runButton.disabled = busy;
    this.runButton.textContent = busy ? 'Running…' : 'Run';
  }

  clearError(): void {
    this.errorEl.hidden = true;
    this.errorEl.replaceChildren();
    this.textarea.classList.remove('invalid');
  }

  /** Shows an API error next to the editor and selects the offending field in the text. */
  showApiError(err: ApiError): void {
    const field = err.field ?? fieldFromMessage(err.message);
    this.showError(`${err.status ? `${err.status} ` : ''}${err.code}`, err.message, field ? `field: ${field}` : undefined);
    this.errorEl.dataset.code = err.code;
    this.errorEl.dataset.status = String(err.status);
    if (field) {
      const range = findField(this.textarea.value, field);
      if (range) this.textarea.setSelectionRange(range[0], range[1]);
    }
    if (err.status === 401 || err.status === 403) this.errorEl.append(h('p', { class: 'small' }, 'The server wants an API key: enter it in the key field at the top.'));
  }

  private showError(title: string, message: string, detail?: string): void {
    fill(this.errorEl, h('strong', {}, title), h('p', {}, message), detail ? h('p', { class: 'small mono' }, detail) : null);
    this.errorEl.hidden = false;
    this.textarea.classList.add('invalid');
  }

  private parse(): Record<string, unknown> | null {
    const text = this.textarea.value;
    try {
      const body: unknown = JSON.parse(text);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        this.showError('Not an object', 'The request body must be a JSON object, e.g. { "network": { … }, "data": { … } }.');
        return null;
      }
      return body as Record<string, unknown>;
    } catch (e) {
      const msg = (e as Error).message;
      const pos = /position (\d+)/.exec(msg);
      if (pos) {
        const p = Number(pos[1]);
        const { line, col } = lineCol(text, p);
        this.textarea.setSelectionRange(p, Math.min(text.length, p + 1));
        this.showError('Invalid JSON', msg, `line ${line}, column ${col}`);
      } else {
        this.showError('Invalid JSON', msg);
      }
      this.errorEl.dataset.code = 'INVALID_JSON';
      return null;
    }
  }

  private format(): void {
    const body = this.parse();
    if (body) {
      this.textarea.value = JSON.stringify(body, null, 2);
      this.clearError();
    }
  }

  private submit(): void {
    const body = this.parse();
    if (!body) return;
    this.clearError();
    this.onSubmit({ kind: this.kindSelect.value as EditorSubmit['kind'], body });
  }
}
