/**
 * The relay process: configuration from the environment, the store (embedded in-memory unless
 * Redis is configured), one HTTP server for the client, health and the WebSocket relay, and
 * signal handling. A bug that escapes every handler ends the process (non-zero) rather than
 * leaving a half-alive relay; the orchestrator restarts it.
 */
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { startServer, type RunningServer } from './http/server.js';
import { createStore } from './store/create.js';
import type { Store } from './store/store.js';

function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    // Before a logger exists; the message names variables, never their values.
    const text = err instanceof ConfigError ? err.message : 'invalid configuration';
    process.stderr.write(`passage relay: ${text}\n`);
    process.exit(1);
  }
}

function storeKind(config: Config): string {
  if (config.redisClusterNodes !== undefined) return 'redis-cluster';
  if (config.redisUrl !== undefined) return 'redis';
  return 'memory';
}

function openStore(config: Config, logger: Logger): Promise<Store> {
  return createStore({
    limits: config.storeLimits,
    redisUrl: config.redisUrl,
    redisClusterNodes: config.redisClusterNodes,
    maxPendingOps: config.maxPendingStoreOps,
    logger,
  });
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ level: config.logLevel });

  const die = (what: string) => (err: unknown) => {
    logger.fatal({ err }, what);
    process.exit(1);
  };
  process.on('uncaughtException', die('uncaught exception'));
  process.on('unhandledRejection', die('unhandled rejection'));

  const store = await openStore(config, logger);
  let server: RunningServer;
  try {
    server = await startServer({
      host: config.host,
      port: config.port,
      staticDir: config.staticDir,
      store,
      logger,
      relay: config.relay,
      organizationKey: config.organizationKey,
      onionLocation: config.onionLocation,
    });
  } catch (err) {
    logger.fatal({ err }, 'cannot listen');
    await store.close();
    process.exit(1);
  }
  logger.info({ port: server.port, store: storeKind(config) }, 'listening');

  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
    await server.shutdown(config.shutdownGraceMs);
    await store.close();
    logger.info({ exitCode: 0 }, 'stopped');
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => void stop(signal).catch(die('shutdown failed')));
  }
}

await main();
