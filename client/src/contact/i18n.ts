/** The page's language as a signal, and the translator that follows it. */
import { computed, signal } from '@preact/signals';
import {
  CATALOGUES,
  pickLanguage,
  translator,
  type Language,
  type MessageKey,
  type Params,
} from '../i18n/catalogue.js';

declare global {
  interface Window {
    /**
     * Set by the browser tests before the page runs: every catalogue text is shown wrapped in
     * ⟦…⟧, so that a text on screen without the marks did not come from a catalogue.
     */
    __passagePseudo?: boolean;
  }
}

const pseudo = typeof window !== 'undefined' && window.__passagePseudo === true;

export const language = signal<Language>(
  pickLanguage(typeof navigator === 'undefined' ? [] : navigator.languages),
);

const current = computed(() =>
  translator(language.value, CATALOGUES[language.value], pseudo ? (s) => `⟦${s}⟧` : undefined),
);

/** The text of `key` in the page's language. */
export function t(key: MessageKey, params?: Params): string {
  return current.value(key, params);
}
