import { describe, expect, it } from '@jest/globals';
import {
  CATALOGUES,
  LANGUAGES,
  paramsOf,
  pickLanguage,
  translator,
  type Catalogue,
  type CatalogueValue,
} from './catalogue.js';

const forms = (v: CatalogueValue): string[] => (typeof v === 'string' ? [v] : Object.values(v));

describe('catalogues', () => {
  const en = CATALOGUES.en;
  const keys = Object.keys(en).sort();

  it.each(LANGUAGES)('%s has exactly the keys of en', (lang) => {
    expect(Object.keys(CATALOGUES[lang]).sort()).toEqual(keys);
  });

  it.each(LANGUAGES)('%s names the same parameters as en in every text', (lang) => {
    const c: Catalogue = CATALOGUES[lang];
    for (const key of keys) {
      const expected = paramsOf(forms(en[key as keyof Catalogue]).join(' ')).sort();
      for (const text of forms(c[key as keyof Catalogue])) {
        expect({ key, params: paramsOf(text).sort() }).toEqual({
          key,
          params: expected.filter((p) => p !== 'count' || text.includes('{count}')),
        });
      }
    }
  });

  it.each(LANGUAGES)('%s has no empty text and no text with surrounding spaces', (lang) => {
    for (const value of Object.values(CATALOGUES[lang])) {
      for (const text of forms(value)) {
        expect(text.length).toBeGreaterThan(0);
        expect(text.trim()).toBe(text);
      }
    }
  });

  it.each(LANGUAGES)('%s gives every plural text each category its language uses', (lang) => {
    const categories = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
    for (const value of Object.values(CATALOGUES[lang])) {
      if (typeof value === 'string') continue;
      expect(Object.keys(value).sort()).toEqual([...categories].sort());
    }
  });
});

describe('translator', () => {
  const plural: Catalogue = {
    ...CATALOGUES.ru,
    'page.loading': {
      one: '{count} файл',
      few: '{count} файла',
      many: '{count} файлов',
      other: '{count} файла',
    },
  };

  it('picks the Russian plural forms by count', () => {
    const t = translator('ru', plural);
    expect([1, 2, 5, 21, 1.5].map((count) => t('page.loading', { count }))).toEqual([
      '1 файл',
      '2 файла',
      '5 файлов',
      '21 файл',
      '1.5 файла',
    ]);
  });

  it('substitutes parameters and wraps the result', () => {
    const t = translator('en', CATALOGUES.en, (s) => `[${s}]`);
    expect(t('welcome.check.heading', { org: 'Ark' })).toBe('[Is this really Ark?]');
  });

  it('leaves a missing parameter visible', () => {
    expect(translator('en')('welcome.check.heading')).toBe('Is this really {org}?');
  });

  it('uses the other form when a plural text gets no count', () => {
    expect(translator('ru', plural)('page.loading')).toBe('{count} файла');
  });

  it('uses the other form when count is not a number', () => {
    expect(translator('ru', plural)('page.loading', { count: 'x' })).toBe('x файла');
  });
});

describe('pickLanguage', () => {
  it('takes the first preferred language the page has', () => {
    expect(pickLanguage(['en-GB', 'ru'])).toBe('en');
    expect(pickLanguage(['de', 'ru-RU', 'en'])).toBe('ru');
  });

  it('falls back to Russian for no preference', () => {
    expect(pickLanguage([])).toBe('ru');
  });

  it('falls back to Russian when no preferred language is held', () => {
    expect(pickLanguage(['de-DE', 'fr', 'uk'])).toBe('ru');
  });

  it('does not match a language by a prefix of its tag', () => {
    expect(pickLanguage(['eng', 'rus'])).toBe('ru');
    expect(pickLanguage(['e', 'r'])).toBe('ru');
  });

  it('ignores an empty or malformed tag', () => {
    expect(pickLanguage(['', '-', 'en'])).toBe('en');
  });
});
