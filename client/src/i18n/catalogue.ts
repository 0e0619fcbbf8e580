/**
 * The page's strings: one catalogue per language, every visible string a key of it. A value is
 * either a text or, for a string that counts something, one text per plural category of the
 * language (`Intl.PluralRules`: Russian needs one, few, many and other). `{name}` marks a
 * parameter; both catalogues must hold the same keys, the same parameters and every plural
 * category their language uses (catalogue.test.ts).
 */
import { EN } from './en.js';
import { RU } from './ru.js';

export type PluralText = Readonly<Partial<Record<Intl.LDMLPluralRule, string>>> & {
  readonly other: string;
};
export type CatalogueValue = string | PluralText;
export type MessageKey = keyof typeof EN;
export type Catalogue = Readonly<Record<MessageKey, CatalogueValue>>;

export const LANGUAGES = ['ru', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

export const CATALOGUES: Readonly<Record<Language, Catalogue>> = { en: EN, ru: RU };

/** The names of the languages, each in itself (the language switch shows these). */
export const LANGUAGE_NAMES: Readonly<Record<Language, string>> = { ru: 'Русский', en: 'English' };

/**
 * The first of the browser's preferred languages (`navigator.languages`) that the page has,
 * matched by primary subtag; Russian when none matches, for the people the page is for.
 */
export function pickLanguage(preferred: readonly string[]): Language {
  for (const tag of preferred) {
    const primary = tag.toLowerCase().split('-')[0];
    const found = LANGUAGES.find((l) => l === primary);
    if (found !== undefined) return found;
  }
  return 'ru';
}

export type Params = Readonly<Record<string, string | number>>;

const PARAM = /\{([a-zA-Z]+)\}/g;

/** The parameters a text names, in order of first use. */
export function paramsOf(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(PARAM)) if (!names.includes(m[1]!)) names.push(m[1]!);
  return names;
}

/**
 * A translator for one language. A plural text picks its form by the parameter `count`; a
 * parameter that is not given is left as `{name}` (a test would see it).
 */
export function translator(
  language: Language,
  catalogue: Catalogue = CATALOGUES[language],
  wrap: (text: string) => string = (t) => t,
): (key: MessageKey, params?: Params) => string {
  const rules = new Intl.PluralRules(language);
  return (key, params = {}) => {
    const value = catalogue[key];
    let text: string;
    if (typeof value === 'string') {
      text = value;
    } else {
      const count = params['count'];
      const category = typeof count === 'number' ? rules.select(count) : 'other';
      text = value[category] ?? value.other;
    }
    return wrap(
      text.replace(PARAM, (whole, name: string) => {
        const v = params[name];
        return v === undefined ? whole : String(v);
      }),
    );
  };
}
