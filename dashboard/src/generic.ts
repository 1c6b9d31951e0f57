// Renders plain result objects (theory constants, slope comparisons) as definition lists.
import { h } from './dom.js';
import { fmt, numEl } from './format.js';
import { isObject } from './shapes.js';

function cell(v: unknown): Node | string {
  if (typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity') return numEl(v);
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object')) return v.map((x) => (typeof x === 'number' ? fmt(x) : String(x))).join(', ');
  return h('code', {}, JSON.stringify(v));
}

/** Scalar fields of an object as a definition list (nested arrays and objects are left to dedicated views). */
export function scalarList(obj: Record<string, unknown>, skip: string[] = []): HTMLElement {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of Object.entries(obj)) {
    if (skip.includes(k) || (typeof v === 'object' && v !== null && !Array.isArray(v))) continue;
    if (Array.isArray(v) && v.some((x) => typeof x === 'object')) continue;
    dl.append(h('dt', {}, k), h('dd', {}, cell(v)));
  }
  return dl;
}
