/**
 * The relay's storage: per-mailbox queues of opaque envelopes and the prekey directory. Two
 * implementations pass one contract suite (store.contract.ts): MemoryStore, the embedded default
 * for one process, and RedisStore, for one Redis or a Redis Cluster shared by many relays.
 *
 * Every item expires. Envelopes are kept as the canonical base64url text they arrived in, so the
 * relay never decodes or re-encodes them on the hot path.
 */
import type { OneTimePrekey } from '@passage/shared/protocol/frames';
import { isBase64urlText } from '@passage/shared/protocol/base64url';

/** A queued envelope as the relay delivers it. */
export interface QueuedEnvelope {
  /** The sender-chosen message id (base64url). */
  readonly id: string;
  /** The opaque envelope (canonical base64url). */
  readonly env: string;
}

/** A queued envelope as {@link Store.peekAfter} returns it: with its place in the queue. */
export interface PeekedEnvelope extends QueuedEnvelope {
  /** Where the envelope sits in its mailbox's queue; {@link PeekBounds.after} continues after it. */
  readonly cursor: PeekCursor;
}

/**
 * A place in one mailbox's queue (decimal digits, at most {@link MAX_PEEK_CURSOR_DIGITS}): a
 * RedisStore envelope's score, a MemoryStore envelope's arrival number. Opaque to callers: only
 * ever passed back to `peekAfter` of the same store. Places only grow, so an envelope stored
 * later sits after every cursor handed out before it (on Redis, as long as its clock does not
 * step back; the relay's delivery reads from the oldest again whenever nothing is in flight).
 */
export type PeekCursor = string;

/** Longest {@link PeekCursor}: µs scores stay below 2^53 (16 digits) until the year 2255. */
export const MAX_PEEK_CURSOR_DIGITS = 17;

/** True for a string {@link Store.peekAfter} accepts as a cursor. */
export function isPeekCursor(cursor: string): boolean {
  return /^[0-9]{1,17}$/.test(cursor);
}

/** What one {@link Store.peekAfter} may read. */
export interface PeekBounds {
  /** Start after this cursor (from an earlier `peekAfter`); from the oldest when undefined. */
  readonly after?: PeekCursor | undefined;
  /** Most envelopes returned (an integer ≥ 1). */
  readonly limit: number;
  /**
   * Most envelope bytes (the base64url text) returned in all, a non-negative integer. The first
   * envelope is returned whatever its size, so a reader with little room still moves on; the
   * read stops before the envelope that would pass the bound.
   */
  readonly maxBytes: number;
  /** Most queued ids looked at, skipped ones included (an integer, `limit` ≤ scan ≤ 1,000);
   * `limit` when undefined. */
  readonly scan?: number | undefined;
  /** Ids passed over without reading their envelopes (the reader holds them already). */
  readonly skip?: ((id: string) => boolean) | undefined;
}

/** The answer of {@link Store.peekAfter}. */
export interface PeekPage {
  /** Unexpired, unacknowledged envelopes after `after`, oldest first, none of them skipped. */
  readonly messages: readonly PeekedEnvelope[];
  /** Continue after this: the last id looked at and not left unread by the byte bound
   * (returned or skipped); `after` again when there was none. */
  readonly cursor: PeekCursor | undefined;
  /** True when a bound (limit, scan or maxBytes) ended the read, so more may follow `cursor`;
   * false when the queue held nothing more after it at the time of the read. */
  readonly more: boolean;
}

/** Throws RangeError unless a {@link StoredProfile} can be stored as it is. */
export function checkStoredProfile(organizationKey: string, profile: StoredProfile): void {
  if (!/^[A-Za-z0-9_-]{43}$/.test(organizationKey)) {
    throw new RangeError('profile: organization key must be 43 base64url characters');
  }
  for (const n of [profile.version, profile.expiresAtSeconds]) {
    if (!Number.isSafeInteger(n) || n < 0 || n > 0xffff_ffff) {
      throw new RangeError('profile: version and expiry must be 32-bit unsigned integers');
    }
  }
  if (profile.profile.length === 0 || !isBase64urlText(profile.profile)) {
    throw new RangeError('profile: the profile must be base64url');
  }
}

/** Throws RangeError unless `bounds` is as {@link PeekBounds} describes; returns the scan. */
export function checkPeekBounds(bounds: PeekBounds, maxScan: number): number {
  const { after, limit, maxBytes } = bounds;
  const scan = bounds.scan ?? limit;
  if (after !== undefined && !isPeekCursor(after)) {
    throw new RangeError('peek: cursor must be decimal digits');
  }
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError('peek: limit must be a positive integer');
  }
  if (!Number.isSafeInteger(scan) || scan < limit || scan > maxScan) {
    throw new RangeError(`peek: scan must be an integer in [limit, ${maxScan}]`);
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError('peek: maxBytes must be a non-negative integer');
  }
  return scan;
}

/** Most ids one {@link Store.peekAfter} looks at (each is one id in a Redis reply). */
export const MAX_PEEK_SCAN = 1_000;

export type EnqueueResult = 'stored' | 'duplicate';

/** The public parts of a device's bundle that the directory keeps (opaque to the relay). */
export interface PrekeyBundle {
  readonly identity: string;
  readonly signedPrekey: string;
}

export interface FetchedBundle extends PrekeyBundle {
  /** One one-time prekey, removed from the directory by this fetch; null when none is left or
   * the fetch withheld it. */
  readonly oneTime: OneTimePrekey | null;
}

/**
 * Whether a prekey fetch takes one of the owner's one-time prekeys ('take') or leaves them all
 * and answers the bundle alone ('withhold': signed prekey and KEM prekey, enough for PQXDH).
 */
export type OneTimePrekeyMode = 'take' | 'withhold';

/** Stable codes of store failures; the relay maps each to a protocol error code. */
export type StoreErrorCode =
  /** The backing store cannot be reached; nothing was changed. Retryable. */
  | 'unavailable'
  /** The store cannot take more now: too many operations are waiting, or its memory bound
   * (MemoryStore's byte bound, Redis's maxmemory) is reached. Nothing was changed. Retryable. */
  | 'overloaded'
  /** The mailbox's queue is at its bound; nothing was stored. Retryable. */
  | 'mailbox_full'
  /** The directory holds the most one-time prekeys it keeps for the mailbox. */
  | 'prekeys_full';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    options?: { cause?: unknown },
  ) {
    super(`store: ${code}`, options);
  }
}

/**
 * Default of {@link StoreLimits.maxDedupIdsPerMailbox} (`MAX_DEDUP_IDS_PER_MAILBOX` in the
 * configuration). Without a bound one mailbox that sends to itself and acknowledges (about 100
 * records a second at the default rate limit) would hold 60 million ids over the 7-day dedup
 * window. 10,000 is far more than a real case receives within the window; forgetting an id early
 * only means that a very late resend of it is delivered again, which the recipient's ratchet
 * rejects as a replay and the client drops by its id (ADR 0001, "Remembered ids").
 */
export const MAX_DEDUP_IDS_PER_MAILBOX = 10_000;

/**
 * Default hard bound on store operations waiting for Redis (`MAX_PENDING_STORE_OPS` in the
 * configuration) in RedisStore; beyond it enqueues, peeks and prekey operations fail with 'overloaded'.
 * Acknowledgements are admitted past it: they are bounded by what was delivered (in flight per
 * connection), and refusing one only makes the relay deliver the message again.
 *
 * It is a safety bound, not the flow control: the relay stops reading from its sockets long
 * before (backpressure.ts, `STORE_PAUSE_PENDING_OPS`), so the pending count passes the pause
 * watermark only by what connections had already read. At 4,096 (the old value) a relay with
 * 1,000 busy pairs (about 4,000 operations in flight) shed a quarter of its sends; 16,384 leaves
 * room for 4,000 connections with two sends and two acks each read at once, and holds at most
 * about 50 MiB of 2-KiB envelopes waiting for Redis.
 */
export const MAX_PENDING_STORE_OPS = 16_384;

/** Expiries and bounds; the same for every implementation. */
export interface StoreLimits {
  /** How long a queued envelope lives unacknowledged. */
  readonly queueTtlSeconds: number;
  /** Most envelopes queued per mailbox. */
  readonly maxQueuedPerMailbox: number;
  /** How long an acknowledged id is remembered so that a late resend is not stored again. */
  readonly dedupTtlSeconds: number;
  /**
   * Most acknowledged ids remembered per mailbox; past it the oldest acknowledged is forgotten
   * first, and a resend of a forgotten id is stored and delivered again (at least once: the
   * recipient deduplicates). Default {@link MAX_DEDUP_IDS_PER_MAILBOX}.
   */
  readonly maxDedupIdsPerMailbox: number;
  /** How long a published bundle and its one-time prekeys live without a new publish. */
  readonly prekeyTtlSeconds: number;
  /** Most one-time prekeys kept per mailbox. */
  readonly maxOneTimePrekeys: number;
}

/** Throws unless every limit is a positive safe integer (a zero TTL would store nothing). */
export function assertValidLimits(limits: StoreLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new RangeError(`store limit ${name} must be a positive integer`);
    }
  }
}

/** What a shared rate bucket is for; each kind is its own bucket per mailbox. */
export type SharedRateKind = 'prekey-fetch';

/** A shared bucket's parameters. */
export interface SharedRate {
  /** Tokens added per second: positive, finite (may be fractional, as 6 a minute is). */
  readonly perSecond: number;
  /** Most tokens held: a positive integer. */
  readonly burst: number;
}

/**
 * Rate limits shared by every relay on one store, so that adding relays does not multiply what
 * one client gets. RedisStore has them (one small key per bucket, under the mailbox's hash tag,
 * with a TTL until the bucket is full again); MemoryStore serves one relay, whose in-process
 * limits are already the whole picture.
 */
export interface SharedRateLimits {
  /** Takes one token from `mailbox`'s bucket of `kind`; false means over the rate. */
  takeShared(kind: SharedRateKind, mailbox: string, rate: SharedRate): Promise<boolean>;
}

/** True for a store whose rate limits hold across relays. */
export function hasSharedRateLimits(store: Store): store is Store & SharedRateLimits {
  return typeof (store as Partial<SharedRateLimits>).takeShared === 'function';
}

/** A signed organization profile as the store keeps it (checked by the relay before). */
export interface StoredProfile {
  /** The profile's version (a 32-bit unsigned integer): only a greater one replaces it. */
  readonly version: number;
  /** The signed profile, canonical base64url. */
  readonly profile: string;
  /** When it expires, in Unix seconds; the store keeps it until then, at most
   * `MAX_PROFILE_VALIDITY_SECONDS` from now. */
  readonly expiresAtSeconds: number;
}

/**
 * What {@link Store.putProfile} did: 'stored' (it replaced an older one or none), 'unchanged'
 * (the same version and bytes were held: a retried publish), 'stale' (the held one has a greater
 * version, or the same version with other bytes: nothing changed), 'expired' (its expiry has
 * passed by the store's clock: nothing stored).
 */
export type PutProfileResult = 'stored' | 'unchanged' | 'stale' | 'expired';

/** A mailbox's state blob as the store holds it. */
export interface HeldState {
  /** The opaque blob, canonical base64url. */
  readonly blob: string;
  /** Its generation: 1 … MAX_STATE_GENERATION, drawn at random by the caller of putState. */
  readonly generation: number;
}

/**
 * What {@link Store.putState} did: stored under the new generation, or 'conflict' (the
 * generation held was not `ifGeneration`: nothing changed).
 */
export type PutStateResult = { readonly generation: number } | 'conflict';

/** Throws RangeError unless a state put's arguments can be stored as they are. */
export function checkStatePut(
  mailbox: string,
  blob: string,
  ifGeneration: number,
  generation: number,
): void {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(mailbox)) throw new RangeError('state: bad mailbox');
  if (blob.length === 0 || !isBase64urlText(blob)) {
    throw new RangeError('state: the blob must be base64url');
  }
  if (!Number.isSafeInteger(ifGeneration) || ifGeneration < 0) {
    throw new RangeError('state: ifGeneration must be a non-negative safe integer');
  }
  if (!Number.isSafeInteger(generation) || generation < 1 || generation === ifGeneration) {
    throw new RangeError('state: generation must be a positive safe integer, new');
  }
}

/** An attachment blob id and upload-token hash are base64url; throws RangeError otherwise. */
export function checkBlobId(id: string): void {
  if (!/^[A-Za-z0-9_-]{22}$/.test(id)) throw new RangeError('blob: id must be 22 base64url chars');
}

/** What {@link Store.putBlob} did: 'stored', or 'not_reserved' (no reservation of this id with
 * this token now: unknown, expired, used or another token; nothing stored). */
export type PutBlobResult = 'stored' | 'not_reserved';

/** Called with envelopes enqueued for a subscribed mailbox through another relay instance. */
export type RemoteDeliveryListener = (mailbox: string, message: QueuedEnvelope) => void;

export interface StoreHealth {
  /** False while the backing store cannot be reached; `/readyz` reports it. */
  readonly ready: boolean;
}

export interface Store {
  /**
   * Queues `env` for `mailbox` under `id`. Idempotent: an id that is queued, or was acknowledged
   * within `dedupTtlSeconds`, is not stored again ('duplicate'). Atomic: on failure nothing is
   * stored. Relays on other instances that subscribed to the mailbox are told (see `onRemote`);
   * delivery to connections on this instance is the caller's job.
   */
  enqueue(mailbox: string, id: string, env: string): Promise<EnqueueResult>;

  /** Up to `limit` unexpired, unacknowledged envelopes, oldest first. Removes nothing. */
  peek(mailbox: string, limit: number): Promise<QueuedEnvelope[]>;

  /**
   * Reads by cursor and within bounds (see {@link PeekBounds}, {@link PeekPage}): unexpired,
   * unacknowledged envelopes after `bounds.after`, oldest first, at most `limit` of them and
   * `maxBytes` of envelope text, passing over (unread) the ids `skip` names. Removes nothing.
   * This is the relay's refill: it reads what the socket can take instead of the whole window.
   * Rejects with RangeError (nothing read) when `bounds` is out of range.
   */
  peekAfter(mailbox: string, bounds: PeekBounds): Promise<PeekPage>;

  /** Deletes acknowledged envelopes and remembers their ids for deduplication. Unknown ids are
   * ignored (acknowledging twice is harmless). */
  ack(mailbox: string, ids: readonly string[]): Promise<void>;

  /** Starts telling `onRemote` about envelopes other instances enqueue for `mailbox`. */
  subscribe(mailbox: string): Promise<void>;
  /** Stops that. */
  unsubscribe(mailbox: string): Promise<void>;
  /** The one listener for remote deliveries; set once by the relay. */
  onRemote(listener: RemoteDeliveryListener): void;

  /** Replaces the bundle and adds one-time prekeys; returns how many are kept now. Throws
   * 'prekeys_full' (storing nothing) if the total would pass `maxOneTimePrekeys`. */
  publishPrekeys(
    mailbox: string,
    bundle: PrekeyBundle,
    oneTime: readonly OneTimePrekey[],
  ): Promise<number>;
  /**
   * The bundle, or null. With 'take' (the default) one one-time prekey is taken with it
   * atomically (never handed out twice; `oneTime: null` when none is left); with 'withhold' the
   * bundle comes with `oneTime: null` and the one-time prekeys are left as they are (a fetch past
   * the per-mailbox rate, docs/adr/0023-withhold-one-time-prekeys-past-the-fetch-rate.md).
   */
  fetchPrekeys(mailbox: string, oneTime?: OneTimePrekeyMode): Promise<FetchedBundle | null>;
  /** One-time prekeys left for `mailbox`. */
  countPrekeys(mailbox: string): Promise<number>;

  /**
   * Keeps the organization profile of `organizationKey` (base64url) until it expires, if its
   * version is greater than the one held (atomic compare-and-set: two relays publishing at once
   * cannot go back). Rejects with RangeError for an id that is not base64url or numbers out of
   * range; with StoreError like every write.
   */
  putProfile(organizationKey: string, profile: StoredProfile): Promise<PutProfileResult>;
  /** The unexpired profile held for `organizationKey` (base64url text), or null. */
  getProfile(organizationKey: string): Promise<string | null>;

  /**
   * Replaces `mailbox`'s state blob with `blob` under `generation` if the generation held now is
   * `ifGeneration` (0: none held; an expired state counts as none), atomically, and keeps it for
   * `queueTtlSeconds` from now. 'conflict' otherwise, changing nothing. Rejects with RangeError
   * for arguments {@link checkStatePut} refuses; with StoreError like every write.
   */
  putState(
    mailbox: string,
    blob: string,
    ifGeneration: number,
    generation: number,
  ): Promise<PutStateResult>;
  /** The unexpired state blob of `mailbox`, or null (never stored, deleted, expired alike). */
  getState(mailbox: string): Promise<HeldState | null>;
  /**
   * "Delete my conversation": deletes `mailbox`'s state blob, if any, and everything queued for
   * it — the unacknowledged envelopes and the acknowledged ids remembered for deduplication — so
   * that the mailbox looks like one never used. What a sender queues while it runs may stay.
   */
  deleteState(mailbox: string): Promise<void>;

  /**
   * Records a reservation of the attachment blob `id` (22 base64url characters) for the upload
   * token whose SHA-256 is `tokenHash` (43 base64url characters), for `ttlMs`. False (nothing
   * changed) if the id is reserved or held already.
   */
  reserveBlob(id: string, tokenHash: string, ttlMs: number): Promise<boolean>;
  /** True while `id` is reserved for `tokenHash` (not yet used, not expired). Changes nothing. */
  blobReserved(id: string, tokenHash: string): Promise<boolean>;
  /**
   * Stores `blob` (base64url) as attachment `id` for `queueTtlSeconds` and spends the
   * reservation, atomically, if `id` is reserved for `tokenHash` now; else 'not_reserved'.
   */
  putBlob(id: string, tokenHash: string, blob: string): Promise<PutBlobResult>;
  /** The unexpired attachment blob `id` (base64url), or null (unknown and expired alike). */
  getBlob(id: string): Promise<string | null>;

  health(): StoreHealth;
  /** Waits for in-flight operations, then releases connections. */
  close(): Promise<void>;
}
