/**
 * The Lua scripts behind RedisStore.
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
 * - Expiry is decided by data (scores, tombstone values and the bundle's `x` field compared with
 *   now), so it follows the test clock offset; physically, every envelope and every tombstone is
 *   its own key with its own PX, so Redis itself removes each one when its time has come, and
 *   the keys that hold several items carry a TTL at least as long as their latest item. No
 *   script writes a key without setting its TTL.
 * - Numbers above 2^31 are passed to redis.call as strings formatted with '%.0f': Lua would
 *   otherwise turn them into '%.14g' text and lose the low digits of a µs timestamp.
 * - Every key a script touches is in KEYS and shares one hash tag per mailbox (Redis Cluster);
 *   a script never derives a key name from another.
 * - Each script starts with a Redis 7 shebang whose flags say how it behaves at maxmemory, so a
 *   script that adds data is refused before it runs instead of failing half-way (see OomMode).
 */
import { createHash } from 'node:crypto';
import { FIELD_SEPARATOR, PREKEY_MEMBER_SEPARATOR } from './keys.js';

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
 * KEYS: three per envelope: its mailbox's queue, its envelope key, its tombstone key. ARGV:
 * offsetMs, queueTtlMs, maxQueued, payload prefix ("<origin> "), then four per envelope: id, env,
 * channel, and '1' if the origin instance is subscribed to that channel itself, else '0'.
 * Returns one result per envelope: 1 stored, 0 duplicate, -1 full (nothing stored for it).
 *
 * Every call first drops the mailbox's expired ids from the queue (ZREMRANGEBYSCORE; O(log n)
 * when none expired), so expired ids do not linger in a mailbox that keeps receiving; their
 * envelope keys expire by themselves. An id whose envelope expired unacknowledged, or whose
 * tombstone's window ended, is stored again. The score is the envelope's expiry in µs, forced
 * above the newest score so ZSET order is arrival order even within one microsecond or if the
 * clock steps back; the envelope key's PX is the same expiry, so Redis removes the envelope when
 * the queue stops counting it.
 *
 * The notification is skipped when nobody but the origin listens (PUBSUB SHARDNUMSUB counts
 * subscriber connections; each instance has one per shard). A subscription still on its way
 * is not missed: the subscriber peeks after its SSUBSCRIBE completed, and sees the envelope.
 *
 * On a Redis Cluster every batch holds one envelope (one hash tag); on one node a batch may mix
 * mailboxes.
 */
export const ENQUEUE = script(
  'enqueue',
  `
local now = now_us()
local nowS = fmt(now)
local ttlUs = tonumber(ARGV[2]) * 1000
local max = tonumber(ARGV[3])
local prefix = ARGV[4]
local out = {}
for k = 0, #KEYS / 3 - 1 do
  local q, m, d = KEYS[3 * k + 1], KEYS[3 * k + 2], KEYS[3 * k + 3]
  local a = 5 + 4 * k
  local id = ARGV[a]
  redis.call('ZREMRANGEBYSCORE', q, '-inf', nowS)
  local result = 1
  local staleTombstone = false
  if redis.call('ZSCORE', q, id) then
    result = 0
  else
    -- A tombstone counts until the time it holds, whether or not Redis removed it yet.
    local t = redis.call('GET', d)
    if t then
      if tonumber(t) > now then
        result = 0
      else
        staleTombstone = true
      end
    end
  end
  local count = 0
  if result == 1 then
    count = redis.call('ZCARD', q)
    if count >= max then
      result = -1
    end
  end
  if result == 1 then
    local score = now + ttlUs
    if count > 0 then
      local last = redis.call('ZRANGE', q, -1, -1, 'WITHSCORES')
      if tonumber(last[2]) >= score then
        score = tonumber(last[2]) + 1
      end
    end
    local px = math.ceil((score - now) / 1000)
    redis.call('ZADD', q, fmt(score), id)
    redis.call('SET', m, ARGV[a + 1], 'PX', px)
    redis.call('PEXPIRE', q, px)
    if staleTombstone then
      redis.call('DEL', d)
    end
    local channel = ARGV[a + 2]
    local listeners = redis.call('PUBSUB', 'SHARDNUMSUB', channel)[2]
    if ARGV[a + 3] == '1' then
      listeners = listeners - 1
    end
    if listeners > 0 then
      redis.call('SPUBLISH', channel, prefix .. id .. '${FIELD_SEPARATOR}' .. ARGV[a + 1])
    end
  end
  out[k + 1] = result
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
 * Acknowledges ids of one or many mailboxes in one round trip. KEYS per group: the mailbox's
 * queue, then for each of its n ids that id's envelope key and tombstone key. ARGV: offsetMs,
 * dedupTtlMs, then per group: n, then the n ids. First drops the mailbox's expired ids from the
 * queue; then each queued id leaves the queue, its envelope key is deleted, and a tombstone
 * holding the end of its dedup window is written with PX = dedupTtl. Ids that are not queued (or
 * whose envelope expired) are ignored and leave no tombstone. Returns how many were acknowledged.
 */
export const ACK = script(
  'ack',
  `
local now = now_us()
local nowS = fmt(now)
local ttl = ARGV[2]
local untilS = fmt(now + tonumber(ttl) * 1000)
local total = 0
local a = 3
local k = 1
while k <= #KEYS do
  local q = KEYS[k]
  redis.call('ZREMRANGEBYSCORE', q, '-inf', nowS)
  local n = tonumber(ARGV[a])
  for i = 1, n do
    if redis.call('ZREM', q, ARGV[a + i]) == 1 then
      redis.call('DEL', KEYS[k + 2 * i - 1])
      redis.call('SET', KEYS[k + 2 * i], untilS, 'PX', ttl)
      total = total + 1
    end
  end
  k = k + 1 + 2 * n
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
