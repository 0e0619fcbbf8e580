/**
 * MemoryStore: the embedded store for a single relay process. It keeps the same expiries and
 * bounds as RedisStore (the contract suite in store.contract.ts runs against both), so a
 * deployment can move from one to the other without the behaviour that clients see changing.
 *
 * Expiry is lazy (every operation on a mailbox first drops what has expired there) plus a
 * periodic sweep over all mailboxes, so mailboxes that nobody touches again (abandoned, or
 * written to by someone probing random ids) do not hold memory past their expiry.
 *
 * One process has no other instances: `subscribe` only records interest and the remote listener
 * never fires. Delivery to connections on this instance is the relay's job, as with RedisStore.
 */
import type { OneTimePrekey } from '@passage/shared/protocol/frames';
import {
  StoreError,
  type EnqueueResult,
  type FetchedBundle,
  type PrekeyBundle,
  type QueuedEnvelope,
  type RemoteDeliveryListener,
  type Store,
  type StoreHealth,
  type StoreLimits,
} from './store.js';

/** How often the sweep drops expired items of mailboxes that nobody touches, in ms. */
export const MEMORY_SWEEP_INTERVAL_MS = 30_000;

/**
 * Most bytes of queued envelopes (and their ids) the embedded store holds over all mailboxes.
 * Sending needs no account, so without a global bound many mailboxes × the per-mailbox bound
 * could exhaust the process; past it, enqueues fail with 'overloaded' (retryable) and nothing is
 * stored. Redis's counterpart is `maxmemory` with the `noeviction` policy.
 */
export const MEMORY_STORE_MAX_BYTES = 512 * 1024 * 1024;

/** Options of {@link MemoryStore} beyond its limits and clock. */
export interface MemoryStoreOptions {
  /** How often to drop expired items nobody touches, in ms. */
  readonly sweepIntervalMs?: number;
  /** Most bytes of queued envelopes and ids held at once. */
  readonly maxBytes?: number;
}

interface Queued {
  readonly env: string;
  /** Clock time (ms) from which the envelope is gone. */
  readonly expiresAt: number;
}

interface Mailbox {
  /** Unacknowledged envelopes by id. Map order is insertion order, and since every envelope
   * lives for the same `queueTtlSeconds`, it is also expiry order: pruning stops at the first
   * live entry, and peeking walks it oldest first. */
  readonly queue: Map<string, Queued>;
  /** Acknowledged ids → clock time (ms) until which a resend counts as a duplicate. Also in
   * expiry order (constant `dedupTtlSeconds` from the ack). */
  readonly acked: Map<string, number>;
}

interface Directory {
  bundle: PrekeyBundle;
  /** One-time prekeys by id; the lowest id is handed out first (clients number them upwards,
   * so that is the oldest), the same order RedisStore uses. */
  readonly oneTime: Map<number, string>;
  /** Clock time (ms) at which bundle and one-time prekeys expire together. */
  expiresAt: number;
}

/** Throws unless every limit is a positive safe integer (a zero TTL would store nothing). */
export function assertValidLimits(limits: StoreLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new RangeError(`store limit ${name} must be a positive integer`);
    }
  }
}

/** What every operation on a closed store returns. */
function closedError(): Promise<never> {
  return Promise.reject(new StoreError('unavailable'));
}

export class MemoryStore implements Store {
  readonly #limits: StoreLimits;
  readonly #clock: () => number;
  readonly #mailboxes = new Map<string, Mailbox>();
  readonly #directory = new Map<string, Directory>();
  readonly #subscribed = new Set<string>();
  readonly #maxBytes: number;
  /** Bytes of queued envelopes and ids (string length; base64url is one byte per character). */
  #bytes = 0;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closed = false;

  /**
   * @param limits expiries and bounds (the same ones RedisStore honours).
   * @param clock current time in ms; tests pass a controllable one to exercise expiry.
   * @param options sweep interval and global byte bound.
   */
  constructor(
    limits: StoreLimits,
    clock: () => number = Date.now,
    options: MemoryStoreOptions = {},
  ) {
    assertValidLimits(limits);
    this.#limits = limits;
    this.#clock = clock;
    this.#maxBytes = options.maxBytes ?? MEMORY_STORE_MAX_BYTES;
    this.#sweepTimer = setInterval(
      () => this.sweep(),
      options.sweepIntervalMs ?? MEMORY_SWEEP_INTERVAL_MS,
    );
    // The sweep alone must never keep the process alive.
    this.#sweepTimer.unref();
  }

  enqueue(mailbox: string, id: string, env: string): Promise<EnqueueResult> {
    if (this.#closed) return closedError();
    const now = this.#clock();
    const box = this.#mailboxes.get(mailbox);
    if (box !== undefined) {
      this.#pruneMailbox(box, now);
      if (box.queue.has(id) || box.acked.has(id)) return Promise.resolve('duplicate');
      if (box.queue.size >= this.#limits.maxQueuedPerMailbox) {
        return Promise.reject(new StoreError('mailbox_full'));
      }
    }
    const size = id.length + env.length;
    if (this.#bytes + size > this.#maxBytes) {
      return Promise.reject(new StoreError('overloaded'));
    }
    const target = box ?? this.#newMailbox(mailbox);
    target.queue.set(id, { env, expiresAt: now + this.#limits.queueTtlSeconds * 1000 });
    this.#bytes += size;
    return Promise.resolve('stored');
  }

  peek(mailbox: string, limit: number): Promise<QueuedEnvelope[]> {
    if (this.#closed) return closedError();
    const box = this.#liveMailbox(mailbox);
    const out: QueuedEnvelope[] = [];
    if (box === undefined || limit <= 0) return Promise.resolve(out);
    for (const [id, queued] of box.queue) {
      if (out.length >= limit) break;
      out.push({ id, env: queued.env });
    }
    return Promise.resolve(out);
  }

  ack(mailbox: string, ids: readonly string[]): Promise<void> {
    if (this.#closed) return closedError();
    const box = this.#liveMailbox(mailbox);
    if (box === undefined) return Promise.resolve();
    const rememberUntil = this.#clock() + this.#limits.dedupTtlSeconds * 1000;
    for (const id of ids) {
      // Only ids that were queued are remembered: an ack cannot plant tombstones for ids
      // that never arrived, so the dedup memory stays bounded by what was actually stored.
      const queued = box.queue.get(id);
      if (queued === undefined) continue;
      box.queue.delete(id);
      this.#bytes -= id.length + queued.env.length;
      box.acked.set(id, rememberUntil);
    }
    this.#dropIfEmpty(mailbox, box);
    return Promise.resolve();
  }

  subscribe(mailbox: string): Promise<void> {
    if (this.#closed) return closedError();
    // Recorded only so that the interface behaves alike; no other instance can publish here.
    this.#subscribed.add(mailbox);
    return Promise.resolve();
  }

  unsubscribe(mailbox: string): Promise<void> {
    this.#subscribed.delete(mailbox);
    return Promise.resolve();
  }

  /** Accepted and never called: a single process has no remote instances. */
  onRemote(_listener: RemoteDeliveryListener): void {}

  publishPrekeys(
    mailbox: string,
    bundle: PrekeyBundle,
    oneTime: readonly OneTimePrekey[],
  ): Promise<number> {
    if (this.#closed) return closedError();
    const now = this.#clock();
    const current = this.#liveDirectory(mailbox, now);
    const held = current?.oneTime ?? new Map<number, string>();
    // A one-time prekey whose id is already held replaces it (a retried publish is idempotent),
    // so the total counts distinct ids.
    const added = new Set<number>();
    for (const key of oneTime) if (!held.has(key.id)) added.add(key.id);
    const total = held.size + added.size;
    if (total > this.#limits.maxOneTimePrekeys) {
      return Promise.reject(new StoreError('prekeys_full'));
    }
    for (const key of oneTime) held.set(key.id, key.key);
    this.#directory.set(mailbox, {
      bundle: { identity: bundle.identity, signedPrekey: bundle.signedPrekey },
      oneTime: held,
      expiresAt: now + this.#limits.prekeyTtlSeconds * 1000,
    });
    return Promise.resolve(held.size);
  }

  fetchPrekeys(mailbox: string): Promise<FetchedBundle | null> {
    if (this.#closed) return closedError();
    const dir = this.#liveDirectory(mailbox, this.#clock());
    if (dir === undefined) return Promise.resolve(null);
    let lowest: number | undefined;
    for (const id of dir.oneTime.keys()) if (lowest === undefined || id < lowest) lowest = id;
    let oneTime: OneTimePrekey | null = null;
    if (lowest !== undefined) {
      oneTime = { id: lowest, key: dir.oneTime.get(lowest) as string };
      dir.oneTime.delete(lowest);
    }
    return Promise.resolve({
      identity: dir.bundle.identity,
      signedPrekey: dir.bundle.signedPrekey,
      oneTime,
    });
  }

  countPrekeys(mailbox: string): Promise<number> {
    if (this.#closed) return closedError();
    return Promise.resolve(this.#liveDirectory(mailbox, this.#clock())?.oneTime.size ?? 0);
  }

  health(): StoreHealth {
    return { ready: !this.#closed };
  }

  close(): Promise<void> {
    // Every operation completes synchronously, so nothing is in flight here.
    this.#closed = true;
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#mailboxes.clear();
    this.#bytes = 0;
    this.#directory.clear();
    this.#subscribed.clear();
    return Promise.resolve();
  }

  /** Drops everything that has expired, in every mailbox. Runs on a timer; public for tests. */
  sweep(): void {
    const now = this.#clock();
    for (const [mailbox, box] of this.#mailboxes) {
      this.#pruneMailbox(box, now);
      this.#dropIfEmpty(mailbox, box);
    }
    for (const [mailbox, dir] of this.#directory) {
      if (dir.expiresAt <= now) this.#directory.delete(mailbox);
    }
  }

  /** Mailboxes and directory entries currently held (expired ones until swept) and the bytes
   * of queued envelopes; for tests. */
  dangerousTestOnlySize(): { mailboxes: number; directory: number; bytes: number } {
    return {
      mailboxes: this.#mailboxes.size,
      directory: this.#directory.size,
      bytes: this.#bytes,
    };
  }

  #newMailbox(mailbox: string): Mailbox {
    const box: Mailbox = { queue: new Map(), acked: new Map() };
    this.#mailboxes.set(mailbox, box);
    return box;
  }

  #liveMailbox(mailbox: string): Mailbox | undefined {
    const box = this.#mailboxes.get(mailbox);
    if (box === undefined) return undefined;
    this.#pruneMailbox(box, this.#clock());
    if (this.#dropIfEmpty(mailbox, box)) return undefined;
    return box;
  }

  #pruneMailbox(box: Mailbox, now: number): void {
    // Both maps are in expiry order, so stop at the first entry that is still live.
    for (const [id, queued] of box.queue) {
      if (queued.expiresAt > now) break;
      box.queue.delete(id);
      this.#bytes -= id.length + queued.env.length;
    }
    for (const [id, until] of box.acked) {
      if (until > now) break;
      box.acked.delete(id);
    }
  }

  #dropIfEmpty(mailbox: string, box: Mailbox): boolean {
    if (box.queue.size > 0 || box.acked.size > 0) return false;
    this.#mailboxes.delete(mailbox);
    return true;
  }

  #liveDirectory(mailbox: string, now: number): Directory | undefined {
    const dir = this.#directory.get(mailbox);
    if (dir === undefined) return undefined;
    if (dir.expiresAt <= now) {
      this.#directory.delete(mailbox);
      return undefined;
    }
    return dir;
  }
}
