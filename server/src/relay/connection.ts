/**
 * One WebSocket connection to the relay: the challenge, frame dispatch, rate limits, heartbeat
 * and closing. Never decrypts; envelopes stay the base64url text they came in. Delivery (the
 * in-flight window, backlog and refill) is delivery.ts, behind a port; every frame goes out
 * through outbox.ts.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { ErrorCode, CloseCode } from '@passage/shared/protocol/errors';
import type { ClientFrameOf } from '@passage/shared/protocol/frames';
import { fromBase64url } from '@passage/shared/protocol/base64url';
import { mailboxIdFromPublicKey } from '@passage/shared/protocol/mailbox';
import {
  encodeAuthedFrame,
  encodeChallengeFrame,
  encodeFirstContactCountFrame,
  encodePongFrame,
  encodePowAdmittedFrame,
  encodePowChallengeFrame,
  encodePrekeysBundleFrame,
  encodePrekeysCountFrame,
  encodeStoredFrame,
  encodeBlobReservedFrame,
  encodeStateBlobFrame,
  encodeStateDeletedFrame,
  encodeStateStoredFrame,
} from '@passage/shared/protocol/encode';
import {
  BLOB_ID_BYTES,
  BLOB_RESERVATION_TTL_MS,
  BLOB_TOKEN_BYTES,
  MAX_BLOB_RESERVATIONS_PER_CONNECTION,
} from '@passage/shared/protocol/limits';
import { parseClientFrame } from '@passage/shared/protocol/parse';
import type { RelaySettings } from '../config.js';
import { sha256 } from '../sha256.js';
import type { Logger } from '../log.js';
import {
  hasSharedRateLimits,
  type EnqueueResult,
  type PeekBounds,
  type PeekPage,
  type OneTimePrekeyMode,
  type Store,
} from '../store/store.js';
import type { Admission, Admittee } from './admission.js';
import { FirstContact, type AdmissionGauge } from './first-contact.js';
import { SenderShares, type MailboxSendLimiter } from './fair-share.js';
import { newNonce, verifyChallenge } from './auth.js';
import type { Backpressure, Pausable } from './backpressure.js';
import { Delivery, type DeliveryStore } from './delivery.js';
import type { Hub, Recipient } from './hub.js';
import type { InputBudget, InputHolder, OutputBudget } from './io-budget.js';
import { unfinishedInputBytes } from './ws-internals.js';
import { peekRequestId } from './peek-rid.js';
import { TokenBucket, type KeyedRateLimiter } from './rate-limit.js';
import type { LoadCounters } from './load-report.js';
import { OPEN, Outbox } from './outbox.js';
import { wireErrorOf } from './store-errors.js';

/** What a connection needs from the relay that owns it. */
export interface RelayContext {
  readonly store: Store;
  readonly hub: Hub;
  readonly logger: Logger;
  readonly settings: RelaySettings;
  /** Send rate per target mailbox, in fair shares of the connections writing to it. */
  readonly mailboxLimiter: MailboxSendLimiter;
  /**
   * Prekey-fetch rate per target mailbox, shared by all connections; separate from the send
   * rate, with a burst well below the one-time prekeys a device keeps.
   */
  readonly prekeyFetchLimiter: KeyedRateLimiter;
  /** `prekeys.publish` frames over all connections of this relay. */
  readonly prekeyPublishLimiter: TokenBucket;
  /** Proof-of-work difficulty for first contact, shared by all connections (first-contact.ts). */
  readonly firstContactGauge: AdmissionGauge;
  /** True from the moment shutdown begins. */
  readonly shuttingDown: boolean;
  /** The store operations of delivery, bracketed (a TrackedDeliveryStore of this context). */
  readonly deliveryStore: DeliveryStore;
  /** Connection slots: the auth window, anonymous senders, connections per mailbox. */
  readonly admission: Admission;
  /** Unfinished incoming messages over all connections, and their bound. */
  readonly inputBudget: InputBudget;
  /** Unsent bytes over all connections, and their bound. */
  readonly outputBudget: OutputBudget;
  /** Pauses reading from connections while the store is behind. */
  readonly backpressure: Backpressure;
  /** What the relay did under load, for the operator's log. */
  readonly load: LoadCounters;
  /** Brackets every store operation so that shutdown can wait for them. */
  opStarted(): void;
  opFinished(): void;
  /** Called once when the socket has closed. */
  connectionClosed(connection: Connection): void;
}

/**
 * Where a connection is in its life; each phase holds what only it has, so a mailbox or a
 * delivery cannot be read before auth, nor a nonce after it.
 */
type Phase =
  /** Challenge sent; may send, fetch prekeys and authenticate. `nonce` is the unused
   * challenge, undefined once a failed auth spent it (single use). */
  | { readonly name: 'open'; readonly nonce: Buffer | undefined }
  /** Signature verified; the store subscription is being set up. The nonce stays valid until
   * then, so that the same auth may be retried if the store cannot be reached. */
  | { readonly name: 'authenticating'; readonly nonce: Buffer }
  | { readonly name: 'authenticated'; readonly mailbox: string; readonly delivery: Delivery }
  | { readonly name: 'closed' };

const CLOSED: Phase = { name: 'closed' };

/**
 * Most `prekeys.publish` frames one connection may send: a device fills its 100 one-time
 * prekeys in four publishes of at most 32, with room for retries.
 */
export const MAX_PREKEY_PUBLISHES_PER_CONNECTION = 8;

/** Where a socket (the WebSocket, and the Duplex under it) keeps its connection. */
const CONNECTION = Symbol('connection');
interface Tagged {
  [CONNECTION]: Connection;
}
function connectionOf(socket: WebSocket | Duplex): Connection {
  return (socket as unknown as Tagged)[CONNECTION];
}

/** Bytes of the random payload of each WebSocket ping, which the peer's pong must echo. */
const PING_PAYLOAD_BYTES = 8;
/** Most unanswered ping payloads remembered per connection; the oldest is forgotten first. */
const MAX_UNANSWERED_PINGS = 16;
/**
 * Longest the relay stops reading from a connection past its frame or byte rate, in ms (see
 * holdReading); it reads again then even if the rate has not refilled.
 */
export const MAX_RATE_HOLD_MS = 250;
/** How long a connection closed by admission has to finish the close handshake, in ms. */
const EVICT_CLOSE_MS = 2_000;

export class Connection implements Recipient, Admittee, InputHolder, Pausable {
  readonly #ws: WebSocket;
  readonly #ctx: RelayContext;
  readonly #settings: RelaySettings;
  readonly #out: Outbox;
  #phase: Phase;
  readonly #frames: TokenBucket;
  /** Bytes of the messages this connection sends (`connBytesPerSecond`, `connByteBurst`). */
  readonly #bytes: TokenBucket;
  /**
   * Challenges issued and mailboxes admitted to on this connection (first contact); made on the
   * first `send` or `pow.request`, since most connections (recipients) never send.
   */
  #firstContact: FirstContact | undefined;
  /** This connection's shares of the send rates of the mailboxes it writes to; from its first send. */
  #shares: SenderShares | undefined;

  /** `prekeys.publish` frames accepted on this connection. */
  #publishes = 0;
  /** `blob.reserve` frames answered (or at the store) on this connection. */
  #reservations = 0;

  // Abuse accounting: strikes within the current window.
  #invalid = 0;
  #invalidSinceMs = 0;
  #limited = 0;
  #limitedSinceMs = 0;

  /** When this connection opened, in performance.now() ms. */
  readonly #openedMs: number;

  // Heartbeat and slow-consumer state.
  #lastPongMs: number;
  /** Payloads of the pings sent and not yet echoed, oldest first. */
  readonly #unansweredPings: Buffer[] = [];
  /** When the relay closed this connection for a missed heartbeat. */
  #heartbeatCloseMs: number | undefined;
  #lastBuffered = 0;
  #stalledTicks = 0;
  /** True while backpressure has stopped reading from this socket (pongs are not read either). */
  #readingPaused = false;
  /**
   * Set while the relay does not read from this socket because the connection is past its frame
   * or byte rate (see holdReading); the timer that reads again.
   */
  #rateHold: NodeJS.Timeout | undefined;

  /**
   * Ends the auth window (AUTH_TIMEOUT_MS); cleared by auth or close, and stopped while the relay
   * is not reading from the socket (the client cannot authenticate then: see pauseReading).
   */
  #authTimer: NodeJS.Timeout | undefined;
  /** When the running auth window ends, in performance.now() ms. */
  #authDeadlineMs = 0;
  /** What was left of the auth window when the relay stopped reading; undefined otherwise. */
  #authRemainingMs: number | undefined;
  /**
   * True once the auth window ended while an auth was at the store: if that auth fails, the
   * connection is back in the open phase with its window over, and is dealt with then.
   */
  #authWindowOver = false;
  /** True once this connection sent a `send` before (or without) authenticating. */
  #sentAnonymously = false;
  /**
   * `ws` is the WebSocket made of the `upgrade` event's `socket`, which it reads from and writes
   * to: the connection accounts for unfinished input after each read of it, and the outbox corks
   * it and waits for its 'drain' (`ws` has no public cork or 'drain' of its own).
   */
  constructor(ws: WebSocket, socket: Duplex, ctx: RelayContext, nowMs: number) {
    this.#ws = ws;
    this.#ctx = ctx;
    this.#settings = ctx.settings;
    this.#out = new Outbox(ws, socket, ctx);
    this.#frames = new TokenBucket(
      ctx.settings.connFramesPerSecond,
      ctx.settings.connFrameBurst,
      nowMs,
    );
    this.#bytes = new TokenBucket(
      ctx.settings.connBytesPerSecond,
      ctx.settings.connByteBurst,
      nowMs,
    );
    this.#openedMs = nowMs;
    this.#lastPongMs = nowMs;
    // The listeners are shared functions that find this connection on the socket, rather than
    // closures made per connection: an idle connection's memory is mostly what it holds for ever.
    (ws as unknown as Tagged)[CONNECTION] = this;
    (socket as unknown as Tagged)[CONNECTION] = this;
    ws.on('message', Connection.#wsMessage);
    ws.on('pong', Connection.#wsPong);
    ws.on('ping', Connection.#wsPing);
    ws.on('close', Connection.#wsClose);
    // ws reports protocol violations (bad UTF-8, oversized frames) here and then closes the
    // socket itself with the right code; without a listener the error would crash the process.
    ws.on('error', Connection.#wsError);
    // Added after ws's own 'data' listener (ws took the socket before the 'connection'
    // callback), so it runs once ws has parsed the read.
    socket.on('data', Connection.#socketData);
    const nonce = newNonce();
    this.#phase = { name: 'open', nonce };
    ctx.admission.opened(this);
    this.#armAuthWindow(this.#settings.authTimeoutMs);
    this.#write(encodeChallengeFrame(nonce.toString('base64url')));
  }

  /** Unsent bytes on this socket now. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** See {@link Admittee.evict}: close with `code`, and drop the socket if that takes long. */
  evict(code: CloseCode, reason: string): void {
    this.#close(code, reason);
    setTimeout(() => this.#ws.terminate(), EVICT_CLOSE_MS).unref();
  }

  /** See {@link InputHolder.readingPaused}. */
  get readingPaused(): boolean {
    return this.#readingPaused;
  }

  /** See {@link InputHolder.dropForInput}. */
  dropForInput(): void {
    this.#ctx.logger.debug('unfinished input over its bound; connection dropped');
    this.#ws.terminate();
  }

  static #wsMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
    connectionOf(this).#onMessage(data, isBinary);
  }

  static #wsPong(this: WebSocket, data: Buffer): void {
    connectionOf(this).#onPong(data);
  }

  static #wsPing(this: WebSocket, data: Buffer): void {
    connectionOf(this).#onPing(data);
  }

  static #wsClose(this: WebSocket): void {
    connectionOf(this).#onClose();
  }

  static #wsError(this: WebSocket, err: Error): void {
    connectionOf(this).#ctx.logger.debug({ err }, 'websocket error');
  }

  static #socketData(this: Duplex): void {
    const connection = connectionOf(this);
    connection.#ctx.inputBudget.update(connection, unfinishedInputBytes(connection.#ws));
  }

  static #authWindowTimer(connection: Connection): void {
    connection.#authTimer = undefined;
    connection.#onAuthWindowEnded();
  }

  static #rateHoldTimer(connection: Connection): void {
    connection.#rateHold = undefined;
    // Backpressure may have paused reading meanwhile; it resumes it then.
    if (!connection.#readingPaused && connection.#phase.name !== 'closed') connection.#ws.resume();
  }

  /** This connection's first-contact state, made on first use. */
  #admissions(): FirstContact {
    return (this.#firstContact ??= new FirstContact(this.#ctx.firstContactGauge, this.#settings));
  }

  /** See {@link FirstContact.paid}; a connection that never used first contact has not paid. */
  get #paid(): boolean {
    return this.#firstContact?.paid ?? !this.#ctx.firstContactGauge.enabled;
  }

  #armAuthWindow(ms: number): void {
    this.#authDeadlineMs = performance.now() + ms;
    this.#authTimer = setTimeout(Connection.#authWindowTimer, ms, this);
    this.#authTimer.unref();
  }

  #clearAuthWindow(): void {
    clearTimeout(this.#authTimer);
    this.#authTimer = undefined;
    this.#authRemainingMs = undefined;
  }

  #onAuthWindowEnded(): void {
    const phase = this.#phase.name;
    if (phase === 'authenticating') {
      // Decided by the auth at the store: kept if it succeeds, closed below if it fails.
      this.#authWindowOver = true;
      return;
    }
    if (phase !== 'open') return;
    if (this.#ctx.admission.authWindowEnded(this, this.#sentAnonymously)) return;
    this.evict(CloseCode.AUTH_TIMEOUT, 'auth timeout');
  }

  /** True once authenticated (for tests and metrics). */
  get authenticated(): boolean {
    return this.#phase.name === 'authenticated';
  }

  // ---------------------------------------------------------------------------------------
  // Incoming frames

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#phase.name === 'closed' || this.#ws.readyState !== OPEN) return;
    // While the store is behind, read no further from this socket (this frame is handled).
    this.#ctx.backpressure.onFrame(this);
    const now = performance.now();
    try {
      if (isBinary) {
        this.#take(now, (data as Buffer).length);
        this.#reject(ErrorCode.BINARY_NOT_SUPPORTED, undefined, now);
        return;
      }
      // With ws's default binaryType ('nodebuffer') a message is always one Buffer.
      const bytes = (data as Buffer).length;
      // Over the connection's rate a frame with a rid is refused whatever it says (a frame with
      // a rid is never an ack, the one frame the rate exempts), so it is answered before it is
      // parsed: most of a flood is these, and parsing them cost the event loop its others' time.
      if (!this.#hasRate(now, bytes)) {
        const early = peekRequestId(data as Buffer);
        if (early !== undefined) {
          this.#rateLimited(early, now);
          this.#holdReading(now, bytes);
          return;
        }
      }
      const parsed = parseClientFrame((data as Buffer).toString());
      if (!parsed.ok) {
        this.#take(now, bytes);
        this.#reject(parsed.error.code, parsed.error.rid, now);
        return;
      }
      const frame = parsed.value;
      const rid = frame.t === 'ack' ? undefined : frame.rid;
      const phase = this.#phase;
      // Acknowledging what this connection delivered is free: a client that acks a full window
      // message by message must never be refused (acks carry no rid, so it could not retry).
      const freeAck =
        frame.t === 'ack' && phase.name === 'authenticated' && phase.delivery.firstAcks(frame.ids);
      if (!freeAck && !this.#take(now, bytes)) {
        this.#rateLimited(rid, now);
        this.#holdReading(now, bytes);
        return;
      }
      switch (frame.t) {
        case 'send':
          // Admission first: a connection that has not paid for this mailbox must not spend
          // the mailbox's send rate, which everyone writing to it shares.
          if (!this.#admissions().takeSend(frame.to)) {
            this.#error(ErrorCode.POW_REQUIRED, rid);
            return;
          }
          // Only a paid send makes an anonymous sender worth keeping past the auth window: an
          // unpaid one must not earn a slot in MAX_ANONYMOUS_CONNECTIONS (that would let free
          // junk sends cycle the slots and displace contacts who paid).
          if (phase.name !== 'authenticated') this.#sentAnonymously = true;
          if (
            this.#ctx.mailboxLimiter.take(
              frame.to,
              (this.#shares ??= new SenderShares(this.#openedMs)),
              now,
            ) !== 'ok'
          ) {
            this.#firstContact?.refund(frame.to);
            this.#rateLimited(rid, now);
            return;
          }
          void this.#send(frame);
          return;
        case 'pow.request':
          this.#write(
            encodePowChallengeFrame(frame.rid, this.#admissions().request(frame.to, Date.now())),
          );
          return;
        case 'pow.solve': {
          const solved = this.#admissions().solve(frame.nonce, frame.solution, Date.now());
          if (!solved.ok) {
            this.#reject(ErrorCode.POW_FAILED, rid, now);
            return;
          }
          this.#write(encodePowAdmittedFrame(frame.rid, solved.to, solved.sends));
          return;
        }
        case 'ack':
          if (phase.name !== 'authenticated') {
            this.#reject(ErrorCode.NOT_AUTHENTICATED, undefined, now);
            return;
          }
          phase.delivery.queueAck(frame.ids);
          return;
        case 'ping':
          this.#write(encodePongFrame(frame.rid));
          return;
        case 'auth':
          if (phase.name !== 'open') {
            this.#reject(ErrorCode.ALREADY_AUTHENTICATED, rid, now);
            return;
          }
          void this.#guard(this.#auth(frame, phase.nonce, now), rid, frame.t);
          return;
        case 'prekeys.publish':
        case 'prekeys.status':
          if (phase.name !== 'authenticated') {
            this.#reject(ErrorCode.NOT_AUTHENTICATED, rid, now);
            return;
          }
          if (frame.t === 'prekeys.publish' && !this.#mayPublish(now)) {
            this.#rateLimited(rid, now);
            return;
          }
          void this.#guard(this.#prekeysOwn(frame, phase.mailbox), rid, frame.t);
          return;
        case 'firstcontact.status': {
          if (phase.name !== 'authenticated') {
            this.#reject(ErrorCode.NOT_AUTHENTICATED, rid, now);
            return;
          }
          const signal = this.#ctx.firstContactGauge.signal(phase.mailbox, Date.now());
          this.#write(
            encodeFirstContactCountFrame(
              frame.rid,
              signal.admissions,
              signal.bits,
              signal.likelySpam,
            ),
          );
          return;
        }
        case 'state.put':
        case 'state.get':
        case 'state.delete':
          if (phase.name !== 'authenticated') {
            this.#reject(ErrorCode.NOT_AUTHENTICATED, rid, now);
            return;
          }
          // Creating a state stores 64 KiB for the queue TTL, and any fresh key authenticates:
          // it needs a solved proof-of-work on this connection, checked before the store is
          // asked, so the answer says nothing about whether a state is held (ADR 0014).
          if (frame.t === 'state.put' && frame.ifGeneration === 0 && !this.#paid) {
            this.#error(ErrorCode.POW_REQUIRED, rid);
            return;
          }
          void this.#guard(this.#state(frame, phase.mailbox), rid, frame.t);
          return;
        case 'blob.reserve':
          if (phase.name !== 'authenticated') {
            this.#reject(ErrorCode.NOT_AUTHENTICATED, rid, now);
            return;
          }
          if (!this.#paid) {
            this.#error(ErrorCode.POW_REQUIRED, rid);
            return;
          }
          if (this.#reservations >= MAX_BLOB_RESERVATIONS_PER_CONNECTION) {
            this.#error(ErrorCode.BLOB_RESERVATIONS_SPENT, rid);
            return;
          }
          this.#reservations++;
          void this.#guard(this.#reserveBlob(frame.rid), rid, frame.t);
          return;
        case 'prekeys.fetch':
          // A one-time prekey is handed out at a small rate and burst per target mailbox of
          // its own, so no one can empty a device's one-time prekeys at once (nor starve its
          // messages). A fetch past it is not refused: it gets the bundle without a one-time
          // prekey, with which PQXDH still runs, so any number of new contacts can start
          // sessions (ADR 0023). Plain fetches are bounded by this connection's frame rate.
          void this.#guard(
            this.#prekeysFetch(
              frame,
              this.#ctx.prekeyFetchLimiter.take(frame.mailbox, now) ? 'take' : 'withhold',
            ),
            rid,
            frame.t,
          );
          return;
      }
    } catch (err) {
      this.#internal(err, undefined, 'message');
    }
  }

  /**
   * A publish stores up to two 4 KiB parts and 32 one-time prekeys for as long as the prekey
   * TTL, and any fresh key can authenticate: bounded per connection (one mailbox each) and
   * relay-wide, so throwaway identities cannot fill the store with bundles.
   */
  #mayPublish(now: number): boolean {
    if (this.#publishes >= MAX_PREKEY_PUBLISHES_PER_CONNECTION) return false;
    if (!this.#ctx.prekeyPublishLimiter.take(now)) return false;
    this.#publishes++;
    return true;
  }

  /**
   * Counts one frame of `bytes` bytes against the frame rate and the byte rate; a frame either
   * rate refuses spends from neither (a refusal for bytes must not also cost a frame).
   */
  #take(now: number, bytes: number): boolean {
    if (!this.#hasRate(now, bytes)) return false;
    this.#frames.take(now);
    this.#bytes.take(now, bytes);
    return true;
  }

  /** True when a frame of `bytes` bytes is within both the frame rate and the byte rate now. */
  #hasRate(now: number, bytes: number): boolean {
    return this.#frames.has(now) && this.#bytes.has(now, bytes);
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
    this.#out.internal(err, rid, frameType);
  }

  async #auth(frame: ClientFrameOf<'auth'>, nonce: Buffer | undefined, now: number): Promise<void> {
    const pk = fromBase64url(frame.pk);
    const sig = fromBase64url(frame.sig);
    if (nonce === undefined || pk === undefined || sig === undefined) {
      this.#reject(ErrorCode.AUTH_FAILED, frame.rid, now);
      return;
    }
    if (!verifyChallenge(pk, frame.pk, sig, nonce)) {
      this.#phase = { name: 'open', nonce: undefined }; // single use: a failed attempt spends it
      this.#reject(ErrorCode.AUTH_FAILED, frame.rid, now);
      return;
    }
    if (this.#ctx.shuttingDown) {
      this.#error(ErrorCode.SHUTTING_DOWN, frame.rid);
      return;
    }
    // Kept for the connection's life, as the key of its hub, admission and delivery entries: one
    // flat copy (the encoder's `+=` leaves V8 a tree of about ten string pieces, 256 bytes more).
    const mailbox = Buffer.from(mailboxIdFromPublicKey(pk, sha256), 'latin1').toString('latin1');
    const authenticating: Phase = { name: 'authenticating', nonce };
    this.#phase = authenticating;
    this.#ctx.opStarted();
    try {
      // Subscribe first, then peek (in the delivery's first refill): the other order misses an
      // envelope enqueued on another instance between the two.
      await this.#ctx.hub.add(mailbox, this);
    } catch (err) {
      // Verified, but the store could not be reached: the nonce stays valid, so the client
      // may retry the same auth frame on this connection.
      if (this.#phase === authenticating) this.#phase = { name: 'open', nonce };
      this.#storeFailed(err, frame.rid, 'auth');
      // Its window ended meanwhile: it gets no new one (it would be unauthenticated with no
      // timer at all), but the same end as any connection whose window ends unauthenticated.
      if (this.#authWindowOver && this.#phase.name === 'open') {
        this.#authWindowOver = false;
        this.#onAuthWindowEnded();
      }
      return;
    } finally {
      this.#ctx.opFinished();
    }
    if (this.#phase !== authenticating) {
      // Closed while subscribing.
      this.#ctx.hub.remove(mailbox, this);
      return;
    }
    const ctx = this.#ctx;
    const delivery = new Delivery(mailbox, ctx.deliveryStore, this.#out, this.#settings);
    this.#phase = { name: 'authenticated', mailbox, delivery };
    this.#clearAuthWindow();
    this.#ctx.admission.authenticated(this, mailbox);
    this.#out.drainListener = delivery;
    this.#write(encodeAuthedFrame(frame.rid, mailbox));
    delivery.start();
  }

  /** The hot path. Never rejects: every failure becomes an error frame. */
  async #send(frame: ClientFrameOf<'send'>): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.shuttingDown) {
      this.#firstContact?.refund(frame.to);
      this.#error(ErrorCode.SHUTTING_DOWN, frame.rid);
      return;
    }
    ctx.opStarted();
    let result: EnqueueResult;
    try {
      result = await ctx.store.enqueue(frame.to, frame.id, frame.env);
    } catch (err) {
      ctx.opFinished();
      this.#firstContact?.refund(frame.to);
      this.#storeFailed(err, frame.rid, 'send');
      // Unreachable or a bug: the envelope may be stored all the same (the store's answer,
      // not the command, was lost). The sender's resend is then a 'duplicate', which is not
      // delivered live, so this relay's connections of the mailbox must look in the store.
      const code = wireErrorOf(err);
      if (code === undefined || code === ErrorCode.UNAVAILABLE) ctx.hub.resync(frame.to);
      return;
    }
    ctx.opFinished();
    try {
      // Only a newly stored envelope is new to the recipient; a duplicate was delivered (or is
      // queued) already. Delivery comes after the store confirmed, so an ack can always delete.
      if (result === 'stored') ctx.hub.deliver(frame.to, frame.id, frame.env);
      else this.#firstContact?.refund(frame.to);
      this.#write(encodeStoredFrame(frame.rid, frame.id));
    } catch (err) {
      this.#internal(err, frame.rid, 'send');
    }
  }

  async #prekeysOwn(
    frame: ClientFrameOf<'prekeys.publish'> | ClientFrameOf<'prekeys.status'>,
    mailbox: string,
  ): Promise<void> {
    const ctx = this.#ctx;
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
    this.#write(encodePrekeysCountFrame(frame.rid, remaining));
  }

  /** `prekeys.fetch`: with one of the owner's one-time prekeys if `mode` is 'take' and the
   * shared rate (several relays on one store) has one for this mailbox too, else without. */
  async #prekeysFetch(
    frame: ClientFrameOf<'prekeys.fetch'>,
    mode: OneTimePrekeyMode,
  ): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.shuttingDown) {
      this.#error(ErrorCode.SHUTTING_DOWN, frame.rid);
      return;
    }
    ctx.opStarted();
    let fetched;
    try {
      // On a store shared by several relays the one-time prekey rate holds across all of them
      // (each relay's own limiter alone would let N relays hand out N times the owner's
      // one-time prekeys). Past it the fetch still gets the bundle, without one.
      if (
        mode === 'take' &&
        hasSharedRateLimits(ctx.store) &&
        !(await ctx.store.takeShared('prekey-fetch', frame.mailbox, {
          perSecond: this.#settings.prekeyFetchesPerSecond,
          burst: this.#settings.prekeyFetchBurst,
        }))
      ) {
        mode = 'withhold';
      }
      fetched = await ctx.store.fetchPrekeys(frame.mailbox, mode);
    } catch (err) {
      this.#storeFailed(err, frame.rid, frame.t);
      return;
    } finally {
      ctx.opFinished();
    }
    this.#write(encodePrekeysBundleFrame(frame.rid, frame.mailbox, fetched));
  }

  /** `state.put`, `state.get` and `state.delete` of the authenticated mailbox. */
  async #state(
    frame: ClientFrameOf<'state.put'> | ClientFrameOf<'state.get'> | ClientFrameOf<'state.delete'>,
    mailbox: string,
  ): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.shuttingDown) {
      this.#error(ErrorCode.SHUTTING_DOWN, frame.rid);
      return;
    }
    ctx.opStarted();
    let answer: string;
    try {
      if (frame.t === 'state.put') {
        // Random, never a counter: a delete and a new put must not hand out a generation a
        // stale tab still holds. 1 … 2^48 - 1 (randomInt's range); drawn until it differs.
        let generation = randomInt(1, 2 ** 48);
        while (generation === frame.ifGeneration) generation = randomInt(1, 2 ** 48);
        const result = await ctx.store.putState(
          mailbox,
          frame.blob,
          frame.ifGeneration,
          generation,
        );
        if (result === 'conflict') {
          this.#error(ErrorCode.STATE_CONFLICT, frame.rid);
          return;
        }
        answer = encodeStateStoredFrame(frame.rid, result.generation);
      } else if (frame.t === 'state.get') {
        answer = encodeStateBlobFrame(frame.rid, await ctx.store.getState(mailbox));
      } else {
        await ctx.store.deleteState(mailbox);
        answer = encodeStateDeletedFrame(frame.rid);
      }
    } catch (err) {
      this.#storeFailed(err, frame.rid, frame.t);
      return;
    } finally {
      ctx.opFinished();
    }
    this.#write(answer);
  }

  /** `blob.reserve`: a fresh id and upload token; the store keeps the token's SHA-256. */
  async #reserveBlob(rid: number): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.shuttingDown) {
      this.#reservations--;
      this.#error(ErrorCode.SHUTTING_DOWN, rid);
      return;
    }
    const token = randomBytes(BLOB_TOKEN_BYTES);
    const tokenHash = sha256(token);
    let id = '';
    ctx.opStarted();
    try {
      // A 128-bit random id is never taken in practice; the store refuses one that is, and a
      // second draw settles it.
      for (let attempt = 0; attempt < 2 && id === ''; attempt++) {
        const candidate = randomBytes(BLOB_ID_BYTES).toString('base64url');
        if (
          await ctx.store.reserveBlob(
            candidate,
            Buffer.from(tokenHash).toString('base64url'),
            BLOB_RESERVATION_TTL_MS,
          )
        ) {
          id = candidate;
        }
      }
      if (id === '') throw new Error('blob.reserve: two random ids taken');
    } catch (err) {
      this.#reservations--;
      this.#storeFailed(err, rid, 'blob.reserve');
      return;
    } finally {
      ctx.opFinished();
    }
    this.#write(
      encodeBlobReservedFrame(
        rid,
        id,
        token.toString('base64url'),
        Date.now() + BLOB_RESERVATION_TTL_MS,
      ),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Delivery (delivery.ts)

  /** See {@link Recipient.deliverLive}; called by the hub for every newly stored envelope. */
  deliverLive(id: string, env: string): void {
    // Before auth completes there is nothing to do: the first refill's peek will include it.
    const phase = this.#phase;
    if (phase.name === 'authenticated') phase.delivery.deliverLive(id, env);
  }

  /** See {@link Recipient.resync}. */
  resync(): void {
    const phase = this.#phase;
    if (phase.name === 'authenticated') phase.delivery.resync();
  }

  // ---------------------------------------------------------------------------------------
  // Backpressure (backpressure.ts)

  /**
   * See {@link Pausable.pauseReading}. The auth window stops with the reading: a client the
   * relay does not read cannot authenticate, and must not be closed for the relay's pause.
   */
  pauseReading(): void {
    this.#readingPaused = true;
    if (this.#authTimer !== undefined) {
      clearTimeout(this.#authTimer);
      this.#authTimer = undefined;
      this.#authRemainingMs = Math.max(0, this.#authDeadlineMs - performance.now());
    }
    this.#ws.pause();
  }

  /**
   * A frame past the connection's rate was refused: read nothing more from this socket until the
   * rate has a token again (for a frame of `bytes` bytes), so that a flooder's refused frames
   * cost the relay at most about one per token rather than all its socket can carry; the
   * flooder's own TCP window then holds the rest. Frames `ws` has already read still arrive
   * (each refused, without a second timer).
   */
  #holdReading(now: number, bytes: number): void {
    if (this.#rateHold !== undefined || this.#phase.name === 'closed') return;
    // Until the refused frame would pass, at most MAX_RATE_HOLD_MS: the next frame may be
    // smaller than a frame refused for its bytes (or that one may be past the burst for ever).
    const waitMs = Math.min(
      MAX_RATE_HOLD_MS,
      Math.max(this.#frames.msUntil(now), this.#bytes.msUntil(now, bytes)),
    );
    if (waitMs <= 0) return;
    this.#ws.pause();
    this.#rateHold = setTimeout(Connection.#rateHoldTimer, Math.ceil(waitMs), this);
    this.#rateHold.unref();
  }

  /** See {@link Pausable.resumeReading}. */
  resumeReading(): void {
    this.#readingPaused = false;
    // Pongs that arrived while the relay was not reading could not be seen: the heartbeat
    // starts over rather than blame the peer for the relay's pause.
    this.#lastPongMs = performance.now();
    // The auth window goes on with what was left of it when reading paused.
    const remaining = this.#authRemainingMs;
    if (remaining !== undefined && this.#phase.name !== 'closed') {
      this.#authRemainingMs = undefined;
      this.#armAuthWindow(remaining);
    }
    // A rate hold still running resumes reading when it ends.
    if (this.#rateHold === undefined) this.#ws.resume();
  }

  // ---------------------------------------------------------------------------------------
  // Heartbeat, slow consumers, closing

  /**
   * The relay's periodic tick: drop a peer that stopped answering pings, close one that
   * stopped reading, ping, and retry a held-back refill.
   */
  tick(nowMs: number): void {
    const phase = this.#phase;
    if (phase.name === 'closed') return;
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
    if (!this.#readingPaused && nowMs - this.#lastPongMs > this.#settings.heartbeatTimeoutMs) {
      // Tell a peer that can still read why (HEARTBEAT_TIMEOUT); one that cannot is dropped next tick.
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
    this.#out.account();
    const payload = randomBytes(PING_PAYLOAD_BYTES);
    if (this.#unansweredPings.push(payload) > MAX_UNANSWERED_PINGS) this.#unansweredPings.shift();
    this.#ws.ping(payload);
    // Retry a held-back refill (for instance after the socket drained below its bound).
    if (phase.name === 'authenticated') phase.delivery.resume();
  }

  /**
   * A pong counts only when it echoes a ping this relay sent (RFC 6455 requires the echo):
   * then the peer has read everything written before that ping. Unsolicited pongs, which the
   * RFC allows, prove nothing; counting them would let a peer that never reads keep its socket,
   * and whatever is buffered for it, for ever.
   */
  /**
   * A client's WebSocket ping counts against the connection's frame rate like any frame (a ping
   * costs the relay a pong); one past the rate gets no pong and a strike towards FLOODING.
   */
  #onPing(data: Buffer): void {
    if (this.#phase.name === 'closed' || this.#ws.readyState !== OPEN) return;
    const now = performance.now();
    if (!this.#frames.take(now)) {
      this.#strike(now);
      this.#holdReading(now, 0);
      return;
    }
    this.#out.pong(data);
  }

  #onPong(data: Buffer): void {
    const pings = this.#unansweredPings;
    const i = pings.findIndex((payload) => payload.equals(data));
    if (i < 0) return;
    pings.splice(0, i + 1);
    this.#lastPongMs = performance.now();
  }

  /** Closes with GOING_AWAY for shutdown. */
  closeGoingAway(): void {
    if (this.#ws.readyState === OPEN) this.#ws.close(CloseCode.GOING_AWAY, 'going away');
  }

  /** Drops the socket without a close handshake (end of shutdown). */
  terminate(): void {
    this.#ws.terminate();
  }

  #close(code: CloseCode, reason: string): void {
    this.#out.close(code, reason);
  }

  #onClose(): void {
    const phase = this.#phase;
    if (phase.name === 'closed') return;
    this.#phase = CLOSED;
    this.#clearAuthWindow();
    clearTimeout(this.#rateHold);
    this.#rateHold = undefined;
    this.#ctx.admission.closed(this);
    this.#ctx.inputBudget.update(this, 0);
    this.#out.release();
    this.#ctx.backpressure.forget(this);
    if (phase.name === 'authenticated') {
      phase.delivery.close();
      this.#ctx.hub.remove(phase.mailbox, this);
    }
    this.#ctx.connectionClosed(this);
  }

  // ---------------------------------------------------------------------------------------
  // Outgoing frames and abuse accounting

  #write(text: string): void {
    this.#out.write(text);
  }

  #error(code: ErrorCode, rid: number | undefined): void {
    this.#out.error(code, rid);
  }

  #storeFailed(err: unknown, rid: number | undefined, frameType: string): void {
    this.#out.storeFailed(err, rid, frameType);
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
    this.#strike(now);
  }

  /** One rate-limited frame; too many within the window close the connection (FLOODING). */
  #strike(now: number): void {
    if (now - this.#limitedSinceMs > this.#settings.abuseWindowMs) {
      this.#limitedSinceMs = now;
      this.#limited = 0;
    }
    if (++this.#limited >= this.#settings.floodCloseAfter) {
      this.#close(CloseCode.FLOODING, 'flooding');
    }
  }
}

/**
 * The store operations delivery needs, each bracketed by `opStarted`/`opFinished` so that
 * shutdown waits for it. One per relay, shared by its connections.
 */
export class TrackedDeliveryStore implements DeliveryStore {
  readonly #ctx: Pick<RelayContext, 'store' | 'opStarted' | 'opFinished'>;

  constructor(ctx: Pick<RelayContext, 'store' | 'opStarted' | 'opFinished'>) {
    this.#ctx = ctx;
  }

  async peek(mailbox: string, bounds: PeekBounds): Promise<PeekPage> {
    const ctx = this.#ctx;
    ctx.opStarted();
    try {
      return await ctx.store.peekAfter(mailbox, bounds);
    } finally {
      ctx.opFinished();
    }
  }

  async ack(mailbox: string, ids: readonly string[]): Promise<void> {
    const ctx = this.#ctx;
    ctx.opStarted();
    try {
      await ctx.store.ack(mailbox, ids);
    } finally {
      ctx.opFinished();
    }
  }
}
