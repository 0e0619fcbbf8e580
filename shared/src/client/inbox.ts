/**
 * The inbox: what the relay delivers to this device's mailbox, received as Signal-Desktop
 * receives: one envelope at a time, handed to the application's handler (the session layer:
 * decrypt, store the message and the session change in one transaction), and only once that
 * has finished, acknowledged. The relay delivers at least once (docs/protocol.md "Delivery and
 * acknowledgement"), so:
 *
 * - a message id already handled is not handed over again: it is acknowledged again (the first
 *   ack was lost, or the relay forgot it) and counted as a duplicate; a copy that arrives while
 *   the first is still queued or being handled is dropped (the first's ack covers both);
 * - the handler answers `accepted` (acknowledged), `unreadable` with a reason (garbage, a
 *   session no longer held: acknowledged, counted by reason and announced, so that one bad
 *   envelope never blocks the queue), or `later` with a reason (not acknowledged: the relay
 *   delivers it again after the next reconnect, e.g. the per-peer failure budget is used up);
 * - a handler that throws is the application's bug: the envelope is treated as `later`, and
 *   after `maxHandlerFailures` throws for one id as `unreadable` ('handler_failed'), so that
 *   the client never crashes and never loops on one envelope for ever.
 *
 * Acks are batched (up to `MAX_ACK_IDS` per frame) and written when the queue is empty or the
 * batch is full. An ack that cannot be written (the socket is gone) is dropped: the relay
 * delivers those messages again, and they are acknowledged as duplicates.
 */
import { fromBase64url } from '../protocol/base64url.js';
import { MAX_ACK_IDS, PROTOCOL_VERSION } from '../protocol/limits.js';
import type { Connection } from './connection.js';
import { Emitter } from './events.js';

/** What the application did with one envelope. */
export type InboxOutcome =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'unreadable'; readonly reason: string }
  | { readonly kind: 'later'; readonly reason: string };

/** Decrypts, commits, hands over; resolves once the result is stored. */
export type EnvelopeHandler = (
  envelope: Uint8Array,
  id: string,
) => InboxOutcome | Promise<InboxOutcome>;

export interface InboxLimits {
  /** Message ids remembered as handled (oldest forgotten first). */
  readonly maxSeenIds: number;
  /** Envelopes waiting for the handler; more are dropped unacknowledged (they come again). */
  readonly maxQueued: number;
  /** Throws of the handler for one id before it is given up as unreadable. */
  readonly maxHandlerFailures: number;
}

export const DEFAULT_INBOX_LIMITS: InboxLimits = {
  maxSeenIds: 10_000,
  maxQueued: 1_024,
  maxHandlerFailures: 3,
};

export interface InboxStats {
  readonly accepted: number;
  readonly duplicates: number;
  /** Acknowledged without being read, by reason. */
  readonly unreadable: Readonly<Record<string, number>>;
  /** Left unacknowledged for a later delivery, by reason. */
  readonly later: Readonly<Record<string, number>>;
  /** Dropped unacknowledged because the queue was full. */
  readonly overflow: number;
}

export interface InboxEvents extends Record<string, unknown> {
  accepted: { readonly id: string };
  unreadable: { readonly id: string; readonly reason: string };
  later: { readonly id: string; readonly reason: string };
}

/** The reason for an envelope whose bytes are not base64url (the frame schema prevents it). */
export const MALFORMED_ENVELOPE = 'malformed_envelope';
/** The reason after `maxHandlerFailures` throws. */
export const HANDLER_FAILED = 'handler_failed';

export class Inbox {
  readonly events = new Emitter<InboxEvents>();

  readonly #connection: Connection;
  readonly #handler: EnvelopeHandler;
  readonly #limits: InboxLimits;
  readonly #queue: { readonly id: string; readonly env: string }[] = [];
  readonly #queued = new Set<string>();
  /** Handled ids, in insertion order (a bounded LRU). */
  readonly #seen = new Map<string, true>();
  readonly #failures = new Map<string, number>();
  #acks: string[] = [];
  #running = false;
  #idleWaiters: (() => void)[] = [];

  #accepted = 0;
  #duplicates = 0;
  #overflow = 0;
  readonly #unreadable: Record<string, number> = {};
  readonly #later: Record<string, number> = {};

  constructor(options: {
    readonly connection: Connection;
    readonly handler: EnvelopeHandler;
    readonly limits?: Partial<InboxLimits>;
  }) {
    this.#connection = options.connection;
    this.#handler = options.handler;
    this.#limits = { ...DEFAULT_INBOX_LIMITS, ...options.limits };
    this.#connection.events.on('deliver', ({ id, env }) => this.#onDeliver(id, env));
  }

  get stats(): InboxStats {
    return {
      accepted: this.#accepted,
      duplicates: this.#duplicates,
      unreadable: { ...this.#unreadable },
      later: { ...this.#later },
      overflow: this.#overflow,
    };
  }

  /** Envelopes waiting or being handled. */
  get backlog(): number {
    return this.#queue.length + (this.#running ? 1 : 0);
  }

  /** Resolves once nothing is queued or being handled (for tests and orderly shutdown). */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #onDeliver(id: string, env: string): void {
    if (this.#seen.has(id)) {
      this.#duplicates++;
      this.#ack(id);
      if (!this.#running) this.#flushAcks();
      return;
    }
    if (this.#queued.has(id)) {
      this.#duplicates++;
      return;
    }
    if (this.#queue.length >= this.#limits.maxQueued) {
      this.#overflow++;
      return;
    }
    this.#queue.push({ id, env });
    this.#queued.add(id);
    void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
        const outcome = await this.#handle(next.id, next.env);
        this.#queued.delete(next.id);
        this.#apply(next.id, outcome);
        if (this.#acks.length >= MAX_ACK_IDS) this.#flushAcks();
      }
    } finally {
      this.#running = false;
      this.#flushAcks();
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }

  async #handle(id: string, env: string): Promise<InboxOutcome> {
    const bytes = fromBase64url(env);
    if (bytes === undefined || bytes.length === 0) {
      return { kind: 'unreadable', reason: MALFORMED_ENVELOPE };
    }
    try {
      const outcome = await this.#handler(bytes, id);
      if (
        typeof outcome === 'object' &&
        outcome !== null &&
        (outcome.kind === 'accepted' ||
          ((outcome.kind === 'unreadable' || outcome.kind === 'later') &&
            typeof outcome.reason === 'string'))
      ) {
        this.#failures.delete(id);
        return outcome;
      }
      throw new TypeError('not an inbox outcome');
    } catch {
      const failures = (this.#failures.get(id) ?? 0) + 1;
      if (failures >= this.#limits.maxHandlerFailures) {
        this.#failures.delete(id);
        return { kind: 'unreadable', reason: HANDLER_FAILED };
      }
      this.#failures.set(id, failures);
      // Bounded like the seen ids: a handler that throws for everything forgets the oldest.
      if (this.#failures.size > this.#limits.maxSeenIds) {
        this.#failures.delete(this.#failures.keys().next().value!);
      }
      return { kind: 'later', reason: HANDLER_FAILED };
    }
  }

  #apply(id: string, outcome: InboxOutcome): void {
    switch (outcome.kind) {
      case 'accepted':
        this.#accepted++;
        this.#remember(id);
        this.#ack(id);
        this.events.emit('accepted', { id });
        return;
      case 'unreadable':
        this.#unreadable[outcome.reason] = (this.#unreadable[outcome.reason] ?? 0) + 1;
        this.#remember(id);
        this.#ack(id);
        this.events.emit('unreadable', { id, reason: outcome.reason });
        return;
      case 'later':
        this.#later[outcome.reason] = (this.#later[outcome.reason] ?? 0) + 1;
        this.events.emit('later', { id, reason: outcome.reason });
        return;
    }
  }

  #remember(id: string): void {
    this.#seen.set(id, true);
    if (this.#seen.size > this.#limits.maxSeenIds) {
      this.#seen.delete(this.#seen.keys().next().value!);
    }
  }

  #ack(id: string): void {
    this.#acks.push(id);
  }

  #flushAcks(): void {
    while (this.#acks.length > 0) {
      const ids = this.#acks.slice(0, MAX_ACK_IDS);
      this.#acks = this.#acks.slice(MAX_ACK_IDS);
      // Not ready: dropped; the relay delivers these again and they are acked as duplicates.
      this.#connection.post({ v: PROTOCOL_VERSION, t: 'ack', ids });
    }
  }
}
