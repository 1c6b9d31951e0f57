// Makes navigator.language a tag every Intl constructor accepts, before uPlot's module runs (main.ts imports this first).
//
// uPlot evaluates `new Intl.NumberFormat(navigator.language)` when its module loads. Chromium reports the
// POSIX locale of its environment there, e.g. "en-US@posix" under LANG=C.UTF-8 (containers, kiosks), which
// is not a BCP-47 tag: the constructor throws "Invalid language tag", the bundle stops, the page is blank.
// The browser's own tag is kept whenever it is valid; only an invalid one is replaced on this page.

/** The fallback uPlot itself uses outside a browser. */
const FALLBACK = 'en-US';

export function isValidLocale(tag: unknown): boolean {
  if (typeof tag !== 'string' || tag === '') return false;
  try {
    return Intl.getCanonicalLocales(tag).length === 1;
  } catch {
    return false;
  }
}

/**
 * A valid tag as close to `tag` as can be read from it: "en-US@posix" → "en-US", "de_DE.UTF-8" → "de-DE",
 * "C" / "POSIX" / garbage → "en-US".
 */
export function safeLocale(tag: unknown): string {
  if (typeof tag !== 'string') return FALLBACK;
  if (isValidLocale(tag)) return tag;
  // POSIX locale names: language[_territory][.codeset][@modifier].
  const posix = tag.split(/[@.]/, 1)[0]!.replace(/_/g, '-');
  if (isValidLocale(posix)) return posix;
  const language = posix.split('-', 1)[0]!;
  return isValidLocale(language) ? language : FALLBACK;
}

/** Shadows navigator.language (and .languages) on this page when the browser's value is invalid. */
export function installSafeLocale(nav: Navigator): void {
  const language = nav.language;
  if (!isValidLocale(language)) {
    Object.defineProperty(nav, 'language', { value: safeLocale(language), configurable: true });
  }
  const languages = nav.languages;
  if (Array.isArray(languages) && !languages.every(isValidLocale)) {
    const safe = [...new Set(languages.map(safeLocale))];
    Object.defineProperty(nav, 'languages', { value: Object.freeze(safe), configurable: true });
  }
}

if (typeof navigator !== 'undefined') installSafeLocale(navigator);
