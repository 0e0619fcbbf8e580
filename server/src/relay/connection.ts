/**
 * One WebSocket connection to the relay: the challenge, frame dispatch, rate limits, and
 * delivery with flow control. Never decrypts; envelopes stay the base64url text they came in.
 *
 * Delivery. The store holds every envelope until it is acknowledged; a connection only decides
 * what to *send* when. It keeps the ids it sent and that are not yet acknowledged (in flight),
 * at most `maxInflight`. While the store may hold envelopes this connection has not sent
 * (`backlog`: right after auth, or after a live envelope was held back because the connection
 * was full or its socket backed up), live envelopes are not sent directly (that would overtake
 * older ones); instead acknowledgements that bring the in-flight count under the low watermark
 * trigger a refill: a `peek` of the oldest envelopes, sending those not already in flight.
 * While a refill's peek is outstanding, a live arrival only sets `peekAgain`, and the refill
 * peeks once more when it returns, so nothing that arrives meanwhile is lost.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { ErrorCode, CloseCode } from '@passage/shared/protocol/errors';
import type { ClientFrameOf } from '@passage/shared/protocol/frames';
import { fromBase64url } from '@passage/shared/protocol/base64url';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { mailboxIdFromPublicKey } from '@passage/shared/protocol/mailbox';
import {
  encodeDeliverFrame,
  encodeFrame,
  errorFrame,
  parseClientFrame,
} from '@passage/shared/protocol/parse';
import type { RelaySettings } from '../config.js';
import { sha256 } from '../sha256.js';
import type { Logger } from '../log.js';
import { StoreError, type EnqueueResult, type Store } from '../store/store.js';
import { newNonce, verifyChallenge } from './auth.js';
import type { Hub, Recipient } from './hub.js';
import { TokenBucket, type KeyedRateLimiter } from './rate-limit.js';

/** What a connection needs from the relay that owns it. */
export interface RelayContext {
  readonly store: Store;
  readonly hub: Hub;
  readonly logger: Logger;
  readonly settings: RelaySettings;
  /** Send rate per target mailbox, shared by all connections. */
  readonly mailboxLimiter: KeyedRateLimiter;
  /**
   * Prekey-fetch rate per target mailbox, shared by all connections; separate from the send
   * rate, with a burst well below the one-time prekeys a device keeps.
   */
  readonly prekeyFetchLimiter: KeyedRateLimiter;
  /** True from the moment shutdown begins. */
  readonly shuttingDown: boolean;
  /** Brackets every store operation so that shutdown can wait for them. */
  opStarted(): void;
  opFinished(): void;
  /** Called once when the socket has closed. */
  connectionClosed(connection: Connection): void;
}

const enum Phase {
  /** Challenge sent; may send, fetch prekeys and authenticate. */
  Open,
  /** Signature verified; the store subscription is being set up. */
  Authenticating,
  Authenticated,
  Closed,
}

const OPEN = 1; // WebSocket.OPEN, without importing the value for one constant.
const V = PROTOCOL_VERSION;
/** Most ids acknowledged to the store in one call (several `ack` frames coalesced). */
const MAX_ACK_BATCH = 1_024;
/** First delay after a failed refill peek, in ms; doubles up to the maximum. */
const REFILL_RETRY_MIN_MS = 500;
const REFILL_RETRY_MAX_MS = 30_000;
/** Bytes of the random payload of each WebSocket ping, which the peer's pong must echo. */
const PING_PAYLOAD_BYTES = 8;
/** Most unanswered ping payloads remembered per connection; the oldest is forgotten first. */
const MAX_UNANSWERED_PINGS = 16;

function storeErrorCode(err: unknown): ErrorCode | undefined {
  if (!(err instanceof StoreError)) return undefined;
  switch (err.code) {
    case 'unavailable':
      return ErrorCode.UNAVAILABLE;
    case 'overloaded':
      return ErrorCode.OVERLOADED;
    case 'mailbox_full':
      return ErrorCode.MAILBOX_FULL;
    case 'prekeys_full':
      return ErrorCode.PREKEYS_FULL;
    default:
      return undefined;
  }
}

export class Connection implements Recipient {
  readonly #ws: WebSocket;
  readonly #ctx: RelayContext;
  readonly #settings: RelaySettings;
  /**
   * The net.Socket `ws` writes to (its `_socket`, set before the 'connection' event): `ws` exposes
   * no cork and no 'drain' of its own. Looked up once here rather than on every write.
   */
  readonly #socket: Duplex | undefined;
  #phase = Phase.Open;
  /** The unused challenge; cleared by a failed or successful auth (single use). */
  #nonce: Buffer | undefined;
  #mailbox: string | undefined;
  readonly #frames: TokenBucket;

  // Abuse accounting: strikes within the current window.
  #invalid = 0;
  #invalidSinceMs = 0;
  #limited = 0;
  #limitedSinceMs = 0;

  // Delivery state (see the module comment).
  /** Delivered, unacknowledged ids → whether an ack for it is already on its way to the store. */
  #inflight: Map<string, boolean> | undefined;
  #backlog = false;
  #refilling = false;
  #peekAgain = false;
  /** Acknowledged ids waiting for the end of this turn of the event loop (see #queueAck). */
  #ackQueue: string[] | undefined;
  /** Ids acknowledged while a refill peek was outstanding: the peek may still list them. */
  #ackedDuringPeek: Set<string> | undefined;
  #refillRetry: NodeJS.Timeout | undefined;
  #refillAttempt = 0;

  /** True while a 'drain' listener waits to resume deliveries (see #socketHasRoom). */
  #drainArmed = false;
  /** True while the socket is corked until the end of this turn (see #write). */
  #corked = false;

  // Heartbeat and slow-consumer state.
  #lastPongMs: number;
  /** Payloads of the pings sent and not yet echoed, oldest first. */
  readonly #unansweredPings: Buffer[] = [];
  /** When the relay closed this connection for a missed heartbeat. */
  #heartbeatCloseMs: number | undefined;
  #lastBuffered = 0;
  #stalledTicks = 0;

  constructor(ws: WebSocket, ctx: RelayContext, nowMs: number) {
    this.#ws = ws;
    this.#ctx = ctx;
    this.#settings = ctx.settings;
    this.#socket = (ws as unknown as { _socket?: Duplex })._socket;
    this.#frames = new TokenBucket(
      ctx.settings.connFramesPerSecond,
      ctx.settings.connFrameBurst,
      nowMs,
    );
    this.#lastPongMs = nowMs;
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('pong', (data) => this.#onPong(data));
    ws.on('close', () => this.#onClose());
    // ws reports protocol violations (bad UTF-8, oversized frames) here and then closes the
    // socket itself with the right code; without a listener the error would crash the process.
    ws.on('error', (err) => ctx.logger.debug({ err }, 'websocket error'));
    this.#nonce = newNonce();
    this.#write(`{"v":${V},"t":"challenge","nonce":"${this.#nonce.toString('base64url')}"}`);
  }

  /** True once authenticated (for tests and metrics). */
  get authenticated(): boolean {
    return this.#phase === Phase.Authenticated;
  }

  // ---------------------------------------------------------------------------------------
  // Incoming frames

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#phase === Phase.Closed || this.#ws.readyState !== OPEN) return;
    const now = performance.now();
    try {
      if (isBinary) {
        this.#frames.take(now);
        this.#reject(ErrorCode.BINARY_NOT_SUPPORTED, undefined, now);
        return;
      }
      // With ws's default binaryType ('nodebuffer') a message is always one Buffer.
      const parsed = parseClientFrame((data as Buffer).toString());
      if (!parsed.ok) {
        this.#frames.take(now);
        this.#reject(parsed.error.code, parsed.error.rid, now);
        return;
      }
      const frame = parsed.value;
      const rid = frame.t === 'ack' ? undefined : frame.rid;
      // Acknowledging what this connection delivered is free: a client that acks a full window
      // message by message must never be refused (acks carry no rid, so it could not retry).
      if (!(frame.t === 'ack' && this.#firstAcks(frame.ids)) && !this.#frames.take(now)) {
        this.#rateLimited(rid, now);
        return;
      }
      switch (frame.t) {
        case 'send':
          if (!this.#ctx.mailboxLimiter.take(frame.to, now)) {
            this.#rateLimited(rid, now);
            return;
          }
          void this.#send(frame);
          return;
        case 'ack':
          if (this.#phase !== Phase.Authenticated) {
            this.#reject(ErrorCode.NOT_AUTHENTICATED, undefined, now);
            return;
          }
          this.#queueAck(frame.ids);
          return;
        case 'ping':
          this.#write(`{"v":${V},"t":"pong","rid":${frame.rid}}`);
          return;
        case 'auth':
          if (this.#phase !== Phase.Open) {
            this.#reject(ErrorCode.ALREADY_AUTHENTICATED, rid, now);
            return;
          }
          void this.#guard(this.#auth(frame, now), rid, frame.t);
          return;
        case 'prekeys.publish':
        case 'prekeys.status':
          if (this.#phase !== Phase.Authenticated) {
            this.#reject(ErrorCode.NOT_AUTHENTICATED, rid, now);
            return;
          }
          void this.#guard(this.#prekeysOwn(frame), rid, frame.t);
          return;
        case 'prekeys.fetch':
          // Each fetch spends one of the owner's one-time prekeys: a small rate and burst of
          // its own, so no one can empty a device's prekeys at once or starve its messages.
          if (!this.#ctx.prekeyFetchLimiter.take(frame.mailbox, now)) {
            this.#rateLimited(rid, now);
            return;
          }
          void this.#guard(this.#prekeysFetch(frame), rid, frame.t);
          return;
      }
    } catch (err) {
      this.#internal(err, undefined, 'message');
    }
  }

  /**
   * True when every id was delivered here and is acknowledged for the first time; marks them,
   * so that repeating the same ack (while the first is still on its way) is not free again.
   */
  #firstAcks(ids: readonly string[]): boolean {
    const inflight = this.#inflight;
    if (inflight === undefined) return false;
    for (const id of ids) if (inflight.get(id) !== false) return false;
    for (const id of ids) inflight.set(id, true);
    return true;
  }

  /** Runs a handler; an exception it did not expect becomes an `internal` error frame. */
  async #guard(work: Promise<void>, rid: number | undefined, frameType: string): Promise<void> {
    try {
      await work;
    } catch (err) {
      this.#internal(err, rid, frameType);
    }
  }

  #internal(err: unknown, rid: number | undefined, frameType: string): void {
    this.#ctx.logger.error({ err, frameType }, 'frame handler failed');
    this.#error(ErrorCode.INTERNAL, rid);
  }

  async #auth(frame: ClientFrameOf<'auth'>, now: number): Promise<void> {
    const nonce = this.#nonce;
    const pk = fromBase64url(frame.pk);
    const sig = fromBase64url(frame.sig);
    if (nonce === undefined || pk === undefined || sig === undefined) {
      this.#reject(ErrorCode.AUTH_FAILED, frame.rid, now);
      return;
    }
    if (!verifyChallenge(pk, frame.pk, sig, nonce)) {
      this.#nonce = undefined; // single use: a failed attempt spends it
      this.#reject(ErrorCode.AUTH_FAILED, frame.rid, now);
      return;
    }
    if (this.#ctx.shuttingDown) {
      this.#error(ErrorCode.SHUTTING_DOWN, frame.rid);
      return;
    }
    const mailbox = mailboxIdFromPublicKey(pk, sha256);
    this.#phase = Phase.Authenticating;
    this.#ctx.opStarted();
    try {
      // Subscribe first, then peek (in #refill): the other order misses an envelope enqueued
      // on another instance between the two.
      await this.#ctx.hub.add(mailbox, this);
    } catch (err) {
      // Verified, but the store could not be reached: the nonce stays valid, so the client
      // may retry the same auth frame on this connection.
      if (this.#phase === Phase.Authenticating) this.#phase = Phase.Open;
      this.#storeFailed(err, frame.rid, 'auth');
      return;
    } finally {
      this.#ctx.opFinished();
    }
    if (this.#phase !== Phase.Authenticating) {
      // Closed while subscribing.
      this.#ctx.hub.remove(mailbox, this);
      return;
    }
    this.#nonce = undefined;
    this.#mailbox = mailbox;
    this.#phase = Phase.Authenticated;
    this.#inflight = new Map();
    this.#write(`{"v":${V},"t":"authed","rid":${frame.rid},"mailbox":"${mailbox}"}`);
    this.#backlog = true;
    this.#maybeRefill();
  }

  /** The hot path. Never rejects: every failure becomes an error frame. */
  async #send(frame: ClientFrameOf<'send'>): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.shuttingDown) {
      this.#error(ErrorCode.SHUTTING_DOWN, frame.rid);
      return;
    }
    ctx.opStarted();
    let result: EnqueueResult;
    try {
      result = await ctx.store.enqueue(frame.to, frame.id, frame.env);
    } catch (err) {
      ctx.opFinished();
      this.#storeFailed(err, frame.rid, 'send');
      // Unreachable or a bug: the envelope may be stored all the same (the store's answer,
      // not the command, was lost). The sender's resend is then a 'duplicate', which is not
      // delivered live, so this relay's connections of the mailbox must look in the store.
      const code = storeErrorCode(err);
      if (code === undefined || code === ErrorCode.UNAVAILABLE) ctx.hub.resync(frame.to);
      return;
    }
    ctx.opFinished();
    try {
      // Only a newly stored envelope is new to the recipient; a duplicate was delivered (or is
      // queued) already. Delivery comes after the store confirmed, so an ack can always delete.
      if (result === 'stored') ctx.hub.deliver(frame.to, frame.id, frame.env);
      this.#write(`{"v":${V},"t":"stored","rid":${frame.rid},"id":"${frame.id}"}`);
    } catch (err) {
      this.#internal(err, frame.rid, 'send');
    }
  }

  /**
   * Queues acknowledged ids; all acks that arrive in one turn of the event loop (one read from
   * the socket) go to the store as one batch, so a client acking message by message costs one
   * store round trip per read rather than per message.
   */
  #queueAck(ids: string[]): void {
    const queued = this.#ackQueue;
    if (queued === undefined) {
      this.#ackQueue = ids;
      queueMicrotask(() => this.#flushAcks());
    } else if (queued.length + ids.length <= MAX_ACK_BATCH) {
      for (const id of ids) queued.push(id);
    } else {
      this.#flushAcks();
      this.#queueAck(ids);
    }
  }

  #flushAcks(): void {
    const ids = this.#ackQueue;
    if (ids === undefined) return;
    this.#ackQueue = undefined;
    void this.#ack(ids);
  }

  /** Never rejects: every failure becomes an error frame. */
  async #ack(ids: readonly string[]): Promise<void> {
    const ctx = this.#ctx;
    const mailbox = this.#mailbox;
    if (mailbox === undefined) return;
    if (ctx.shuttingDown) {
      this.#error(ErrorCode.SHUTTING_DOWN, undefined);
      return;
    }
    let failed = false;
    ctx.opStarted();
    try {
      await ctx.store.ack(mailbox, ids);
    } catch (err) {
      failed = true;
      this.#storeFailed(err, undefined, 'ack');
    }
    ctx.opFinished();
    try {
      const inflight = this.#inflight;
      if (inflight === undefined) return;
      // In flight is only left once the store has deleted: a refill peek issued before that
      // could otherwise list the envelope again and it would be sent twice. That holds for
      // every id the store deleted, also one this connection did not send (delivered on an
      // earlier connection and acknowledged right after reconnecting, during the first peek);
      // those are remembered up to a bound, past which a repeat is the at-least-once fallback.
      const skip = this.#refilling && !failed ? (this.#ackedDuringPeek ??= new Set()) : undefined;
      for (const id of ids) {
        const sentHere = inflight.delete(id);
        if (skip !== undefined && (sentHere || skip.size < MAX_ACK_BATCH)) skip.add(id);
      }
      // A failed ack leaves the envelopes in the store; they go out again with the next refill.
      if (failed) this.#backlog = true;
      this.#maybeRefill();
    } catch (err) {
      this.#internal(err, undefined, 'ack');
    }
  }

  async #prekeysOwn(
    frame: ClientFrameOf<'prekeys.publish'> | ClientFrameOf<'prekeys.status'>,
  ): Promise<void> {
    const ctx = this.#ctx;
    const mailbox = this.#mailbox;
    if (mailbox === undefined) return;
    if (ctx.shuttingDown) {
      this.#error(ErrorCode.SHUTTING_DOWN, frame.rid);
      return;
    }
    ctx.opStarted();
    let remaining: number;
    try {
      remaining =
        frame.t === 'prekeys.publish'
          ? await ctx.store.publishPrekeys(
              mailbox,
              { identity: frame.identity, signedPrekey: frame.signedPrekey },
              frame.oneTime,
            )
          : await ctx.store.countPrekeys(mailbox);
    } catch (err) {
      this.#storeFailed(err, frame.rid, frame.t);
      return;
    } finally {
      ctx.opFinished();
    }
    this.#write(`{"v":${V},"t":"prekeys.count","rid":${frame.rid},"remaining":${remaining}}`);
  }

  async #prekeysFetch(frame: ClientFrameOf<'prekeys.fetch'>): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.shuttingDown) {
      this.#error(ErrorCode.SHUTTING_DOWN, frame.rid);
      return;
    }
    ctx.opStarted();
    let fetched;
    try {
      fetched = await ctx.store.fetchPrekeys(frame.mailbox);
    } catch (err) {
      this.#storeFailed(err, frame.rid, frame.t);
      return;
    } finally {
      ctx.opFinished();
    }
    this.#write(
      encodeFrame({
        v: V,
        t: 'prekeys.bundle',
        rid: frame.rid,
        mailbox: frame.mailbox,
        bundle:
          fetched === null
            ? null
            : {
                identity: fetched.identity,
                signedPrekey: fetched.signedPrekey,
                oneTime: fetched.oneTime,
              },
      }),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Delivery

  /** See {@link Recipient.deliverLive}; called by the hub for every newly stored envelope. */
  deliverLive(id: string, env: string): void {
    if (this.#phase !== Phase.Authenticated) return; // the first peek will include it
    if (this.#refilling) {
      this.#peekAgain = true;
      return;
    }
    const inflight = this.#inflight!;
    if (inflight.has(id)) return;
    if (this.#backlog) {
      // Older envelopes wait in the store; this one must not overtake them.
      this.#maybeRefill();
      return;
    }
    if (inflight.size >= this.#settings.maxInflight || !this.#socketHasRoom()) {
      this.#backlog = true;
      return;
    }
    inflight.set(id, false);
    this.#write(encodeDeliverFrame(id, env));
  }

  /**
   * False while the socket's unsent bytes are over MAX_BUFFERED_BYTES; then deliveries wait in
   * the store, and the socket's next 'drain' (its buffer written out) looks at the store again.
   */
  #socketHasRoom(): boolean {
    if (this.#ws.bufferedAmount <= this.#settings.maxBufferedBytes) return true;
    const socket = this.#socket;
    if (!this.#drainArmed && socket !== undefined) {
      this.#drainArmed = true;
      this.#ctx.logger.debug('socket backed up; deliveries wait in the store');
      socket.once('drain', this.#onDrain);
    }
    return false;
  }

  readonly #onDrain = (): void => {
    this.#drainArmed = false;
    this.#maybeRefill();
  };

  #maybeRefill(): void {
    if (
      this.#phase !== Phase.Authenticated ||
      !this.#backlog ||
      this.#refilling ||
      this.#refillRetry !== undefined ||
      this.#ctx.shuttingDown ||
      this.#inflight!.size > this.#settings.maxInflight >> 1 ||
      !this.#socketHasRoom()
    ) {
      return;
    }
    void this.#guard(this.#refill(), undefined, 'refill');
  }

  async #refill(): Promise<void> {
    const ctx = this.#ctx;
    const mailbox = this.#mailbox!;
    const inflight = this.#inflight!;
    const max = this.#settings.maxInflight;
    this.#refilling = true;
    try {
      for (;;) {
        this.#peekAgain = false;
        // The oldest envelopes come first and include everything in flight (it was sent in
        // order), so in-flight count + free slots = `max` covers what may be sent now.
        ctx.opStarted();
        let batch;
        try {
          batch = await ctx.store.peek(mailbox, max);
        } catch (err) {
          this.#scheduleRefillRetry(err);
          return;
        } finally {
          ctx.opFinished();
        }
        this.#refillAttempt = 0;
        if (this.#phase !== Phase.Authenticated) return;
        const skip = this.#ackedDuringPeek;
        this.#ackedDuringPeek = undefined;
        let complete = batch.length < max;
        for (const message of batch) {
          if (inflight.has(message.id) || skip?.has(message.id) === true) continue;
          if (inflight.size >= max || !this.#socketHasRoom()) {
            complete = false;
            break;
          }
          inflight.set(message.id, false);
          this.#write(encodeDeliverFrame(message.id, message.env));
        }
        this.#backlog = !complete || this.#peekAgain;
        if (
          !this.#peekAgain ||
          ctx.shuttingDown ||
          inflight.size >= max ||
          !this.#socketHasRoom()
        ) {
          return;
        }
      }
    } finally {
      this.#refilling = false;
      this.#ackedDuringPeek = undefined;
    }
  }

  #scheduleRefillRetry(err: unknown): void {
    this.#backlog = true;
    if (storeErrorCode(err) === undefined) this.#ctx.logger.error({ err }, 'refill failed');
    if (this.#phase !== Phase.Authenticated) return;
    const delay = Math.min(REFILL_RETRY_MAX_MS, REFILL_RETRY_MIN_MS * 2 ** this.#refillAttempt);
    this.#refillAttempt = Math.min(this.#refillAttempt + 1, 16);
    this.#refillRetry = setTimeout(
      () => {
        this.#refillRetry = undefined;
        this.#maybeRefill();
      },
      delay * (0.5 + Math.random() / 2),
    );
    this.#refillRetry.unref();
  }

  /**
   * The store may hold envelopes this connection was not told about (for instance a
   * notification from another instance lost while the store was unreachable): look again.
   */
  resync(): void {
    if (this.#phase !== Phase.Authenticated) return;
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
    this.#maybeRefill();
  }

  // ---------------------------------------------------------------------------------------
  // Heartbeat, slow consumers, closing

  /**
   * The relay's periodic tick: drop a peer that stopped answering pings, close one that
   * stopped reading, ping, and retry a held-back refill.
   */
  tick(nowMs: number): void {
    if (this.#phase === Phase.Closed) return;
    if (this.#ws.readyState !== OPEN) {
      // A peer that missed its heartbeat and has not finished the close handshake by the next
      // tick is gone: drop the socket rather than hold it for ws's own 30 s close timeout.
      if (
        this.#heartbeatCloseMs !== undefined &&
        nowMs - this.#heartbeatCloseMs >= this.#settings.pingIntervalMs / 2
      ) {
        this.#ctx.logger.debug({ closeCode: CloseCode.HEARTBEAT_TIMEOUT }, 'connection dropped');
        this.#ws.terminate();
      }
      return;
    }
    if (nowMs - this.#lastPongMs > this.#settings.heartbeatTimeoutMs) {
      // Tell a peer that can still read why (4000); one that cannot is dropped next tick.
      this.#heartbeatCloseMs = nowMs;
      this.#close(CloseCode.HEARTBEAT_TIMEOUT, 'heartbeat timeout');
      return;
    }
    const buffered = this.#ws.bufferedAmount;
    if (buffered > this.#settings.maxBufferedBytes && buffered >= this.#lastBuffered) {
      // Over the bound and no progress since the last tick: the client stopped reading.
      if (++this.#stalledTicks >= 2) {
        this.#close(CloseCode.SLOW_CONSUMER, 'slow consumer');
        return;
      }
    } else {
      this.#stalledTicks = 0;
    }
    this.#lastBuffered = buffered;
    const payload = randomBytes(PING_PAYLOAD_BYTES);
    if (this.#unansweredPings.push(payload) > MAX_UNANSWERED_PINGS) this.#unansweredPings.shift();
    this.#ws.ping(payload);
    this.#maybeRefill();
  }

  /**
   * A pong counts only when it echoes a ping this relay sent (RFC 6455 requires the echo):
   * then the peer has read everything written before that ping. Unsolicited pongs, which the
   * RFC allows, prove nothing; counting them would let a peer that never reads keep its socket,
   * and whatever is buffered for it, for ever.
   */
  #onPong(data: Buffer): void {
    const pings = this.#unansweredPings;
    const i = pings.findIndex((payload) => payload.equals(data));
    if (i < 0) return;
    pings.splice(0, i + 1);
    this.#lastPongMs = performance.now();
  }

  /** Closes with 1001 for shutdown. */
  closeGoingAway(): void {
    if (this.#ws.readyState === OPEN) this.#ws.close(CloseCode.GOING_AWAY, 'going away');
  }

  /** Drops the socket without a close handshake (end of shutdown). */
  terminate(): void {
    this.#ws.terminate();
  }

  #close(code: CloseCode, reason: string): void {
    if (this.#ws.readyState !== OPEN) return;
    // Debug, not info: anyone can open connections and misbehave, and must not be able to
    // flood the operator's log with one line per connection.
    this.#ctx.logger.debug({ closeCode: code }, 'closing connection');
    this.#ws.close(code, reason);
  }

  #onClose(): void {
    if (this.#phase === Phase.Closed) return;
    const mailbox = this.#mailbox;
    this.#phase = Phase.Closed;
    this.#nonce = undefined;
    if (this.#refillRetry !== undefined) clearTimeout(this.#refillRetry);
    this.#refillRetry = undefined;
    if (mailbox !== undefined) this.#ctx.hub.remove(mailbox, this);
    this.#ctx.connectionClosed(this);
  }

  // ---------------------------------------------------------------------------------------
  // Outgoing frames and abuse accounting

  #write(text: string): void {
    const ws = this.#ws;
    if (ws.readyState !== OPEN) return;
    if (ws.bufferedAmount > this.#settings.slowConsumerBytes) {
      this.#close(CloseCode.SLOW_CONSUMER, 'slow consumer');
      return;
    }
    const socket = this.#socket;
    if (!this.#corked && socket !== undefined) {
      // Everything written to this socket in this turn of the event loop (a read's worth of
      // answers and deliveries) leaves in one writev instead of one syscall per frame.
      socket.cork();
      this.#corked = true;
      process.nextTick(this.#uncork);
    }
    ws.send(text);
  }

  /** Ends #write's cork; one function per connection, not a new closure per corked turn. */
  readonly #uncork = (): void => {
    this.#corked = false;
    this.#socket?.uncork();
  };

  #error(code: ErrorCode, rid: number | undefined): void {
    this.#write(encodeFrame(errorFrame(code, rid)));
  }

  #storeFailed(err: unknown, rid: number | undefined, frameType: string): void {
    const code = storeErrorCode(err);
    if (code === undefined) {
      this.#internal(err, rid, frameType);
      return;
    }
    this.#error(code, rid);
  }

  /** An invalid or out-of-order frame: answer it, and close after too many in the window. */
  #reject(code: ErrorCode, rid: number | undefined, now: number): void {
    this.#error(code, rid);
    if (now - this.#invalidSinceMs > this.#settings.abuseWindowMs) {
      this.#invalidSinceMs = now;
      this.#invalid = 0;
    }
    if (++this.#invalid >= this.#settings.maxInvalidFrames) {
      this.#close(CloseCode.TOO_MANY_ERRORS, 'too many errors');
    }
  }

  #rateLimited(rid: number | undefined, now: number): void {
    this.#error(ErrorCode.RATE_LIMITED, rid);
    if (now - this.#limitedSinceMs > this.#settings.abuseWindowMs) {
      this.#limitedSinceMs = now;
      this.#limited = 0;
    }
    if (++this.#limited >= this.#settings.floodCloseAfter) {
      this.#close(CloseCode.FLOODING, 'flooding');
    }
  }
}
