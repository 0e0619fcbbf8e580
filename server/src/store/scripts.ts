/**
 * The Lua scripts behind RedisStore. Each store operation is ONE script, so it is one round trip
 * and atomic: a crash or a lost connection either leaves the whole change or none of it.
 *
 * Conventions shared by all scripts (see docs/adr/0001-redis-store-layout.md):
 * - Time is Redis's own clock (`TIME`), in microseconds, plus ARGV[1], an offset in ms that is
 *   always 0 outside tests (the contract suite moves it to exercise expiry without sleeping).
 *   Redis 7 replicates script effects, not the script, so reading TIME is safe.
 * - Expiry is decided by data (scores and the bundle's `x` field compared with now), and every
 *   key also carries a Redis TTL that is at least as long, as the garbage collector for
 *   mailboxes nobody touches again. No script writes a key without setting its TTL.
 * - Numbers above 2^31 are passed to redis.call as strings formatted with '%.0f': Lua would
 *   otherwise turn them into '%.14g' text and lose the low digits of a µs timestamp.
 * - Every key a script touches is in KEYS and shares one hash tag (Redis Cluster).
 * - Each script starts with a Redis 7 shebang whose flags say how it behaves at maxmemory, so a
 *   script that adds data is refused before it runs instead of failing half-way (see OomMode).
 */
import { createHash } from 'node:crypto';

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
-- Drops expired envelopes (queue + their bodies) and expired dedup entries of one mailbox.
local function prune(q, e, d, now)
  local s = fmt(now)
  local expired = redis.call('ZRANGEBYSCORE', q, '-inf', s)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', q, '-inf', s)
    for i = 1, #expired, 512 do
      redis.call('HDEL', e, unpack(expired, i, math.min(i + 511, #expired)))
    end
  end
  redis.call('ZREMRANGEBYSCORE', d, '-inf', s)
end
`;

/**
 * Enqueues a batch of envelopes (for one or many mailboxes) in one round trip, in order.
 * KEYS: q e d of each envelope's mailbox, three per envelope. ARGV: offsetMs, queueTtlMs,
 * maxQueued, payload prefix ("<origin> "), then four per envelope: id, env, channel, and '1' if
 * the origin instance is subscribed to that channel itself, else '0'. Returns one result per
 * envelope: 1 stored, 0 duplicate, -1 full (nothing stored for it).
 *
 * An id whose envelope expired unacknowledged, or whose dedup window ended, is stored again
 * (ZADD/HSET overwrite the stale entry in place). The score is the envelope's expiry in µs,
 * forced above the newest score so ZSET order is arrival order even within one microsecond or
 * if the clock steps back.
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
local ttl = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local prefix = ARGV[4]
local out = {}
for k = 0, #KEYS / 3 - 1 do
  local q, e, d = KEYS[3 * k + 1], KEYS[3 * k + 2], KEYS[3 * k + 3]
  local a = 5 + 4 * k
  local id, env, channel = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local result = 1
  -- Entries whose time has passed do not count, whether or not they were pruned yet.
  local s = redis.call('ZSCORE', q, id)
  if s and tonumber(s) > now then
    result = 0
  else
    s = redis.call('ZSCORE', d, id)
    if s and tonumber(s) > now then
      result = 0
    end
  end
  if result == 1 and redis.call('ZCARD', q) >= max then
    -- Pruning only when the bound is reached keeps the common path short; expired entries are
    -- also pruned by every ack and collected with the keys' TTLs.
    prune(q, e, d, now)
    if redis.call('ZCARD', q) >= max then
      result = -1
    end
  end
  if result == 1 then
    local score = now + ttl * 1000
    local last = redis.call('ZRANGE', q, -1, -1, 'WITHSCORES')
    if last[2] and tonumber(last[2]) >= score then
      score = tonumber(last[2]) + 1
    end
    redis.call('ZADD', q, fmt(score), id)
    redis.call('HSET', e, id, env)
    redis.call('PEXPIRE', q, ttl)
    redis.call('PEXPIRE', e, ttl)
    local listeners = redis.call('PUBSUB', 'SHARDNUMSUB', channel)[2]
    if ARGV[a + 3] == '1' then
      listeners = listeners - 1
    end
    if listeners > 0 then
      redis.call('SPUBLISH', channel, prefix .. id .. ' ' .. env)
    end
  end
  out[k + 1] = result
end
return out
`,
  'refuse',
);

/**
 * KEYS: q e. ARGV: offsetMs, limit. Returns [id1, env1, id2, env2, …], oldest first. Expired
 * entries are skipped here and removed by the next enqueue or ack.
 */
export const PEEK = script(
  'peek',
  `
local now = now_us()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(now), '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then
  return ids
end
local envs = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i = 1, #ids do
  if envs[i] then
    out[#out + 1] = ids[i]
    out[#out + 1] = envs[i]
  end
end
return out
`,
  'read',
);

/**
 * Acknowledges ids of one or many mailboxes in one round trip. KEYS: q e d per group. ARGV:
 * offsetMs, dedupTtlMs, then per group: the number of ids n, then the n ids. Deletes each queued
 * id and remembers it in the dedup set until now + dedupTtl; ids that are not queued (or whose
 * envelope expired) are ignored. Returns how many were acknowledged in all.
 */
export const ACK = script(
  'ack',
  `
local now = now_us()
local ttl = tonumber(ARGV[2])
local untilScore = fmt(now + ttl * 1000)
local total = 0
local a = 3
for k = 0, #KEYS / 3 - 1 do
  local q, e, d = KEYS[3 * k + 1], KEYS[3 * k + 2], KEYS[3 * k + 3]
  prune(q, e, d, now)
  local n = tonumber(ARGV[a])
  local acked = 0
  for i = a + 1, a + n do
    if redis.call('ZREM', q, ARGV[i]) == 1 then
      redis.call('HDEL', e, ARGV[i])
      redis.call('ZADD', d, untilScore, ARGV[i])
      acked = acked + 1
    end
  end
  a = a + n + 1
  if acked > 0 then
    redis.call('PEXPIRE', d, ttl)
  end
  total = total + acked
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
  redis.call('ZADD', otk, ARGV[i], ARGV[i] .. '.' .. ARGV[i + 1])
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
