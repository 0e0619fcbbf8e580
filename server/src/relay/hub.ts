/**
 * The hub: which mailboxes have connections on this relay instance, and the store subscription
 * that goes with each. The first local connection of a mailbox subscribes (so that envelopes
 * enqueued through other instances reach it), the last one to leave unsubscribes. Envelopes
 * enqueued through this instance are handed to the hub by the relay after the store confirms.
 */
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

/** What the hub needs from a connection. */
export interface Recipient {
  /** A new envelope for the connection's mailbox; it is already stored. Must not throw. */
  deliverLive(id: string, env: string): void;
  /** The store may hold envelopes the recipient was not told about: look again. */
  resync?(): void;
}

interface Entry {
  /**
   * An array, not a Set: a mailbox has at most MAX_CONNECTIONS_PER_MAILBOX recipients on a relay
   * and nearly always one, and an idle connection's hub entry is held for its whole life (a Set
   * costs about 250 bytes more).
   */
  readonly recipients: Recipient[];
  /** Settles when the store subscription is in place (or failed). */
  readonly subscribed: Promise<void>;
}

export class Hub {
  readonly #entries = new Map<string, Entry>();
  /** Unsubscriptions still running, so that a new subscribe to the mailbox waits for them. */
  readonly #leaving = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {
    store.onRemote((mailbox, message) => this.deliver(mailbox, message.id, message.env));
  }

  /**
   * Adds a recipient for `mailbox` and resolves once the store subscription is in place, so a
   * `peek` issued afterwards misses nothing: anything enqueued before the subscription is in
   * the peek, anything after reaches {@link Recipient.deliverLive}.
   * @throws the store's error when subscribing fails; the recipient is removed again.
   */
  async add(mailbox: string, recipient: Recipient): Promise<void> {
    let entry = this.#entries.get(mailbox);
    if (entry === undefined) {
      entry = { recipients: [], subscribed: this.#subscribe(mailbox) };
      this.#entries.set(mailbox, entry);
    }
    if (!entry.recipients.includes(recipient)) entry.recipients.push(recipient);
    try {
      await entry.subscribed;
    } catch (err) {
      this.remove(mailbox, recipient);
      throw err;
    }
  }

  /** Removes a recipient; the last one of a mailbox ends its subscription. Idempotent. */
  remove(mailbox: string, recipient: Recipient): void {
    const entry = this.#entries.get(mailbox);
    const i = entry?.recipients.indexOf(recipient) ?? -1;
    if (entry === undefined || i < 0) return;
    entry.recipients.splice(i, 1);
    if (entry.recipients.length > 0) return;
    this.#entries.delete(mailbox);
    const leaving = this.#unsubscribe(mailbox, entry.subscribed);
    this.#leaving.set(mailbox, leaving);
    void leaving.finally(() => {
      if (this.#leaving.get(mailbox) === leaving) this.#leaving.delete(mailbox);
    });
  }

  /** Hands a stored envelope to every local recipient of `mailbox`. */
  deliver(mailbox: string, id: string, env: string): void {
    const entry = this.#entries.get(mailbox);
    if (entry === undefined) return;
    // A copy when there are several: a recipient may leave while the others are handed it.
    for (const recipient of entry.recipients.length === 1
      ? entry.recipients
      : entry.recipients.slice()) {
      try {
        recipient.deliverLive(id, env);
      } catch (err) {
        // One recipient's bug must not keep the envelope from the others.
        this.logger.error({ err }, 'live delivery failed');
      }
    }
  }

  /**
   * Tells every local recipient of `mailbox` to look in the store again: something may have
   * been stored for it without a live delivery (a send whose answer from the store was lost).
   */
  resync(mailbox: string): void {
    const entry = this.#entries.get(mailbox);
    if (entry === undefined) return;
    // A copy when there are several: a recipient may leave while the others are handed it.
    for (const recipient of entry.recipients.length === 1
      ? entry.recipients
      : entry.recipients.slice()) {
      try {
        recipient.resync?.();
      } catch (err) {
        this.logger.error({ err }, 'resync failed');
      }
    }
  }

  /** Mailboxes with at least one local recipient. */
  get size(): number {
    return this.#entries.size;
  }

  async #subscribe(mailbox: string): Promise<void> {
    const leaving = this.#leaving.get(mailbox);
    if (leaving !== undefined) await leaving;
    await this.store.subscribe(mailbox);
  }

  async #unsubscribe(mailbox: string, subscribed: Promise<void>): Promise<void> {
    try {
      await subscribed;
    } catch {
      return; // never subscribed
    }
    try {
      await this.store.unsubscribe(mailbox);
    } catch (err) {
      // The store drops subscriptions of a lost connection itself; nothing to undo here.
      this.logger.warn({ err }, 'unsubscribe failed');
    }
  }
}
