/**
 * RedisStore: the store for one Redis node or a Redis Cluster, shared by any number of relays.
 * Key layout in keys.ts, scripts in scripts.ts, reasons in docs/adr/0001-redis-store-layout.md.
 *
 * Hot path: one script (one round trip) per enqueue batch and per ack batch; a refill's
 * peekAfter takes two (the live ids after its cursor with their scores, then only the envelopes
 * the connection does not hold, within the bytes its socket can take), as does peek (ids, then
 * one MGET). The enqueue
 * script also SPUBLISHes the envelope on the mailbox's sharded channel when another instance
 * listens there, so a relay holding the recipient delivers it without another round trip; the
 * origin relay skips its own (it delivered locally already).
 *
 * Faults: commands are never queued while Redis is unreachable (`disableOfflineQueue`): they
 * fail at once with StoreError('unavailable'), the relay tells the client to retry, and
 * node-redis reconnects with a bounded backoff. node-redis's per-command timeout is turned off
 * (it arms an AbortSignal.timeout per command, a fifth of the relay's CPU in profiles); instead
 * the number of commands in flight is bounded (StoreError('overloaded') beyond it, a safety bound
 * far above the relay's backpressure watermarks; acknowledgements are exempt) and one watchdog
 * timer notices a connection that stopped answering (a peer that vanished without a
 * FIN, a frozen Redis) and replaces it, which fails what was in flight as 'unavailable'.
 * The subscriber connection is watched too, though it is idle most of the time: the watchdog
 * PINGs it (a PING is allowed in subscribed mode) and replaces the connections when the answer
 * does not come within STALL_TIMEOUT_MS, and an SSUBSCRIBE that is not answered within
 * SUBSCRIBE_TIMEOUT_MS fails 'unavailable' and does the same. After a replacement the new
 * subscriber subscribes to every mailbox again and peeks each (#resync): notifications sent
 * into the dead connection are lost, the envelopes are not.
 */
import { randomBytes } from 'node:crypto';
import { createClient, createCluster, ErrorReply } from 'redis';
import type { OneTimePrekey } from '@passage/shared/protocol/frames';
import {
  FIELD_SEPARATOR,
  PREKEY_MEMBER_SEPARATOR,
  envelopeKey,
  isKeySafeId,
  mailboxChannel,
  mailboxOfChannel,
  queueKey,
} from './keys.js';
import {
  ACK,
  COUNT_PREKEYS,
  ENQUEUE,
  FETCH_PREKEYS,
  READ_PREKEY_BUNDLE,
  GET_UNEXPIRED,
  BLOB_RESERVED,
  DELETE_STATE,
  GET_STATE,
  PUT_BLOB,
  PUT_STATE,
  RESERVE_BLOB,
  MAX_BATCH_ACK_IDS,
  MAX_BATCH_OPERATIONS,
  MAX_PEEK_LIMIT,
  PEEK,
  PEEK_AFTER,
  PUBLISH_PREKEYS,
  PUT_PROFILE,
  RATE_TAKE,
  READ_ENVELOPES,
  ackCall,
  countPrekeysCall,
  enqueueCall,
  type EnqueueCall,
  fetchPrekeysCall,
  readPrekeyBundleCall,
  getProfileCall,
  blobReservedCall,
  deleteStateCall,
  getBlobCall,
  getStateCall,
  putBlobCall,
  putStateCall,
  reserveBlobCall,
  peekAfterCall,
  peekCall,
  publishPrekeysCall,
  putProfileCall,
  rateTakeCall,
  readEnvelopesCall,
  type LuaScript,
  type ScriptCall,
} from './scripts.js';
import {
  MAX_PENDING_STORE_OPS,
  MAX_PEEK_SCAN,
  StoreError,
  assertValidLimits,
  checkPeekBounds,
  type EnqueueResult,
  type PeekBounds,
  type PeekPage,
  type PeekedEnvelope,
  type FetchedBundle,
  type OneTimePrekeyMode,
  type PrekeyBundle,
  type PutProfileResult,
  type HeldState,
  type PutBlobResult,
  type PutStateResult,
  type QueuedEnvelope,
  type RemoteDeliveryListener,
  type SharedRate,
  type SharedRateKind,
  type SharedRateLimits,
  type Store,
  type StoreHealth,
  type StoreLimits,
  type StoredProfile,
} from './store.js';
import { MAX_PROFILE_VALIDITY_SECONDS } from '@passage/shared/org/limits';

/** Every script, loaded on each fresh single-node connection (see #preloadScripts). */
const ALL_SCRIPTS = [
  ENQUEUE,
  PEEK,
  PEEK_AFTER,
  READ_ENVELOPES,
  ACK,
  PUBLISH_PREKEYS,
  FETCH_PREKEYS,
  READ_PREKEY_BUNDLE,
  COUNT_PREKEYS,
  RATE_TAKE,
  PUT_PROFILE,
  GET_UNEXPIRED,
  PUT_STATE,
  GET_STATE,
  DELETE_STATE,
  RESERVE_BLOB,
  BLOB_RESERVED,
  PUT_BLOB,
];

/** The logging RedisStore needs; pino's Logger satisfies it. */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** How often the watchdog looks at the connection, in ms. */
export const WATCHDOG_INTERVAL_MS = 1_000;
/** A connection with commands in flight and no reply for this long is replaced, in ms. */
export const STALL_TIMEOUT_MS = 5_000;
/**
 * Longest an SSUBSCRIBE may wait for its answer, in ms; past it the subscriber connection counts
 * as stalled and is replaced (the subscribe fails 'unavailable', the client retries).
 */
export const SUBSCRIBE_TIMEOUT_MS = STALL_TIMEOUT_MS;
/** Reconnect backoff: first delay and cap, in ms. */
export const RECONNECT_MIN_DELAY_MS = 50;
export const RECONNECT_MAX_DELAY_MS = 2_000;
/** TCP connect timeout, in ms. */
export const CONNECT_TIMEOUT_MS = 2_000;
/** After the subscriber reconnects, each subscribed mailbox is re-peeked up to this many. */
export const RESYNC_PEEK_LIMIT = 64;

export interface RedisStoreOptions {
  readonly limits: StoreLimits;
  readonly logger: StoreLogger;
  /** A single node (`redis://…`). Exactly one of `url` and `clusterNodes`. */
  readonly url?: string;
  /** Seed nodes of a Redis Cluster (`redis://host:port` each). */
  readonly clusterNodes?: readonly string[];
  /** Hard bound on operations waiting for Redis; default {@link MAX_PENDING_STORE_OPS}. */
  readonly maxPendingOps?: number;
  /**
   * Tests only: a clock offset in ms added to Redis's TIME in every script, so the contract
   * suite can move time forward without sleeping. Refused outside tests.
   */
  readonly dangerousTestOnlyClockOffsetMs?: () => number;
}

/** An admitted enqueue waiting for the next flush. */
interface PendingEnqueue {
  readonly mailbox: string;
  readonly id: string;
  readonly env: string;
  readonly resolve: (result: EnqueueResult) => void;
  readonly reject: (err: unknown) => void;
}

/** An admitted ack waiting for the next flush. */
interface PendingAck {
  readonly mailbox: string;
  /** Key-safe ids only (no other id can be queued). */
  readonly ids: readonly string[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** The parts of a node-redis client or cluster RedisStore uses. */
interface Backend {
  readonly mode: 'node' | 'cluster';
  /** Sends one command routed by `firstKey`. */
  send(firstKey: string | undefined, readOnly: boolean, args: string[]): Promise<unknown>;
  /** Commands can be sent now. */
  ready(): boolean;
  /** Subscriptions are being delivered now. */
  subscriberReady(): boolean;
  /**
   * Sends PING on the subscriber connection (its liveness); undefined where the backend has no
   * one subscriber connection to ask (a cluster subscribes on a connection per node).
   */
  pingSubscriber(): Promise<unknown> | undefined;
  subscribe(
    channels: string[],
    listener: (message: string, channel: string) => void,
  ): Promise<void>;
  unsubscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>;
  connect(): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
}

/** Bounded exponential backoff with jitter; never gives up (the relay must recover alone). */
function reconnectDelay(retries: number): number {
  const base = Math.min(
    RECONNECT_MAX_DELAY_MS,
    RECONNECT_MIN_DELAY_MS * 2 ** Math.min(retries, 10),
  );
  return Math.round(base / 2 + Math.random() * (base / 2));
}

const CLIENT_DEFAULTS = {
  disableOfflineQueue: true,
  // No per-command timer (see the module comment); the watchdog covers dead connections.
  commandOptions: { timeout: 0 },
  socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay },
} as const;

interface Events {
  onReady(which: 'commands' | 'subscriber'): void;
  onDown(which: 'commands' | 'subscriber', err: unknown): void;
}

function nodeBackend(url: string, events: Events): Backend {
  const client = createClient({ url, ...CLIENT_DEFAULTS });
  const subscriber = client.duplicate();
  client.on('error', (err: unknown) => events.onDown('commands', err));
  client.on('ready', () => events.onReady('commands'));
  subscriber.on('error', (err: unknown) => events.onDown('subscriber', err));
  subscriber.on('ready', () => events.onReady('subscriber'));
  return {
    mode: 'node',
    send: (_firstKey, _readOnly, args) => client.sendCommand(args),
    ready: () => client.isReady,
    subscriberReady: () => subscriber.isReady,
    pingSubscriber: () => subscriber.sendCommand(['PING']),
    subscribe: (channels, listener) => subscriber.sSubscribe(channels, listener),
    unsubscribe: (channel, listener) => subscriber.sUnsubscribe(channel, listener),
    async connect() {
      await Promise.all([client.connect(), subscriber.connect()]);
    },
    async close() {
      await Promise.allSettled(
        [client, subscriber].map((c) => (c.isReady ? c.close() : Promise.resolve(c.destroy()))),
      );
    },
    destroy() {
      client.destroy();
      subscriber.destroy();
    },
  };
}

function clusterBackend(nodes: readonly string[], events: Events): Backend {
  const cluster = createCluster({
    rootNodes: nodes.map((url) => ({ url })),
    defaults: CLIENT_DEFAULTS,
    commandOptions: { timeout: 0 },
  });
  // The cluster client's own isReady only says the slot map is known. A node that is down
  // makes its slots unavailable, so the store is not ready until every node is back; a node
  // the client dropped from the topology ('node-disconnect') no longer counts.
  const down = new Set<string>();
  const nodeKey = (info: unknown): string => {
    const node = info as { host?: unknown; port?: unknown } | undefined;
    return `${String(node?.host)}:${String(node?.port)}`;
  };
  cluster.on('error', (err: unknown) => events.onDown('commands', err));
  cluster.on('node-error', (err: unknown, info: unknown) => {
    down.add(nodeKey(info));
    events.onDown('commands', err);
    // The node's sharded subscriptions were on that connection too.
    events.onDown('subscriber', err);
  });
  cluster.on('node-ready', (info: unknown) => {
    down.delete(nodeKey(info));
    if (down.size === 0) events.onReady('commands');
    events.onReady('subscriber');
  });
  cluster.on('node-disconnect', (info: unknown) => {
    down.delete(nodeKey(info));
  });
  cluster.on('connect', () => events.onReady('commands'));
  return {
    mode: 'cluster',
    send: (firstKey, readOnly, args) => cluster.sendCommand(firstKey, readOnly, args),
    ready: () => cluster.isReady && down.size === 0,
    subscriberReady: () => cluster.isReady && down.size === 0,
    // node-redis keeps the per-node subscriber connections to itself; a node that stops
    // answering shows in its command connection (the watchdog's PING) and in 'node-error'.
    pingSubscriber: () => undefined,
    async subscribe(channels, listener) {
      // Channels of different mailboxes live in different slots: one SSUBSCRIBE each.
      await Promise.all(channels.map((channel) => cluster.sSubscribe(channel, listener)));
    },
    unsubscribe: (channel, listener) => cluster.sUnsubscribe(channel, listener),
    async connect() {
      await cluster.connect();
    },
    async close() {
      await cluster.close();
    },
    destroy() {
      cluster.destroy();
    },
  };
}

/** Redis error replies that mean "not now" rather than "bug". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOREPLICAS)\b/;

/**
 * A StoreError for anything that means Redis could not do it now; other errors unchanged.
 * Redis at maxmemory (OOM, with the noeviction policy Passage needs) is 'overloaded': the
 * relay sheds load, as MemoryStore does past its byte bound.
 */
function toStoreError(err: unknown): unknown {
  if (err instanceof StoreError) return err;
  if (err instanceof ErrorReply) {
    if (err.message.startsWith('OOM')) return new StoreError('overloaded', { cause: err });
    if (!TRANSIENT_REPLY.test(err.message)) return err;
  }
  return new StoreError('unavailable', { cause: err });
}

function isNoScript(err: unknown): boolean {
  return err instanceof ErrorReply && err.message.startsWith('NOSCRIPT');
}

export class RedisStore implements Store, SharedRateLimits {
  readonly #limits: StoreLimits;
  readonly #logger: StoreLogger;
  readonly #makeBackend: (events: Events) => Backend;
  readonly #maxPending: number;
  readonly #offsetMs: () => number;
  /** Random per process: lets this instance recognise its own notifications. */
  readonly #instanceId = randomBytes(9).toString('base64url');
  readonly #payloadPrefix: string;
  readonly #subscriptions = new Set<string>();
  /** Channels whose SUNSUBSCRIBE failed while disconnected; retried when the subscriber is back. */
  readonly #staleChannels = new Set<string>();
  #backend: Backend;
  #remote: RemoteDeliveryListener = () => {};
  #pending = 0;
  #completed = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #watchdogCompleted = 0;
  #stalledMs = 0;
  #commandsUp = false;
  #subscriberWasDown = false;
  /** The subscriber PING waiting for its answer (see #tick), and the backend it went to. */
  #subscriberPing: { readonly backend: Backend; readonly sentMs: number } | undefined;
  #closed = false;
  #inFlight = new Set<Promise<unknown>>();
  #enqueues: PendingEnqueue[] = [];
  #acks: PendingAck[] = [];
  #flushTimer: NodeJS.Immediate | undefined;

  constructor(options: RedisStoreOptions) {
    assertValidLimits(options.limits);
    if ((options.url === undefined) === (options.clusterNodes === undefined)) {
      throw new RangeError('RedisStore needs exactly one of url and clusterNodes');
    }
    if (
      options.dangerousTestOnlyClockOffsetMs !== undefined &&
      process.env['NODE_ENV'] !== 'test'
    ) {
      throw new Error('dangerousTestOnlyClockOffsetMs is for tests only');
    }
    this.#limits = options.limits;
    this.#logger = options.logger;
    this.#maxPending = options.maxPendingOps ?? MAX_PENDING_STORE_OPS;
    this.#offsetMs = options.dangerousTestOnlyClockOffsetMs ?? (() => 0);
    this.#payloadPrefix = this.#instanceId + FIELD_SEPARATOR;
    const { url, clusterNodes } = options;
    this.#makeBackend =
      url !== undefined
        ? (events) => nodeBackend(url, events)
        : (events) => clusterBackend(clusterNodes ?? [], events);
    this.#backend = this.#newBackend();
  }

  /**
   * Starts connecting (and reconnecting, forever, with backoff) and starts the watchdog.
   * Resolves once connected or after `waitMs`, whichever is first: a relay must start and
   * report "not ready" when Redis is down, not hang.
   */
  async start(waitMs: number): Promise<void> {
    this.#connect(this.#backend);
    this.#watchdog = setInterval(() => this.#tick(), WATCHDOG_INTERVAL_MS);
    this.#watchdog.unref();
    const deadline = Date.now() + waitMs;
    while (!this.health().ready && Date.now() < deadline && !this.#closed) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  // enqueue and ack are the hot path: not `async`, so each costs one promise (the one the flush
  // settles with the final answer), not three.
  enqueue(mailbox: string, id: string, env: string): Promise<EnqueueResult> {
    try {
      checkMailbox(mailbox);
      // The id is part of a key name and travels space-separated in the notification payload.
      if (!isKeySafeId(id)) throw new RangeError('store: message id is not base64url');
      this.#admit();
    } catch (err) {
      return Promise.reject(asError(err));
    }
    return new Promise<EnqueueResult>((resolve, reject) => {
      this.#enqueues.push({ mailbox, id, env, resolve, reject });
      this.#scheduleFlush();
    });
  }

  async peek(mailbox: string, limit: number): Promise<QueuedEnvelope[]> {
    const n = Math.min(Math.floor(limit), MAX_PEEK_LIMIT);
    if (!(n > 0)) return [];
    const call = peekCall(checkMailbox(mailbox), this.#offsetMs(), n);
    const q = queueKey(mailbox);
    this.#admit();
    try {
      // Two round trips: a script may only touch keys it declares, and only the queue knows the
      // ids. Both keys share the mailbox's hash tag, so MGET is one slot on a Cluster too.
      const ids = await this.#run(call);
      if (!Array.isArray(ids) || ids.length === 0) return [];
      const command = ['MGET'];
      for (const id of ids as string[]) command.push(envelopeKey(mailbox, id));
      const envs = await this.#command(q, true, command);
      if (!Array.isArray(envs)) throw new Error('peek: unexpected reply');
      const out: QueuedEnvelope[] = [];
      for (let i = 0; i < ids.length; i += 1) {
        // Gone between the two round trips: acknowledged, or expired.
        const env: unknown = envs[i];
        if (typeof env === 'string') out.push({ id: ids[i] as string, env });
      }
      return out;
    } finally {
      this.#release(1);
    }
  }

  async peekAfter(mailbox: string, bounds: PeekBounds): Promise<PeekPage> {
    const scan = checkPeekBounds(bounds, MAX_PEEK_SCAN);
    const { limit, maxBytes, skip } = bounds;
    const offsetMs = this.#offsetMs();
    const call = peekAfterCall(checkMailbox(mailbox), offsetMs, scan, bounds.after);
    this.#admit();
    try {
      // Two round trips, as for peek: the ids after the cursor with their scores (small), then
      // only the envelopes the reader does not hold, within its byte bound (READ_ENVELOPES).
      const reply = await this.#run(call);
      if (!Array.isArray(reply)) throw new Error('peekAfter: unexpected reply');
      const looked = reply as string[];
      let more = looked.length >= 2 * scan;
      // The ids up to the limit-th one to read, in queue order; skipped ones only move the cursor.
      const order: { id: string; cursor: string; read: boolean }[] = [];
      const wanted: string[] = [];
      for (let i = 0; i + 1 < looked.length; i += 2) {
        const id = looked[i] as string;
        const read = skip?.(id) !== true;
        order.push({ id, cursor: looked[i + 1] as string, read });
        if (read) {
          wanted.push(id);
          if (wanted.length === limit) {
            more = true;
            break;
          }
        }
      }
      let envs: unknown[] = [];
      if (wanted.length > 0) {
        const read = await this.#run(readEnvelopesCall(mailbox, offsetMs, wanted, maxBytes));
        if (!Array.isArray(read)) throw new Error('peekAfter: unexpected reply');
        envs = read as unknown[];
      }
      const messages: PeekedEnvelope[] = [];
      let cursor = bounds.after;
      let w = 0;
      for (const entry of order) {
        if (entry.read) {
          // The byte bound stopped the read before this one: continue from here next time.
          if (w >= envs.length) {
            more = true;
            break;
          }
          const env = envs[w];
          w += 1;
          // Null: gone between the two round trips (acknowledged, or expired).
          if (typeof env === 'string') messages.push({ id: entry.id, env, cursor: entry.cursor });
        }
        cursor = entry.cursor;
      }
      return { messages, cursor, more };
    } finally {
      this.#release(1);
    }
  }

  ack(mailbox: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    try {
      checkMailbox(mailbox);
      // An id that cannot be a key was never enqueued: acknowledging it is a no-op.
      let safe = ids;
      for (const id of ids) {
        if (!isKeySafeId(id)) {
          safe = ids.filter(isKeySafeId);
          break;
        }
      }
      if (safe.length === 0) return Promise.resolve();
      if (safe.length > MAX_BATCH_ACK_IDS) {
        // More than one script call may take; acks are idempotent, so parts may land apart.
        const parts: Promise<void>[] = [];
        for (let i = 0; i < safe.length; i += MAX_BATCH_ACK_IDS) {
          parts.push(this.ack(mailbox, safe.slice(i, i + MAX_BATCH_ACK_IDS)));
        }
        return Promise.all(parts).then(() => undefined);
      }
      // Never refused for load (see MAX_PENDING_STORE_OPS); still counted as pending.
      this.#admitAck();
      return new Promise<void>((resolve, reject) => {
        this.#acks.push({ mailbox, ids: safe, resolve, reject });
        this.#scheduleFlush();
      });
    } catch (err) {
      return Promise.reject(asError(err));
    }
  }

  async subscribe(mailbox: string): Promise<void> {
    const channel = mailboxChannel(checkMailbox(mailbox));
    if (this.#closed) throw new StoreError('unavailable');
    const backend = this.#backend;
    // A failed subscribe leaves the mailbox unsubscribed (the caller does not unsubscribe it).
    if (!backend.subscriberReady()) throw new StoreError('unavailable');
    this.#subscriptions.add(mailbox);
    this.#staleChannels.delete(channel);
    try {
      await this.#bounded(backend, backend.subscribe([channel], this.#onMessage));
    } catch (err) {
      this.#subscriptions.delete(mailbox);
      throw toStoreError(err);
    }
  }

  async unsubscribe(mailbox: string): Promise<void> {
    if (!this.#subscriptions.delete(mailbox)) return;
    const channel = mailboxChannel(mailbox);
    const backend = this.#backend;
    if (!backend.subscriberReady()) {
      this.#staleChannels.add(channel);
      return;
    }
    try {
      await backend.unsubscribe(channel, this.#onMessage);
    } catch {
      // Messages for it are dropped in #onMessage (not in the set); retried on reconnect.
      this.#staleChannels.add(channel);
    }
  }

  onRemote(listener: RemoteDeliveryListener): void {
    this.#remote = listener;
  }

  async publishPrekeys(
    mailbox: string,
    bundle: PrekeyBundle,
    oneTime: readonly OneTimePrekey[],
  ): Promise<number> {
    const call = publishPrekeysCall(
      checkMailbox(mailbox),
      {
        offsetMs: this.#offsetMs(),
        prekeyTtlMs: this.#limits.prekeyTtlSeconds * 1000,
        maxOneTime: this.#limits.maxOneTimePrekeys,
      },
      bundle,
      oneTime,
    );
    const result = await this.#eval(call);
    if (typeof result !== 'number') throw new Error('publishPrekeys: unexpected script reply');
    if (result < 0) throw new StoreError('prekeys_full');
    return result;
  }

  async fetchPrekeys(
    mailbox: string,
    mode: OneTimePrekeyMode = 'take',
  ): Promise<FetchedBundle | null> {
    const checked = checkMailbox(mailbox);
    let call: ScriptCall;
    if (mode === 'take') call = fetchPrekeysCall(checked, this.#offsetMs());
    else if (mode === 'withhold') call = readPrekeyBundleCall(checked, this.#offsetMs());
    else throw new RangeError('fetchPrekeys: unknown one-time prekey mode');
    const reply = (await this.#eval(call)) as string[] | null;
    if (reply === null) return null;
    const [identity, signedPrekey, member] = reply;
    if (
      identity === undefined ||
      signedPrekey === undefined ||
      (mode === 'withhold' && member !== undefined)
    ) {
      throw new Error('fetchPrekeys: unexpected script reply');
    }
    let oneTime: OneTimePrekey | null = null;
    if (member !== undefined) {
      const dot = member.indexOf(PREKEY_MEMBER_SEPARATOR);
      oneTime = { id: Number(member.slice(0, dot)), key: member.slice(dot + 1) };
    }
    return { identity, signedPrekey, oneTime };
  }

  async takeShared(kind: SharedRateKind, mailbox: string, rate: SharedRate): Promise<boolean> {
    const result = await this.#eval(
      rateTakeCall(checkMailbox(mailbox), kind, rate, this.#offsetMs()),
    );
    if (result !== 0 && result !== 1) throw new Error('takeShared: unexpected script reply');
    return result === 1;
  }

  async countPrekeys(mailbox: string): Promise<number> {
    const result = await this.#eval(countPrekeysCall(checkMailbox(mailbox), this.#offsetMs()));
    if (typeof result !== 'number') throw new Error('countPrekeys: unexpected script reply');
    return result;
  }

  async putProfile(organizationKey: string, profile: StoredProfile): Promise<PutProfileResult> {
    const call = putProfileCall(
      organizationKey,
      profile,
      this.#offsetMs(),
      MAX_PROFILE_VALIDITY_SECONDS * 1000,
    );
    const result = await this.#eval(call);
    switch (result) {
      case 1:
        return 'stored';
      case 2:
        return 'unchanged';
      case 0:
        return 'stale';
      case -1:
        return 'expired';
      default:
        throw new Error('putProfile: unexpected script reply');
    }
  }

  async getProfile(organizationKey: string): Promise<string | null> {
    const reply = await this.#eval(getProfileCall(organizationKey, this.#offsetMs()));
    if (reply !== null && typeof reply !== 'string') {
      throw new Error('getProfile: unexpected script reply');
    }
    return reply;
  }

  async putState(
    mailbox: string,
    blob: string,
    ifGeneration: number,
    generation: number,
  ): Promise<PutStateResult> {
    const call = putStateCall(
      checkMailbox(mailbox),
      { offsetMs: this.#offsetMs(), ttlMs: this.#limits.queueTtlSeconds * 1000 },
      blob,
      ifGeneration,
      generation,
    );
    const result = await this.#eval(call);
    if (result === 1) return { generation };
    if (result === 0) return 'conflict';
    throw new Error('putState: unexpected script reply');
  }

  async getState(mailbox: string): Promise<HeldState | null> {
    const reply = await this.#eval(getStateCall(checkMailbox(mailbox), this.#offsetMs()));
    if (reply === null) return null;
    if (
      !Array.isArray(reply) ||
      typeof reply[0] !== 'string' ||
      typeof reply[1] !== 'string' ||
      !/^[1-9][0-9]{0,15}$/.test(reply[1])
    ) {
      throw new Error('getState: unexpected script reply');
    }
    return { blob: reply[0], generation: Number(reply[1]) };
  }

  async deleteState(mailbox: string): Promise<void> {
    const q = queueKey(checkMailbox(mailbox));
    // Rounds of: read up to MAX_PEEK_LIMIT ids of the queue (live and remembered), then one
    // script that deletes their envelopes and queue entries (and, in the first, the state). A
    // script may only touch the keys it declares, and only the queue knows the ids; every key
    // has the mailbox's hash tag, one slot on a Cluster. Bounded: the queue holds at most
    // maxQueued + maxDedupIds ids; what a sender queues during the delete may stay (it arrived
    // after the conversation was deleted, as it could a minute later).
    const rounds =
      Math.ceil(
        (this.#limits.maxQueuedPerMailbox + this.#limits.maxDedupIdsPerMailbox) / MAX_PEEK_LIMIT,
      ) + 1;
    for (let round = 0; round < rounds; round++) {
      this.#admit();
      let left: unknown;
      try {
        const ids = await this.#command(q, true, ['ZRANGE', q, '0', String(MAX_PEEK_LIMIT - 1)]);
        if (!Array.isArray(ids)) throw new Error('deleteState: unexpected reply');
        const keySafe = (ids as unknown[]).filter(
          (id): id is string => typeof id === 'string' && isKeySafeId(id),
        );
        left = await this.#run(deleteStateCall(mailbox, this.#offsetMs(), round === 0, keySafe));
        if (keySafe.length === 0) return;
      } finally {
        this.#release(1);
      }
      if (left === 0) return;
    }
  }

  async reserveBlob(id: string, tokenHash: string, ttlMs: number): Promise<boolean> {
    const result = await this.#eval(reserveBlobCall(id, tokenHash, ttlMs, this.#offsetMs()));
    if (result !== 0 && result !== 1) throw new Error('reserveBlob: unexpected script reply');
    return result === 1;
  }

  async blobReserved(id: string, tokenHash: string): Promise<boolean> {
    const result = await this.#eval(blobReservedCall(id, tokenHash, this.#offsetMs()));
    if (result !== 0 && result !== 1) throw new Error('blobReserved: unexpected script reply');
    return result === 1;
  }

  async putBlob(id: string, tokenHash: string, blob: string): Promise<PutBlobResult> {
    const call = putBlobCall(id, tokenHash, blob, {
      offsetMs: this.#offsetMs(),
      ttlMs: this.#limits.queueTtlSeconds * 1000,
    });
    const result = await this.#eval(call);
    if (result === 1) return 'stored';
    if (result === 0) return 'not_reserved';
    throw new Error('putBlob: unexpected script reply');
  }

  async getBlob(id: string): Promise<string | null> {
    const reply = await this.#eval(getBlobCall(id, this.#offsetMs()));
    if (reply !== null && typeof reply !== 'string') {
      throw new Error('getBlob: unexpected script reply');
    }
    return reply;
  }

  health(): StoreHealth {
    return { ready: !this.#closed && this.#backend.ready() && this.#backend.subscriberReady() };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    // Operations admitted before close still go out (and are waited for below).
    if (this.#flushTimer !== undefined) {
      clearImmediate(this.#flushTimer);
      this.#flush();
    }
    // In-flight operations finish, unless Redis stopped answering: then they fail below.
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.allSettled([...this.#inFlight]).then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), STALL_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    const backend = this.#backend;
    if (settled && backend.ready()) {
      await backend.close();
    } else {
      // Not connected (or still retrying, or hung): stop the reconnect loop and fail the rest.
      backend.destroy();
    }
    this.#subscriptions.clear();
  }

  /** The number of store commands waiting for Redis (for tests and metrics). */
  pendingOps(): number {
    return this.#pending;
  }

  // -------------------------------------------------------------------------------------------

  /** Admits one operation or throws (closed, overloaded, disconnected); counts it pending. */
  #admit(): void {
    if (this.#closed) throw new StoreError('unavailable');
    if (this.#pending >= this.#maxPending) throw new StoreError('overloaded');
    if (!this.#backend.ready()) throw new StoreError('unavailable');
    this.#pending += 1;
  }

  /**
   * Admits one acknowledgement or throws (closed, disconnected). No pending bound: acks are
   * bounded by what was delivered, and shedding one only turns it into a duplicate delivery.
   */
  #admitAck(): void {
    if (this.#closed || !this.#backend.ready()) throw new StoreError('unavailable');
    this.#pending += 1;
  }

  #release(operations: number): void {
    this.#pending -= operations;
    this.#completed += operations;
  }

  /** One admitted operation, one script call (built by a builder in scripts.ts). */
  async #eval(call: ScriptCall): Promise<unknown> {
    this.#admit();
    try {
      return await this.#run(call);
    } finally {
      this.#release(1);
    }
  }

  /** Runs a script call on the current connection; tracks it for close(). */
  #run(call: ScriptCall): Promise<unknown> {
    const { script, keys, args } = call;
    const command = new Array<string>(3 + keys.length + args.length);
    command[0] = script.readOnly ? 'EVALSHA_RO' : 'EVALSHA';
    command[1] = script.sha1;
    command[2] = String(keys.length);
    let i = 3;
    for (const key of keys) command[i++] = key;
    for (const arg of args) command[i++] = arg;
    return this.#track(this.#send(this.#backend, script, keys[0], command));
  }

  /** Sends a plain command routed by `firstKey`; tracks it for close(). */
  #command(firstKey: string, readOnly: boolean, command: string[]): Promise<unknown> {
    return this.#track(this.#backend.send(firstKey, readOnly, command));
  }

  /** Keeps `run` in the set close() waits for; maps its failure to a StoreError. */
  async #track(run: Promise<unknown>): Promise<unknown> {
    this.#inFlight.add(run);
    try {
      return await run;
    } catch (err) {
      throw toStoreError(err);
    } finally {
      this.#inFlight.delete(run);
    }
  }

  /**
   * Enqueues and acks issued in one turn of the event loop go to Redis as one script call each
   * (one batch per kind; on a cluster one call per operation, since a script touches one slot).
   * That saves the client's per-command cost, which dominates the relay's store overhead.
   */
  #scheduleFlush(): void {
    this.#flushTimer ??= setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushTimer = undefined;
    const size = this.#backend.mode === 'cluster' ? 1 : MAX_BATCH_OPERATIONS;
    const enqueues = this.#enqueues;
    if (enqueues.length > 0) {
      this.#enqueues = [];
      if (enqueues.length <= size) {
        this.#flushEnqueues(enqueues);
      } else {
        for (let i = 0; i < enqueues.length; i += size) {
          this.#flushEnqueues(enqueues.slice(i, i + size));
        }
      }
    }
    const acks = this.#acks;
    if (acks.length > 0) {
      this.#acks = [];
      // Batches are bounded in operations and in ids (each id is a key of the call).
      let start = 0;
      let ids = 0;
      for (let i = 0; i < acks.length; i += 1) {
        const n = (acks[i] as PendingAck).ids.length;
        if (i > start && (i - start >= size || ids + n > MAX_BATCH_ACK_IDS)) {
          this.#flushAcks(acks.slice(start, i));
          start = i;
          ids = 0;
        }
        ids += n;
      }
      this.#flushAcks(start === 0 ? acks : acks.slice(start));
    }
  }

  /** Names the staged envelope keys of each ENQUEUE call (see EnqueueSettings). */
  #stagingSerial = 0;

  /** One ENQUEUE call for the batch (layout: enqueueCall in scripts.ts). */
  #flushEnqueues(batch: readonly PendingEnqueue[]): void {
    const n = batch.length;
    let call: EnqueueCall;
    try {
      call = enqueueCall(
        {
          offsetMs: this.#offsetMs(),
          queueTtlMs: this.#limits.queueTtlSeconds * 1000,
          maxQueued: this.#limits.maxQueuedPerMailbox,
          payloadPrefix: this.#payloadPrefix,
          stagingSerial: this.#stagingSerial++,
        },
        batch.map((op) => ({
          mailbox: op.mailbox,
          id: op.id,
          env: op.env,
          originSubscribed: this.#subscriptions.has(op.mailbox),
        })),
      );
    } catch (err) {
      // Not reached: enqueue() checked every id before admitting it.
      this.#release(n);
      for (const op of batch) op.reject(err);
      return;
    }
    // The envelope writes go first, on the same connection (see ENQUEUE); a failed one only
    // shows in the script's answer (-2), so its error is kept to say why.
    const writes = call.writes.map((command) =>
      this.#command(command[1] as string, false, command).then(
        () => undefined,
        (err: unknown) => err,
      ),
    );
    Promise.all([Promise.all(writes), this.#run(call)]).then(
      ([written, results]) => {
        this.#release(n);
        const list = Array.isArray(results) ? (results as unknown[]) : [];
        for (let i = 0; i < n; i += 1) {
          const op = batch[i] as PendingEnqueue;
          const result = list[i];
          if (result === 1) op.resolve('stored');
          else if (result === 0) op.resolve('duplicate');
          else if (result === -1) op.reject(new StoreError('mailbox_full'));
          else if (result === -2) op.reject(written[i] ?? new StoreError('unavailable'));
          else op.reject(new Error('enqueue: unexpected script reply'));
        }
      },
      (err: unknown) => {
        this.#release(n);
        for (const op of batch) op.reject(err);
      },
    );
  }

  /** One ACK call for the batch (layout: ackCall in scripts.ts). */
  #flushAcks(batch: readonly PendingAck[]): void {
    let call: ScriptCall;
    try {
      call = ackCall(
        {
          offsetMs: this.#offsetMs(),
          dedupTtlMs: this.#limits.dedupTtlSeconds * 1000,
          maxDedupIds: this.#limits.maxDedupIdsPerMailbox,
        },
        batch,
      );
    } catch (err) {
      // Not reached: ack() kept key-safe ids only, and #flush bounds the batch.
      this.#release(batch.length);
      for (const op of batch) op.reject(err);
      return;
    }
    this.#run(call).then(
      () => {
        this.#release(batch.length);
        for (const op of batch) op.resolve();
      },
      (err: unknown) => {
        this.#release(batch.length);
        for (const op of batch) op.reject(err);
      },
    );
  }

  async #send(
    backend: Backend,
    script: LuaScript,
    firstKey: string | undefined,
    command: string[],
  ): Promise<unknown> {
    try {
      return await backend.send(firstKey, script.readOnly, command);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      // First use on this node since it started: EVAL sends the source, which also caches it.
      command[0] = script.readOnly ? 'EVAL_RO' : 'EVAL';
      command[1] = script.source;
      return await backend.send(firstKey, script.readOnly, command);
    }
  }

  /** Envelope notifications from the mailbox channels; runs once per message, keep it cheap. */
  readonly #onMessage = (message: string, channel: string): void => {
    // Our own enqueue: the relay that made it already delivered to its local connections.
    if (message.startsWith(this.#payloadPrefix)) return;
    const mailbox = mailboxOfChannel(channel);
    if (mailbox === null || !this.#subscriptions.has(mailbox)) return;
    const idStart = message.indexOf(FIELD_SEPARATOR) + 1;
    const idEnd = message.indexOf(FIELD_SEPARATOR, idStart);
    if (idStart === 0 || idEnd < 0) return;
    this.#remote(mailbox, { id: message.slice(idStart, idEnd), env: message.slice(idEnd + 1) });
  };

  #newBackend(): Backend {
    let backend: Backend | undefined = undefined;
    const events: Events = {
      onReady: (which) => {
        if (backend !== this.#backend || this.#closed) return;
        this.#onUp(which);
      },
      onDown: (which, err) => {
        if (backend !== this.#backend || this.#closed) return;
        this.#onDown(which, err);
      },
    };
    backend = this.#makeBackend(events);
    return backend;
  }

  #connect(backend: Backend): void {
    backend.connect().catch((err: unknown) => {
      // Only when the backend was destroyed (replaced or closed) while connecting.
      if (backend === this.#backend && !this.#closed) this.#onDown('commands', err);
    });
  }

  #onUp(which: 'commands' | 'subscriber'): void {
    if (which === 'commands') {
      this.#preloadScripts();
      if (!this.#commandsUp)
        this.#logger.info({ event: 'redis_ready', store: 'redis' }, 'redis connected');
      this.#commandsUp = true;
      return;
    }
    if (this.#subscriberWasDown) {
      this.#subscriberWasDown = false;
      void this.#resync();
    }
  }

  /**
   * Loads every script on a fresh node connection (a restarted Redis has none), so the first
   * burst of operations does not all take the NOSCRIPT → EVAL detour. Cluster nodes are left to
   * that fallback: it happens once per node and script.
   */
  #preloadScripts(): void {
    const backend = this.#backend;
    if (backend.mode !== 'node') return;
    for (const script of ALL_SCRIPTS) {
      backend.send(undefined, false, ['SCRIPT', 'LOAD', script.source]).catch(() => {});
    }
  }

  #onDown(which: 'commands' | 'subscriber', err: unknown): void {
    if (which === 'commands') {
      if (this.#commandsUp) {
        this.#logger.warn(
          { event: 'redis_unavailable', store: 'redis', code: errorCode(err) },
          'redis connection lost; reconnecting',
        );
      }
      this.#commandsUp = false;
      return;
    }
    this.#subscriberWasDown = true;
  }

  /**
   * After the subscriber was down, notifications sent meanwhile are lost: subscribe again and
   * hand what is queued for each subscribed mailbox to the remote listener (delivery repeats
   * until ack anyway, so a repeat is harmless, a gap is not).
   */
  async #resync(): Promise<void> {
    const backend = this.#backend;
    const mailboxes = [...this.#subscriptions];
    try {
      if (this.#staleChannels.size > 0) {
        const stale = [...this.#staleChannels];
        this.#staleChannels.clear();
        await Promise.allSettled(stale.map((c) => backend.unsubscribe(c, this.#onMessage)));
      }
      for (let i = 0; i < mailboxes.length; i += 256) {
        const chunk = mailboxes.slice(i, i + 256);
        await this.#bounded(backend, backend.subscribe(chunk.map(mailboxChannel), this.#onMessage));
        await Promise.all(
          chunk.map(async (mailbox) => {
            for (const message of await this.peek(mailbox, RESYNC_PEEK_LIMIT)) {
              if (this.#subscriptions.has(mailbox)) this.#remote(mailbox, message);
            }
          }),
        );
      }
      this.#logger.info({ event: 'redis_resubscribed', count: mailboxes.length }, 'resubscribed');
    } catch (err) {
      // Down again before we finished: the next reconnect runs this again.
      this.#subscriberWasDown = true;
      this.#logger.warn(
        { event: 'redis_resubscribe_failed', code: errorCode(err) },
        'resubscribe failed',
      );
    }
  }

  /**
   * Waits for a subscribe on `backend` for at most SUBSCRIBE_TIMEOUT_MS. Past it the subscriber
   * connection counts as stalled: it is replaced (the new one resubscribes and peeks) and the
   * subscribe fails 'unavailable'. The subscribe itself fails when the old connection is
   * destroyed; nothing waits for it any more.
   */
  async #bounded(backend: Backend, subscribing: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new StoreError('unavailable'));
      }, SUBSCRIBE_TIMEOUT_MS);
    });
    try {
      await Promise.race([subscribing, deadline]);
    } catch (err) {
      if (timedOut && backend === this.#backend && !this.#closed) {
        this.#replaceBackend('subscriber');
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Watchdog: a connection with work in flight and no reply for STALL_TIMEOUT_MS is dead, and so
   * is a subscriber connection whose PING has not been answered for that long.
   */
  #tick(): void {
    if (this.#closed) return;
    if (this.#subscriberStalled()) {
      this.#replaceBackend('subscriber');
      return;
    }
    if (this.#pending > 0 && this.#completed === this.#watchdogCompleted) {
      this.#stalledMs += WATCHDOG_INTERVAL_MS;
    } else {
      this.#stalledMs = 0;
    }
    this.#watchdogCompleted = this.#completed;
    if (this.#stalledMs >= STALL_TIMEOUT_MS) {
      this.#stalledMs = 0;
      this.#replaceBackend('commands');
      return;
    }
    if (this.#pending === 0 && this.#backend.ready()) {
      // An idle connection gets a PING so that a dead one is noticed before traffic needs it.
      this.#pending += 1;
      this.#backend
        .send(undefined, true, ['PING'])
        .catch(() => {})
        .finally(() => {
          this.#pending -= 1;
          this.#completed += 1;
        });
    }
  }

  /**
   * True when the subscriber's PING has waited STALL_TIMEOUT_MS; otherwise sends one if none is
   * waiting (one a tick at most, so a PING a second on an idle relay).
   */
  #subscriberStalled(): boolean {
    const backend = this.#backend;
    const now = performance.now();
    const ping = this.#subscriberPing;
    if (ping !== undefined && ping.backend === backend) {
      return now - ping.sentMs >= STALL_TIMEOUT_MS;
    }
    this.#subscriberPing = undefined;
    if (!backend.subscriberReady()) return false;
    const answer = backend.pingSubscriber();
    if (answer === undefined) return false;
    const sent = { backend, sentMs: now };
    this.#subscriberPing = sent;
    const done = () => {
      if (this.#subscriberPing === sent) this.#subscriberPing = undefined;
    };
    // A failed PING is a lost connection, which node-redis reports and reconnects itself.
    answer.then(done, done);
    return false;
  }

  #replaceBackend(which: 'commands' | 'subscriber'): void {
    this.#logger.warn(
      { event: 'redis_stalled', store: 'redis', reason: which, pending: this.#pending },
      'redis stopped answering; reconnecting',
    );
    this.#subscriberPing = undefined;
    const old = this.#backend;
    this.#commandsUp = false;
    this.#subscriberWasDown = true;
    this.#backend = this.#newBackend();
    // Fails every command still waiting on the dead connection (→ 'unavailable').
    old.destroy();
    this.#connect(this.#backend);
  }
}

/** What the synchronous checks throw (RangeError, StoreError), as a rejection reason. */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error('store: unexpected failure');
}

function checkMailbox(mailbox: string): string {
  if (!isKeySafeId(mailbox)) throw new RangeError('store: mailbox id is not base64url');
  return mailbox;
}

/** A short, value-free description of a connection error for the log. */
function errorCode(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? code : err.name;
  }
  return 'unknown';
}
