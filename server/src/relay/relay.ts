/**
 * The WebSocket relay: accepts upgrades on `/v1/ws` (subprotocol `passage.v1` required), owns
 * the connections, the hub, the per-mailbox rate limits (sends in fair shares, prekey fetches) and the
 * periodic tick, and shuts down gracefully. It carries ciphertext and never decrypts.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CloseCode } from '@passage/shared/protocol/errors';
import {
  MAX_FRAME_BYTES,
  MAX_MESSAGE_FRAGMENTS,
  MAX_RECEIVE_CHUNKS,
  WS_SUBPROTOCOL,
} from '@passage/shared/protocol/limits';
import type { RelaySettings } from '../config.js';
import { rawHttpResponse } from '../http/raw-response.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { Admission } from './admission.js';
import { Backpressure } from './backpressure.js';
import { AdmissionGauge } from './first-contact.js';
import { Connection, TrackedDeliveryStore, type RelayContext } from './connection.js';
import { MailboxSendLimiter } from './fair-share.js';
import { Hub } from './hub.js';
import { InputBudget, OutputBudget } from './io-budget.js';
import { LOAD_REPORT_INTERVAL_MS, LoadCounters } from './load-report.js';
import { KeyedRateLimiter, TokenBucket } from './rate-limit.js';

/** The path of the relay's WebSocket endpoint. */
export const RELAY_PATH = '/v1/ws';

/** How long closing sockets get to finish the close handshake at shutdown, in ms. */
export const CLOSE_HANDSHAKE_MS = 2_000;

export interface RelayOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly settings: RelaySettings;
}

/** Refuses an upgrade with `status` and the headers of every other response, and closes. */
function rejectUpgrade(socket: Duplex, status: number): void {
  if (socket.writable) socket.end(rawHttpResponse(status));
  socket.destroy();
}

/** A socket's 'error' listener (one function for all, not a closure per connection). */
function destroySocket(this: Duplex): void {
  this.destroy();
}

function offersSubprotocol(header: string | undefined): boolean {
  if (header === undefined) return false;
  for (const p of header.split(',')) if (p.trim() === WS_SUBPROTOCOL) return true;
  return false;
}

export class Relay implements RelayContext {
  readonly store: Store;
  readonly hub: Hub;
  readonly logger: Logger;
  readonly settings: RelaySettings;
  readonly mailboxLimiter: MailboxSendLimiter;
  readonly prekeyFetchLimiter: KeyedRateLimiter;
  readonly deliveryStore: TrackedDeliveryStore;
  readonly admission: Admission;
  readonly inputBudget: InputBudget;
  readonly outputBudget: OutputBudget;
  readonly prekeyPublishLimiter: TokenBucket;
  readonly firstContactGauge: AdmissionGauge;
  readonly backpressure: Backpressure;
  readonly load: LoadCounters;
  readonly #wss: WebSocketServer;
  readonly #connections = new Set<Connection>();
  readonly #ticker: NodeJS.Timeout;
  readonly #reporter: NodeJS.Timeout;
  #pendingOps = 0;
  #onIdle: (() => void) | undefined;
  #onEmpty: (() => void) | undefined;
  #shuttingDown = false;
  #shutdown: Promise<void> | undefined;
  #storeWasReady = true;

  constructor(options: RelayOptions) {
    this.store = options.store;
    this.logger = options.logger;
    this.settings = options.settings;
    this.hub = new Hub(this.store, this.logger);
    this.deliveryStore = new TrackedDeliveryStore(this);
    this.load = new LoadCounters(this.logger);
    this.backpressure = new Backpressure(
      {
        pauseAt: this.settings.storePausePendingOps,
        resumeAt: this.settings.storeResumePendingOps,
      },
      this.load,
    );
    this.mailboxLimiter = new MailboxSendLimiter(this.settings);
    // Its own buckets: fetches must neither share the send burst (which is larger than the
    // one-time prekeys a device keeps) nor use up the budget for messages to that mailbox.
    this.prekeyFetchLimiter = new KeyedRateLimiter(
      this.settings.prekeyFetchesPerSecond,
      this.settings.prekeyFetchBurst,
      this.settings.maxTrackedMailboxes,
    );
    this.admission = new Admission(this.settings);
    this.inputBudget = new InputBudget(this.settings.maxUnfinishedInputBytes);
    this.outputBudget = new OutputBudget(this.settings.maxTotalBufferedBytes);
    this.prekeyPublishLimiter = new TokenBucket(
      this.settings.prekeyPublishesPerSecond,
      this.settings.prekeyPublishBurst,
      performance.now(),
    );
    this.firstContactGauge = new AdmissionGauge(this.settings, Date.now());
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      maxFragments: MAX_MESSAGE_FRAGMENTS,
      maxBufferedChunks: MAX_RECEIVE_CHUNKS,
      // Pings count against the connection's frame rate; the connection answers them itself.
      autoPong: false,
      // Compression leaks lengths of what it compresses together and costs CPU per message.
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (offered) => (offered.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
    });
    // A handshake `ws` refuses (bad key, version or Upgrade header) gets the same headers as
    // every other response, rather than ws's own bare 400.
    this.#wss.on('wsClientError', (_err: Error, socket: Duplex) => rejectUpgrade(socket, 400));
    this.#ticker = setInterval(() => this.#tick(), this.settings.pingIntervalMs);
    this.#ticker.unref();
    this.#reporter = setInterval(
      () => this.load.report(LOAD_REPORT_INTERVAL_MS),
      LOAD_REPORT_INTERVAL_MS,
    );
    this.#reporter.unref();
  }

  /** True from the moment shutdown begins; `/readyz` reports 503 from then on. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * True while the relay holds MAX_CONNECTIONS connections and refuses every upgrade; `/readyz`
   * then answers 503 so that a load balancer sends new connections to another relay. (Full
   * unauthenticated slots do not count: a newcomer still gets in, displacing the oldest.)
   */
  get atConnectionCap(): boolean {
    return this.#connections.size >= this.settings.maxConnections;
  }

  /** Unsent bytes on every open socket now, summed exactly (for tests and metrics). */
  get bufferedOutputBytes(): number {
    let total = 0;
    for (const connection of this.#connections) total += connection.bufferedAmount;
    return total;
  }

  /** Store operations still running. */
  get pendingOperations(): number {
    return this.#pendingOps;
  }

  /** Handles an HTTP upgrade; give it every `upgrade` event of the HTTP server. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Errors on a socket that is not yet a WebSocket (reset mid-handshake) are nobody's bug.
    socket.on('error', destroySocket);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== RELAY_PATH) {
      rejectUpgrade(socket, 404);
      return;
    }
    if (this.#shuttingDown) {
      rejectUpgrade(socket, 503);
      return;
    }
    if (!offersSubprotocol(req.headers['sec-websocket-protocol'])) {
      rejectUpgrade(socket, 400);
      return;
    }
    // Anyone may connect without an account, and every connection costs memory (and may have
    // up to SLOW_CONSUMER_BYTES buffered for it): without a bound, enough idle sockets would
    // exhaust the process and drop everyone. `wss.handleUpgrade` accepts synchronously, so the
    // count below already includes every upgrade accepted before this one.
    if (this.#connections.size >= this.settings.maxConnections) {
      rejectUpgrade(socket, 503);
      return;
    }
    // The connection keeps `socket` (public) rather than reach for ws's private `_socket`: ws
    // reads from and writes to this very socket.
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, socket));
  }

  #accept(ws: WebSocket, socket: Duplex): void {
    if (this.#shuttingDown) {
      ws.close(CloseCode.GOING_AWAY, 'going away');
      return;
    }
    try {
      this.#connections.add(new Connection(ws, socket, this, performance.now()));
    } catch (err) {
      this.logger.error({ err }, 'accepting a connection failed');
      ws.terminate();
    }
  }

  opStarted(): void {
    this.#pendingOps++;
    this.backpressure.opStarted();
  }

  opFinished(): void {
    this.backpressure.opFinished();
    if (--this.#pendingOps === 0 && this.#onIdle !== undefined) this.#onIdle();
  }

  connectionClosed(connection: Connection): void {
    this.#connections.delete(connection);
    if (this.#connections.size === 0 && this.#onEmpty !== undefined) this.#onEmpty();
  }

  #tick(): void {
    const now = performance.now();
    // A store that was unreachable may have lost notifications from other instances (pub/sub
    // is at most once): when it comes back, every authenticated connection looks again.
    const ready = this.store.health().ready;
    const resync = ready && !this.#storeWasReady;
    this.#storeWasReady = ready;
    for (const connection of this.#connections) {
      try {
        if (resync) connection.resync();
        connection.tick(now);
      } catch (err) {
        this.logger.error({ err }, 'connection tick failed');
      }
    }
    this.mailboxLimiter.sweep(now);
    this.prekeyFetchLimiter.sweep(now);
  }

  /**
   * Graceful shutdown: refuse new upgrades and store work at once, wait (at most `graceMs`) for
   * the store operations already running so their answers go out, then close every socket
   * with GOING_AWAY and drop those that do not finish the close handshake in time.
   * Does not close the store or the HTTP server; the caller does, after this resolves.
   */
  shutdown(graceMs: number): Promise<void> {
    this.#shutdown ??= this.#runShutdown(graceMs);
    return this.#shutdown;
  }

  async #runShutdown(graceMs: number): Promise<void> {
    this.#shuttingDown = true;
    const started = performance.now();
    if (this.#pendingOps > 0) {
      await this.#waitFor(graceMs, (resolve) => (this.#onIdle = resolve));
    }
    const pending = this.#pendingOps;
    this.logger.info(
      {
        pending,
        connections: this.#connections.size,
        durationMs: Math.round(performance.now() - started),
      },
      'closing connections',
    );
    clearInterval(this.#ticker);
    clearInterval(this.#reporter);
    for (const connection of this.#connections) connection.closeGoingAway();
    if (this.#connections.size > 0) {
      await this.#waitFor(CLOSE_HANDSHAKE_MS, (resolve) => (this.#onEmpty = resolve));
    }
    for (const connection of this.#connections) connection.terminate();
    this.#wss.close();
  }

  async #waitFor(ms: number, arm: (resolve: () => void) => void): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      arm(resolve);
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
  }
}
