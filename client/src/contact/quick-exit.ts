/**
 * Quick exit (issue "The contact page" §2): a control on every screen and a keyboard shortcut —
 * Shift pressed three times within a few seconds, where a Shift held as a modifier for another
 * key does not count (GOV.UK's rule; Escape is not used, because Escape also leaves full screen,
 * stops loads and closes dialogs).
 *
 * What the exit does, in this order: the page is blanked at once (before anything that could
 * take time), every registered clean-up runs (close the socket, drop keys), the DOM is emptied,
 * and the tab is sent to a neutral site with `location.replace`, which replaces the page's entry
 * in the tab's history instead of adding one after it, so Back does not come here again.
 */

/** How long three presses may take, in ms. */
export const SHIFT_TRIPLE_WINDOW_MS = 5_000;

export interface KeyInput {
  readonly type: 'keydown' | 'keyup';
  readonly key: string;
  readonly repeat: boolean;
}

/**
 * Counts Shift presses. A press counts when Shift goes down and comes up with no other key
 * pressed meanwhile; any other key resets the count; a key's auto-repeat is ignored; presses
 * older than {@link SHIFT_TRIPLE_WINDOW_MS} before the third do not count.
 */
export class ShiftTriple {
  #presses: number[] = [];
  #held = false;
  #spoiled = false;

  /** Feeds one key event; true when it completes three presses. */
  feed(event: KeyInput, nowMs: number): boolean {
    if (event.key !== 'Shift') {
      if (event.type === 'keydown') {
        this.#presses = [];
        if (this.#held) this.#spoiled = true;
      }
      return false;
    }
    if (event.type === 'keydown') {
      if (event.repeat || this.#held) return false;
      this.#held = true;
      this.#spoiled = false;
      return false;
    }
    if (!this.#held) return false;
    this.#held = false;
    if (this.#spoiled) return false;
    this.#presses = this.#presses.filter((t) => nowMs - t < SHIFT_TRIPLE_WINDOW_MS);
    this.#presses.push(nowMs);
    if (this.#presses.length < 3) return false;
    this.#presses = [];
    return true;
  }

  /** Forgets what was pressed (the window lost focus: a keyup may never come). */
  reset(): void {
    this.#presses = [];
    this.#held = false;
    this.#spoiled = false;
  }
}

/** Where the tab goes when no profile names a site. */
export const DEFAULT_EXIT_URL = 'https://www.google.com/';

const cleanups = new Set<() => void>();
let exitUrl = DEFAULT_EXIT_URL;
let exiting = false;

/** Registers what the exit must undo (close a socket, drop keys); returns its removal. */
export function onQuickExit(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** The neutral site from the organization's profile; only an https URL is taken. */
export function setExitUrl(url: string): void {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'https:' && parsed.username === '' && parsed.password === '') {
      exitUrl = parsed.href;
    }
  } catch {
    // Not a URL: keep the one held.
  }
}

/** Leaves the page now. Safe to call more than once. */
export function quickExit(): void {
  if (exiting) return;
  exiting = true;
  const root = document.documentElement;
  root.classList.add('exiting');
  document.title = '';
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // One failed clean-up must not keep the page on screen.
    }
  }
  cleanups.clear();
  document.body.replaceChildren();
  location.replace(exitUrl);
}

/** Listens for the shortcut on the whole document. */
export function installQuickExitShortcut(target: Document = document): void {
  const triple = new ShiftTriple();
  const onKey = (e: KeyboardEvent): void => {
    if (
      triple.feed(
        { type: e.type as KeyInput['type'], key: e.key, repeat: e.repeat },
        performance.now(),
      )
    ) {
      quickExit();
    }
  };
  target.addEventListener('keydown', onKey, true);
  target.addEventListener('keyup', onKey, true);
  target.defaultView?.addEventListener('blur', () => triple.reset());
}
