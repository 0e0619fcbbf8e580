/**
 * The outgoing side of one connection: every frame the relay writes to a socket goes through
 * here, corked per turn of the event loop, with the slow-consumer bound and the 'drain' that
 * resumes delivery. It is also the connection's {@link DeliverySink}.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { encodeDeliverFrame, encodeErrorFrame } from '@passage/shared/protocol/encode';
import { CloseCode, ErrorCode } from '@passage/shared/protocol/errors';
import type { RelaySettings } from '../config.js';
import type { Logger } from '../log.js';
import type { DeliverySink } from './delivery.js';
import { wireErrorOf } from './store-errors.js';

/** `WebSocket.OPEN`, without importing the value for one constant. */
export const OPEN = 1;

/** What the outbox needs from the relay. */
export interface OutboxContext {
  readonly logger: Logger;
  readonly settings: RelaySettings;
  /** True from the moment shutdown begins. */
  readonly shuttingDown: boolean;
}

export class Outbox implements DeliverySink {
  readonly #ws: WebSocket;
  readonly #ctx: OutboxContext;
  readonly #settings: RelaySettings;
  /**
   * The net.Socket `ws` writes to (its `_socket`, set before the 'connection' event): `ws` exposes
   * no cork and no 'drain' of its own. Looked up once here rather than on every write.
   */
  readonly #socket: Duplex | undefined;
  /** True while a 'drain' listener waits to resume deliveries (see hasRoom). */
  #drainArmed = false;
  /** True while the socket is corked until the end of this turn (see write). */
  #corked = false;
  /** Told when a backed-up socket has drained: the connection's delivery, once it has one. */
  drainListener: { resume(): void } | undefined;

  constructor(ws: WebSocket, ctx: OutboxContext) {
    this.#ws = ws;
    this.#ctx = ctx;
    this.#settings = ctx.settings;
    this.#socket = (ws as unknown as { _socket?: Duplex })._socket;
  }

  /** Writes one frame's text; a client whose unsent bytes passed the bound is closed instead. */
  write(text: string): void {
    const ws = this.#ws;
    if (ws.readyState !== OPEN) return;
    if (ws.bufferedAmount > this.#settings.slowConsumerBytes) {
      this.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
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

  /** Ends write's cork; one function per connection, not a new closure per corked turn. */
  readonly #uncork = (): void => {
    this.#corked = false;
    this.#socket?.uncork();
  };

  /** Starts the closing handshake with a named code (logged at debug, without identifiers). */
  close(code: CloseCode, reason: string): void {
    if (this.#ws.readyState !== OPEN) return;
    // Debug, not info: anyone can open connections and misbehave, and must not be able to
    // flood the operator's log with one line per connection.
    this.#ctx.logger.debug({ closeCode: code }, 'closing connection');
    this.#ws.close(code, reason);
  }

  /** An error frame with the generic message for `code`. */
  error(code: ErrorCode, rid: number | undefined): void {
    this.write(encodeErrorFrame(code, rid));
  }

  /** A bug while handling a frame: logged, answered `internal`. */
  internal(err: unknown, rid: number | undefined, frameType: string): void {
    this.#ctx.logger.error({ err, frameType }, 'frame handler failed');
    this.error(ErrorCode.INTERNAL, rid);
  }

  /** A failed store operation: its wire error, or `internal` when it is not a store error. */
  storeFailed(err: unknown, rid: number | undefined, frameType: string): void {
    const code = wireErrorOf(err);
    if (code === undefined) {
      this.internal(err, rid, frameType);
      return;
    }
    this.error(code, rid);
  }

  // ---------------------------------------------------------------------------------------
  // DeliverySink

  deliver(id: string, env: string): void {
    this.write(encodeDeliverFrame(id, env));
  }

  /**
   * False while the socket's unsent bytes are over MAX_BUFFERED_BYTES; then deliveries wait in
   * the store, and the socket's next 'drain' (its buffer written out) looks at the store again.
   */
  hasRoom(): boolean {
    if (this.#ws.bufferedAmount <= this.#settings.maxBufferedBytes) return true;
    const socket = this.#socket;
    if (!this.#drainArmed && socket !== undefined) {
      this.#drainArmed = true;
      this.#ctx.logger.debug('socket backed up; deliveries wait in the store');
      socket.once('drain', this.#onDrain);
    }
    return false;
  }

  roomBytes(): number {
    return Math.max(0, this.#settings.maxBufferedBytes - this.#ws.bufferedAmount);
  }

  readonly #onDrain = (): void => {
    this.#drainArmed = false;
    this.drainListener?.resume();
  };

  get stopping(): boolean {
    return this.#ctx.shuttingDown;
  }

  ackFailed(err: unknown): void {
    this.storeFailed(err, undefined, 'ack');
  }

  ackRefused(): void {
    this.error(ErrorCode.SHUTTING_DOWN, undefined);
  }

  peekFailed(err: unknown): void {
    if (wireErrorOf(err) === undefined) this.#ctx.logger.error({ err }, 'refill failed');
  }

  unexpected(err: unknown, during: 'ack' | 'refill'): void {
    this.internal(err, undefined, during);
  }
}
