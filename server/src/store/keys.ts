/**
 * Every Redis key and channel name RedisStore uses, in one place (as SecureDrop keeps its Redis
 * key names as named constants). See docs/adr/0001-redis-store-layout.md for why the layout is
 * what it is.
 *
 * All names live under {@link KEY_NAMESPACE}. Every key and the channel of one mailbox carry the
 * hash tag `{<mailbox>}`, so they hash to the same Redis Cluster slot: one Lua script can touch
 * all of them, one MGET may read several, and the sharded pub/sub channel lives on the shard that
 * runs that script.
 *
 *   passage:v1:{<mb>}:q       ZSET    queued message id → its expiry (µs since epoch, > 0);
 *                                     queue order, bound; and acknowledged message id → minus
 *                                     the end of its dedup window (< 0), at most
 *                                     maxDedupIdsPerMailbox of them, the newest kept
 *   passage:v1:{<mb>}:m:<id>  STRING  the envelope (canonical base64url), PX = its own expiry
 *   passage:v1:{<mb>}:pk      HASH    i → identity, s → signed prekey, x → expiry (µs)
 *   passage:v1:{<mb>}:otk     ZSET    "<id>.<key>" with score id; one-time prekeys
 *   passage:v1:{<mb>}:r:<k>   HASH    a rate bucket shared by all relays (k = pf: prekey
 *                                     fetches); PX = until the bucket is full again
 *   passage:v1:{<mb>}:st      HASH    g → generation, b → the mailbox's state blob
 *                                     (base64url), x → its expiry (µs); PX = the queue TTL
 *   passage:v1:{<mb>}:ch      sharded pub/sub channel of enqueue notifications
 *   passage:v1:{~blob:<id>}:t HASH    h → SHA-256 of the upload token, x → expiry (µs);
 *                                     PX = BLOB_RESERVATION_TTL_MS; deleted by the upload
 *   passage:v1:{~blob:<id>}:b HASH    b → the attachment blob (base64url), x → expiry (µs);
 *                                     PX = the queue TTL
 *   passage:v1:{~org:<key>}:profile
 *                             HASH    v → version, b → the signed organization profile
 *                                     (base64url), x → its expiry (µs); PX = that expiry
 *                                     (at most MAX_PROFILE_VALIDITY_SECONDS away)
 *
 * Every key is written with a TTL in the same script that writes it. Envelopes are one key each
 * so that Redis removes each of them physically when its own time has come: a seized server holds
 * no ciphertext older than its expiry, even in a mailbox that keeps receiving and is never read.
 * The ids (no content) live in one ZSET per mailbox that every enqueue and ack prunes by time
 * (ADR 0001, "Expiry").
 */

/**
 * Version-scoped prefix of every key and channel. The layout changes so far kept `v1` (ADR 0001,
 * "Consequences": relays of different layouts must not share a Redis).
 */
export const KEY_NAMESPACE = 'passage:v1:';

/** Suffixes after the hash tag. */
export const KEY_SUFFIX = {
  queue: ':q',
  /** Followed by the message id. */
  envelope: ':m:',
  /**
   * Followed by `<origin>-<serial>-<index>` (see enqueueCall): an envelope written before the
   * enqueue script decides on it.
   */
  stagedEnvelope: ':w:',
  prekeyBundle: ':pk',
  oneTimePrekeys: ':otk',
  /** Followed by the kind of the bucket. */
  rate: ':r:',
  channel: ':ch',
  profile: ':profile',
  state: ':st',
  blobReservation: ':t',
  blob: ':b',
} as const;

/**
 * Mailbox ids are base64url (the relay checks them against the protocol schema before they get
 * here). The store checks again because a `{` or `}` in a mailbox would change the hash tag and
 * a `:` could collide with another mailbox's key: the key layout must not depend on a caller
 * remembering to validate.
 */
const KEY_SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** True when `id`, a mailbox id or a message id, can be used in a key name or a notification
 * payload (base64url, 1–128 characters). */
export function isKeySafeId(id: string): boolean {
  return KEY_SAFE_ID.test(id);
}

/** `passage:v1:{<mailbox>}`: the prefix every key of one mailbox starts with. */
export function mailboxTag(mailbox: string): string {
  return `${KEY_NAMESPACE}{${mailbox}}`;
}

/** The queue ZSET of `mailbox`: ids in arrival order, scored by their expiry. */
export function queueKey(mailbox: string): string {
  return mailboxTag(mailbox) + KEY_SUFFIX.queue;
}

/** The key that holds the envelope `id` of `mailbox` (`id` must be key-safe). */
export function envelopeKey(mailbox: string, id: string): string {
  return mailboxTag(mailbox) + KEY_SUFFIX.envelope + id;
}

/** The prekey directory keys of one mailbox. */
export function prekeyKeys(mailbox: string): [bundle: string, oneTime: string] {
  const tag = mailboxTag(mailbox);
  return [tag + KEY_SUFFIX.prekeyBundle, tag + KEY_SUFFIX.oneTimePrekeys];
}

/** The sharded pub/sub channel that carries enqueue notifications for `mailbox`. */
export function mailboxChannel(mailbox: string): string {
  return mailboxTag(mailbox) + KEY_SUFFIX.channel;
}

const CHANNEL_PREFIX_LENGTH = KEY_NAMESPACE.length + 1; // 'passage:v1:{'
const CHANNEL_SUFFIX_LENGTH = 1 + KEY_SUFFIX.channel.length; // '}:ch'

/** The mailbox a channel name from {@link mailboxChannel} belongs to, or null if it is not one. */
export function mailboxOfChannel(channel: string): string | null {
  if (
    channel.length <= CHANNEL_PREFIX_LENGTH + CHANNEL_SUFFIX_LENGTH ||
    !channel.startsWith(KEY_NAMESPACE + '{') ||
    !channel.endsWith('}' + KEY_SUFFIX.channel)
  ) {
    return null;
  }
  const mailbox = channel.slice(CHANNEL_PREFIX_LENGTH, channel.length - CHANNEL_SUFFIX_LENGTH);
  return isKeySafeId(mailbox) ? mailbox : null;
}

/**
 * The key of the organization profile signed by `organizationKey` (base64url): its own hash
 * tag, which no mailbox tag can equal (`~` is not base64url), one key per organization key (a
 * relay that is given another key does not serve the old organization's profile).
 */
export function profileKey(organizationKey: string): string {
  return `${KEY_NAMESPACE}{~org:${organizationKey}}${KEY_SUFFIX.profile}`;
}

/** The state blob HASH of `mailbox`. */
export function stateKey(mailbox: string): string {
  return mailboxTag(mailbox) + KEY_SUFFIX.state;
}

/**
 * The reservation and blob keys of attachment `id` (base64url): their own hash tag, which no
 * mailbox tag can equal (`~` is not base64url), so both live in one slot and one script spends
 * the reservation as it stores the blob.
 */
export function blobKeys(id: string): [reservation: string, blob: string] {
  const tag = `${KEY_NAMESPACE}{~blob:${id}}`;
  return [tag + KEY_SUFFIX.blobReservation, tag + KEY_SUFFIX.blob];
}

/** Separator in notification payloads and one-time prekey members. Never in base64url. */
export const FIELD_SEPARATOR = ' ';
export const PREKEY_MEMBER_SEPARATOR = '.';
