/**
 * One logical connection to the relay, kept up for as long as the application wants it:
 *
 *   idle → connecting → authenticating → ready → (lost) → waiting → connecting → …
 *                     ↘ (no identity) ready               ↘ failed (auth refused)      closed
 *
 * - **connecting**: a socket is opening; the relay's `challenge` must come within
 *   `openTimeoutMs`.
 * - **authenticating**: the device signs `"passage/v1/auth-challenge" ‖ 0 ‖ nonce` with its
 *   Ed25519 key and sends `auth`; `authed` must name the mailbox derived from that key. The relay
 *   may answer `unavailable` (store down, nonce still valid): the same frame is sent again after
 *   `authRetryMs`. `auth_failed` (or any other refusal) is final: state `failed`, no reconnect.
 *   A client without an identity (an anonymous first contact) is ready on the challenge.
 * - **ready**: requests are matched to answers by `rid` (pipelined, any order, each with a
 *   timeout); a `ping` every `heartbeatIntervalMs` must be answered within
 *   `heartbeatTimeoutMs`; `deliver` frames go to the inbox (authenticated connections only).
 * - **waiting**: after any close, network loss, missed heartbeat, open timeout, a relay that
 *   says `shutting_down`, or too many malformed frames, the socket is abandoned (its later
 *   events are ignored), every open request fails with `connection_lost`, and a new socket is
 *   opened after a jittered exponential backoff: base = min(max, initial·2^attempt), delay in
 *   [base/2, base). The attempt count resets once a connection has stayed ready for
 *   `stableAfterMs`. On the new connection the device authenticates again, and the relay
 *   delivers again everything not acknowledged (the resume).
 *
 * A malformed frame from the relay never throws: it is counted (`protocolErrors`, by reason)
 * and dropped; past `maxProtocolErrors` on one socket the socket is dropped.
 */
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import { ErrorCode } from '../protocol/errors.js';
import type { ClientFrame, FrameOf, ServerFrame, ServerFrameType } from '../protocol/frames.js';
import { MAX_REQUEST_ID, PROTOCOL_VERSION, WS_SUBPROTOCOL } from '../protocol/limits.js';
import { authChallengeMessage, mailboxIdFromPublicKey } from '../protocol/mailbox.js';
import { parseServerFrame } from '../protocol/parse.js';
import type { Sha256 } from '../protocol/sha256.js';
import { ClientError, ClientErrorCode, RelayError } from './errors.js';
import { Emitter } from './events.js';
import type { Clock, Socket, TimerHandle, Transport } from './transport.js';

export type ConnectionState =
  'idle' | 'connecting' | 'authenticating' | 'ready' | 'waiting' | 'failed' | 'closed';

/** What a UI shows: the state and why it is there. */
export interface ConnectionStatus {
  readonly state: ConnectionState;
  /** Consecutive connection attempts that did not stay up (0 once stable). */
  readonly attempt: number;
  /** When waiting: the clock time of the next attempt. */
  readonly retryAt?: number;
  /** Why the last socket ended: a close code (1006 without a close frame) or a local reason. */
  readonly lastLoss?: LossReason;
  /** The mailbox this connection reads, once authenticated. */
  readonly mailbox?: string;
  /** When failed: why. */
  readonly failure?: ClientErrorCode;
}

/** Why a socket was given up. */
export type LossReason =
  | { readonly kind: 'closed'; readonly code: number }
  | {
      readonly kind:
        | 'open_timeout'
        | 'heartbeat'
        | 'shutting_down'
        | 'protocol_errors'
        | 'wrong_mailbox'
        | 'transport_error';
    };

/** The device key that authenticates the connection (a `DeviceIdentity` fits). */
export interface Signer {
  /** The Ed25519 public key, 32 bytes. */
  readonly signingKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface ConnectionTiming {
  readonly openTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly stableAfterMs: number;
  readonly authRetryMs: number;
  readonly maxProtocolErrors: number;
}

export const DEFAULT_TIMING: ConnectionTiming = {
  openTimeoutMs: 15_000,
  requestTimeoutMs: 30_000,
  heartbeatIntervalMs: 20_000,
  heartbeatTimeoutMs: 10_000,
  backoffInitialMs: 500,
  backoffMaxMs: 30_000,
  stableAfterMs: 10_000,
  authRetryMs: 1_000,
  maxProtocolErrors: 16,
};

export interface ConnectionOptions {
  /** The relay's WebSocket URL, or a function asked before every attempt. */
  readonly url: string | (() => string);
  readonly transport: Transport;
  readonly clock: Clock;
  readonly sha256: Sha256;
  /** Uniform in [0, 1), for the backoff's jitter. */
  readonly random: () => number;
  /** Absent: an anonymous connection (sends only). */
  readonly signer?: Signer;
  readonly timing?: Partial<ConnectionTiming>;
}

/** Why a frame from the relay was dropped. */
export type ProtocolErrorReason =
  | 'binary'
  | 'bad_frame'
  | 'unsupported_version'
  | 'unknown_type'
  | 'second_challenge'
  | 'unexpected_deliver'
  | 'unmatched_rid'
  | 'wrong_reply'
  | 'wrong_mailbox';

export interface ConnectionEvents extends Record<string, unknown> {
  state: ConnectionStatus;
  /** The connection is ready (after every (re)connect): `epoch` names this socket. */
  ready: { readonly epoch: number; readonly mailbox: string | undefined };
  deliver: { readonly id: string; readonly env: string };
  'protocol-error': { readonly reason: ProtocolErrorReason };
  /** An `error` frame without a `rid` (about an `ack`, or a frame-level refusal). */
  'relay-error': { readonly code: ErrorCode };
}

/** A client frame without its `rid`, for `request`. */
export type RequestFrame = ClientFrame extends infer F
  ? F extends { rid: number }
    ? Omit<F, 'rid'>
    : never
  : never;

interface Pending {
  readonly expect: readonly ServerFrameType[];
  readonly resolve: (frame: ServerFrame) => void;
  readonly reject: (error: Error) => void;
  readonly timer: TimerHandle;
}

const V = PROTOCOL_VERSION;

export class Connection {
  readonly events = new Emitter<ConnectionEvents>();
  /** Dropped frames by reason, over the connection's life. */
  readonly protocolErrors = new Map<ProtocolErrorReason, number>();

  readonly #options: ConnectionOptions;
  readonly #timing: ConnectionTiming;
  readonly #clock: Clock;
  readonly #expectedMailbox: string | undefined;

  #state: ConnectionState = 'idle';
  #attempt = 0;
  #retryAt: number | undefined;
  #lastLoss: LossReason | undefined;
  #failure: ClientErrorCode | undefined;
  #mailbox: string | undefined;

  #socket: Socket | undefined;
  /** Increments with every socket; events of an older socket are ignored. */
  #epoch = 0;
  #sawChallenge = false;
  #socketErrors = 0;
  #readySince: number | undefined;
  #timer: TimerHandle | undefined;
  #heartbeat: TimerHandle | undefined;
  #nextRid = 1;
  readonly #pending = new Map<number, Pending>();

  constructor(options: ConnectionOptions) {
    this.#options = options;
    this.#timing = { ...DEFAULT_TIMING, ...options.timing };
    this.#clock = options.clock;
    this.#expectedMailbox =
      options.signer === undefined
        ? undefined
        : mailboxIdFromPublicKey(options.signer.signingKey, options.sha256);
  }

  get status(): ConnectionStatus {
    return {
      state: this.#state,
      attempt: this.#attempt,
      ...(this.#retryAt === undefined ? {} : { retryAt: this.#retryAt }),
      ...(this.#lastLoss === undefined ? {} : { lastLoss: this.#lastLoss }),
      ...(this.#mailbox === undefined ? {} : { mailbox: this.#mailbox }),
      ...(this.#failure === undefined ? {} : { failure: this.#failure }),
    };
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The current socket's number; a new one after every reconnect. */
  get epoch(): number {
    return this.#epoch;
  }

  /** True when ready and authenticated (the connection reads a mailbox). */
  get authenticated(): boolean {
    return this.#state === 'ready' && this.#mailbox !== undefined;
  }

  /** Bytes the current socket has not yet written (0 without one). */
  get bufferedAmount(): number {
    return this.#socket?.bufferedAmount ?? 0;
  }

  /** Requests sent and not yet answered. */
  get pendingRequests(): number {
    return this.#pending.size;
  }

  /** Starts connecting (from idle); reconnects by itself from then on until `close`. */
  connect(): void {
    if (this.#state !== 'idle') return;
    this.#open();
  }

  /** Stops for good: closes the socket, fails every open request with `closed`. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#abandonSocket(new ClientError(ClientErrorCode.CLOSED));
    this.#clearTimer();
    this.#retryAt = undefined;
    this.#setState('closed');
  }

  /**
   * Sends a request and resolves with the answer of type `expect` (same `rid`), or rejects with
   * the relay's `RelayError`, or a `ClientError` (`not_connected`, `connection_lost`, `timeout`,
   * `unexpected_reply`, `closed`).
   */
  request<T extends ServerFrameType>(
    frame: RequestFrame,
    expect: T,
    timeoutMs = this.#timing.requestTimeoutMs,
  ): Promise<FrameOf<T>> {
    if (this.#state !== 'ready') {
      return Promise.reject(new ClientError(ClientErrorCode.NOT_CONNECTED));
    }
    return this.#request(frame, [expect], timeoutMs) as Promise<FrameOf<T>>;
  }

  /** Sends a frame without a `rid` (`ack`) when ready; false when there is no ready socket. */
  post(frame: ClientFrame): boolean {
    if (this.#state !== 'ready' || this.#socket === undefined) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
  }

  // -------------------------------------------------------------------------------------------

  #setState(state: ConnectionState): void {
    this.#state = state;
    this.events.emit('state', this.status);
  }

  #open(): void {
    this.#retryAt = undefined;
    this.#sawChallenge = false;
    this.#socketErrors = 0;
    this.#mailbox = undefined;
    this.#readySince = undefined;
    const epoch = ++this.#epoch;
    this.#setState('connecting');
    const mine = (): boolean => epoch === this.#epoch;
    this.#setTimer(() => this.#lose({ kind: 'open_timeout' }), this.#timing.openTimeoutMs);
    try {
      const url = typeof this.#options.url === 'function' ? this.#options.url() : this.#options.url;
      const socket = this.#options.transport.open(url, WS_SUBPROTOCOL, {
        onOpen: () => {},
        onMessage: (data) => {
          if (mine()) this.#onMessage(data);
        },
        onClose: (code) => {
          if (mine()) this.#lose({ kind: 'closed', code }, false);
        },
      });
      // A transport may report a close before `open` returns; that socket is gone already.
      if (mine()) this.#socket = socket;
    } catch {
      // A URL the platform refuses, a transport that cannot open: like a failed connection.
      if (mine()) this.#lose({ kind: 'transport_error' }, false);
    }
  }

  /** Gives up the current socket and schedules the next attempt. */
  #lose(reason: LossReason, closeSocket = true): void {
    if (this.#state === 'closed' || this.#state === 'failed' || this.#state === 'waiting') return;
    this.#lastLoss = reason;
    this.#abandonSocket(new ClientError(ClientErrorCode.CONNECTION_LOST), closeSocket);
    if (
      this.#readySince !== undefined &&
      this.#clock.now() - this.#readySince >= this.#timing.stableAfterMs
    ) {
      this.#attempt = 0;
    }
    this.#readySince = undefined;
    const base = Math.min(
      this.#timing.backoffMaxMs,
      this.#timing.backoffInitialMs * 2 ** Math.min(this.#attempt, 30),
    );
    const delay = Math.floor(base / 2 + this.#options.random() * (base / 2));
    this.#attempt++;
    this.#retryAt = this.#clock.now() + delay;
    this.#setTimer(() => this.#open(), delay);
    this.#setState('waiting');
  }

  #fail(code: ClientErrorCode): void {
    this.#failure = code;
    this.#abandonSocket(new ClientError(code));
    this.#clearTimer();
    this.#setState('failed');
  }

  /** Detaches the socket (its later events are ignored) and fails every open request. */
  #abandonSocket(error: Error, closeSocket = true): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#epoch++;
    this.#mailbox = undefined;
    if (this.#heartbeat !== undefined) this.#clock.clearTimeout(this.#heartbeat);
    this.#heartbeat = undefined;
    if (socket !== undefined && closeSocket) {
      try {
        socket.close(1000);
      } catch {
        // Already closed or never opened: nothing to do.
      }
    }
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      this.#clock.clearTimeout(p.timer);
      p.reject(error);
    }
  }

  #setTimer(callback: () => void, ms: number): void {
    this.#clearTimer();
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      callback();
    }, ms);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #protocolError(reason: ProtocolErrorReason): void {
    this.protocolErrors.set(reason, (this.protocolErrors.get(reason) ?? 0) + 1);
    this.events.emit('protocol-error', { reason });
    if (++this.#socketErrors > this.#timing.maxProtocolErrors) {
      this.#lose({ kind: 'protocol_errors' });
    }
  }

  #request(
    frame: RequestFrame,
    expect: readonly ServerFrameType[],
    timeoutMs: number,
  ): Promise<ServerFrame> {
    return new Promise<ServerFrame>((resolve, reject) =>
      this.#send(frame, expect, timeoutMs, resolve, reject),
    );
  }

  /**
   * Sends a request; `resolve` or `reject` is called synchronously when the answer is read, so
   * that what the answer changes (the authenticated mailbox) holds for the very next frame.
   */
  #send(
    frame: RequestFrame,
    expect: readonly ServerFrameType[],
    timeoutMs: number,
    resolve: (frame: ServerFrame) => void,
    reject: (error: Error) => void,
  ): void {
    const socket = this.#socket;
    if (socket === undefined) {
      reject(new ClientError(ClientErrorCode.NOT_CONNECTED));
      return;
    }
    const rid = this.#nextRid;
    this.#nextRid = rid >= MAX_REQUEST_ID ? 1 : rid + 1;
    const timer = this.#clock.setTimeout(() => {
      if (this.#pending.get(rid)?.timer !== timer) return;
      this.#pending.delete(rid);
      reject(new ClientError(ClientErrorCode.TIMEOUT));
    }, timeoutMs);
    this.#pending.set(rid, { expect, resolve, reject, timer });
    // Keys in the schema's order, `rid` after `t`: the same text the relay's tests expect.
    const { v, t, ...rest } = frame as { v: number; t: string } & Record<string, unknown>;
    socket.send(JSON.stringify({ v, t, rid, ...rest }));
  }

  #onMessage(data: unknown): void {
    if (typeof data !== 'string') {
      this.#protocolError('binary');
      return;
    }
    const parsed = parseServerFrame(data);
    if (!parsed.ok) {
      const code = parsed.error.code;
      this.#protocolError(
        code === ErrorCode.UNSUPPORTED_VERSION || code === ErrorCode.UNKNOWN_TYPE
          ? code
          : 'bad_frame',
      );
      return;
    }
    const frame = parsed.value;
    switch (frame.t) {
      case 'challenge':
        this.#onChallenge(frame);
        return;
      case 'deliver':
        if (this.#state !== 'ready' || this.#mailbox === undefined) {
          this.#protocolError('unexpected_deliver');
          return;
        }
        this.events.emit('deliver', { id: frame.id, env: frame.env });
        return;
      case 'error':
        if (frame.rid === undefined) {
          this.events.emit('relay-error', { code: frame.code });
          if (frame.code === ErrorCode.SHUTTING_DOWN) this.#lose({ kind: 'shutting_down' });
          return;
        }
        this.#answer(frame.rid, frame);
        return;
      default:
        this.#answer(frame.rid, frame);
    }
  }

  #answer(rid: number, frame: ServerFrame): void {
    const pending = this.#pending.get(rid);
    if (pending === undefined) {
      this.#protocolError('unmatched_rid');
      return;
    }
    this.#pending.delete(rid);
    this.#clock.clearTimeout(pending.timer);
    if (frame.t === 'error') {
      pending.reject(new RelayError(frame.code, frame.retryable));
      // The relay is going away: do not wait for its close to start over elsewhere.
      if (frame.code === ErrorCode.SHUTTING_DOWN) this.#lose({ kind: 'shutting_down' });
      return;
    }
    if (!pending.expect.includes(frame.t)) {
      pending.reject(new ClientError(ClientErrorCode.UNEXPECTED_REPLY));
      this.#protocolError('wrong_reply');
      return;
    }
    pending.resolve(frame);
  }

  #onChallenge(frame: FrameOf<'challenge'>): void {
    if (this.#sawChallenge || this.#state !== 'connecting') {
      this.#protocolError('second_challenge');
      return;
    }
    this.#sawChallenge = true;
    this.#clearTimer();
    const signer = this.#options.signer;
    if (signer === undefined) {
      this.#becomeReady();
      return;
    }
    this.#setState('authenticating');
    const nonce = fromBase64url(frame.nonce)!;
    const authFrame: RequestFrame = {
      v: V,
      t: 'auth',
      pk: toBase64url(signer.signingKey),
      sig: toBase64url(signer.sign(authChallengeMessage(nonce))),
    };
    this.#sendAuth(authFrame, this.#epoch);
  }

  #sendAuth(frame: RequestFrame, epoch: number): void {
    this.#send(
      frame,
      ['authed'],
      this.#timing.requestTimeoutMs,
      (answer) => {
        if (epoch !== this.#epoch) return;
        const authed = answer as FrameOf<'authed'>;
        if (authed.mailbox !== this.#expectedMailbox) {
          this.#protocolError('wrong_mailbox');
          this.#lose({ kind: 'wrong_mailbox' });
          return;
        }
        this.#mailbox = authed.mailbox;
        this.#becomeReady();
      },
      (error: unknown) => {
        if (epoch !== this.#epoch) return;
        if (error instanceof RelayError) {
          if (error.retryable && error.code !== ErrorCode.SHUTTING_DOWN) {
            // The store was not reached; the nonce is still valid: the same frame again.
            this.#setTimer(() => {
              if (epoch === this.#epoch) this.#sendAuth(frame, epoch);
            }, this.#timing.authRetryMs);
            return;
          }
          if (!error.retryable) {
            this.#fail(ClientErrorCode.AUTH_REFUSED);
            return;
          }
          return; // shutting_down: #answer already started over
        }
        // A timeout or a reply of the wrong type: start over on a new socket.
        this.#lose({ kind: 'protocol_errors' });
      },
    );
  }

  #becomeReady(): void {
    this.#readySince = this.#clock.now();
    this.#setState('ready');
    this.#scheduleHeartbeat();
    this.events.emit('ready', { epoch: this.#epoch, mailbox: this.#mailbox });
  }

  #scheduleHeartbeat(): void {
    const epoch = this.#epoch;
    this.#heartbeat = this.#clock.setTimeout(() => {
      this.#heartbeat = undefined;
      if (epoch !== this.#epoch) return;
      this.#request({ v: V, t: 'ping' }, ['pong'], this.#timing.heartbeatTimeoutMs).then(
        () => {
          if (epoch === this.#epoch) this.#scheduleHeartbeat();
        },
        () => {
          if (epoch === this.#epoch) this.#lose({ kind: 'heartbeat' });
        },
      );
    }, this.#timing.heartbeatIntervalMs);
  }
}
