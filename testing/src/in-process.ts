/**
 * The real relay (HTTP server, WebSocket relay, MemoryStore unless a store is given) started
 * inside the test process on a free port, with its log lines captured. For tests that need to
 * reach inside (hold a store operation, count connections); everything else uses the child
 * process from relay-process.ts.
 */
import { loadConfig, type Config } from '@passage/server/config';
import { createLogger } from '@passage/server/log';
import { startServer, type RunningServer } from '@passage/server/http/server';
import { MemoryStore } from '@passage/server/store/memory';
import type { Store } from '@passage/server/store/store';
import { TEST_RELAY_DEFAULTS } from './defaults.js';

export interface InProcessRelay {
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  readonly config: Config;
  readonly server: RunningServer;
  readonly store: Store;
  /** Every log line written so far (JSON text). */
  readonly logs: string[];
  /** Resolves once a log line containing `text` has been written. */
  waitForLog(text: string): Promise<void>;
  /** Graceful shutdown, then the store is closed. */
  stop(graceMs?: number): Promise<void>;
}

export interface InProcessOptions {
  /** Configuration variables, as in the environment (PORT and HOST are fixed). */
  readonly env?: Readonly<Record<string, string>>;
  /** Builds the store from the configured limits; a MemoryStore by default. */
  readonly store?: (config: Config) => Store;
}

export async function startInProcessRelay(options: InProcessOptions = {}): Promise<InProcessRelay> {
  const config = loadConfig({
    LOG_LEVEL: 'debug',
    ...TEST_RELAY_DEFAULTS,
    ...options.env,
    PORT: '0',
    HOST: '127.0.0.1',
  });
  const logs: string[] = [];
  const logWaiters: { text: string; resolve: () => void }[] = [];
  const logger = createLogger({
    level: config.logLevel,
    destination: {
      write(line: string) {
        logs.push(line);
        for (let i = logWaiters.length - 1; i >= 0; i--) {
          if (line.includes(logWaiters[i]!.text)) logWaiters.splice(i, 1)[0]!.resolve();
        }
      },
    },
  });
  const store = options.store?.(config) ?? new MemoryStore(config.storeLimits);
  const server = await startServer({
    host: config.host,
    port: config.port,
    staticDir: config.staticDir,
    store,
    logger,
    relay: config.relay,
    organizationKey: config.organizationKey,
    onionLocation: config.onionLocation,
  });
  let stopped: Promise<void> | undefined;
  return {
    port: server.port,
    url: `http://127.0.0.1:${server.port}`,
    wsUrl: `ws://127.0.0.1:${server.port}/v1/ws`,
    config,
    server,
    store,
    logs,
    waitForLog(text) {
      if (logs.some((line) => line.includes(text))) return Promise.resolve();
      return new Promise((resolve) => logWaiters.push({ text, resolve }));
    },
    stop(graceMs = 5_000) {
      stopped ??= (async () => {
        await server.shutdown(graceMs);
        await store.close();
      })();
      return stopped;
    },
  };
}
