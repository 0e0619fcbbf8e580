/**
 * MemoryStore: the embedded store for a single relay process. It keeps the same expiries and
 * bounds as RedisStore (the contract suite in store.contract.ts runs against both), so a
 * deployment can move from one to the other without the behaviour that clients see changing.
 *
 * Expiry is lazy (every operation on a mailbox first drops what has expired there) plus a
 * periodic sweep over all mailboxes, so mailboxes that nobody touches again (abandoned, or
 * written to by someone probing random ids) do not hold memory past their expiry.
 *
 * Everything the store holds is counted in one byte total against one bound (`maxBytes`): queued
 * envelopes with their ids, remembered (acknowledged) ids, bundles, one-time prekeys, and a fixed
 * overhead per mailbox and per entry. Sending and publishing need no account, so anything left
 * out of the count is memory a stranger can fill until the process dies and every queued message
 * is lost; past the bound, new data is refused with 'overloaded' (retryable) instead.
 *
 * One process has no other instances: `subscribe` only records interest and the remote listener
 * never fires. Delivery to connections on this instance is the relay's job, as with RedisStore.
 */
import type { OneTimePrekey } from '@passage/shared/protocol/frames';
import { MAX_PROFILE_VALIDITY_SECONDS } from '@passage/shared/org/limits';
import { isBase64urlText } from '@passage/shared/protocol/base64url';
import {
  MAX_PEEK_SCAN,
  StoreError,
  assertValidLimits,
  checkPeekBounds,
  checkBlobId,
  checkStatePut,
  checkStoredProfile,
  type EnqueueResult,
  type HeldState,
  type PutBlobResult,
  type PutStateResult,
  type PutProfileResult,
  type StoredProfile,
  type PeekBounds,
  type PeekPage,
  type PeekedEnvelope,
  type FetchedBundle,
  type OneTimePrekeyMode,
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
 * Most bytes the embedded store holds over all mailboxes: queued envelopes, remembered ids,
 * bundles and one-time prekeys, with their overheads. Sending and publishing need no account, so
 * without a global bound many mailboxes could exhaust the process; past it, enqueues and
 * publishes fail with 'overloaded' (retryable) and nothing is stored. Redis's counterpart is
 * `maxmemory` with the `noeviction` policy.
 */
export const MEMORY_STORE_MAX_BYTES = 512 * 1024 * 1024;

/**
 * Bytes counted for each map entry besides its strings: a queued envelope, a remembered id or a
 * one-time prekey. Measured on Node 20 (V8) at 50–110 bytes per entry (the hash-table slot with
 * the map's spare capacity, string headers, the entry's object or heap number); rounded up so the
 * count errs towards refusing early rather than towards running out of heap.
 */
export const MEMORY_ENTRY_OVERHEAD_BYTES = 128;

/**
 * Bytes counted for each mailbox and each prekey directory besides its strings (the mailbox id
 * is counted by its length on top). Measured on Node 20 at about 450 bytes for a mailbox (its
 * object and two empty maps) and 330 for a directory; rounded up.
 */
export const MEMORY_MAILBOX_OVERHEAD_BYTES = 512;

/** Options of {@link MemoryStore} beyond its limits and clock. */
export interface MemoryStoreOptions {
  /** How often to drop expired items nobody touches, in ms. */
  readonly sweepIntervalMs?: number;
  /** Most bytes held at once, everything counted (see {@link MEMORY_STORE_MAX_BYTES}). */
  readonly maxBytes?: number;
}

/** Bytes counted for a queued envelope (base64url text is one byte per character in V8). */
function envelopeBytes(id: string, env: string): number {
  return MEMORY_ENTRY_OVERHEAD_BYTES + id.length + env.length;
}

/** Bytes counted for a remembered (acknowledged) id; never more than its envelope's. */
function dedupBytes(id: string): number {
  return MEMORY_ENTRY_OVERHEAD_BYTES + id.length;
}

/** Bytes counted for a one-time prekey (its numeric id lives in the entry). */
function oneTimeBytes(key: string): number {
  return MEMORY_ENTRY_OVERHEAD_BYTES + key.length;
}

/** Bytes counted for a directory entry without its one-time prekeys. */
function bundleBytes(mailbox: string, bundle: PrekeyBundle): number {
  return (
    MEMORY_MAILBOX_OVERHEAD_BYTES +
    mailbox.length +
    bundle.identity.length +
    bundle.signedPrekey.length
  );
}

/** Bytes counted for a whole directory entry. */
function directoryBytes(mailbox: string, dir: Directory): number {
  let bytes = bundleBytes(mailbox, dir.bundle);
  for (const key of dir.oneTime.values()) bytes += oneTimeBytes(key);
  return bytes;
}

/** Bytes counted for a held organization profile. */
function profileBytes(organizationKey: string, profile: StoredProfile): number {
  return MEMORY_ENTRY_OVERHEAD_BYTES + organizationKey.length + profile.profile.length;
}

/** Bytes counted for a held state blob (one entry per mailbox). */
function stateBytes(mailbox: string, blob: string): number {
  return MEMORY_ENTRY_OVERHEAD_BYTES + mailbox.length + blob.length;
}

/** Bytes counted for an attachment blob or a reservation (its token hash as `data`). */
function blobEntryBytes(id: string, data: string): number {
  return MEMORY_ENTRY_OVERHEAD_BYTES + id.length + data.length;
}

/** A held item of the state, blob and reservation maps: its data and when it expires (ms). */
interface Expiring<T> {
  readonly value: T;
  readonly expiresAt: number;
}

interface Queued {
  readonly env: string;
  /** Arrival number, store-wide and only growing: the envelope's peek cursor. */
  readonly seq: number;
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
  /** Organization profiles by organization key, each with the clock time (ms) it expires. */
  readonly #profiles = new Map<
    string,
    { readonly held: StoredProfile; readonly expiresAt: number }
  >();
  /** State blobs by mailbox. */
  readonly #states = new Map<string, Expiring<HeldState>>();
  /** Attachment blobs (base64url) by id. */
  readonly #blobs = new Map<string, Expiring<string>>();
  /** Upload reservations: blob id → SHA-256 of the token (base64url). */
  readonly #reservations = new Map<string, Expiring<string>>();
  readonly #maxBytes: number;
  /** Bytes of everything held: mailboxes, queued envelopes, remembered ids, directory entries
   * (see the *Bytes functions above). Every change to those maps goes with a change here. */
  #bytes = 0;
  /** The last arrival number handed out (see Queued.seq). Store-wide rather than per mailbox,
   * so that a mailbox dropped when empty and made again does not reuse places. */
  #seq = 0;
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
    if (!Number.isSafeInteger(this.#maxBytes) || this.#maxBytes <= 0) {
      throw new RangeError('MemoryStore option maxBytes must be a positive integer');
    }
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
    const size = envelopeBytes(id, env);
    const boxSize = box === undefined ? MEMORY_MAILBOX_OVERHEAD_BYTES + mailbox.length : 0;
    if (this.#bytes + size + boxSize > this.#maxBytes) {
      return Promise.reject(new StoreError('overloaded'));
    }
    const target = box ?? this.#newMailbox(mailbox);
    this.#seq += 1;
    target.queue.set(id, {
      env,
      seq: this.#seq,
      expiresAt: now + this.#limits.queueTtlSeconds * 1000,
    });
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

  peekAfter(mailbox: string, bounds: PeekBounds): Promise<PeekPage> {
    let scan: number;
    try {
      scan = checkPeekBounds(bounds, MAX_PEEK_SCAN);
    } catch (err) {
      // checkPeekBounds throws only RangeError.
      return Promise.reject(err instanceof Error ? err : new RangeError('peek: bad bounds'));
    }
    if (this.#closed) return closedError();
    const { limit, maxBytes, skip } = bounds;
    const after = bounds.after === undefined ? 0 : Number(bounds.after);
    const messages: PeekedEnvelope[] = [];
    let cursor = bounds.after;
    let more = false;
    const box = this.#liveMailbox(mailbox);
    if (box !== undefined) {
      let looked = 0;
      let bytes = 0;
      // Map order is arrival order, so the envelopes at or before the cursor come first; walking
      // past them costs no copy (the ones in flight, at most the connection's window).
      for (const [id, queued] of box.queue) {
        if (queued.seq <= after) continue;
        if (skip?.(id) !== true) {
          if (messages.length > 0 && bytes + queued.env.length > maxBytes) {
            more = true;
            break;
          }
          bytes += queued.env.length;
          messages.push({ id, env: queued.env, cursor: String(queued.seq) });
        }
        cursor = String(queued.seq);
        looked += 1;
        if (messages.length === limit || looked === scan) {
          more = true;
          break;
        }
      }
    }
    return Promise.resolve({ messages, cursor, more });
  }

  ack(mailbox: string, ids: readonly string[]): Promise<void> {
    if (this.#closed) return closedError();
    const box = this.#liveMailbox(mailbox);
    if (box === undefined) return Promise.resolve();
    const rememberUntil = this.#clock() + this.#limits.dedupTtlSeconds * 1000;
    for (const id of ids) {
      // Only ids that were queued are remembered: an ack cannot plant remembered ids for ids
      // that never arrived, so the dedup memory stays bounded by what was actually stored.
      const queued = box.queue.get(id);
      if (queued === undefined) continue;
      box.queue.delete(id);
      this.#bytes -= envelopeBytes(id, queued.env);
      this.#remember(box, id, rememberUntil);
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
    // so the total counts distinct ids; within one publish the last key of an id wins.
    const incoming = new Map<number, string>();
    for (const key of oneTime) incoming.set(key.id, key.key);
    let added = 0;
    for (const id of incoming.keys()) if (!held.has(id)) added += 1;
    if (held.size + added > this.#limits.maxOneTimePrekeys) {
      return Promise.reject(new StoreError('prekeys_full'));
    }
    // What the publish adds to the count: the new bundle in place of the old one (or a whole new
    // directory entry), and each incoming key in place of the one it replaces.
    let delta =
      bundleBytes(mailbox, bundle) -
      (current === undefined ? 0 : bundleBytes(mailbox, current.bundle));
    for (const [id, key] of incoming) {
      const old = held.get(id);
      delta += oneTimeBytes(key) - (old === undefined ? 0 : oneTimeBytes(old));
    }
    if (delta > 0 && this.#bytes + delta > this.#maxBytes) {
      return Promise.reject(new StoreError('overloaded'));
    }
    for (const [id, key] of incoming) held.set(id, key);
    this.#bytes += delta;
    this.#directory.set(mailbox, {
      bundle: { identity: bundle.identity, signedPrekey: bundle.signedPrekey },
      oneTime: held,
      expiresAt: now + this.#limits.prekeyTtlSeconds * 1000,
    });
    return Promise.resolve(held.size);
  }

  fetchPrekeys(mailbox: string, mode: OneTimePrekeyMode = 'take'): Promise<FetchedBundle | null> {
    if (this.#closed) return closedError();
    if (mode !== 'take' && mode !== 'withhold') {
      return Promise.reject(new RangeError('fetchPrekeys: unknown one-time prekey mode'));
    }
    const dir = this.#liveDirectory(mailbox, this.#clock());
    if (dir === undefined) return Promise.resolve(null);
    let lowest: number | undefined;
    if (mode === 'take') {
      for (const id of dir.oneTime.keys()) if (lowest === undefined || id < lowest) lowest = id;
    }
    let oneTime: OneTimePrekey | null = null;
    if (lowest !== undefined) {
      oneTime = { id: lowest, key: dir.oneTime.get(lowest) as string };
      dir.oneTime.delete(lowest);
      this.#bytes -= oneTimeBytes(oneTime.key);
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

  putProfile(organizationKey: string, profile: StoredProfile): Promise<PutProfileResult> {
    try {
      checkStoredProfile(organizationKey, profile);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new RangeError('profile: bad input'));
    }
    if (this.#closed) return closedError();
    const now = this.#clock();
    const expiresAt = Math.min(
      profile.expiresAtSeconds * 1000,
      now + MAX_PROFILE_VALIDITY_SECONDS * 1000,
    );
    if (expiresAt <= now) return Promise.resolve('expired');
    const current = this.#liveProfile(organizationKey, now);
    if (current !== undefined) {
      if (current.version > profile.version) return Promise.resolve('stale');
      if (current.version === profile.version) {
        return Promise.resolve(current.profile === profile.profile ? 'unchanged' : 'stale');
      }
    }
    const delta =
      profileBytes(organizationKey, profile) -
      (current === undefined ? 0 : profileBytes(organizationKey, current));
    if (delta > 0 && this.#bytes + delta > this.#maxBytes) {
      return Promise.reject(new StoreError('overloaded'));
    }
    this.#bytes += delta;
    this.#profiles.set(organizationKey, { held: { ...profile }, expiresAt });
    return Promise.resolve('stored');
  }

  getProfile(organizationKey: string): Promise<string | null> {
    if (this.#closed) return closedError();
    return Promise.resolve(this.#liveProfile(organizationKey, this.#clock())?.profile ?? null);
  }

  putState(
    mailbox: string,
    blob: string,
    ifGeneration: number,
    generation: number,
  ): Promise<PutStateResult> {
    try {
      checkStatePut(mailbox, blob, ifGeneration, generation);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new RangeError('state: bad input'));
    }
    if (this.#closed) return closedError();
    const now = this.#clock();
    const current = this.#live(this.#states, mailbox, now, (v) => stateBytes(mailbox, v.blob));
    if ((current?.generation ?? 0) !== ifGeneration) return Promise.resolve('conflict');
    const delta =
      stateBytes(mailbox, blob) - (current === undefined ? 0 : stateBytes(mailbox, current.blob));
    if (delta > 0 && this.#bytes + delta > this.#maxBytes) {
      return Promise.reject(new StoreError('overloaded'));
    }
    this.#bytes += delta;
    this.#states.set(mailbox, {
      value: { blob, generation },
      expiresAt: now + this.#limits.queueTtlSeconds * 1000,
    });
    return Promise.resolve({ generation });
  }

  getState(mailbox: string): Promise<HeldState | null> {
    if (this.#closed) return closedError();
    const held = this.#live(this.#states, mailbox, this.#clock(), (v) =>
      stateBytes(mailbox, v.blob),
    );
    return Promise.resolve(held === undefined ? null : { ...held });
  }

  deleteState(mailbox: string): Promise<void> {
    if (this.#closed) return closedError();
    const entry = this.#states.get(mailbox);
    if (entry !== undefined) {
      this.#states.delete(mailbox);
      this.#bytes -= stateBytes(mailbox, entry.value.blob);
    }
    // What is queued for the mailbox goes too, live envelopes and remembered ids alike: a
    // deleted conversation then looks like a codename never used (docs/protocol.md).
    const box = this.#mailboxes.get(mailbox);
    if (box !== undefined) {
      for (const [id, queued] of box.queue) this.#bytes -= envelopeBytes(id, queued.env);
      for (const id of box.acked.keys()) this.#bytes -= dedupBytes(id);
      box.queue.clear();
      box.acked.clear();
      this.#dropIfEmpty(mailbox, box);
    }
    return Promise.resolve();
  }

  reserveBlob(id: string, tokenHash: string, ttlMs: number): Promise<boolean> {
    try {
      checkBlobId(id);
      if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new RangeError('blob: bad ttl');
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new RangeError('blob: bad input'));
    }
    if (this.#closed) return closedError();
    const now = this.#clock();
    if (this.#liveReservation(id, now) !== undefined || this.#liveBlob(id, now) !== undefined) {
      return Promise.resolve(false);
    }
    const size = blobEntryBytes(id, tokenHash);
    if (this.#bytes + size > this.#maxBytes) return Promise.reject(new StoreError('overloaded'));
    this.#bytes += size;
    this.#reservations.set(id, { value: tokenHash, expiresAt: now + ttlMs });
    return Promise.resolve(true);
  }

  blobReserved(id: string, tokenHash: string): Promise<boolean> {
    try {
      checkBlobId(id);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new RangeError('blob: bad input'));
    }
    if (this.#closed) return closedError();
    return Promise.resolve(this.#liveReservation(id, this.#clock()) === tokenHash);
  }

  putBlob(id: string, tokenHash: string, blob: string): Promise<PutBlobResult> {
    try {
      checkBlobId(id);
      if (blob.length === 0 || !isBase64urlText(blob))
        throw new RangeError('blob: must be base64url');
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new RangeError('blob: bad input'));
    }
    if (this.#closed) return closedError();
    const now = this.#clock();
    const reserved = this.#liveReservation(id, now);
    if (reserved === undefined || reserved !== tokenHash) return Promise.resolve('not_reserved');
    // The reservation's bytes are freed as the blob's are taken.
    const delta = blobEntryBytes(id, blob) - blobEntryBytes(id, reserved);
    if (this.#bytes + delta > this.#maxBytes) return Promise.reject(new StoreError('overloaded'));
    this.#reservations.delete(id);
    this.#bytes += delta;
    this.#blobs.set(id, { value: blob, expiresAt: now + this.#limits.queueTtlSeconds * 1000 });
    return Promise.resolve('stored');
  }

  getBlob(id: string): Promise<string | null> {
    try {
      checkBlobId(id);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new RangeError('blob: bad input'));
    }
    if (this.#closed) return closedError();
    return Promise.resolve(this.#liveBlob(id, this.#clock()) ?? null);
  }

  health(): StoreHealth {
    return { ready: !this.#closed };
  }

  /** The unexpired value of `key` in `map`; an expired one is dropped and its bytes freed. */
  #live<T>(
    map: Map<string, Expiring<T>>,
    key: string,
    now: number,
    bytes: (value: T) => number,
  ): T | undefined {
    const entry = map.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      map.delete(key);
      this.#bytes -= bytes(entry.value);
      return undefined;
    }
    return entry.value;
  }

  #liveReservation(id: string, now: number): string | undefined {
    return this.#live(this.#reservations, id, now, (hash) => blobEntryBytes(id, hash));
  }

  #liveBlob(id: string, now: number): string | undefined {
    return this.#live(this.#blobs, id, now, (blob) => blobEntryBytes(id, blob));
  }

  close(): Promise<void> {
    // Every operation completes synchronously, so nothing is in flight here.
    this.#closed = true;
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#mailboxes.clear();
    this.#bytes = 0;
    this.#directory.clear();
    this.#profiles.clear();
    this.#states.clear();
    this.#blobs.clear();
    this.#reservations.clear();
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
      if (dir.expiresAt <= now) this.#deleteDirectory(mailbox, dir);
    }
    for (const key of [...this.#profiles.keys()]) this.#liveProfile(key, now);
    for (const [mailbox, entry] of [...this.#states]) {
      this.#live(this.#states, mailbox, now, () => stateBytes(mailbox, entry.value.blob));
    }
    for (const id of [...this.#blobs.keys()]) this.#liveBlob(id, now);
    for (const id of [...this.#reservations.keys()]) this.#liveReservation(id, now);
  }

  /** The unexpired profile of `organizationKey`; an expired one is dropped. */
  #liveProfile(organizationKey: string, now: number): StoredProfile | undefined {
    const entry = this.#profiles.get(organizationKey);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.#profiles.delete(organizationKey);
      this.#bytes -= profileBytes(organizationKey, entry.held);
      return undefined;
    }
    return entry.held;
  }

  /** Bytes of everything held now, as counted against `maxBytes` (expired items count until
   * an operation or the sweep drops them). Read-only; for tests and metrics. */
  get bytesHeld(): number {
    return this.#bytes;
  }

  /** Mailboxes and directory entries currently held (expired ones until swept) and
   * {@link bytesHeld}; for tests. */
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
    this.#bytes += MEMORY_MAILBOX_OVERHEAD_BYTES + mailbox.length;
    return box;
  }

  /**
   * Remembers an acknowledged id, forgetting the mailbox's oldest remembered ids first while it
   * holds `limits.maxDedupIdsPerMailbox` of them (the bound RedisStore keeps too) or the
   * record would not fit under `maxBytes`. The
   * caller has just freed the envelope, which counts at least as much as the record, so the
   * byte condition holds off today; it stays so that an ack, which frees memory, is never
   * refused. Forgetting the oldest first is safe: a remembered id only stops a late resend from
   * being queued again, so at worst a very late resend is delivered a second time and the
   * recipient's ratchet rejects it as a replay; the oldest are the least likely to be resent.
   */
  #remember(box: Mailbox, id: string, until: number): void {
    const size = dedupBytes(id);
    for (const [oldest] of box.acked) {
      if (
        box.acked.size < this.#limits.maxDedupIdsPerMailbox &&
        this.#bytes + size <= this.#maxBytes
      ) {
        break;
      }
      box.acked.delete(oldest);
      this.#bytes -= dedupBytes(oldest);
    }
    box.acked.set(id, until);
    this.#bytes += size;
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
      this.#bytes -= envelopeBytes(id, queued.env);
    }
    for (const [id, until] of box.acked) {
      if (until > now) break;
      box.acked.delete(id);
      this.#bytes -= dedupBytes(id);
    }
  }

  #dropIfEmpty(mailbox: string, box: Mailbox): boolean {
    if (box.queue.size > 0 || box.acked.size > 0) return false;
    this.#mailboxes.delete(mailbox);
    this.#bytes -= MEMORY_MAILBOX_OVERHEAD_BYTES + mailbox.length;
    return true;
  }

  #liveDirectory(mailbox: string, now: number): Directory | undefined {
    const dir = this.#directory.get(mailbox);
    if (dir === undefined) return undefined;
    if (dir.expiresAt <= now) {
      this.#deleteDirectory(mailbox, dir);
      return undefined;
    }
    return dir;
  }

  #deleteDirectory(mailbox: string, dir: Directory): void {
    this.#directory.delete(mailbox);
    this.#bytes -= directoryBytes(mailbox, dir);
  }
}
