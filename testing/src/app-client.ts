/**
 * A small at-least-once application client for fault tests (the soak): what an app built on the
 * relay must do so that a message survives a relay killed mid-flight and a Redis restart. It is
 * not a replacement for {@link TestClient}, which stays the raw-protocol oracle; it speaks the
 * same wire format with the fewest moving parts, reconnects by itself and keeps counts.
 *
 * - **Outbox until the recipient's receipt.** A message stays in the outbox until the recipient
 *   application's receipt comes back, not merely until the relay's `stored`: `stored` means the
 *   store has it, and Redis runs without persistence, so a Redis restart loses what was stored
 *   (docs/adr/0010-at-least-once-delivery.md, "a Redis restart loses what was queued; senders
 *   only learn of this if the recipient never answers"). Everything in the outbox is sent again
 *   on every (re)connect and whenever `resendAfterMs` passed without a receipt.
 * - **Dedup by message id at the receiver.** Every `deliver` is recorded, then acknowledged; a
 *   copy of an id already seen is dropped (not shown again) but receipted again, since the
 *   sender resends until a receipt arrives.
 * - **Receipts are not outboxed**: a lost receipt is replaced by the one the resend brings.
 *
 * The envelope is the client's own plaintext format (base64url of a small JSON record: kind,
 * sender mailbox, message id, padding); the relay treats it as opaque, as it does real
 * ciphertext.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { PROTOCOL_VERSION, WS_SUBPROTOCOL } from '@passage/shared/protocol/limits';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';
import { parseServerFrame } from '@passage/shared/protocol/parse';
import type { TestIdentity } from './test-client.js';

/** Most messages one client holds unreceipted; `send` throws past it (a test's own bug). */
export const MAX_OUTBOX = 10_000;
/** Most message ids one client remembers as seen (dedup); a soak stays far below it. */
export const MAX_SEEN_IDS = 100_000;
/** Delay before reconnecting after a connection was lost or refused, in ms (then doubled). */
export const RECONNECT_MIN_MS = 100;
export const RECONNECT_MAX_MS = 2_000;

const v = PROTOCOL_VERSION;

/** What travels inside the opaque envelope. */
interface Payload {
  /** 'm': a message; 'r': the receipt for message `id`. */
  readonly k: 'm' | 'r';
  /** The sender's mailbox (where the receipt goes). */
  readonly f: string;
  readonly id: string;
  /** Padding, so envelopes have a realistic size. */
  readonly p?: string;
}

function encodePayload(payload: Payload): string {
  return toBase64url(new TextEncoder().encode(JSON.stringify(payload)));
}

function decodePayload(env: string): Payload | undefined {
  const bytes = fromBase64url(env);
  if (bytes === undefined) return undefined;
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const { k, f, id } = value as Record<string, unknown>;
    if ((k !== 'm' && k !== 'r') || typeof f !== 'string' || typeof id !== 'string') {
      return undefined;
    }
    return { k, f, id };
  } catch {
    return undefined;
  }
}

export interface AppClientOptions {
  readonly who: TestIdentity;
  /** The relay to (re)connect to, asked before every attempt (a test rotates relays here). */
  readonly relayUrl: (attempt: number) => string;
  /** An unreceipted message is sent again after this long, in ms. */
  readonly resendAfterMs: number;
  /** Bytes of padding in each message (its envelope is about 4/3 of it plus ~100). */
  readonly paddingBytes?: number;
  /** Called once per message id shown to the application (after dedup). */
  readonly onShown?: (from: string, id: string) => void;
}

/** What one client counted. */
export interface AppClientCounts {
  /** Messages handed to `send`. */
  sent: number;
  /** Of those, receipted by their recipient (out of the outbox). */
  receipted: number;
  /** `send` frames written for messages (first sends and resends). */
  transmissions: number;
  /** Resends of a message the relay had answered `stored` for (stored, then not receipted in
   * time: lost with Redis's queue, or its receipt was late or lost). */
  resentAfterStored: number;
  /** Messages shown to the application (distinct ids). */
  shown: number;
  /** Copies of an already shown message dropped by the dedup. */
  duplicatesDropped: number;
  /** Error frames answering a send (of a message or a receipt), by code. */
  sendErrors: Record<string, number>;
  /** Connections authenticated (the first and every reconnect). */
  sessions: number;
  /** The longest time from opening a connection to its `authed`, in ms. */
  slowestAuthMs: number;
}

interface Outgoing {
  readonly to: string;
  /** Clock time `send` was called. */
  readonly createdMs: number;
  readonly env: string;
  /** Clock time of the last transmission (0: not yet sent). */
  lastSentMs: number;
  /** The relay answered `stored` for some transmission. */
  stored: boolean;
}

export class AppClient {
  readonly #options: AppClientOptions;
  readonly #outbox = new Map<string, Outgoing>();
  readonly #seen = new Set<string>();
  /** rid → message id of a `send` on the current connection. */
  #rids = new Map<number, string>();
  #nextRid = 1;
  #ws: WebSocket | undefined;
  #authed = false;
  #attempt = 0;
  #stopped = false;
  /** Kept off the network by {@link setOffline}: no connection, no reconnect. */
  #offline = false;
  /** The relay URL of the current connection. */
  #url: string | undefined;
  #resendTimer: NodeJS.Timeout | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  readonly counts: AppClientCounts = {
    sent: 0,
    receipted: 0,
    transmissions: 0,
    resentAfterStored: 0,
    shown: 0,
    duplicatesDropped: 0,
    sendErrors: {},
    sessions: 0,
    slowestAuthMs: 0,
  };
  /** For each receipted message, ms from `send` to its receipt (at most MAX_SEEN_IDS kept). */
  readonly receiptMs: number[] = [];
  #connectedAtMs = 0;

  constructor(options: AppClientOptions) {
    this.#options = options;
  }

  get mailbox(): string {
    return this.#options.who.mailbox;
  }

  /** Messages still waiting for their receipt. */
  get outboxSize(): number {
    return this.#outbox.size;
  }

  /** The relay URL of the authenticated connection; undefined while not authenticated. */
  get connectedTo(): string | undefined {
    return this.#authed ? this.#url : undefined;
  }

  /**
   * Drops the connection and connects again at once, starting over with `relayUrl(0)` (as a
   * client does when a load balancer drains it, or the page reloads).
   */
  reconnect(): void {
    if (this.#stopped || this.#offline) return;
    const old = this.#ws;
    clearTimeout(this.#reconnectTimer);
    this.#attempt = 0;
    this.#connect();
    old?.terminate();
  }

  /** Takes the client off the network (the phone lost its signal) or back on it. */
  setOffline(offline: boolean): void {
    if (this.#stopped || offline === this.#offline) return;
    this.#offline = offline;
    if (offline) {
      clearTimeout(this.#reconnectTimer);
      const old = this.#ws;
      this.#ws = undefined;
      this.#authed = false;
      old?.terminate();
    } else {
      this.#attempt = 0;
      this.#connect();
    }
  }

  /** Starts connecting (and reconnecting until `stop`). */
  start(): void {
    this.#connect();
    this.#resendTimer = setInterval(() => this.#resendDue(), this.#options.resendAfterMs / 4);
    this.#resendTimer.unref();
  }

  /** Stops for good and closes the connection. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#resendTimer);
    clearTimeout(this.#reconnectTimer);
    this.#ws?.terminate();
  }

  /** Queues a message for `to`; returns its id. It is sent now if connected, else on connect. */
  send(to: string): string {
    if (this.#outbox.size >= MAX_OUTBOX) throw new RangeError('app client outbox is full');
    const id = toBase64url(randomBytes(16));
    const pad = toBase64url(randomBytes(this.#options.paddingBytes ?? 0));
    const env = encodePayload({ k: 'm', f: this.mailbox, id, p: pad });
    const out: Outgoing = { to, createdMs: Date.now(), env, lastSentMs: 0, stored: false };
    this.#outbox.set(id, out);
    this.counts.sent += 1;
    this.#transmit(id, out);
    return id;
  }

  #transmit(id: string, out: Outgoing): void {
    if (!this.#authed || this.#ws === undefined) return;
    if (out.lastSentMs !== 0 && out.stored) this.counts.resentAfterStored += 1;
    out.lastSentMs = Date.now();
    this.counts.transmissions += 1;
    this.#write(id, out.to, out.env);
  }

  #write(id: string, to: string, env: string): void {
    const rid = this.#nextRid;
    this.#nextRid = rid >= 2_000_000_000 ? 1 : rid + 1;
    this.#rids.set(rid, id);
    this.#ws?.send(JSON.stringify({ v, t: 'send', rid, to, id, env }));
  }

  #resendDue(): void {
    if (!this.#authed) return;
    const due = Date.now() - this.#options.resendAfterMs;
    for (const [id, out] of this.#outbox) if (out.lastSentMs <= due) this.#transmit(id, out);
  }

  #connect(): void {
    if (this.#stopped || this.#offline) return;
    const url = this.#options.relayUrl(this.#attempt);
    this.#url = url;
    const ws = new WebSocket(url, [WS_SUBPROTOCOL], { perMessageDeflate: false });
    this.#ws = ws;
    this.#connectedAtMs = Date.now();
    this.#authed = false;
    this.#rids = new Map();
    ws.on('error', () => {}); // followed by 'close'
    ws.on('message', (data) => this.#onMessage(ws, (data as Buffer).toString()));
    ws.on('close', () => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      this.#authed = false;
      if (this.#stopped || this.#offline) return;
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.#attempt);
      this.#attempt += 1;
      this.#reconnectTimer = setTimeout(() => this.#connect(), delay * (0.5 + Math.random() / 2));
      this.#reconnectTimer.unref();
    });
  }

  #onMessage(ws: WebSocket, text: string): void {
    if (ws !== this.#ws) return;
    const parsed = parseServerFrame(text);
    if (!parsed.ok) {
      ws.terminate();
      return;
    }
    const frame = parsed.value;
    switch (frame.t) {
      case 'challenge': {
        const who = this.#options.who;
        ws.send(
          JSON.stringify({
            v,
            t: 'auth',
            rid: 0,
            pk: toBase64url(who.publicKey),
            sig: toBase64url(who.sign(authChallengeMessage(fromBase64url(frame.nonce)!))),
          }),
        );
        return;
      }
      case 'authed':
        this.#authed = true;
        this.#attempt = 0;
        this.counts.sessions += 1;
        this.counts.slowestAuthMs = Math.max(
          this.counts.slowestAuthMs,
          Date.now() - this.#connectedAtMs,
        );
        // Everything not yet receipted goes again: sends on the lost connection may have been
        // lost with it, and stored ones with a restarted Redis.
        for (const [id, out] of this.#outbox) this.#transmit(id, out);
        return;
      case 'stored': {
        const id = this.#rids.get(frame.rid);
        this.#rids.delete(frame.rid);
        const out = id === undefined ? undefined : this.#outbox.get(id);
        if (out !== undefined) out.stored = true;
        return;
      }
      case 'error': {
        if (frame.rid === undefined) return;
        if (frame.rid === 0) {
          // The auth was refused (the relay is shutting down or its store is down): retry.
          ws.terminate();
          return;
        }
        const id = this.#rids.get(frame.rid);
        this.#rids.delete(frame.rid);
        if (id === undefined) return;
        this.counts.sendErrors[frame.code] = (this.counts.sendErrors[frame.code] ?? 0) + 1;
        // Retryable or not, it is sent again when due (a receipt is never resent: see above).
        return;
      }
      case 'deliver':
        this.#onDeliver(frame.env);
        ws.send(JSON.stringify({ v, t: 'ack', ids: [frame.id] }));
        return;
      default:
        return;
    }
  }

  /** Records a delivered envelope (before its ack is sent, as an app commits before acking). */
  #onDeliver(env: string): void {
    const payload = decodePayload(env);
    if (payload === undefined) return;
    if (payload.k === 'r') {
      const out = this.#outbox.get(payload.id);
      if (out !== undefined) {
        this.#outbox.delete(payload.id);
        this.counts.receipted += 1;
        if (this.receiptMs.length < MAX_SEEN_IDS) this.receiptMs.push(Date.now() - out.createdMs);
      }
      return;
    }
    if (this.#seen.has(payload.id)) {
      this.counts.duplicatesDropped += 1;
    } else {
      if (this.#seen.size >= MAX_SEEN_IDS) throw new RangeError('app client seen-id set is full');
      this.#seen.add(payload.id);
      this.counts.shown += 1;
      this.#options.onShown?.(payload.f, payload.id);
    }
    if (this.#authed) {
      const receipt = encodePayload({ k: 'r', f: this.mailbox, id: payload.id });
      this.#write(toBase64url(randomBytes(16)), payload.f, receipt);
    }
  }
}
