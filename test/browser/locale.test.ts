// The dashboard's locale repair (dashboard/src/locale.ts) on the tags browsers report, checked against Intl itself.
import { describe, it, expect } from 'vitest';
import { installSafeLocale, isValidLocale, safeLocale } from '../../dashboard/src/locale.js';

describe('safeLocale', () => {
  it('keeps every tag Intl accepts, as given', () => {
    for (const tag of ['en-US', 'de-DE', 'und', 'zh-Hant-TW', 'sr-Latn', 'en-us']) {
      expect(safeLocale(tag)).toBe(tag);
    }
  });

  it('turns POSIX locale names into the tag they name, which Intl.NumberFormat accepts', () => {
    const cases: [string, string][] = [
      ['en-US@posix', 'en-US'], ['de_DE.UTF-8', 'de-DE'], ['de-DE.UTF-8', 'de-DE'], ['fr_CA.ISO8859-1@euro', 'fr-CA'],
      ['C', 'en-US'], ['C.UTF-8', 'en-US'], ['', 'en-US'], ['en-US-@@', 'en'], ['@', 'en-US'],
    ];
    for (const [tag, expected] of cases) {
      expect(() => new Intl.NumberFormat(tag), `"${tag}" must be a case Intl rejects`).toThrow(RangeError);
      expect(safeLocale(tag)).toBe(expected);
      expect(() => new Intl.NumberFormat(safeLocale(tag))).not.toThrow();
    }
    expect(safeLocale(undefined)).toBe('en-US');
    expect(isValidLocale(42)).toBe(false);
  });
});

describe('installSafeLocale', () => {
  const fake = (language: string, languages: string[]): Navigator => {
    // Like a browser's navigator: the values come from getters on the prototype.
    const proto = { get language() { return language; }, get languages() { return Object.freeze([...languages]); } };
    return Object.create(proto) as Navigator;
  };

  it('shadows an invalid navigator.language and languages on the object, leaving valid ones alone', () => {
    const bad = fake('en-US@posix', ['en-US@posix', 'de']);
    installSafeLocale(bad);
    expect(bad.language).toBe('en-US');
    expect([...bad.languages]).toEqual(['en-US', 'de']);
    const good = fake('fr-FR', ['fr-FR', 'en']);
    installSafeLocale(good);
    expect(Object.getOwnPropertyNames(good)).toEqual([]);
    expect(good.language).toBe('fr-FR');
  });
});
