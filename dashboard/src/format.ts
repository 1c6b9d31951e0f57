// Number parsing and formatting: the API sends NaN and ±Infinity as strings, and they must never turn into 0 or blanks.
import { h } from './dom.js';

/** What the API sends for a number: a number, a non-finite string, or null where a value does not apply. */
export type ApiNum = number | 'NaN' | 'Infinity' | '-Infinity' | null | undefined;

/** The numeric value: NaN/±Infinity for the strings, null for absent (never 0). */
export function num(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  return null;
}

/** Value usable on a log axis, or null (a gap) for zero, negative, non-finite or absent. */
export function logValue(v: unknown): number | null {
  const n = num(v);
  return n !== null && Number.isFinite(n) && n > 0 ? n : null;
}

/** Short text for a number; non-finite values spelled out as the API spells them. */
export function fmt(v: unknown, digits = 3): string {
  const n = num(v);
  if (n === null) return '—';
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return 'Infinity';
  if (n === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (n === 0) return '0';
  const a = Math.abs(n);
  if (a >= 1e-3 && a < 1e5) return Number(n.toPrecision(digits)).toString();
  return n.toExponential(digits - 1).replace('e+', 'e');
}

export function fmtPct(v: unknown): string {
  const n = num(v);
  if (n === null || !Number.isFinite(n)) return fmt(v);
  return `${(n * 100).toFixed(n === 0 || n === 1 ? 0 : 1)}%`;
}

/** A table cell / inline value that flags non-finite values visibly. */
export function numEl(v: unknown, digits = 3): HTMLElement {
  const n = num(v);
  const nonFinite = n !== null && !Number.isFinite(n);
  return h('span', { class: nonFinite ? 'num nonfinite' : 'num', title: nonFinite ? 'non-finite value reported by the API' : undefined }, fmt(v, digits));
}

/** Label for a value that cannot sit on a log axis, or null when it can. */
export function offAxisLabel(v: unknown): string | null {
  const n = num(v);
  if (n === null) return null;
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+∞';
  if (n === Number.NEGATIVE_INFINITY) return '−∞';
  if (n === 0) return '0';
  if (n < 0) return fmt(n, 2);
  return null;
}

export function fmtTime(iso: unknown): string {
  if (typeof iso !== 'string') return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  // Formatted by hand: toLocaleTimeString throws on odd system locales (e.g. "en-US@posix" in containers).
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
