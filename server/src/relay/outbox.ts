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
import type { OutputBudget } from './io-budget.js';
import type { LoadCounters } from './load-report.js';
import { wireErrorOf } from './store-errors.js';

/** `WebSocket.OPEN`, without importing the value for one constant. */
export const OPEN = 1;

/** What the outbox needs from the relay. */
export interface OutboxContext {
  readonly logger: Logger;
  readonly settings: RelaySettings;
  /** True from the moment shutdown begins. */
  readonly shuttingDown: boolean;
  /** Unsent bytes over all connections, and their bound. */
  readonly outputBudget: OutputBudget;
  /** Where `overloaded` answers and given-up acks are counted. */
  readonly load: LoadCounters;
}

export class Outbox implements DeliverySink {
  readonly #ws: WebSocket;
  readonly #ctx: OutboxContext;
  /**
   * The socket `ws` writes to, the one of the `upgrade` event (relay.ts): `ws` exposes no cork
   * and no 'drain' of its own.
   */
  readonly #socket: Duplex;
  /** True while a 'drain' listener waits to resume deliveries (see hasRoom). */
  #drainArmed = false;
  /** True while the socket is corked until the end of this turn (see write). */
  #corked = false;
  /** True while waiting for the output budget to fall (see hasRoom). */
  #budgetArmed = false;
  /** This socket's unsent bytes as last reported to the output budget. */
  #accounted = 0;
  /** Set once the socket closed: its bytes are no longer counted. */
  #released = false;
  /** Told when a backed-up socket has drained: the connection's delivery, once it has one. */
  drainListener: { resume(): void } | undefined;

  constructor(ws: WebSocket, socket: Duplex, ctx: OutboxContext) {
    this.#ws = ws;
    this.#socket = socket;
    this.#ctx = ctx;
  }

  /** Writes one frame's text; a client whose unsent bytes passed the bound is closed instead. */
  write(text: string): void {
    const ws = this.#ws;
    if (ws.readyState !== OPEN) return;
    if (ws.bufferedAmount > this.#ctx.settings.slowConsumerBytes) {
      this.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
      return;
    }
    const socket = this.#socket;
    if (!this.#corked) {
      // Everything written to this socket in this turn of the event loop (a read's worth of
      // answers and deliveries) leaves in one writev instead of one syscall per frame.
      socket.cork();
      this.#corked = true;
      process.nextTick(this.#uncork);
    }
    ws.send(text);
    this.account();
  }

  /** Ends write's cork; one function per connection, not a new closure per corked turn. */
  readonly #uncork = (): void => {
    this.#corked = false;
    this.#socket.uncork();
    this.account();
  };

  /** Reports the socket's unsent bytes to the output budget (on write, uncork, drain, tick). */
  account(): void {
    if (this.#released) return;
    const buffered = this.#ws.bufferedAmount;
    const delta = buffered - this.#accounted;
    if (delta === 0) return;
    this.#accounted = buffered;
    this.#ctx.outputBudget.change(delta);
  }

  /** The socket closed: its bytes leave the output budget, and it waits for nothing. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#ctx.outputBudget.change(-this.#accounted);
    this.#accounted = 0;
    if (this.#onBudget !== undefined) this.#ctx.outputBudget.forget(this.#onBudget);
  }

  /** Answers a client's WebSocket ping; a client whose unsent bytes passed the bound is closed. */
  pong(data: Buffer): void {
    const ws = this.#ws;
    if (ws.readyState !== OPEN) return;
    if (ws.bufferedAmount > this.#ctx.settings.slowConsumerBytes) {
      this.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
      return;
    }
    ws.pong(data);
    this.account();
  }

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
    if (code === ErrorCode.OVERLOADED) this.#ctx.load.noteShed();
    this.error(code, rid);
  }

  // ---------------------------------------------------------------------------------------
  // DeliverySink

  deliver(id: string, env: string): void {
    this.write(encodeDeliverFrame(id, env));
  }

  /**
   * False while the socket's unsent bytes are over MAX_BUFFERED_BYTES, or those of all sockets
   * over MAX_TOTAL_BUFFERED_BYTES; then deliveries wait in the store, and the socket's next
   * 'drain' (its buffer written out), or the total falling, looks at the store again.
   */
  hasRoom(): boolean {
    if (this.#ctx.outputBudget.over) {
      if (!this.#budgetArmed && !this.#released) {
        this.#budgetArmed = true;
        this.#ctx.outputBudget.wait(
          (this.#onBudget ??= () => {
            this.#budgetArmed = false;
            this.drainListener?.resume();
          }),
        );
      }
      return false;
    }
    if (this.#ws.bufferedAmount <= this.#ctx.settings.maxBufferedBytes) return true;
    if (!this.#drainArmed) {
      this.#drainArmed = true;
      this.#ctx.logger.debug('socket backed up; deliveries wait in the store');
      this.#socket.once(
        'drain',
        (this.#onDrain ??= () => {
          this.#drainArmed = false;
          this.account();
          this.drainListener?.resume();
        }),
      );
    }
    return false;
  }

  roomBytes(): number {
    return Math.max(0, this.#ctx.settings.maxBufferedBytes - this.#ws.bufferedAmount);
  }

  /**
   * The socket's 'drain' and the output budget's wake-up; made the first time either is needed
   * (most sockets never back up), then reused.
   */
  #onDrain: (() => void) | undefined;
  #onBudget: (() => void) | undefined;

  get stopping(): boolean {
    return this.#ctx.shuttingDown;
  }

  /**
   * Counted and, for the last attempt, logged (rate-limited); a failure that is not a store
   * error is a bug, counted once per batch (its first attempt; the retries fail alike) and
   * logged as one, rate-limited like the rest (load-report.ts). Never an error frame: the client
   * could not tell which ack it answers, and the delivery retries it (delivery.ts).
   */
  ackFailed(err: unknown, final: boolean, attempt: number): void {
    if (attempt === 1 && wireErrorOf(err) === undefined) this.#ctx.load.noteAckBug(err);
    if (final) this.#ctx.load.noteAckAbandoned();
    else this.#ctx.load.noteAckRetry();
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
