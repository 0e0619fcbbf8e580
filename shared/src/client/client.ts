/**
 * `PassageClient`: the one public API of the client core (docs/client.md). It joins the
 * internal modules — the connection (connection.ts), the outbox (outbox.ts), the inbox
 * (inbox.ts) and first contact (first-contact.ts) — over the injected transport and clock, and
 * treats envelopes as bytes: sealing and opening them is the session layer's, which the
 * application passes in as the inbox handler and calls before `send`.
 */
import type { Primitives } from '../crypto/primitives.js';
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import { PROTOCOL_VERSION } from '../protocol/limits.js';
import type { FrameOf, ServerFrameType } from '../protocol/frames.js';
import {
  Connection,
  type ConnectionStatus,
  type ConnectionTiming,
  type RequestFrame,
  type Signer,
} from './connection.js';
import { ClientError, ClientErrorCode, RelayError } from './errors.js';
import { Emitter, type Listener } from './events.js';
import { admit, type PowProgress, type PowSolver } from './first-contact.js';
import { Inbox, type EnvelopeHandler, type InboxLimits, type InboxStats } from './inbox.js';
import {
  Outbox,
  type OutboxLimits,
  type OutboxStorage,
  type OutgoingRecord,
  type OutgoingState,
} from './outbox.js';
import { systemClock, type Clock, type Transport } from './transport.js';

export interface PassageClientOptions {
  /** The relay's WebSocket URL (`wss://…/v1/ws`), or a function asked before every attempt. */
  readonly url: string | (() => string);
  readonly transport: Transport;
  /** The real clock by default. */
  readonly clock?: Clock;
  /** SHA-256 (mailbox ids) and the CSPRNG (message ids, jitter): a crypto backend. */
  readonly primitives: Pick<Primitives, 'sha256' | 'random'>;
  /**
   * The device's identity key: the connection authenticates and reads its mailbox. Without
   * one the client only sends (an anonymous first contact).
   */
  readonly identity?: Signer;
  /** Required with an identity: what to do with each delivered envelope. */
  readonly onEnvelope?: EnvelopeHandler;
  /** Solves first-contact proof-of-work (a Web Worker in a page, `inlinePowSolver` in Node). */
  readonly solvePow?: PowSolver;
  /** Where outgoing messages are kept; in memory by default. */
  readonly outboxStorage?: OutboxStorage;
  readonly timing?: Partial<ConnectionTiming>;
  readonly outboxLimits?: Partial<OutboxLimits>;
  readonly inboxLimits?: Partial<InboxLimits>;
}

/** Everything a UI shows about the client. */
export interface PassageClientStatus {
  readonly connection: ConnectionStatus;
  readonly outbox: Readonly<Record<OutgoingState, number>>;
  readonly inbox: InboxStats | undefined;
  /** Frames from the relay that were dropped as malformed or unexpected, by reason. */
  readonly protocolErrors: Readonly<Record<string, number>>;
}

export interface PassageClientEvents extends Record<string, unknown> {
  /** The connection's state changed. */
  state: ConnectionStatus;
  /** An outgoing message changed state. */
  'message-state': {
    readonly id: string;
    readonly to: string;
    readonly state: OutgoingState;
    readonly failure?: string;
  };
  /** Proof-of-work progress for a first contact. */
  'pow-progress': PowProgress;
  /** An envelope was acknowledged without being read. */
  unreadable: { readonly id: string; readonly reason: string };
}

export class PassageClient {
  readonly #events = new Emitter<PassageClientEvents>();
  readonly #connection: Connection;
  readonly #outbox: Outbox;
  readonly #inbox: Inbox | undefined;
  readonly #solvePow: PowSolver | undefined;
  #started: Promise<void> | undefined;

  constructor(options: PassageClientOptions) {
    const clock = options.clock ?? systemClock();
    const random = options.primitives.random;
    const jitter = () => random.uniform(2 ** 30) / 2 ** 30;
    this.#connection = new Connection({
      url: options.url,
      transport: options.transport,
      clock,
      sha256: (data) => options.primitives.sha256(data),
      random: jitter,
      ...(options.identity === undefined ? {} : { signer: options.identity }),
      ...(options.timing === undefined ? {} : { timing: options.timing }),
    });
    this.#solvePow = options.solvePow;
    this.#outbox = new Outbox({
      connection: this.#connection,
      clock,
      randomBytes: (n) => random.bytes(n),
      random: jitter,
      ...(options.outboxStorage === undefined ? {} : { storage: options.outboxStorage }),
      ...(options.solvePow === undefined ? {} : { solvePow: options.solvePow }),
      ...(options.outboxLimits === undefined ? {} : { limits: options.outboxLimits }),
    });
    if (options.identity !== undefined) {
      if (options.onEnvelope === undefined) throw new TypeError('an identity needs onEnvelope');
      this.#inbox = new Inbox({
        connection: this.#connection,
        handler: options.onEnvelope,
        ...(options.inboxLimits === undefined ? {} : { limits: options.inboxLimits }),
      });
      this.#inbox.events.on('unreadable', (e) => this.#events.emit('unreadable', e));
    }
    this.#connection.events.on('state', (s) => this.#events.emit('state', s));
    this.#outbox.events.on('message-state', (e) => this.#events.emit('message-state', e));
    this.#outbox.events.on('pow-progress', (e) => this.#events.emit('pow-progress', e));
  }

  /** Loads the outbox and starts connecting; the client reconnects by itself until `close`. */
  connect(): Promise<void> {
    this.#started ??= this.#outbox.start().then(() => this.#connection.connect());
    return this.#started;
  }

  /**
   * Queues an envelope for a mailbox and resolves with its message id once the outbox has it
   * (before it is sent). Follow it with `message-state` events.
   *
   * @throws ClientError('bad_recipient' | 'bad_envelope' | 'outbox_full' | 'closed')
   */
  send(to: string, envelope: Uint8Array): Promise<string> {
    if (this.#connection.state === 'closed') {
      return Promise.reject(new ClientError(ClientErrorCode.CLOSED));
    }
    return this.#outbox.enqueue(to, envelope);
  }

  /**
   * One request to the relay over the ready connection (the session layer's prekey directory
   * frames): resolves with the answer of type `expect`, or rejects with a `RelayError` or a
   * `ClientError` (`not_connected`, `connection_lost`, `timeout`, `closed`). Not retried.
   */
  request<T extends ServerFrameType>(frame: RequestFrame, expect: T): Promise<FrameOf<T>> {
    return this.#connection.request(frame, expect);
  }

  /** A receipt from a recipient device: the message was delivered. */
  markDelivered(id: string): Promise<boolean> {
    return this.#outbox.markDelivered(id);
  }

  /** A receipt from a recipient: the message was read (the outbox then forgets it). */
  markRead(id: string): Promise<boolean> {
    return this.#outbox.markRead(id);
  }

  /** One outgoing message, while the outbox holds it. */
  message(id: string): OutgoingRecord | undefined {
    return this.#outbox.get(id);
  }

  /**
   * This mailbox's state blob (docs/protocol.md, "The mailbox's state blob"): the bytes and their
   * generation, or `{ blob: null, generation: 0 }` when none is held. Needs an identity.
   *
   * @throws ClientError('not_connected' | 'connection_lost' | 'timeout' | 'unexpected_reply' |
   *   'closed'), RelayError from the relay
   */
  async getState(): Promise<{ readonly blob: Uint8Array | null; readonly generation: number }> {
    const answer = await this.#connection.request(
      { v: PROTOCOL_VERSION, t: 'state.get' },
      'state.blob',
    );
    if (answer.blob === null) return { blob: null, generation: 0 };
    const blob = fromBase64url(answer.blob);
    if (blob === undefined) throw new ClientError(ClientErrorCode.UNEXPECTED_REPLY);
    return { blob, generation: answer.generation };
  }

  /**
   * Replaces this mailbox's state blob if the generation held is `ifGeneration` (0: none held)
   * and resolves with the new generation. A put that creates a state needs a proof-of-work on
   * this connection: on `pow_required` the connection is admitted (to its own mailbox, with the
   * `solvePow` solver) and the put sent once more.
   *
   * @throws RelayError('state_conflict') when another writer came first (read, merge, put
   *   again), RelayError('state_too_large'), and as `getState`
   */
  async putState(blob: Uint8Array, ifGeneration: number): Promise<number> {
    const put = () =>
      this.#connection.request(
        { v: PROTOCOL_VERSION, t: 'state.put', blob: toBase64url(blob), ifGeneration },
        'state.stored',
      );
    try {
      return (await put()).generation;
    } catch (error) {
      const mailbox = this.#connection.status.mailbox;
      if (!(error instanceof RelayError) || error.code !== 'pow_required') throw error;
      if (this.#solvePow === undefined || mailbox === undefined) throw error;
      await admit(this.#connection, mailbox, this.#solvePow, (p) =>
        this.#events.emit('pow-progress', p),
      );
      return (await put()).generation;
    }
  }

  /**
   * Reserves one attachment upload (`blob.reserve`, docs/protocol.md "Attachment blobs"): the
   * blob id and the one-time upload token for `PUT /v1/blobs/<id>`, and the token's expiry (the
   * relay's clock, Unix ms). A reservation needs a proof-of-work on this connection: on
   * `pow_required` the connection is admitted (to its own mailbox, with the `solvePow` solver)
   * and the reservation asked once more. Needs an identity.
   *
   * @throws RelayError('blob_reservations_spent') past the connection's allowance, and as
   *   `getState`
   */
  async reserveBlob(): Promise<{
    readonly id: string;
    readonly token: string;
    readonly exp: number;
  }> {
    const reserve = () =>
      this.#connection.request({ v: PROTOCOL_VERSION, t: 'blob.reserve' }, 'blob.reserved');
    let answer: FrameOf<'blob.reserved'>;
    try {
      answer = await reserve();
    } catch (error) {
      const mailbox = this.#connection.status.mailbox;
      if (!(error instanceof RelayError) || error.code !== 'pow_required') throw error;
      if (this.#solvePow === undefined || mailbox === undefined) throw error;
      await admit(this.#connection, mailbox, this.#solvePow, (p) =>
        this.#events.emit('pow-progress', p),
      );
      answer = await reserve();
    }
    return { id: answer.id, token: answer.token, exp: answer.exp };
  }

  /** Deletes this mailbox's state blob ("delete my conversation"); resolves whether or not one was held. */
  async deleteState(): Promise<void> {
    await this.#connection.request({ v: PROTOCOL_VERSION, t: 'state.delete' }, 'state.deleted');
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof PassageClientEvents>(
    type: K,
    listener: Listener<PassageClientEvents[K]>,
  ): () => void {
    return this.#events.on(type, listener);
  }

  get status(): PassageClientStatus {
    return {
      connection: this.#connection.status,
      outbox: this.#outbox.counts(),
      inbox: this.#inbox?.stats,
      protocolErrors: Object.fromEntries(this.#connection.protocolErrors),
    };
  }

  /** Resolves once the connection is ready (now, or after the next (re)connect). */
  ready(): Promise<void> {
    if (this.#connection.state === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.#connection.events.on('state', (s) => {
        if (s.state === 'ready') {
          off();
          resolve();
        } else if (s.state === 'closed' || s.state === 'failed') {
          off();
          reject(new ClientError(s.failure ?? ClientErrorCode.CLOSED));
        }
      });
    });
  }

  /** Resolves once every delivered envelope so far has been handled. */
  idle(): Promise<void> {
    return this.#inbox?.idle() ?? Promise.resolve();
  }

  /** Stops for good: closes the connection; what the outbox holds stays in its storage. */
  close(): void {
    this.#outbox.stop();
    this.#connection.close();
  }
}
