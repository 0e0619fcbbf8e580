/**
 * Delivery to one authenticated connection: which envelopes of its mailbox to send when, and the
 * acknowledgements that free them. Knows nothing of sockets or frames: it talks to the store
 * through {@link DeliveryStore} and writes through {@link DeliverySink}, both supplied by the
 * connection (and by a fake in delivery.test.ts).
 *
 * The store holds every envelope until it is acknowledged; delivery only decides what to *send*
 * when. It keeps the ids it sent and that are not yet acknowledged (in flight), at most
 * `maxInflight`. While the store may hold envelopes this connection has not sent (`backlog`:
 * right after auth, or after a live envelope was held back because the connection was full or
 * its socket backed up), live envelopes are not sent directly (that would overtake older ones);
 * instead acknowledgements that bring the in-flight count under the low watermark trigger a
 * refill. While a refill's peek is outstanding, a live arrival only sets `peekAgain`, and the
 * refill peeks once more when it returns, so nothing that arrives meanwhile is lost.
 *
 * A refill reads by cursor, and only what the connection can take: the envelopes after the last
 * one it took from the store (sent, or passed over as in flight), at most as many as the window
 * has free slots and as many bytes as the socket has room for, passing over unread the ids in
 * flight (sent live). Re-reading the whole window on every refill cost up to ~22 MB per auth of
 * a full mailbox, and 20 auths on sockets that read nothing pulled 427 MiB out of Redis. The
 * cursor goes back to the oldest whenever nothing is in flight (then nothing is read twice, and
 * a cursor that no longer orders before new envelopes, after Redis's clock stepped back, heals),
 * after a failed ack (its envelopes must go out again), and on resync.
 *
 * Acknowledgements go to the store in one batch per turn of the event loop. One the store fails
 * is tried again here, with back-off, up to MAX_ACK_ATTEMPTS times, and never reported to the
 * client (an `ack` frame has no request id, so the client could not tell which one failed): its
 * ids stay in flight meanwhile, so no refill sends them again. After the last attempt they leave
 * the window and are delivered again with the next refill (or after a reconnect: the store keeps
 * every envelope until it is acknowledged), and the client acknowledges them again.
 */
import type { PeekBounds, PeekPage, PeekCursor } from '../store/store.js';

/**
 * The store operations delivery needs. The relay's implementation (one for all connections)
 * brackets each for graceful shutdown; the real stores keep their own contract
 * (store.contract.ts), so the fake in delivery.test.ts need only keep this one.
 */
export interface DeliveryStore {
  /** `Store.peekAfter`: envelopes of `mailbox` after a cursor, within count and byte bounds. */
  peek(mailbox: string, bounds: PeekBounds): Promise<PeekPage>;
  /** `Store.ack`: deletes the envelopes; unknown ids are ignored. */
  ack(mailbox: string, ids: readonly string[]): Promise<void>;
}

/** Where delivery's output and failures go: the connection's outbox. */
export interface DeliverySink {
  /** Writes one `deliver` frame. */
  deliver(id: string, env: string): void;
  /**
   * False while the socket's unsent bytes are over the bound; the sink then calls
   * {@link Delivery.resume} once they have been written out.
   */
  hasRoom(): boolean;
  /** Bytes that may still be written before {@link hasRoom} turns false (0 when it is). */
  roomBytes(): number;
  /** True from the moment the relay begins shutting down: no new store work starts. */
  readonly stopping: boolean;
  /**
   * The store failed an ack (the envelopes stay queued). `final` when it is not tried again: its
   * envelopes are then delivered again. `attempt` counts the store calls for this batch, from 1.
   * Not for the client, which retries nothing (see above).
   */
  ackFailed(err: unknown, final: boolean, attempt: number): void;
  /** An ack was not tried because the relay is shutting down: tell the client. */
  ackRefused(): void;
  /** A refill's peek failed; it is retried with back-off. */
  peekFailed(err: unknown): void;
  /** An exception delivery did not expect (a bug), in the ack or the refill path. */
  unexpected(err: unknown, during: 'ack' | 'refill'): void;
}

/** Bounds of one connection's delivery. */
export interface DeliveryLimits {
  /** Most delivered, unacknowledged envelopes; refills start at or under half of it. */
  readonly maxInflight: number;
}

/** Most ids acknowledged to the store in one call (several `ack` frames coalesced). */
export const MAX_ACK_BATCH = 1_024;
/** First delay after a failed refill peek, in ms; doubles up to the maximum. */
export const REFILL_RETRY_MIN_MS = 500;
export const REFILL_RETRY_MAX_MS = 30_000;
/** Doublings of the retry delay counted; past REFILL_RETRY_MAX_MS they change nothing. */
const MAX_REFILL_ATTEMPTS = 16;
/**
 * Store calls made for one acknowledgement batch before it is given up (its envelopes are then
 * delivered again). With the delays below the last attempt comes 1.6–3.1 s after the first:
 * longer than a Redis failover's first reconnects, short enough that a lost ack costs a
 * redelivery soon rather than a window held shut.
 */
export const MAX_ACK_ATTEMPTS = 6;
/** Delay before the second attempt of a failed ack, in ms; doubles for each further one. */
export const ACK_RETRY_MIN_MS = 100;

/** What a delivery has in flight, and sent live, before its first delivery: shared, never written. */
const NONE_IN_FLIGHT: ReadonlyMap<string, boolean> = new Map();
const NONE_LIVE: ReadonlySet<string> = new Set();

export class Delivery {
  /** The mailbox whose envelopes this delivers. */
  readonly mailbox: string;
  readonly #store: DeliveryStore;
  readonly #sink: DeliverySink;
  readonly #maxInflight: number;
  /**
   * Delivered, unacknowledged ids → whether an ack for it is already on its way to the store.
   * The shared empty NONE_IN_FLIGHT until the first delivery (an idle connection holds no Map);
   * written only through #writableInflight.
   */
  #inflight: ReadonlyMap<string, boolean> = NONE_IN_FLIGHT;
  /** The store may hold envelopes not sent here; true from the start (the queue after auth). */
  #backlog = true;
  #refilling = false;
  #peekAgain = false;
  /** The next refill reads after this (see the module comment); undefined: from the oldest. */
  #cursor: PeekCursor | undefined;
  /** The next refill starts from the oldest whatever is in flight (a failed ack, a resync). */
  #rewind = false;
  /**
   * Ids sent live and in flight: the ones that may lie after the cursor, which a refill's peek
   * must look past (its `scan`). Only an estimate: an id leaves it when acknowledged or passed
   * over by a peek; too few makes a refill take one more peek, never miss an envelope.
   */
  #live: ReadonlySet<string> = NONE_LIVE;
  /** Envelope text read by refills so far, and how many envelopes: their mean size bounds
   * how many ids a peek lists when the socket has little room (see #refill). */
  #readBytes = 0;
  #readCount = 0;
  /** The store's `skip` of a refill: what is in flight, or was acknowledged during the peek. */
  #held(id: string): boolean {
    if (this.#inflight.has(id)) {
      if (this.#live !== NONE_LIVE) this.#writableLive().delete(id);
      return true;
    }
    return this.#ackedDuringPeek?.has(id) === true;
  }

  #writableInflight(): Map<string, boolean> {
    if (this.#inflight === NONE_IN_FLIGHT) this.#inflight = new Map();
    return this.#inflight as Map<string, boolean>;
  }

  #writableLive(): Set<string> {
    if (this.#live === NONE_LIVE) this.#live = new Set();
    return this.#live as Set<string>;
  }
  /** Acknowledged ids waiting for the end of this turn of the event loop (see queueAck). */
  #ackQueue: string[] | undefined;
  /** Ids acknowledged while a refill peek was outstanding: the peek may still list them. */
  #ackedDuringPeek: Set<string> | undefined;
  #refillRetry: NodeJS.Timeout | undefined;
  #refillAttempt = 0;
  #closed = false;

  constructor(mailbox: string, store: DeliveryStore, sink: DeliverySink, limits: DeliveryLimits) {
    this.mailbox = mailbox;
    this.#store = store;
    this.#sink = sink;
    this.#maxInflight = limits.maxInflight;
  }

  /** Envelopes delivered and not yet acknowledged (for tests and metrics). */
  get inflightCount(): number {
    return this.#inflight.size;
  }

  /** Starts delivering what is queued; call once the client knows it is authenticated. */
  start(): void {
    this.#maybeRefill();
  }

  /** Stops for good: no more peeks or sends. Acks already queued still reach the store. */
  close(): void {
    this.#closed = true;
    if (this.#refillRetry !== undefined) clearTimeout(this.#refillRetry);
    this.#refillRetry = undefined;
  }

  /**
   * True when every id was delivered here and is acknowledged for the first time; marks them,
   * so that repeating the same ack (while the first is still on its way) is not free again.
   */
  firstAcks(ids: readonly string[]): boolean {
    for (const id of ids) if (this.#inflight.get(id) !== false) return false;
    const inflight = this.#writableInflight();
    for (const id of ids) inflight.set(id, true);
    return true;
  }

  /**
   * Queues acknowledged ids; all acks that arrive in one turn of the event loop (one read from
   * the socket) go to the store as one batch, so a client acking message by message costs one
   * store round trip per read rather than per message.
   */
  queueAck(ids: string[]): void {
    const queued = this.#ackQueue;
    if (queued === undefined) {
      this.#ackQueue = ids;
      queueMicrotask(() => this.#flushAcks());
    } else if (queued.length + ids.length <= MAX_ACK_BATCH) {
      for (const id of ids) queued.push(id);
    } else {
      this.#flushAcks();
      this.queueAck(ids);
    }
  }

  #flushAcks(): void {
    const ids = this.#ackQueue;
    if (ids === undefined) return;
    this.#ackQueue = undefined;
    void this.#ack(ids, 1);
  }

  /** Never rejects: failures go to the sink. `attempt` counts from 1. */
  async #ack(ids: readonly string[], attempt: number): Promise<void> {
    const sink = this.#sink;
    if (attempt === 1 && sink.stopping) {
      sink.ackRefused();
      return;
    }
    try {
      let failed = false;
      // A retry that comes due once shutdown has begun would start store work after the relay
      // stopped waiting for it: it is given up instead, as a final failure (the envelopes stay
      // queued and are delivered again on the client's next connection).
      if (attempt > 1 && sink.stopping) {
        failed = true;
      } else {
        try {
          await this.#store.ack(this.mailbox, ids);
        } catch (err) {
          failed = true;
          // A retry waits while the relay is shutting down would outlive it: give up then.
          const final = attempt >= MAX_ACK_ATTEMPTS || sink.stopping;
          sink.ackFailed(err, final, attempt);
          if (!final) {
            // The ids stay in flight (marked as being acknowledged): no refill sends them again.
            this.#retryAck(ids, attempt);
            return;
          }
        }
      }
      const inflight = this.#writableInflight();
      // In flight is only left once the store has deleted: a refill peek issued before that
      // could otherwise list the envelope again and it would be sent twice. That holds for
      // every id the store deleted, also one this connection did not send (delivered on an
      // earlier connection and acknowledged right after reconnecting, during the first peek);
      // those are remembered up to a bound, past which a repeat is the at-least-once fallback.
      const skip = this.#refilling && !failed ? (this.#ackedDuringPeek ??= new Set()) : undefined;
      for (const id of ids) {
        const sentHere = inflight.delete(id);
        if (this.#live !== NONE_LIVE) this.#writableLive().delete(id);
        if (skip !== undefined && (sentHere || skip.size < MAX_ACK_BATCH)) skip.add(id);
      }
      // A failed ack leaves the envelopes in the store; they go out again with the next refill,
      // which must read from the oldest for that (they sit before the cursor).
      if (failed) {
        this.#backlog = true;
        this.#rewind = true;
      }
      this.#maybeRefill();
    } catch (err) {
      sink.unexpected(err, 'ack');
    }
  }

  /**
   * Tries a failed ack again after ACK_RETRY_MIN_MS · 2^(attempt − 1), halved at random (so that
   * the acks failed by one outage do not come back at once). Also after close: the client did
   * acknowledge, and applying it saves a redelivery on its next connection. At most one timer
   * per batch, and batches are bounded by what was delivered.
   */
  #retryAck(ids: readonly string[], attempt: number): void {
    const delay = ACK_RETRY_MIN_MS * 2 ** (attempt - 1);
    const timer = setTimeout(
      () => void this.#ack(ids, attempt + 1),
      delay * (0.5 + Math.random() / 2),
    );
    timer.unref();
  }

  /** A newly stored envelope for the mailbox (from the hub). Must not throw. */
  deliverLive(id: string, env: string): void {
    if (this.#closed) return;
    if (this.#refilling) {
      this.#peekAgain = true;
      return;
    }
    const inflight = this.#inflight;
    if (inflight.has(id)) return;
    if (this.#backlog) {
      // Older envelopes wait in the store; this one must not overtake them.
      this.#maybeRefill();
      return;
    }
    if (inflight.size >= this.#maxInflight || !this.#sink.hasRoom()) {
      this.#backlog = true;
      return;
    }
    this.#writableInflight().set(id, false);
    this.#writableLive().add(id);
    this.#sink.deliver(id, env);
  }

  /**
   * The store may hold envelopes this connection was not told about (for instance a
   * notification from another instance lost while the store was unreachable): look again.
   */
  resync(): void {
    if (this.#closed) return;
    // A refill retry backed off while the store was down may be many seconds away: the store
    // is back, so look now instead of waiting for it.
    if (this.#refillRetry !== undefined) {
      clearTimeout(this.#refillRetry);
      this.#refillRetry = undefined;
    }
    // A peek already on its way may have taken its snapshot too early: it must look once more
    // (the end of a refill recomputes `backlog`, so setting that alone would be forgotten).
    if (this.#refilling) this.#peekAgain = true;
    this.#backlog = true;
    this.#rewind = true;
    this.#maybeRefill();
  }

  /** Looks at the store again if there is room now (the socket drained, or the relay's tick). */
  resume(): void {
    this.#maybeRefill();
  }

  #maybeRefill(): void {
    if (
      this.#closed ||
      !this.#backlog ||
      this.#refilling ||
      this.#refillRetry !== undefined ||
      this.#sink.stopping ||
      this.#inflight.size > this.#maxInflight >> 1 ||
      !this.#sink.hasRoom()
    ) {
      return;
    }
    void this.#guardedRefill();
  }

  async #guardedRefill(): Promise<void> {
    try {
      await this.#refill();
    } catch (err) {
      this.#sink.unexpected(err, 'refill');
    }
  }

  async #refill(): Promise<void> {
    // Re-read after the first delivery: it replaces NONE_IN_FLIGHT with this delivery's own Map.
    let inflight = this.#inflight;
    const max = this.#maxInflight;
    const sink = this.#sink;
    this.#refilling = true;
    try {
      for (;;) {
        this.#peekAgain = false;
        if (this.#rewind || inflight.size === 0) {
          this.#rewind = false;
          this.#cursor = undefined;
        }
        // The ids after the cursor that are not to be sent are in flight: all of them when
        // reading from the oldest, else the ones sent live. Looking past those finds the free
        // slots' worth of new ones; only those are read, within the room the socket has.
        // No more envelopes than the room holds at their mean size so far (at least one): with
        // little room, listing the free slots' worth of ids would cost more than the envelopes.
        const room = sink.roomBytes();
        let limit = max - inflight.size;
        if (this.#readCount > 0) {
          const mean = this.#readBytes / this.#readCount;
          limit = Math.max(1, Math.min(limit, Math.ceil(room / mean)));
        }
        const ahead = this.#cursor === undefined ? inflight.size : this.#live.size;
        let page: PeekPage;
        try {
          page = await this.#store.peek(this.mailbox, {
            after: this.#cursor,
            limit,
            scan: Math.min(max, limit + ahead),
            maxBytes: room,
            // A closure per refill rather than one held by every delivery for ever.
            skip: (id) => this.#held(id),
          });
        } catch (err) {
          this.#scheduleRefillRetry(err);
          return;
        }
        this.#refillAttempt = 0;
        if (this.#closed) return;
        for (const message of page.messages) this.#readBytes += message.env.length;
        this.#readCount += page.messages.length;
        const skip = this.#ackedDuringPeek;
        this.#ackedDuringPeek = undefined;
        let complete = !page.more;
        let cursor = this.#cursor;
        let taken = 0;
        for (const message of page.messages) {
          // Acknowledged or in flight since the store looked: already sent.
          if (!inflight.has(message.id) && skip?.has(message.id) !== true) {
            if (inflight.size >= max || !sink.hasRoom()) {
              complete = false;
              break;
            }
            this.#writableInflight().set(message.id, false);
            inflight = this.#inflight;
            sink.deliver(message.id, message.env);
          }
          cursor = message.cursor;
          taken += 1;
        }
        // Every envelope taken: the page's cursor also covers the ids it passed over after them.
        this.#cursor = taken === page.messages.length ? (page.cursor ?? cursor) : cursor;
        this.#backlog = !complete || this.#peekAgain;
        if (!this.#backlog || sink.stopping || inflight.size >= max || !sink.hasRoom()) {
          return;
        }
        // More after the cursor (or something arrived) and room for it: read on. Each turn
        // moves the cursor or ends (an empty page is complete), so this loop is bounded.
      }
    } finally {
      this.#refilling = false;
      this.#ackedDuringPeek = undefined;
    }
  }

  #scheduleRefillRetry(err: unknown): void {
    this.#backlog = true;
    this.#sink.peekFailed(err);
    if (this.#closed) return;
    const delay = Math.min(REFILL_RETRY_MAX_MS, REFILL_RETRY_MIN_MS * 2 ** this.#refillAttempt);
    this.#refillAttempt = Math.min(this.#refillAttempt + 1, MAX_REFILL_ATTEMPTS);
    this.#refillRetry = setTimeout(
      () => {
        this.#refillRetry = undefined;
        this.#maybeRefill();
      },
      delay * (0.5 + Math.random() / 2),
    );
    this.#refillRetry.unref();
  }
}
