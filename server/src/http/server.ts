/**
 * One HTTP server that carries both the express app and the relay's WebSocket upgrades. main.ts
 * starts it with the configured store; tests start it in-process on port 0.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RelaySettings } from '../config.js';
import type { Logger } from '../log.js';
import { Relay } from '../relay/relay.js';
import type { Store } from '../store/store.js';
import { createApp } from './app.js';
import { rawHttpResponse } from './raw-response.js';

export interface ServerOptions {
  readonly host: string;
  /** 0 picks a free port; see {@link RunningServer.port}. */
  readonly port: number;
  readonly staticDir: string;
  readonly store: Store;
  readonly logger: Logger;
  readonly relay: RelaySettings;
  /** The organization whose profile is served (base64url), if any. */
  readonly organizationKey?: string | undefined;
  /** Sent as `Onion-Location` (with the path) on page responses, if set. */
  readonly onionLocation?: string | undefined;
}

export interface RunningServer {
  /** The port actually listened on. */
  readonly port: number;
  readonly http: Server;
  readonly relay: Relay;
  /**
   * Graceful stop (see {@link Relay.shutdown}), then the HTTP server closes. `/readyz` answers
   * 503 from the first moment. The store is the caller's to close.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** Starts listening; resolves once the port is bound. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const relay = new Relay({
    store: options.store,
    logger: options.logger,
    settings: options.relay,
  });
  const app = createApp({
    staticDir: options.staticDir,
    // Not ready at the connection cap: this relay refuses every upgrade until one closes.
    isReady: () => !relay.shuttingDown && !relay.atConnectionCap && options.store.health().ready,
    logger: options.logger,
    store: options.store,
    organizationKey: options.organizationKey,
    onionLocation: options.onionLocation,
  });
  const http = createServer(app);
  // Clients that never finish their request headers must not hold sockets for long.
  http.headersTimeout = 10_000;
  http.requestTimeout = 30_000;
  http.on('upgrade', (req, socket, head) => relay.handleUpgrade(req, socket, head));
  http.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end(rawHttpResponse(400));
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;

  let stopping: Promise<void> | undefined;
  const shutdown = (graceMs: number): Promise<void> => {
    stopping ??= (async () => {
      // The listener stays open while the relay drains so that /readyz can say 503 to the
      // load balancer; upgrades are refused from the first moment.
      await relay.shutdown(graceMs);
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    })();
    return stopping;
  };
  return { port, http, relay, shutdown };
}
