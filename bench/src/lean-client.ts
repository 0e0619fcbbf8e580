/**
 * A lean protocol-v1 client for the load generator: frames are built as template strings and
 * read with `JSON.parse` plus a few `typeof` checks, not with the zod schemas, so the load side
 * spends as little CPU per message as it can and the relay stays the thing being measured. The
 * relay's own parser is tested elsewhere; here a frame that does not look right is simply
 * counted as an error.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import WebSocket from 'ws';
import {
  MESSAGE_ID_BYTES,
  PROTOCOL_VERSION,
  WS_SUBPROTOCOL,
} from '@passage/shared/protocol/limits';
import { authChallengeMessage, mailboxIdFromPublicKey } from '@passage/shared/protocol/mailbox';
import type { ErrorCounts, TargetKind } from './loadgen-protocol.js';

/** The fields the load generator reads from any server frame. */
export interface LeanFrame {
  readonly t: string;
  readonly rid?: number;
  readonly id?: string;
  readonly code?: string;
  readonly nonce?: string;
  readonly mailbox?: string;
}

/**
 * The start of a `deliver` frame as the relay's `encodeDeliverFrame` writes it. Frames that
 * start this way have their message id read straight from the bytes, without decoding the
 * 1.4 KB frame or running `JSON.parse` on it: the load side must not be the bottleneck when
 * it measures the ceiling. Any other spelling takes the generic path.
 */
const DELIVER_PREFIX = Buffer.from(`{"v":${PROTOCOL_VERSION},"t":"deliver","id":"`, 'latin1');
const MESSAGE_ID_CHARS = Math.ceil((MESSAGE_ID_BYTES * 4) / 3);
const QUOTE = 0x22;

/** The message id of a `deliver` frame spelled as the relay spells it, else undefined. */
function fastDeliverId(data: Buffer): string | undefined {
  const start = DELIVER_PREFIX.length;
  const end = start + MESSAGE_ID_CHARS;
  if (data.length <= end || data[end] !== QUOTE) return undefined;
  if (data.compare(DELIVER_PREFIX, 0, start, 0, start) !== 0) return undefined;
  return data.toString('latin1', start, end);
}

/** How long connecting and authenticating one client may take before the run fails. */
const SETUP_TIMEOUT_MS = 60_000;

/** Reads the fields of a server frame the load generator uses; undefined if it is not one. */
export function readFrame(text: string): LeanFrame | undefined {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  const t = d['t'];
  if (typeof t !== 'string') return undefined;
  const rid = d['rid'];
  const id = d['id'];
  const code = d['code'];
  const nonce = d['nonce'];
  const mailbox = d['mailbox'];
  return {
    t,
    ...(typeof rid === 'number' ? { rid } : {}),
    ...(typeof id === 'string' ? { id } : {}),
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof nonce === 'string' ? { nonce } : {}),
    ...(typeof mailbox === 'string' ? { mailbox } : {}),
  };
}

/** Adds one to `counts[key]`. */
export function countError(counts: ErrorCounts, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** One WebSocket to the target. `handler` sees every text frame; the owner swaps it per role. */
export class LeanConnection {
  readonly ws: WebSocket;
  handler: (frame: LeanFrame) => void = () => {};
  /** Set before closing on purpose, so that the close is not counted as an error. */
  closing = false;

  constructor(
    url: string,
    private readonly errors: ErrorCounts,
  ) {
    this.ws = new WebSocket(url, WS_SUBPROTOCOL, { perMessageDeflate: false });
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        countError(this.errors, 'binary-frame');
        return;
      }
      const id = fastDeliverId(data);
      if (id !== undefined) {
        this.handler({ t: 'deliver', id });
        return;
      }
      const frame = readFrame(data.toString());
      if (frame === undefined) countError(this.errors, 'unreadable-frame');
      else this.handler(frame);
    });
    this.ws.on('error', () => countError(this.errors, 'socket-error'));
    this.ws.on('close', (code: number) => {
      if (!this.closing) countError(this.errors, `close:${code}`);
    });
  }

  /** Resolves once the WebSocket is open. */
  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState === WebSocket.OPEN) {
        resolve();
        return;
      }
      const timer = setTimeout(() => reject(new Error('connect timed out')), SETUP_TIMEOUT_MS);
      this.ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
      this.ws.once('unexpected-response', () => {
        clearTimeout(timer);
        reject(new Error('upgrade refused'));
      });
    });
  }

  /** The next frame of type `t`; an `error` frame or a timeout rejects. */
  expect(t: string): Promise<LeanFrame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${t} frame`)), SETUP_TIMEOUT_MS);
      this.handler = (frame) => {
        if (frame.t === t) {
          clearTimeout(timer);
          this.handler = () => {};
          resolve(frame);
        } else if (frame.t === 'error') {
          clearTimeout(timer);
          reject(new Error(`error frame during setup: ${frame.code ?? '?'}`));
        }
      };
    });
  }

  /** Closes without a closing handshake (the run is over; the target sees a reset). */
  terminate(): void {
    this.closing = true;
    this.ws.terminate();
  }
}

/**
 * Opens a connection that holds a mailbox: on the relay by answering the challenge with an
 * Ed25519 signature (a fresh key per connection, so every mailbox is distinct), on the raw
 * forwarder by registering a random mailbox id. Returns the connection and its mailbox id.
 */
export async function openRecipient(
  url: string,
  target: TargetKind,
  errors: ErrorCounts,
): Promise<{ conn: LeanConnection; mailbox: string }> {
  const conn = new LeanConnection(url, errors);
  if (target === 'raw') {
    await conn.opened();
    const mailbox = randomBytes(32).toString('base64url');
    const authed = conn.expect('authed');
    conn.ws.send(`{"v":${PROTOCOL_VERSION},"t":"register","mailbox":"${mailbox}"}`);
    await authed;
    return { conn, mailbox };
  }
  // The challenge may arrive right after the upgrade: listen before the socket opens.
  const challenge = conn.expect('challenge');
  await conn.opened();
  const { nonce } = await challenge;
  if (nonce === undefined) throw new Error('challenge without nonce');
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  // The JWK `x` of an Ed25519 key is its raw 32-byte public key in base64url.
  const pk = publicKey.export({ format: 'jwk' }).x;
  if (pk === undefined) throw new Error('no raw public key');
  const mailbox = mailboxIdFromPublicKey(Buffer.from(pk, 'base64url'), (data) =>
    createHash('sha256').update(data).digest(),
  );
  const sig = sign(null, authChallengeMessage(Buffer.from(nonce, 'base64url')), privateKey);
  const authed = conn.expect('authed');
  conn.ws.send(
    `{"v":${PROTOCOL_VERSION},"t":"auth","rid":1,"pk":"${pk}","sig":"${sig.toString('base64url')}"}`,
  );
  const frame = await authed;
  if (frame.mailbox !== mailbox) throw new Error('authed for another mailbox');
  return { conn, mailbox };
}

/** Opens a connection that only sends (no authentication, as the protocol allows). */
export async function openSender(url: string, errors: ErrorCounts): Promise<LeanConnection> {
  const conn = new LeanConnection(url, errors);
  await conn.opened();
  return conn;
}

/** Runs `make` `count` times with at most `concurrency` in flight; results in call order. */
export async function openMany<T>(
  count: number,
  concurrency: number,
  make: (index: number) => Promise<T>,
): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      out[i] = await make(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
  return out;
}
