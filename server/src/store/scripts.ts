/**
 * The Lua scripts behind RedisStore, each with the one function that builds its KEYS and ARGV
 * from typed input (`…Call` below). RedisStore calls scripts only through those builders, so the
 * argument layout a script reads is written down once, beside it, and tested on its own
 * (scripts.test.ts), the refused inputs included.
 *
 * Every operation that changes data is ONE script, so it is one round trip and atomic: a crash or
 * a lost connection either leaves the whole change or none of it. Peek changes nothing and is the
 * exception: a read-only script returns the live ids of the queue, then one MGET reads their
 * envelopes (a script may only touch the keys it declares, and only the queue knows the ids);
 * an envelope acknowledged or expired between the two is skipped.
 *
 * Conventions shared by all scripts (see docs/adr/0001-redis-store-layout.md):
 * - Time is Redis's own clock (`TIME`), in microseconds, plus ARGV[1], an offset in ms that is
 *   always 0 outside tests (the contract suite moves it to exercise expiry without sleeping).
 *   Redis 7 replicates script effects, not the script, so reading TIME is safe.
 * - Expiry is decided by data (scores and the bundle's `x` field compared with now), so it
 *   follows the test clock offset. Physically, every envelope is its own key with its own PX, so
 *   Redis itself removes each one when its time has come; the keys that hold several items (the
 *   queue and the acknowledged ids of a mailbox) drop their expired items on every enqueue and
 *   ack and carry a TTL as long as their latest item. No script writes a key without setting its
 *   TTL.
 * - Numbers above 2^31 are passed to redis.call as strings formatted with '%.0f': Lua would
 *   otherwise turn them into '%.14g' text and lose the low digits of a µs timestamp.
 * - Every key a script touches is in KEYS and shares one hash tag per mailbox (Redis Cluster);
 *   a script never derives a key name from another.
 * - Each script starts with a Redis 7 shebang whose flags say how it behaves at maxmemory, so a
 *   script that adds data is refused before it runs instead of failing half-way (see OomMode).
 */
import { createHash } from 'node:crypto';
import type { OneTimePrekey } from '@passage/shared/protocol/frames';
import { isBase64urlText } from '@passage/shared/protocol/base64url';
import { MAX_PREKEY_ID } from '@passage/shared/protocol/limits';
import {
  FIELD_SEPARATOR,
  KEY_SUFFIX,
  PREKEY_MEMBER_SEPARATOR,
  blobKeys,
  envelopeKey,
  isKeySafeId,
  mailboxTag,
  prekeyKeys,
  profileKey,
  queueKey,
  stateKey,
} from './keys.js';
import {
  MAX_PEEK_SCAN,
  checkBlobId,
  checkStatePut,
  checkStoredProfile,
  isPeekCursor,
  type StoredProfile,
  type PrekeyBundle,
  type SharedRate,
  type SharedRateKind,
} from './store.js';

/** A script with its SHA-1, for EVALSHA with an EVAL fallback on NOSCRIPT. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha1: string;
  /** Runs with EVALSHA_RO: it writes nothing, so it also runs under maxmemory pressure. */
  readonly readOnly: boolean;
}

/**
 * How a script behaves when Redis is at `maxmemory` (Redis 7 script flags in the shebang):
 * - 'refuse': refused before it runs (OOM error → StoreError 'overloaded'), so it never fails
 *   half-way through; for scripts that add data;
 * - 'allow': runs anyway; for scripts that only shrink memory (ack, taking a one-time prekey),
 *   which are the way out of OOM;
 * - 'read': writes nothing (`no-writes`, run with EVALSHA_RO).
 */
type OomMode = 'refuse' | 'allow' | 'read';

const SHEBANG: Readonly<Record<OomMode, string>> = {
  refuse: '#!lua',
  allow: '#!lua flags=allow-oom',
  read: '#!lua flags=no-writes',
};

function script(name: string, body: string, oom: OomMode): LuaScript {
  const source = SHEBANG[oom] + '\n' + PRELUDE + body;
  const sha1 = createHash('sha1').update(source).digest('hex');
  return { name, source, sha1, readOnly: oom === 'read' };
}

const PRELUDE = `
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1]) * 1000
end
local function fmt(n)
  return string.format('%.0f', n)
end
`;

/**
 * Enqueues a batch of envelopes (for one or many mailboxes) in one round trip, in order.
 * KEYS (built by {@link enqueueCall}): three per envelope: its mailbox's queue, its envelope key,
 * its staged envelope key. ARGV: offsetMs, queueTtlMs, maxQueued, payload prefix ("<origin> "),
 * then three per envelope: id, channel, and '1' if the origin instance is subscribed to that
 * channel itself, else '0'. Returns one result per envelope: 1 stored, 0 duplicate, -1 full,
 * -2 its staged envelope is missing (nothing stored for it in those three cases).
 *
 * The envelopes themselves are not arguments: the caller first writes each one to its staged key,
 * on the same connection (`SET <staged key> <env> PX <queueTtlMs>`, {@link EnqueueCall.writes}),
 * and this script RENAMEs the staged key onto the envelope key of an envelope it stores (RENAME
 * moves the value, it copies nothing) and deletes it otherwise, so a duplicate never replaces
 * the envelope of an id still queued. Passing 2 KiB envelopes through Lua cost redis-server
 * more than the SET itself (measured: about 5 µs a message to copy them into Lua strings and
 * collect them, and 3 µs more for a SET called from Lua). A staged key whose script never ran
 * (the connection lost between the two) is named by no queue: nothing reads it, it expires with
 * its PX, and a resend of the id writes it again. A staged key that is missing when the script
 * runs (its write failed: Redis out of memory, say) stores nothing: -2,
 * and the caller refuses the envelope as retryable, so the sender resends it.
 *
 * The queue ZSET holds both what is queued and what was acknowledged (see ACK), told apart by
 * the sign of the score: a queued id scores its expiry (> now while it lives), an acknowledged
 * id scores minus the end of its dedup window (< -now while it is remembered). So
 * ZREMRANGEBYSCORE over [-now, now] drops every expired id of both kinds in one command, the
 * queued ones are the scores above now, and "is this id known" is one ZSCORE. The first envelope
 * of a mailbox in a call prunes that mailbox and reads its live count and its newest score; the
 * script carries them forward for the mailbox's next envelopes of the same call.
 *
 * An id whose envelope expired unacknowledged, or whose dedup window ended, or that the queue
 * forgot at the remembered-id bound (see ACK), is stored again. The score is the envelope's
 * expiry in µs, forced above the newest score so ZSET order is arrival order even within one
 * microsecond or if the clock steps back; the envelope key's PX is the same expiry, so Redis
 * removes the envelope when the queue stops counting it. The queue's TTL is raised (never
 * lowered: it may hold remembered ids for longer) to its newest item's.
 *
 * The notification is skipped when nobody but the origin listens (PUBSUB SHARDNUMSUB counts
 * subscriber connections; each instance has one per shard), counted once per channel and call.
 * A subscription still on its way is not missed: the subscriber peeks after its SSUBSCRIBE
 * completed, and sees the envelope.
 *
 * On a Redis Cluster every batch holds one envelope (one hash tag); on one node a batch may mix
 * mailboxes.
 */
export const ENQUEUE = script(
  'enqueue',
  `
local now = now_us()
local nowS = fmt(now)
local liveS = '(' .. nowS
local expiredS = fmt(-now)
local ttlUs = tonumber(ARGV[2]) * 1000
local max = tonumber(ARGV[3])
local prefix = ARGV[4]
local out = {}
local queues = {}
local order = {}
local listenersOf = {}
for k = 0, #KEYS / 3 - 1 do
  local q, m, w = KEYS[3 * k + 1], KEYS[3 * k + 2], KEYS[3 * k + 3]
  local a = 5 + 3 * k
  local id = ARGV[a]
  local st = queues[q]
  if st == nil then
    redis.call('ZREMRANGEBYSCORE', q, expiredS, nowS)
    local count = redis.call('ZCOUNT', q, liveS, '+inf')
    local last = 0
    if count > 0 then
      last = tonumber(redis.call('ZRANGE', q, -1, -1, 'WITHSCORES')[2])
    end
    st = { count = count, last = last, px = 0 }
    queues[q] = st
    order[#order + 1] = q
  end
  local result
  local score = now + ttlUs
  if st.last >= score then
    score = st.last + 1
  end
  if st.count >= max then
    result = redis.call('ZSCORE', q, id) and 0 or -1
  else
    result = redis.call('ZADD', q, 'NX', fmt(score), id)
  end
  if result == 1 then
    local moved = redis.pcall('RENAME', w, m)
    if type(moved) == 'table' and moved.err then
      redis.call('ZREM', q, id)
      result = -2
    end
  else
    redis.call('DEL', w)
  end
  if result == 1 then
    st.last = score
    st.count = st.count + 1
    st.px = math.ceil((score - now) / 1000)
    local channel = ARGV[a + 1]
    local listeners = listenersOf[channel]
    if listeners == nil then
      listeners = redis.call('PUBSUB', 'SHARDNUMSUB', channel)[2]
      if ARGV[a + 2] == '1' then
        listeners = listeners - 1
      end
      listenersOf[channel] = listeners
    end
    if listeners > 0 then
      redis.call('SPUBLISH', channel, prefix .. id .. '${FIELD_SEPARATOR}' .. redis.call('GET', m))
    end
  end
  out[k + 1] = result
end
for i = 1, #order do
  local q = order[i]
  local px = queues[q].px
  if px > 0 and redis.call('PTTL', q) < px then
    redis.call('PEXPIRE', q, px)
  end
end
return out
`,
  'refuse',
);

/**
 * The first of peek's two round trips. KEYS: q. ARGV: offsetMs, limit. Returns up to `limit`
 * ids whose expiry is still ahead, oldest first. The caller then reads their envelope keys with
 * one MGET (same hash tag, so one slot; legal on a Cluster) and skips any key that is gone
 * (acknowledged or expired in between). Expired ids are skipped here and removed by the next
 * enqueue or ack.
 */
export const PEEK = script(
  'peek',
  `
local now = now_us()
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(now), '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
`,
  'read',
);

/**
 * The first of peekAfter's two round trips (the refill's read by cursor). KEYS: q. ARGV:
 * offsetMs, scan, after (a score, or '' for the oldest). Returns up to `scan` live ids after
 * `after`, oldest first, each followed by its score as an integer string (the cursor). The
 * caller leaves out the ids it holds already, then reads the others with {@link READ_ENVELOPES}.
 */
export const PEEK_AFTER = script(
  'peekAfter',
  `
local from = now_us()
if ARGV[3] ~= '' and tonumber(ARGV[3]) > from then
  from = tonumber(ARGV[3])
end
local r = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(from), '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 2, #r, 2 do
  r[i] = fmt(tonumber(r[i]))
end
return r
`,
  'read',
);

/**
 * The second of peekAfter's round trips. KEYS (built by {@link readEnvelopesCall}): envelope
 * keys of one mailbox, in queue order. ARGV: offsetMs, maxBytes. Returns their envelopes in
 * order, false for a key that is gone (acknowledged or expired since the first round trip),
 * stopping before the envelope that would take the bytes returned past maxBytes; the first
 * envelope is returned whatever its size. STRLEN first, so an envelope that does not fit is
 * never copied: what the relay pulls out of Redis is bounded by what its socket can take.
 */
export const READ_ENVELOPES = script(
  'readEnvelopes',
  `
local max = tonumber(ARGV[2])
local used = 0
local out = {}
for i = 1, #KEYS do
  local n = redis.call('STRLEN', KEYS[i])
  if n == 0 then
    out[i] = false
  else
    if used > 0 and used + n > max then
      break
    end
    used = used + n
    out[i] = redis.call('GET', KEYS[i])
  end
end
return out
`,
  'read',
);

/**
 * Acknowledges ids of one or many mailboxes in one round trip. KEYS (built by {@link ackCall})
 * per group: the mailbox's queue, then the envelope key of each of its n ids. ARGV: offsetMs,
 * dedupTtlMs, maxDedupIds, then per group: n, then the n ids.
 *
 * Per group, first drops the expired ids of both kinds from the queue (see ENQUEUE for the
 * layout); then for each id whose envelope is still held, the envelope key is deleted and the
 * id, if still queued, stays in the queue ZSET as remembered: its score becomes minus the end of
 * its dedup window (ZADD XX: an id no longer there is not added back), forced below the newest
 * remembered score (rank 0) so the remembered ids' order is acknowledgement order, as the live
 * ids' is arrival order. Then the remembered ids are trimmed to the newest maxDedupIds (the
 * oldest acknowledged are forgotten first, as MemoryStore does; ZCARD first, so the remembered
 * ids are only counted when the whole set is past the bound), and the queue's TTL is raised
 * (PEXPIRE GT, never lowered) to the end of the newest dedup window. Ids that are not queued (or
 * whose envelope expired) are ignored and are not remembered; an id acknowledged twice is
 * remembered once. Returns how many were acknowledged.
 */
export const ACK = script(
  'ack',
  `
local now = now_us()
local nowS = fmt(now)
local expiredS = fmt(-now)
local windowUs = tonumber(ARGV[2]) * 1000
local maxIds = tonumber(ARGV[3])
local total = 0
local a = 4
local k = 1
while k <= #KEYS do
  local q = KEYS[k]
  redis.call('ZREMRANGEBYSCORE', q, expiredS, nowS)
  local n = tonumber(ARGV[a])
  local newest = nil
  for i = 1, n do
    if redis.call('DEL', KEYS[k + i]) == 1 then
      if newest == nil then
        local top = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
        newest = 0
        if top[2] and tonumber(top[2]) < 0 then
          newest = -tonumber(top[2])
        end
      end
      local untilUs = now + windowUs
      if newest >= untilUs then
        untilUs = newest + 1
      end
      if redis.call('ZADD', q, 'XX', 'CH', fmt(-untilUs), ARGV[a + i]) == 1 then
        newest = untilUs
        total = total + 1
      end
    end
  end
  if newest ~= nil and newest > 0 then
    if redis.call('ZCARD', q) > maxIds then
      local held = redis.call('ZCOUNT', q, '-inf', '(0')
      if held > maxIds then
        redis.call('ZREMRANGEBYRANK', q, maxIds, held - 1)
      end
    end
    redis.call('PEXPIRE', q, math.ceil((newest - now) / 1000), 'GT')
  end
  k = k + 1 + n
  a = a + 1 + n
end
return total
`,
  'allow',
);

/**
 * KEYS: pk otk. ARGV: offsetMs, prekeyTtlMs, maxOneTime, identity, signedPrekey, then pairs of
 * one-time prekey id and key. A one-time prekey whose id is held replaces it. Returns the number
 * of one-time prekeys held afterwards, or -1 (prekeys_full; nothing stored).
 */
export const PUBLISH_PREKEYS = script(
  'publishPrekeys',
  `
local pk, otk = KEYS[1], KEYS[2]
local now = now_us()
local x = redis.call('HGET', pk, 'x')
if not x or tonumber(x) <= now then
  -- The previous bundle expired (by the clock the scripts use): its one-time prekeys with it.
  redis.call('DEL', otk)
end
local total = redis.call('ZCARD', otk)
local seen = {}
for i = 6, #ARGV, 2 do
  local id = ARGV[i]
  if not seen[id] then
    seen[id] = true
    if #redis.call('ZRANGEBYSCORE', otk, id, id, 'LIMIT', 0, 1) == 0 then
      total = total + 1
    end
  end
end
if total > tonumber(ARGV[3]) then
  return -1
end
for i = 6, #ARGV, 2 do
  redis.call('ZREMRANGEBYSCORE', otk, ARGV[i], ARGV[i])
  redis.call('ZADD', otk, ARGV[i], ARGV[i] .. '${PREKEY_MEMBER_SEPARATOR}' .. ARGV[i + 1])
end
local ttl = tonumber(ARGV[2])
redis.call('HSET', pk, 'i', ARGV[4], 's', ARGV[5], 'x', fmt(now + ttl * 1000))
redis.call('PEXPIRE', pk, ttl)
redis.call('PEXPIRE', otk, ttl)
return redis.call('ZCARD', otk)
`,
  'refuse',
);

/**
 * KEYS: pk otk. ARGV: offsetMs. Returns nil when no live bundle, else [identity, signedPrekey]
 * or [identity, signedPrekey, "<id>.<key>"] with that one-time prekey removed (ZPOPMIN: the
 * lowest id, atomically, so two relays never hand out the same one).
 */
export const FETCH_PREKEYS = script(
  'fetchPrekeys',
  `
local now = now_us()
local b = redis.call('HMGET', KEYS[1], 'i', 's', 'x')
if not b[1] or not b[2] or not b[3] or tonumber(b[3]) <= now then
  return false
end
local p = redis.call('ZPOPMIN', KEYS[2])
return { b[1], b[2], p[1] }
`,
  'allow',
);

/**
 * KEYS: pk. ARGV: offsetMs. The bundle alone for a fetch past the per-mailbox rate: nil when no
 * live bundle, else [identity, signedPrekey], and the one-time prekeys are not touched (a read:
 * no-writes, so it also runs on a full Redis and cannot spend one).
 */
export const READ_PREKEY_BUNDLE = script(
  'readPrekeyBundle',
  `
local now = now_us()
local b = redis.call('HMGET', KEYS[1], 'i', 's', 'x')
if not b[1] or not b[2] or not b[3] or tonumber(b[3]) <= now then
  return false
end
return { b[1], b[2] }
`,
  'read',
);

/** KEYS: pk otk. ARGV: offsetMs. One-time prekeys left (0 when the bundle expired). */
export const COUNT_PREKEYS = script(
  'countPrekeys',
  `
local now = now_us()
local x = redis.call('HGET', KEYS[1], 'x')
if not x or tonumber(x) <= now then
  return 0
end
return redis.call('ZCARD', KEYS[2])
`,
  'read',
);

/**
 * A token bucket shared by every relay on this Redis: takes `cost` tokens from one mailbox's
 * bucket of one kind if it holds them. KEYS: the bucket (a HASH: t → tokens, u → when t was
 * computed, µs). ARGV: offsetMs, tokens per second (a decimal, may be fractional), burst, cost.
 * Returns 1 (taken) or 0 (over the rate; nothing changed). The key's TTL is the time until the
 * bucket is full again, when it carries nothing and may go (a missing bucket is a full one), so
 * it never outlives what it remembers. Writes a small key: runs at maxmemory too ('allow'), so a
 * full Redis does not turn rate limits off or refuse what they would let through.
 */
export const RATE_TAKE = script(
  'rateTake',
  `
local now = now_us()
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = burst
if b[1] and b[2] then
  local elapsed = now - tonumber(b[2])
  if elapsed < 0 then
    elapsed = 0
  end
  tokens = math.min(burst, tonumber(b[1]) + elapsed * rate / 1000000)
end
if tokens < cost then
  return 0
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens), 'u', fmt(now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) * 1000 / rate)))
return 1
`,
  'allow',
);

/**
 * Keeps an organization profile if it is newer than the one held. KEYS: the profile HASH
 * (v → version, b → profile, x → expiry µs). ARGV: offsetMs, version, profile, expiry (Unix
 * seconds), longest TTL (ms). Returns 1 stored, 2 unchanged (same version and bytes), 0 stale
 * (a greater version held, or the same version with other bytes), -1 expired (nothing stored).
 * An expired hash (by the scripts' clock) counts as none. PX = until the profile's expiry,
 * capped at the longest TTL.
 */
export const PUT_PROFILE = script(
  'putProfile',
  `
local now = now_us()
local version = tonumber(ARGV[2])
local expires = math.min(tonumber(ARGV[4]) * 1000000, now + tonumber(ARGV[5]) * 1000)
if expires <= now then
  return -1
end
local h = redis.call('HMGET', KEYS[1], 'v', 'b', 'x')
if h[1] and h[2] and h[3] and tonumber(h[3]) > now then
  local held = tonumber(h[1])
  if held > version then
    return 0
  end
  if held == version then
    if h[2] == ARGV[3] then
      return 2
    end
    return 0
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'b', ARGV[3], 'x', fmt(expires))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((expires - now) / 1000)))
return 1
`,
  'refuse',
);

/**
 * KEYS: a HASH written with `b` (the bytes) and `x` (their expiry, µs): the profile, or an
 * attachment blob. ARGV: offsetMs. The unexpired `b`, or nil. One script for both, so that
 * "expired or never stored" is decided in one place.
 */
export const GET_UNEXPIRED = script(
  'getUnexpired',
  `
local now = now_us()
local h = redis.call('HMGET', KEYS[1], 'b', 'x')
if not h[1] or not h[2] or tonumber(h[2]) <= now then
  return false
end
return h[1]
`,
  'read',
);

/**
 * Replaces a mailbox's state blob by compare-and-set. KEYS: the state HASH (g → generation,
 * b → blob, x → expiry µs). ARGV: offsetMs, ifGeneration, new generation, blob, TTL (ms).
 * Returns 1 stored, 0 conflict (the generation held, 0 for none or expired, is not ifGeneration;
 * nothing changed). PX = the TTL from now.
 */
export const PUT_STATE = script(
  'putState',
  `
local now = now_us()
local h = redis.call('HMGET', KEYS[1], 'g', 'x')
local held = '0'
if h[1] and h[2] and tonumber(h[2]) > now then
  held = h[1]
end
if held ~= ARGV[2] then
  return 0
end
local ttl = tonumber(ARGV[5])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'g', ARGV[3], 'b', ARGV[4], 'x', fmt(now + ttl * 1000))
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`,
  'refuse',
);

/** KEYS: the state HASH. ARGV: offsetMs. {blob, generation} of the unexpired state, or nil. */
export const GET_STATE = script(
  'getState',
  `
local now = now_us()
local h = redis.call('HMGET', KEYS[1], 'b', 'g', 'x')
if not h[1] or not h[2] or not h[3] or tonumber(h[3]) <= now then
  return false
end
return {h[1], h[2]}
`,
  'read',
);

/**
 * "Delete my conversation": the mailbox's state and what is queued for it. KEYS: the state
 * HASH, the queue ZSET, then the envelope key of each of n ids (all with the mailbox's hash tag,
 * one slot on a Cluster). ARGV: offsetMs, '1' to delete the state (the first call of a delete)
 * or '0', then the n ids (read from the queue just before: a script may only touch the keys it
 * declares). Deletes each envelope and takes each id out of the queue, live or remembered; ids
 * queued since the read stay. Returns how many ids the queue still holds. Only shrinks memory.
 */
export const DELETE_STATE = script(
  'deleteState',
  `
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
end
for i = 3, #KEYS do
  redis.call('DEL', KEYS[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return redis.call('ZCARD', KEYS[2])
`,
  'allow',
);

/**
 * Reserves an attachment blob id for an upload token. KEYS: the reservation HASH (h → token
 * hash, x → expiry µs), the blob HASH. ARGV: offsetMs, token hash, TTL (ms). Returns 1 reserved,
 * 0 if the id is reserved or held already (nothing changed).
 */
export const RESERVE_BLOB = script(
  'reserveBlob',
  `
local now = now_us()
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
  return 0
end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'h', ARGV[2], 'x', fmt(now + ttl * 1000))
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`,
  'refuse',
);

/** KEYS: the reservation HASH. ARGV: offsetMs, token hash. 1 while reserved for it, else 0. */
export const BLOB_RESERVED = script(
  'blobReserved',
  `
local now = now_us()
local h = redis.call('HMGET', KEYS[1], 'h', 'x')
if h[1] == ARGV[2] and h[2] and tonumber(h[2]) > now then
  return 1
end
return 0
`,
  'read',
);

/**
 * Stores an attachment blob and spends its reservation. KEYS: the reservation HASH, the blob
 * HASH (b → blob, x → expiry µs). ARGV: offsetMs, token hash, blob, TTL (ms). Returns 1 stored,
 * 0 not reserved for this token now (nothing changed). PX = the TTL from now.
 */
export const PUT_BLOB = script(
  'putBlob',
  `
local now = now_us()
local h = redis.call('HMGET', KEYS[1], 'h', 'x')
if h[1] ~= ARGV[2] or not h[2] or tonumber(h[2]) <= now then
  return 0
end
local ttl = tonumber(ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'b', ARGV[3], 'x', fmt(now + ttl * 1000))
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
`,
  'refuse',
);

// ---------------------------------------------------------------------------------------------
// Argument builders: the one place each script's KEYS and ARGV layout is written in TypeScript.
// Each refuses (RangeError, nothing sent) input the script would misread: a key-unsafe mailbox or
// message id, a count past a batch bound, a TTL that would lose µs precision in Lua.

/** Most envelopes one peek returns (each is one id in the reply and one key of the MGET), and
 * most ids one peekAfter looks at. */
export const MAX_PEEK_LIMIT = MAX_PEEK_SCAN;
/** Most enqueues (or acks) sent to one node in one script call. */
export const MAX_BATCH_OPERATIONS = 128;
/** Most acknowledged ids in one ack script call (each id is one key and one argument of it). */
export const MAX_BATCH_ACK_IDS = 1_024;
/**
 * Longest TTL a script is given, in ms (100 years). Lua numbers are doubles: `now + ttl` in µs
 * must stay an exact integer (below 2^53 µs, the year 2255), and the configuration allows a year.
 */
export const MAX_SCRIPT_TTL_MS = 100 * 365 * 86_400_000;

/** One script call as a builder makes it: the script, its KEYS and its ARGV. */
export interface ScriptCall {
  readonly script: LuaScript;
  readonly keys: readonly string[];
  readonly args: readonly string[];
}

function integerIn(name: string, value: number, min: number, max: number): string {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`script argument ${name} must be an integer in [${min}, ${max}]`);
  }
  return String(value);
}

function keySafe(what: string, id: string): string {
  if (!isKeySafeId(id)) throw new RangeError(`script argument ${what} is not base64url`);
  return id;
}

/** ARGV[1] of every script: the test clock offset (0 in production), in ms. */
function offsetArg(offsetMs: number): string {
  return integerIn('offsetMs', offsetMs, 0, MAX_SCRIPT_TTL_MS);
}

/** What every enqueue of one call shares. */
export interface EnqueueSettings {
  readonly offsetMs: number;
  readonly queueTtlMs: number;
  readonly maxQueued: number;
  /** `<origin instance id><FIELD_SEPARATOR>`, which starts every notification payload. */
  readonly payloadPrefix: string;
  /**
   * A number this origin instance never uses for another ENQUEUE call (a counter): it names the
   * staged envelope keys of this call, so that two enqueues of one id (in one batch, or from two
   * relays at once) never write the same staged key and the first one stored keeps its envelope.
   */
  readonly stagingSerial: number;
}

/** One envelope to enqueue. */
export interface EnqueueItem {
  readonly mailbox: string;
  readonly id: string;
  readonly env: string;
  /** The origin instance is itself subscribed to the mailbox's channel. */
  readonly originSubscribed: boolean;
}

/** An {@link ENQUEUE} call and the envelope writes that go before it. */
export interface EnqueueCall extends ScriptCall {
  /** One `SET <staged envelope key> <env> PX <queueTtlMs>` per envelope, in batch order. */
  readonly writes: readonly string[][];
}

/**
 * KEYS and ARGV of {@link ENQUEUE} for 1 to {@link MAX_BATCH_OPERATIONS} envelopes, in order,
 * and the envelope writes to send before it on the same connection.
 */
export function enqueueCall(settings: EnqueueSettings, batch: readonly EnqueueItem[]): EnqueueCall {
  integerIn('batch size', batch.length, 1, MAX_BATCH_OPERATIONS);
  const prefix = settings.payloadPrefix;
  if (prefix.indexOf(FIELD_SEPARATOR) !== prefix.length - 1 || !isKeySafeId(prefix.slice(0, -1))) {
    throw new RangeError('script argument payloadPrefix must be an id and one separator');
  }
  integerIn('stagingSerial', settings.stagingSerial, 0, Number.MAX_SAFE_INTEGER);
  // <origin>-<serial>-<index>: the last two fields hold no '-', so no two calls share a name.
  const staging = `${prefix.slice(0, -1)}-${settings.stagingSerial.toString(36)}-`;
  const keys = new Array<string>(3 * batch.length);
  const args = new Array<string>(4 + 3 * batch.length);
  const writes = new Array<string[]>(batch.length);
  args[0] = offsetArg(settings.offsetMs);
  args[1] = integerIn('queueTtlMs', settings.queueTtlMs, 1, MAX_SCRIPT_TTL_MS);
  args[2] = integerIn('maxQueued', settings.maxQueued, 1, Number.MAX_SAFE_INTEGER);
  args[3] = prefix;
  for (let i = 0; i < batch.length; i += 1) {
    const op = batch[i] as EnqueueItem;
    const id = keySafe('message id', op.id);
    const tag = mailboxTag(keySafe('mailbox', op.mailbox));
    const staged = tag + KEY_SUFFIX.stagedEnvelope + staging + i.toString(36);
    keys[3 * i] = tag + KEY_SUFFIX.queue;
    keys[3 * i + 1] = tag + KEY_SUFFIX.envelope + id;
    keys[3 * i + 2] = staged;
    args[4 + 3 * i] = id;
    args[5 + 3 * i] = tag + KEY_SUFFIX.channel;
    args[6 + 3 * i] = op.originSubscribed ? '1' : '0';
    writes[i] = ['SET', staged, op.env, 'PX', args[1]];
  }
  return { script: ENQUEUE, keys, args, writes };
}

/** KEYS and ARGV of {@link PEEK}: up to `limit` (1 to {@link MAX_PEEK_LIMIT}) live ids. */
export function peekCall(mailbox: string, offsetMs: number, limit: number): ScriptCall {
  return {
    script: PEEK,
    keys: [queueKey(keySafe('mailbox', mailbox))],
    args: [offsetArg(offsetMs), integerIn('limit', limit, 1, MAX_PEEK_LIMIT)],
  };
}

/**
 * KEYS and ARGV of {@link PEEK_AFTER}: up to `scan` (1 to {@link MAX_PEEK_LIMIT}) live ids after
 * the cursor `after` (a score as decimal digits; undefined for the oldest).
 */
export function peekAfterCall(
  mailbox: string,
  offsetMs: number,
  scan: number,
  after: string | undefined,
): ScriptCall {
  if (after !== undefined && !isPeekCursor(after)) {
    throw new RangeError('script argument after must be decimal digits');
  }
  return {
    script: PEEK_AFTER,
    keys: [queueKey(keySafe('mailbox', mailbox))],
    args: [offsetArg(offsetMs), integerIn('scan', scan, 1, MAX_PEEK_LIMIT), after ?? ''],
  };
}

/**
 * KEYS and ARGV of {@link READ_ENVELOPES}: the envelopes of 1 to {@link MAX_PEEK_LIMIT} ids of
 * one mailbox, within `maxBytes` (a non-negative integer).
 */
export function readEnvelopesCall(
  mailbox: string,
  offsetMs: number,
  ids: readonly string[],
  maxBytes: number,
): ScriptCall {
  integerIn('ids', ids.length, 1, MAX_PEEK_LIMIT);
  const tag = mailboxTag(keySafe('mailbox', mailbox));
  return {
    script: READ_ENVELOPES,
    keys: ids.map((id) => tag + KEY_SUFFIX.envelope + keySafe('message id', id)),
    args: [offsetArg(offsetMs), integerIn('maxBytes', maxBytes, 0, Number.MAX_SAFE_INTEGER)],
  };
}

/** What every ack of one call shares. */
export interface AckSettings {
  readonly offsetMs: number;
  readonly dedupTtlMs: number;
  /** Most acknowledged ids remembered per mailbox (StoreLimits.maxDedupIdsPerMailbox). */
  readonly maxDedupIds: number;
}

/** The acknowledged ids of one mailbox. */
export interface AckGroup {
  readonly mailbox: string;
  readonly ids: readonly string[];
}

/**
 * KEYS and ARGV of {@link ACK} for 1 to {@link MAX_BATCH_OPERATIONS} groups holding 1 to
 * {@link MAX_BATCH_ACK_IDS} ids in all, each group with at least one id.
 */
export function ackCall(settings: AckSettings, groups: readonly AckGroup[]): ScriptCall {
  integerIn('batch size', groups.length, 1, MAX_BATCH_OPERATIONS);
  let total = 0;
  for (const group of groups) {
    integerIn('ids per mailbox', group.ids.length, 1, MAX_BATCH_ACK_IDS);
    total += group.ids.length;
  }
  integerIn('ids per batch', total, 1, MAX_BATCH_ACK_IDS);
  const keys: string[] = [];
  const args = [
    offsetArg(settings.offsetMs),
    integerIn('dedupTtlMs', settings.dedupTtlMs, 1, MAX_SCRIPT_TTL_MS),
    integerIn('maxDedupIds', settings.maxDedupIds, 1, Number.MAX_SAFE_INTEGER),
  ];
  for (const group of groups) {
    const tag = mailboxTag(keySafe('mailbox', group.mailbox));
    keys.push(tag + KEY_SUFFIX.queue);
    args.push(String(group.ids.length));
    for (const id of group.ids) {
      keySafe('message id', id);
      keys.push(tag + KEY_SUFFIX.envelope + id);
      args.push(id);
    }
  }
  return { script: ACK, keys, args };
}

/** The directory bounds a publish is checked against. */
export interface PublishSettings {
  readonly offsetMs: number;
  readonly prekeyTtlMs: number;
  readonly maxOneTime: number;
}

/**
 * KEYS and ARGV of {@link PUBLISH_PREKEYS}. One-time prekey ids must be integers in
 * [0, MAX_PREKEY_ID] (the score and the `<id>.<key>` member are built from them).
 */
export function publishPrekeysCall(
  mailbox: string,
  settings: PublishSettings,
  bundle: PrekeyBundle,
  oneTime: readonly OneTimePrekey[],
): ScriptCall {
  const args = [
    offsetArg(settings.offsetMs),
    integerIn('prekeyTtlMs', settings.prekeyTtlMs, 1, MAX_SCRIPT_TTL_MS),
    integerIn('maxOneTime', settings.maxOneTime, 1, Number.MAX_SAFE_INTEGER),
    bundle.identity,
    bundle.signedPrekey,
  ];
  for (const key of oneTime)
    args.push(integerIn('one-time prekey id', key.id, 0, MAX_PREKEY_ID), key.key);
  return { script: PUBLISH_PREKEYS, keys: prekeyKeys(keySafe('mailbox', mailbox)), args };
}

/** KEYS and ARGV of {@link FETCH_PREKEYS}. */
export function fetchPrekeysCall(mailbox: string, offsetMs: number): ScriptCall {
  return {
    script: FETCH_PREKEYS,
    keys: prekeyKeys(keySafe('mailbox', mailbox)),
    args: [offsetArg(offsetMs)],
  };
}

/** KEYS and ARGV of {@link READ_PREKEY_BUNDLE}: the bundle key only, under the mailbox's tag. */
export function readPrekeyBundleCall(mailbox: string, offsetMs: number): ScriptCall {
  return {
    script: READ_PREKEY_BUNDLE,
    keys: [prekeyKeys(keySafe('mailbox', mailbox))[0]],
    args: [offsetArg(offsetMs)],
  };
}

/** Kinds and their key-name parts, fixed so a kind can never spell another key. */
const RATE_KIND_KEY: Readonly<Record<SharedRateKind, string>> = { 'prekey-fetch': 'pf' };

/** KEYS and ARGV of {@link RATE_TAKE}: one token of `kind` for `mailbox`. */
export function rateTakeCall(
  mailbox: string,
  kind: SharedRateKind,
  rate: SharedRate,
  offsetMs: number,
): ScriptCall {
  const part = RATE_KIND_KEY[kind];
  if (part === undefined) throw new RangeError('script argument kind is not a shared rate');
  if (!Number.isFinite(rate.perSecond) || rate.perSecond <= 0 || rate.perSecond > 1e9) {
    throw new RangeError('script argument perSecond must be positive and at most 1e9');
  }
  return {
    script: RATE_TAKE,
    keys: [mailboxTag(keySafe('mailbox', mailbox)) + KEY_SUFFIX.rate + part],
    args: [
      offsetArg(offsetMs),
      // Enough digits for 1/60 a second; Lua reads it back as the same double.
      String(rate.perSecond),
      integerIn('burst', rate.burst, 1, 1_000_000_000),
      '1',
    ],
  };
}

/** KEYS and ARGV of {@link PUT_PROFILE}. */
export function putProfileCall(
  organizationKey: string,
  profile: StoredProfile,
  offsetMs: number,
  maxTtlMs: number,
): ScriptCall {
  checkStoredProfile(organizationKey, profile);
  return {
    script: PUT_PROFILE,
    keys: [profileKey(organizationKey)],
    args: [
      offsetArg(offsetMs),
      String(profile.version),
      profile.profile,
      String(profile.expiresAtSeconds),
      integerIn('maxTtlMs', maxTtlMs, 1, MAX_SCRIPT_TTL_MS),
    ],
  };
}

/** KEYS and ARGV of {@link GET_UNEXPIRED} for the profile. */
export function getProfileCall(organizationKey: string, offsetMs: number): ScriptCall {
  if (!/^[A-Za-z0-9_-]{43}$/.test(organizationKey)) {
    throw new RangeError('script argument organization key is not 43 base64url characters');
  }
  return {
    script: GET_UNEXPIRED,
    keys: [profileKey(organizationKey)],
    args: [offsetArg(offsetMs)],
  };
}

/** KEYS and ARGV of {@link COUNT_PREKEYS}. */
export function countPrekeysCall(mailbox: string, offsetMs: number): ScriptCall {
  return {
    script: COUNT_PREKEYS,
    keys: prekeyKeys(keySafe('mailbox', mailbox)),
    args: [offsetArg(offsetMs)],
  };
}

/** What every state put of a store shares. */
export interface StateSettings {
  readonly offsetMs: number;
  readonly ttlMs: number;
}

/** KEYS and ARGV of {@link PUT_STATE}; refuses what {@link checkStatePut} refuses. */
export function putStateCall(
  mailbox: string,
  settings: StateSettings,
  blob: string,
  ifGeneration: number,
  generation: number,
): ScriptCall {
  checkStatePut(mailbox, blob, ifGeneration, generation);
  return {
    script: PUT_STATE,
    keys: [stateKey(keySafe('mailbox', mailbox))],
    args: [
      offsetArg(settings.offsetMs),
      String(ifGeneration),
      String(generation),
      blob,
      integerIn('ttlMs', settings.ttlMs, 1, MAX_SCRIPT_TTL_MS),
    ],
  };
}

/** KEYS and ARGV of {@link GET_STATE}. */
export function getStateCall(mailbox: string, offsetMs: number): ScriptCall {
  return {
    script: GET_STATE,
    keys: [stateKey(keySafe('mailbox', mailbox))],
    args: [offsetArg(offsetMs)],
  };
}

/**
 * KEYS and ARGV of {@link DELETE_STATE}: the state too when `withState`, and the envelopes and
 * queue entries of `ids` (at most {@link MAX_PEEK_LIMIT}, each key-safe).
 */
export function deleteStateCall(
  mailbox: string,
  offsetMs: number,
  withState = true,
  ids: readonly string[] = [],
): ScriptCall {
  integerIn('ids', ids.length, 0, MAX_PEEK_LIMIT);
  const safe = keySafe('mailbox', mailbox);
  const keys = [stateKey(safe), queueKey(safe)];
  for (const id of ids) keys.push(envelopeKey(safe, keySafe('message id', id)));
  return {
    script: DELETE_STATE,
    keys,
    args: [offsetArg(offsetMs), withState ? '1' : '0', ...ids],
  };
}

function tokenHashArg(tokenHash: string): string {
  if (!/^[A-Za-z0-9_-]{43}$/.test(tokenHash)) {
    throw new RangeError('script argument token hash is not 43 base64url characters');
  }
  return tokenHash;
}

/** KEYS and ARGV of {@link RESERVE_BLOB}. */
export function reserveBlobCall(
  id: string,
  tokenHash: string,
  ttlMs: number,
  offsetMs: number,
): ScriptCall {
  checkBlobId(id);
  return {
    script: RESERVE_BLOB,
    keys: blobKeys(id),
    args: [
      offsetArg(offsetMs),
      tokenHashArg(tokenHash),
      integerIn('ttlMs', ttlMs, 1, MAX_SCRIPT_TTL_MS),
    ],
  };
}

/** KEYS and ARGV of {@link BLOB_RESERVED}. */
export function blobReservedCall(id: string, tokenHash: string, offsetMs: number): ScriptCall {
  checkBlobId(id);
  return {
    script: BLOB_RESERVED,
    keys: [blobKeys(id)[0]],
    args: [offsetArg(offsetMs), tokenHashArg(tokenHash)],
  };
}

/** KEYS and ARGV of {@link PUT_BLOB}. */
export function putBlobCall(
  id: string,
  tokenHash: string,
  blob: string,
  settings: StateSettings,
): ScriptCall {
  checkBlobId(id);
  // A loop, not a regular expression: a blob is up to ~11 MB of text, and a regular expression
  // over it can exhaust the stack when called deep in a busy process.
  if (blob.length === 0 || !isBase64urlText(blob)) {
    throw new RangeError('script argument blob is not base64url');
  }
  return {
    script: PUT_BLOB,
    keys: blobKeys(id),
    args: [
      offsetArg(settings.offsetMs),
      tokenHashArg(tokenHash),
      blob,
      integerIn('ttlMs', settings.ttlMs, 1, MAX_SCRIPT_TTL_MS),
    ],
  };
}

/** KEYS and ARGV of {@link GET_UNEXPIRED} for an attachment blob. */
export function getBlobCall(id: string, offsetMs: number): ScriptCall {
  checkBlobId(id);
  return { script: GET_UNEXPIRED, keys: [blobKeys(id)[1]], args: [offsetArg(offsetMs)] };
}
