/**
 * A small protocol-v1 client over `ws` for tests: it speaks the real wire format to a real
 * relay and checks every frame the relay sends against the protocol's strict server schemas, so
 * a test also fails when the relay sends something malformed.
 *
 * ```ts
 * const alice = await TestClient.connect(relay.wsUrl);
 * const mailbox = await alice.authenticate();          // signs the challenge
 * bob.send({ v: 1, t: 'send', rid: 1, to: mailbox, id, env });
 * const frame = await alice.next('deliver');           // waits, in arrival order
 * ```
 *
 * Frames are queued as they arrive. `next(type)` takes the oldest queued frame of that type
 * (others stay queued, in order); `next()` takes the oldest frame of any type.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import WebSocket from 'ws';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import type { FrameOf, ServerFrame, ServerFrameType } from '@passage/shared/protocol/frames';
import { PROTOCOL_VERSION, WS_SUBPROTOCOL } from '@passage/shared/protocol/limits';
import { authChallengeMessage, mailboxIdFromPublicKey } from '@passage/shared/protocol/mailbox';
import { parseServerFrame } from '@passage/shared/protocol/parse';
import { parsePowChallenge, solvePow } from '@passage/shared/pow/pow';

const nodeSha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();

/** Default wait for a frame or a close, in ms: generous, for a loaded 2-core machine. */
export const DEFAULT_TIMEOUT_MS = 15_000;

// PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows it.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 device key as a test needs it. */
export interface TestIdentity {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The mailbox id derived from the public key. */
  readonly mailbox: string;
  /** Signs bytes with the private key. */
  sign(message: Uint8Array): Uint8Array;
}

/** An Ed25519 identity from a 32-byte seed (random when omitted). */
export function identity(seed: Uint8Array = randomBytes(32)): TestIdentity {
  if (seed.length !== 32) throw new RangeError('an Ed25519 seed is 32 bytes');
  const privateKey: KeyObject = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const publicKey = fromBase64url(jwk.x ?? '');
  if (publicKey === undefined) throw new Error('cannot export the public key');
  return {
    seed,
    publicKey,
    mailbox: mailboxIdFromPublicKey(publicKey, (data) =>
      createHash('sha256').update(data).digest(),
    ),
    sign: (message) => new Uint8Array(sign(null, message, privateKey)),
  };
}

/** A random message id (16 bytes, base64url). */
export function messageId(): string {
  return toBase64url(randomBytes(16));
}

/** A random opaque envelope of `bytes` bytes, base64url. */
export function envelope(bytes = 64): string {
  return toBase64url(randomBytes(bytes));
}

export interface ConnectOptions {
  /** Subprotocols to offer; `passage.v1` by default. */
  readonly protocols?: readonly string[];
  /** Answer WebSocket pings automatically (default true); false simulates a dead peer. */
  readonly autoPong?: boolean;
  readonly timeoutMs?: number;
}

/** How the connection ended. */
export interface Closed {
  readonly code: number;
  readonly reason: string;
}

type Waiter = {
  /** Frame types wanted; undefined for any. */
  readonly types: readonly ServerFrameType[] | undefined;
  readonly resolve: (frame: ServerFrame) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
};

export class TestClient {
  readonly #ws: WebSocket;
  readonly #queue: ServerFrame[] = [];
  readonly #waiters: Waiter[] = [];
  #invalid: string | undefined;
  #closedWith: Closed | undefined;
  #nonce: Uint8Array | undefined;
  #nonceWaiters: ((nonce: Uint8Array) => void)[] = [];
  /** Resolves when the socket has closed, with the close code and reason. */
  readonly closed: Promise<Closed>;
  /** The mailbox this connection authenticated as, once it has. */
  mailbox: string | undefined;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.#closedWith = { code, reason: reason.toString() };
        for (const w of this.#waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(
            new Error(`closed (${code}) while waiting for ${w.types?.join('|') ?? 'a frame'}`),
          );
        }
        resolve(this.#closedWith);
      });
    });
    ws.on('error', () => {}); // surfaced through `closed`
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
  }

  /** Opens a connection and waits until it is open (the challenge may still be in flight). */
  static async connect(url: string, options: ConnectOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(url, [...(options.protocols ?? [WS_SUBPROTOCOL])], {
      perMessageDeflate: false,
      autoPong: options.autoPong ?? true,
      handshakeTimeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`upgrade refused: HTTP ${res.statusCode ?? '?'}`)),
      );
      ws.once('error', reject);
    });
    return client;
  }

  /** The underlying socket, for what the helpers do not cover. */
  get socket(): WebSocket {
    return this.#ws;
  }

  /** Frames received and not yet taken. */
  get pending(): readonly ServerFrame[] {
    return this.#queue;
  }

  /** The challenge nonce (the relay sends it first thing). */
  async nonce(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Uint8Array> {
    if (this.#nonce !== undefined) return this.#nonce;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no challenge')), timeoutMs);
      this.#nonceWaiters.push((nonce) => {
        clearTimeout(timer);
        resolve(nonce);
      });
    });
  }

  /**
   * The oldest queued frame of `type` (any type when omitted), waiting up to `timeoutMs` for
   * one to arrive. Rejects if the connection closes first or the relay sent an invalid frame.
   */
  next<T extends ServerFrameType>(type: T, timeoutMs?: number): Promise<FrameOf<T>>;
  next(type?: undefined, timeoutMs?: number): Promise<ServerFrame>;
  next(type?: ServerFrameType, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerFrame> {
    return this.#take(type === undefined ? undefined : [type], timeoutMs);
  }

  /** The oldest queued frame of any of `types`, waiting like {@link next}. */
  nextOf<T extends ServerFrameType>(
    types: readonly T[],
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<FrameOf<T>> {
    return this.#take(types, timeoutMs) as Promise<FrameOf<T>>;
  }

  #take(types: readonly ServerFrameType[] | undefined, timeoutMs: number): Promise<ServerFrame> {
    if (this.#invalid !== undefined) {
      return Promise.reject(new Error(`relay sent an invalid frame: ${this.#invalid}`));
    }
    const wanted = (f: ServerFrame): boolean => types === undefined || types.includes(f.t);
    const what = types?.join('|') ?? 'frame';
    const i = this.#queue.findIndex(wanted);
    if (i >= 0) return Promise.resolve(this.#queue.splice(i, 1)[0]!);
    if (this.#closedWith !== undefined) {
      return Promise.reject(new Error(`closed (${this.#closedWith.code})`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        types,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          const queued = this.#queue.map((f) => f.t).join(', ') || 'nothing';
          reject(new Error(`no ${what} within ${timeoutMs} ms (queued: ${queued})`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** The next `error` frame, asserting nothing; a shorthand for `next('error')`. */
  nextError(timeoutMs?: number): Promise<FrameOf<'error'>> {
    return this.next('error', timeoutMs);
  }

  /** Sends one frame as JSON text. */
  send(frame: object): void {
    this.#ws.send(JSON.stringify(frame));
  }

  /** Sends raw data: a string as a text message, a Buffer as a binary one. */
  sendRaw(data: string | Buffer): void {
    this.#ws.send(data, { binary: typeof data !== 'string' });
  }

  /**
   * Sends a ping frame and waits for its pong: everything the relay sent before the pong is
   * queued. A barrier only for what the relay sends synchronously in answer to earlier frames:
   * with the MemoryStore that includes the store's answers (it resolves within the same turn),
   * with Redis it does not — a `deliver` that follows a Redis round trip (a refill after `auth`
   * or `ack`) may come after the pong. To show that nothing more is delivered on Redis, send a
   * fresh message to the mailbox and check that it is the next `deliver` (deliveries are in
   * order).
   */
  async roundTrip(rid = 999_999, timeoutMs?: number): Promise<void> {
    this.send({ v: PROTOCOL_VERSION, t: 'ping', rid });
    for (;;) {
      const pong = await this.next('pong', timeoutMs);
      if (pong.rid === rid) return;
    }
  }

  /**
   * Answers the challenge with `who`'s key (a fresh random one when omitted) and waits for
   * `authed`. Returns the mailbox id; throws with the error code if the relay refuses.
   */
  async authenticate(who: TestIdentity = identity(), rid = 1): Promise<string> {
    const nonce = await this.nonce();
    this.send({
      v: PROTOCOL_VERSION,
      t: 'auth',
      rid,
      pk: toBase64url(who.publicKey),
      sig: toBase64url(who.sign(authChallengeMessage(nonce))),
    });
    const answer = await this.nextOf(['authed', 'error']);
    if (answer.t === 'error') throw new Error(`auth refused: ${answer.code}`);
    if (answer.mailbox !== who.mailbox) throw new Error('relay bound a different mailbox');
    this.mailbox = answer.mailbox;
    return answer.mailbox;
  }

  /**
   * First contact: asks for a proof-of-work challenge for `to`, solves it with Node's SHA-256
   * and waits for `pow.admitted`. Returns the admission (its share of sends); throws with the
   * error code if the relay refuses.
   */
  async admit(to: string, rid = 2): Promise<FrameOf<'pow.admitted'>> {
    this.send({ v: PROTOCOL_VERSION, t: 'pow.request', rid, to });
    const offered = await this.nextOf(['pow.challenge', 'error']);
    if (offered.t === 'error') throw new Error(`pow.request refused: ${offered.code}`);
    const challenge = parsePowChallenge(offered.challenge);
    const solution = solvePow(challenge, nodeSha256, {
      nowMs: Date.now(),
      start: randomBytes(8),
    });
    this.send({
      v: PROTOCOL_VERSION,
      t: 'pow.solve',
      rid,
      nonce: offered.challenge.nonce,
      solution: toBase64url(solution),
    });
    const answer = await this.nextOf(['pow.admitted', 'error']);
    if (answer.t === 'error') throw new Error(`pow.solve refused: ${answer.code}`);
    return answer;
  }

  /** Stops reading from the socket (the relay's writes back up); `resumeReading` undoes it. */
  pauseReading(): void {
    this.#ws.pause();
  }

  resumeReading(): void {
    this.#ws.resume();
  }

  /** Closes (normal closure by default) and waits until the socket is closed. */
  async close(code = 1000, reason = ''): Promise<Closed> {
    if (this.#closedWith === undefined) {
      if (this.#ws.readyState === WebSocket.CONNECTING) this.#ws.terminate();
      else this.#ws.close(code, reason);
    }
    return this.closed;
  }

  /** Drops the TCP connection without a close handshake. */
  terminate(): void {
    this.#ws.terminate();
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      this.#invalid ??= 'a binary message';
      return;
    }
    const parsed = parseServerFrame(data.toString());
    if (!parsed.ok) {
      this.#invalid ??= `${parsed.error.code} ${parsed.error.detail ?? ''}`;
      for (const w of this.#waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`relay sent an invalid frame: ${this.#invalid}`));
      }
      return;
    }
    const frame = parsed.value;
    if (frame.t === 'challenge') {
      const nonce = fromBase64url(frame.nonce)!;
      this.#nonce = nonce;
      for (const w of this.#nonceWaiters.splice(0)) w(nonce);
      return;
    }
    // Hand it to the oldest waiter that wants it, else queue it.
    const i = this.#waiters.findIndex((w) => w.types === undefined || w.types.includes(frame.t));
    if (i >= 0) {
      const [waiter] = this.#waiters.splice(i, 1);
      clearTimeout(waiter!.timer);
      waiter!.resolve(frame);
      return;
    }
    this.#queue.push(frame);
  }
}
