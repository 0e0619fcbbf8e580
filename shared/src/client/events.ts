/**
 * A small typed event emitter for the client's observable state. A listener that throws is
 * the application's bug: it is caught (and counted) so that it cannot stop the client's own
 * work, which runs in the same call stack.
 */

export type Listener<T> = (event: T) => void;

export class Emitter<Events extends Record<string, unknown>> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  /** Listener calls that threw. */
  listenerErrors = 0;

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.#listeners.get(type);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(event);
      } catch {
        this.listenerErrors++;
      }
    }
  }
}
