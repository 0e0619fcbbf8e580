/**
 * Chooses the store from the configuration: a Redis Cluster when seed nodes are given, a single
 * Redis node with a URL, else the embedded MemoryStore (one process, nothing to run beside it).
 */
import type { Logger } from '../log.js';
import { MemoryStore } from './memory.js';
import { RedisStore } from './redis.js';
import type { Store, StoreLimits } from './store.js';

/** How long startup waits for Redis before going on with the store "not ready", in ms. */
export const STARTUP_CONNECT_WAIT_MS = 5_000;

export interface CreateStoreOptions {
  readonly limits: StoreLimits;
  /** A single node, `redis://[:password@]host:port`. */
  readonly redisUrl?: string | undefined;
  /** Seed nodes of a Redis Cluster; takes precedence over `redisUrl`. */
  readonly redisClusterNodes?: readonly string[] | undefined;
  readonly logger: Logger;
  /** RedisStore's hard bound on operations waiting for Redis (MAX_PENDING_STORE_OPS). */
  readonly maxPendingOps?: number | undefined;
}

/**
 * Makes the configured store. With Redis it waits up to {@link STARTUP_CONNECT_WAIT_MS} for the
 * first connection and then returns either way: a relay whose Redis is down still starts,
 * `/readyz` says it is not ready, and the store connects by itself when Redis appears. The
 * log says which store is in use, never the URL (it may hold a password) or host names.
 */
export async function createStore(options: CreateStoreOptions): Promise<Store> {
  const { limits, redisUrl, redisClusterNodes, logger } = options;
  const bound = options.maxPendingOps === undefined ? {} : { maxPendingOps: options.maxPendingOps };
  if (redisClusterNodes !== undefined && redisClusterNodes.length > 0) {
    const store = new RedisStore({ limits, logger, clusterNodes: redisClusterNodes, ...bound });
    logger.info(
      { event: 'store_selected', store: 'redis', mode: 'cluster', nodes: redisClusterNodes.length },
      'using Redis Cluster store',
    );
    await store.start(STARTUP_CONNECT_WAIT_MS);
    if (!store.health().ready) {
      logger.warn({ event: 'redis_unavailable', store: 'redis' }, 'redis not reachable yet');
    }
    return store;
  }
  if (redisUrl !== undefined && redisUrl !== '') {
    const store = new RedisStore({ limits, logger, url: redisUrl, ...bound });
    logger.info({ event: 'store_selected', store: 'redis', mode: 'node' }, 'using Redis store');
    await store.start(STARTUP_CONNECT_WAIT_MS);
    if (!store.health().ready) {
      logger.warn({ event: 'redis_unavailable', store: 'redis' }, 'redis not reachable yet');
    }
    return store;
  }
  logger.info({ event: 'store_selected', store: 'memory' }, 'using embedded in-memory store');
  return new MemoryStore(limits);
}
