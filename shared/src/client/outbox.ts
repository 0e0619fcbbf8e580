/**
 * The outbox: every outgoing envelope gets its message id and is written to storage before it
 * is first sent, and is sent again, with the same id, until the relay answers `stored` (the
 * relay deduplicates by `(to, id)`, so a resend after a lost answer is not queued twice).
 * Storage is an interface (in memory here; an IndexedDB one for the coordinator workspace), so
 * that what is not yet stored survives a reconnect, a relay restart and, with a persistent
 * storage, the client's own restart.
 *
 * Per message: `queued → sent (stored) → delivered → read`, or `queued → failed` for a refusal
 * that no retry can change (a bug, or first contact without a solver). `delivered` and `read`
 * come from the recipients' receipts, which the application reads: it calls `markDelivered` /
 * `markRead`; states only move forward. A `read` message is forgotten (its last event says so).
 *
 * Sending respects the relay: at most `window` sends await their answer at once, nothing is
 * written while the socket's unsent bytes are over `maxBufferedBytes` (the relay has stopped
 * reading: its backpressure), and a retryable refusal (`rate_limited`, `mailbox_full`,
 * `overloaded`, `unavailable`, `internal`, a timeout) waits a jittered exponential backoff per
 * message; `rate_limited` and `overloaded` also hold back every send for that long.
 * `pow_required` gets the connection admitted to the mailbox (first-contact.ts) and sends again.
 */
import { toBase64url } from '../protocol/base64url.js';
import { ErrorCode } from '../protocol/errors.js';
import { MAX_ENVELOPE_BYTES, MESSAGE_ID_BYTES, PROTOCOL_VERSION } from '../protocol/limits.js';
import { MailboxId } from '../protocol/frames.js';
import type { Connection } from './connection.js';
import { ClientError, ClientErrorCode, RelayError } from './errors.js';
import { Emitter } from './events.js';
import { admit, type PowProgress, type PowSolver } from './first-contact.js';
import type { Clock, TimerHandle } from './transport.js';

export type OutgoingState = 'queued' | 'sent' | 'delivered' | 'read' | 'failed';

const RANK: Readonly<Record<OutgoingState, number>> = {
  queued: 0,
  sent: 1,
  delivered: 2,
  read: 3,
  failed: 3,
};

/** One outgoing message as stored. */
export interface OutgoingRecord {
  /** The message id (16 random bytes, base64url), fixed before the first send. */
  readonly id: string;
  /** The recipient's mailbox id. */
  readonly to: string;
  /** The envelope (base64url) while it is not stored; dropped once the relay has it. */
  readonly env?: string;
  readonly state: OutgoingState;
  /** Clock time of `enqueue`. */
  readonly createdAt: number;
  /** When failed: the relay's or the client's code. */
  readonly failure?: string;
}

/** Where outgoing messages are kept. Each call completes before the outbox goes on. */
export interface OutboxStorage {
  load(): Promise<readonly OutgoingRecord[]>;
  put(record: OutgoingRecord): Promise<void>;
  delete(id: string): Promise<void>;
}

/** Storage in memory: survives reconnects and relay restarts, not the process. */
export class MemoryOutboxStorage implements OutboxStorage {
  readonly records = new Map<string, OutgoingRecord>();
  load(): Promise<readonly OutgoingRecord[]> {
    return Promise.resolve([...this.records.values()]);
  }
  put(record: OutgoingRecord): Promise<void> {
    this.records.set(record.id, record);
    return Promise.resolve();
  }
  delete(id: string): Promise<void> {
    this.records.delete(id);
    return Promise.resolve();
  }
}

export interface OutboxLimits {
  /** Most sends awaiting `stored` at once. */
  readonly window: number;
  /** The socket's unsent bytes above which nothing more is written. */
  readonly maxBufferedBytes: number;
  /** How often to look again while the socket is over `maxBufferedBytes`, in ms. */
  readonly bufferPollMs: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** Most messages held (settled ones are forgotten oldest first to make room). */
  readonly maxMessages: number;
  /**
   * Sends per second this outbox writes at most, sustained, and at once above that. Below the
   * relay's per-connection frame rate (CONN_FRAMES_PER_SECOND 100, CONN_FRAME_BURST 200 by
   * default), with room for the connection's other frames (proof-of-work, prekeys, pings): a
   * frame over the relay's rate is refused and the relay stops reading the socket for a while,
   * which also holds back the acks of what the device is reading.
   */
  readonly sendsPerSecond: number;
  readonly sendBurst: number;
}

export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = {
  window: 32,
  maxBufferedBytes: 1 << 20,
  bufferPollMs: 50,
  retryInitialMs: 1_000,
  retryMaxMs: 60_000,
  maxMessages: 10_000,
  sendsPerSecond: 70,
  sendBurst: 140,
};

export interface OutboxOptions {
  readonly connection: Connection;
  readonly clock: Clock;
  readonly randomBytes: (n: number) => Uint8Array;
  /** Uniform in [0, 1), for the backoff's jitter. */
  readonly random: () => number;
  readonly storage?: OutboxStorage;
  /** Solves first-contact challenges; without one, `pow_required` fails the message. */
  readonly solvePow?: PowSolver;
  readonly limits?: Partial<OutboxLimits>;
}

export interface OutboxEvents extends Record<string, unknown> {
  'message-state': {
    readonly id: string;
    readonly to: string;
    readonly state: OutgoingState;
    readonly failure?: string;
  };
  'pow-progress': PowProgress;
}

interface Retry {
  readonly attempt: number;
  readonly notBefore: number;
}

const V = PROTOCOL_VERSION;

export class Outbox {
  readonly events = new Emitter<OutboxEvents>();
  readonly storage: OutboxStorage;

  readonly #connection: Connection;
  readonly #clock: Clock;
  readonly #options: OutboxOptions;
  readonly #limits: OutboxLimits;
  /** Every message held, in enqueue order. */
  readonly #records = new Map<string, OutgoingRecord>();
  readonly #inFlight = new Set<string>();
  readonly #retries = new Map<string, Retry>();
  /** Admissions under way on the current socket, by mailbox. */
  #admissions = new Map<string, Promise<unknown>>();
  #pausedUntil = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #started = false;

  constructor(options: OutboxOptions) {
    this.#options = options;
    this.#connection = options.connection;
    this.#clock = options.clock;
    this.#limits = { ...DEFAULT_OUTBOX_LIMITS, ...options.limits };
    this.storage = options.storage ?? new MemoryOutboxStorage();
    this.#connection.events.on('ready', () => {
      this.#admissions = new Map();
      this.#pump();
    });
  }

  /** Loads what storage holds (messages not yet stored are sent again) and starts sending. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    for (const record of await this.storage.load()) {
      if (!this.#records.has(record.id)) this.#records.set(record.id, record);
    }
    this.#pump();
  }

  /** The message, while the outbox holds it. */
  get(id: string): OutgoingRecord | undefined {
    return this.#records.get(id);
  }

  /** Messages held, by state. */
  counts(): Record<OutgoingState, number> {
    const counts = { queued: 0, sent: 0, delivered: 0, read: 0, failed: 0 };
    for (const r of this.#records.values()) counts[r.state]++;
    return counts;
  }

  /** Sends awaiting an answer now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Gives `envelope` for mailbox `to` its message id, stores it, and sends it as soon as the
   * connection is ready. Resolves with the id once storage has the message.
   *
   * @throws ClientError('bad_recipient' | 'bad_envelope' | 'outbox_full')
   */
  async enqueue(to: string, envelope: Uint8Array): Promise<string> {
    if (!MailboxId.safeParse(to).success) throw new ClientError(ClientErrorCode.BAD_RECIPIENT);
    if (envelope.length < 1 || envelope.length > MAX_ENVELOPE_BYTES) {
      throw new ClientError(ClientErrorCode.BAD_ENVELOPE);
    }
    await this.#makeRoom();
    const record: OutgoingRecord = {
      id: toBase64url(this.#options.randomBytes(MESSAGE_ID_BYTES)),
      to,
      env: toBase64url(envelope),
      state: 'queued',
      createdAt: this.#clock.now(),
    };
    await this.storage.put(record);
    this.#records.set(record.id, record);
    this.events.emit('message-state', { id: record.id, to, state: 'queued' });
    this.#pump();
    return record.id;
  }

  /** A recipient device's receipt says it has the message. False if nothing changed. */
  markDelivered(id: string): Promise<boolean> {
    return this.#advance(id, 'delivered');
  }

  /** A recipient says it was read; the outbox then forgets it. False if nothing changed. */
  markRead(id: string): Promise<boolean> {
    return this.#advance(id, 'read');
  }

  /** Forgets a message (one the application no longer follows). Never called in flight. */
  async forget(id: string): Promise<void> {
    if (this.#inFlight.has(id)) return;
    this.#records.delete(id);
    this.#retries.delete(id);
    await this.storage.delete(id);
  }

  /** Stops the timers (the connection's close fails what is in flight). */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  // -------------------------------------------------------------------------------------------

  async #makeRoom(): Promise<void> {
    if (this.#records.size < this.#limits.maxMessages) return;
    for (const r of this.#records.values()) {
      if (r.state !== 'queued' && !this.#inFlight.has(r.id)) {
        await this.forget(r.id);
        return;
      }
    }
    throw new ClientError(ClientErrorCode.OUTBOX_FULL);
  }

  async #advance(id: string, state: OutgoingState): Promise<boolean> {
    const record = this.#records.get(id);
    if (record === undefined || record.state === 'failed') return false;
    if (RANK[state] <= RANK[record.state]) return false;
    // A receipt proves the relay had it, even when its `stored` answer was lost: stop resending.
    const { env: _env, ...rest } = record;
    const next: OutgoingRecord = { ...rest, state };
    this.#retries.delete(id);
    if (state === 'read') {
      this.#records.delete(id);
      await this.storage.delete(id);
    } else {
      this.#records.set(id, next);
      await this.storage.put(next);
    }
    this.events.emit('message-state', { id, to: record.to, state });
    return true;
  }

  #settle(record: OutgoingRecord, state: 'sent' | 'failed', failure?: string): void {
    const current = this.#records.get(record.id);
    // Marked delivered or read (or forgotten) meanwhile: nothing to do.
    if (current === undefined || current.state !== 'queued') return;
    const { env: _env, ...rest } = current;
    const next: OutgoingRecord = {
      ...rest,
      state,
      ...(failure === undefined ? {} : { failure }),
    };
    this.#retries.delete(record.id);
    this.#records.set(record.id, next);
    this.events.emit('message-state', {
      id: record.id,
      to: record.to,
      state,
      ...(failure === undefined ? {} : { failure }),
    });
    this.storage.put(next).catch(() => {
      // The next load sends it again (same id; the relay answers `stored` again).
    });
  }

  #backoff(id: string, pauseAll = false): void {
    const attempt = (this.#retries.get(id)?.attempt ?? 0) + 1;
    const base = Math.min(
      this.#limits.retryMaxMs,
      this.#limits.retryInitialMs * 2 ** Math.min(attempt - 1, 30),
    );
    const delay = Math.floor(base / 2 + this.#options.random() * (base / 2));
    const notBefore = this.#clock.now() + delay;
    this.#retries.set(id, { attempt, notBefore });
    if (pauseAll) this.#pausedUntil = Math.max(this.#pausedUntil, notBefore);
  }

  #wakeAt(at: number): void {
    if (at >= this.#timerAt) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        this.#pump();
      },
      Math.max(0, at - this.#clock.now()),
    );
  }

  /** The send-rate bucket: tokens and when it was last filled. */
  #tokens = Number.NaN;
  #tokensAt = 0;

  #takeToken(now: number): boolean {
    const { sendsPerSecond, sendBurst } = this.#limits;
    if (Number.isNaN(this.#tokens)) this.#tokens = sendBurst;
    this.#tokens = Math.min(
      sendBurst,
      this.#tokens + ((now - this.#tokensAt) * sendsPerSecond) / 1000,
    );
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #pump(): void {
    if (!this.#started || this.#connection.state !== 'ready') return;
    const now = this.#clock.now();
    if (this.#pausedUntil > now) {
      this.#wakeAt(this.#pausedUntil);
      return;
    }
    let earliest = Infinity;
    for (const record of this.#records.values()) {
      if (record.state !== 'queued' || this.#inFlight.has(record.id)) continue;
      if (this.#admissions.has(record.to)) continue; // sent once the admission is done
      const notBefore = this.#retries.get(record.id)?.notBefore ?? 0;
      if (notBefore > now) {
        earliest = Math.min(earliest, notBefore);
        continue;
      }
      if (this.#inFlight.size >= this.#limits.window) return; // an answer pumps again
      if (this.#connection.bufferedAmount > this.#limits.maxBufferedBytes) {
        this.#wakeAt(now + this.#limits.bufferPollMs);
        return;
      }
      if (!this.#takeToken(now)) {
        this.#wakeAt(now + Math.ceil(1000 / this.#limits.sendsPerSecond));
        return;
      }
      this.#send(record);
    }
    if (earliest !== Infinity) this.#wakeAt(earliest);
  }

  #send(record: OutgoingRecord): void {
    const env = record.env;
    if (env === undefined) return;
    this.#inFlight.add(record.id);
    const epoch = this.#connection.epoch;
    this.#connection
      .request({ v: V, t: 'send', to: record.to, id: record.id, env }, 'stored')
      .then(
        (stored) => {
          this.#inFlight.delete(record.id);
          if (stored.id !== record.id) {
            // The relay confirmed another id for this request: not a confirmation of this one.
            this.#backoff(record.id);
          } else {
            this.#settle(record, 'sent');
          }
        },
        (error: unknown) => {
          this.#inFlight.delete(record.id);
          this.#onSendError(record, error, epoch);
        },
      )
      .finally(() => this.#pump());
  }

  #onSendError(record: OutgoingRecord, error: unknown, epoch: number): void {
    if (error instanceof RelayError) {
      if (error.code === ErrorCode.POW_REQUIRED) {
        this.#admitTo(record, epoch);
        return;
      }
      if (!error.retryable) {
        this.#settle(record, 'failed', error.code);
        return;
      }
      if (error.code === ErrorCode.SHUTTING_DOWN) return; // sent again on the next socket
      this.#backoff(
        record.id,
        error.code === ErrorCode.RATE_LIMITED || error.code === ErrorCode.OVERLOADED,
      );
      return;
    }
    if (
      error instanceof ClientError &&
      (error.code === ClientErrorCode.CONNECTION_LOST ||
        error.code === ClientErrorCode.NOT_CONNECTED ||
        error.code === ClientErrorCode.CLOSED)
    ) {
      return; // sent again when the connection is ready
    }
    this.#backoff(record.id);
  }

  #admitTo(record: OutgoingRecord, epoch: number): void {
    const solver = this.#options.solvePow;
    if (solver === undefined) {
      this.#settle(record, 'failed', ErrorCode.POW_REQUIRED);
      return;
    }
    if (epoch !== this.#connection.epoch || this.#admissions.has(record.to)) return;
    const admissions = this.#admissions;
    const admission = admit(this.#connection, record.to, solver, (progress) =>
      this.events.emit('pow-progress', progress),
    ).then(
      () => {},
      (error: unknown) => {
        if (
          !(error instanceof ClientError) ||
          (error.code !== ClientErrorCode.CONNECTION_LOST &&
            error.code !== ClientErrorCode.NOT_CONNECTED &&
            error.code !== ClientErrorCode.CLOSED)
        ) {
          this.#backoff(record.id);
        }
      },
    );
    admissions.set(record.to, admission);
    void admission.finally(() => {
      if (admissions.get(record.to) === admission) admissions.delete(record.to);
      this.#pump();
    });
  }
}
