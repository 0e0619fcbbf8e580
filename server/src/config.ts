/**
 * Every setting of the relay, read from environment variables with a default each, validated
 * with zod. A bad value is a startup error that names the variable (never its value, which may
 * hold a Redis password) and the relay exits 1; it never runs on a half-understood config.
 *
 * {@link CONFIG_VARIABLES} is the table the README documents; keep the two in step.
 */
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { fromBase64url } from '@passage/shared/protocol/base64url';
import { CloseCode } from '@passage/shared/protocol/errors';
import {
  MAX_FRAME_BYTES,
  MAX_ONE_TIME_PREKEYS_STORED,
  MAX_POW_SENDS_PER_ADMISSION,
  POW_MAX_BITS,
  POW_MAX_TTL_MS,
} from '@passage/shared/protocol/limits';
import {
  MAX_DEDUP_IDS_PER_MAILBOX,
  MAX_PEEK_SCAN,
  MAX_PENDING_STORE_OPS,
  type StoreLimits,
} from './store/store.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { POW_WINDOW_MS, type AdmissionSettings } from './relay/first-contact.js';
import { isUsablePublicKey } from './relay/auth.js';

/** One documented environment variable. */
export interface ConfigVariable {
  /** The environment variable's name. */
  readonly name: string;
  /** Its default, as the text one would write in the environment; '' when unset by default. */
  readonly default: string;
  /** What it means, with its unit. */
  readonly description: string;
}

/** Rate-limit, flow-control and abuse settings of the WebSocket relay. */
export interface RelaySettings extends AdmissionSettings {
  /** Most open WebSocket connections; further upgrades are refused with HTTP 503. */
  readonly maxConnections: number;
  /** Most connections in their auth window; a new one displaces the oldest (admission.ts). */
  readonly maxUnauthenticatedConnections: number;
  /** Most unauthenticated connections kept past the auth window as anonymous senders. */
  readonly maxAnonymousConnections: number;
  /** How long a connection may stay unauthenticated (unless kept as an anonymous sender), in ms. */
  readonly authTimeoutMs: number;
  /** Most connections of one authenticated mailbox on this relay; a further one closes the oldest. */
  readonly maxConnectionsPerMailbox: number;
  /** Most bytes of unfinished incoming messages, over all connections (io-budget.ts). */
  readonly maxUnfinishedInputBytes: number;
  /** Most unsent bytes over all connections before deliveries wait in the store (io-budget.ts). */
  readonly maxTotalBufferedBytes: number;
  /** Sustained frames per second one connection may send. */
  readonly connFramesPerSecond: number;
  /** Frames one connection may send in a burst above the sustained rate. */
  readonly connFrameBurst: number;
  /** Sustained bytes per second (of WebSocket messages) one connection may send. */
  readonly connBytesPerSecond: number;
  /** Bytes one connection may send in a burst above the sustained rate (≥ MAX_FRAME_BYTES). */
  readonly connByteBurst: number;
  /** Sustained `send` frames per second to one mailbox, over all connections of this relay. */
  readonly mailboxSendsPerSecond: number;
  /** `send` frames to one mailbox allowed in a burst above the sustained rate. */
  readonly mailboxSendBurst: number;
  /** Shares of a mailbox's send rate: one sender (connection) takes at most one (fair-share.ts). */
  readonly mailboxSenderShares: number;
  /** Sustained one-time prekeys handed out per second for one target mailbox, over all
   * connections (a `prekeys.fetch` past it gets the bundle without one). */
  readonly prekeyFetchesPerSecond: number;
  /** One-time prekeys for one target mailbox handed out in a burst above the sustained rate. */
  readonly prekeyFetchBurst: number;
  /** Sustained `prekeys.publish` frames per second over all connections of this relay. */
  readonly prekeyPublishesPerSecond: number;
  /** `prekeys.publish` frames over all connections allowed in a burst. */
  readonly prekeyPublishBurst: number;
  /**
   * Most target mailboxes whose send rate (and, separately, whose prekey fetch rate) is tracked
   * at once; the least recent is evicted.
   */
  readonly maxTrackedMailboxes: number;
  /** Rate-limited frames within one flood window after which the connection is closed. */
  readonly floodCloseAfter: number;
  /** Invalid frames within one window after which the connection is closed. */
  readonly maxInvalidFrames: number;
  /** The window for `maxInvalidFrames` and `floodCloseAfter`, in ms. */
  readonly abuseWindowMs: number;
  /** Interval of WebSocket pings, in ms. */
  readonly pingIntervalMs: number;
  /** A connection with no pong for this long is terminated, in ms. */
  readonly heartbeatTimeoutMs: number;
  /** Delivered, unacknowledged messages per connection; more wait in the store. */
  readonly maxInflight: number;
  /** Above this many unsent bytes on a socket, no further deliveries are written to it. */
  readonly maxBufferedBytes: number;
  /** Above this many unsent bytes the client is not reading; it is closed (slow consumer). */
  readonly slowConsumerBytes: number;
  /** Store operations pending at which the relay stops reading from clients (backpressure). */
  readonly storePausePendingOps: number;
  /** Store operations pending at or below which it reads again. */
  readonly storeResumePendingOps: number;
}

/** The relay's whole configuration. */
export interface Config {
  readonly port: number;
  readonly host: string;
  /** A single Redis node; absent with `redisClusterNodes` absent → the embedded MemoryStore. */
  readonly redisUrl?: string;
  /** Seed nodes of a Redis Cluster. */
  readonly redisClusterNodes?: readonly string[];
  readonly storeLimits: StoreLimits;
  /** Hard bound on operations waiting for Redis; past it, `overloaded` (acks exempt). */
  readonly maxPendingStoreOps: number;
  readonly relay: RelaySettings;
  readonly shutdownGraceMs: number;
  readonly logLevel: LogLevel;
  /** Directory of the built client served over HTTP. */
  readonly staticDir: string;
  /** The organization whose profile this relay serves (base64url), if any. */
  readonly organizationKey?: string;
  /** The onion service's origin (`http://….onion`), sent as `Onion-Location` on pages. */
  readonly onionLocation?: string;
}

/** Thrown for an invalid configuration; the message lists each bad variable by name. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

const DEFAULT_STATIC_DIR = fileURLToPath(new URL('../../client/dist', import.meta.url));

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a non-negative integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const redisUrl = z
  .string()
  .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL')
  .refine((s) => URL.canParse(s), 'must be a URL');

const DAY_SECONDS = 86_400;

/**
 * Defaults of the backpressure watermarks (store operations pending): full Redis batches (128
 * operations per script call) with a few ms of Redis work queued; `npm run bench` at 1,000 pairs
 * both ways engages them (docs/adr/0012-backpressure.md, with the sweep against 256 and 4,096).
 */
const DEFAULT_STORE_PAUSE_PENDING_OPS = 1_024;
const DEFAULT_STORE_RESUME_PENDING_OPS = 512;
const YEAR_SECONDS = 365 * DAY_SECONDS;

/**
 * The variables: name, default, meaning, and the schema its text must pass. Order is the order
 * of the README table.
 */
const VARIABLES = {
  PORT: {
    default: '8080',
    description: 'TCP port for HTTP and the WebSocket relay (`/v1/ws`). 0 picks a free port.',
    schema: int(0, 65_535),
  },
  HOST: {
    default: '127.0.0.1',
    description:
      'Address to listen on. The default serves this machine only; containers set 0.0.0.0.',
    schema: z.string().min(1),
  },
  REDIS_URL: {
    default: '',
    description:
      'A single Redis node (`redis://host:6379`). Unset (and no cluster) → the embedded in-memory store.',
    schema: redisUrl.optional(),
  },
  REDIS_CLUSTER_NODES: {
    default: '',
    description:
      'Comma-separated seed nodes of a Redis Cluster (`redis://h1:7000,redis://h2:7001`). Excludes REDIS_URL.',
    schema: z
      .string()
      .transform((s) => s.split(',').map((n) => n.trim()))
      .pipe(z.array(redisUrl).min(1))
      .optional(),
  },
  QUEUE_TTL_SECONDS: {
    default: String(7 * DAY_SECONDS),
    description: 'How long an unacknowledged message is kept for its recipient, in seconds.',
    schema: int(1, YEAR_SECONDS),
  },
  MAX_QUEUED_PER_MAILBOX: {
    default: '1000',
    description: 'Most unacknowledged messages queued per mailbox; further sends get mailbox_full.',
    schema: int(1, 1_000_000),
  },
  DEDUP_TTL_SECONDS: {
    default: String(7 * DAY_SECONDS),
    description:
      'How long an acknowledged message id is remembered so that a late resend is not delivered again, in seconds.',
    schema: int(1, YEAR_SECONDS),
  },
  MAX_DEDUP_IDS_PER_MAILBOX: {
    default: String(MAX_DEDUP_IDS_PER_MAILBOX),
    description:
      'Most acknowledged message ids remembered per mailbox within DEDUP_TTL_SECONDS (the oldest is forgotten first; a resend of a forgotten id is delivered again and the client drops it by its id). The same bound for the embedded store and Redis.',
    schema: int(1, 10_000_000),
  },
  PREKEY_TTL_SECONDS: {
    default: String(30 * DAY_SECONDS),
    description:
      'How long a published prekey bundle and its one-time prekeys live without a new publish, in seconds.',
    schema: int(1, YEAR_SECONDS),
  },
  MAX_ONE_TIME_PREKEYS: {
    default: String(MAX_ONE_TIME_PREKEYS_STORED),
    description: `Most one-time prekeys kept per mailbox (at most ${MAX_ONE_TIME_PREKEYS_STORED}, the protocol's bound).`,
    schema: int(1, MAX_ONE_TIME_PREKEYS_STORED),
  },
  MAX_CONNECTIONS: {
    default: '20000',
    description:
      'Most open WebSocket connections (a memory bound); further upgrades are refused with HTTP 503.',
    schema: int(1, 10_000_000),
  },
  MAX_UNAUTHENTICATED_CONNECTIONS: {
    default: '2000',
    description:
      'Most connections that have not authenticated yet (a tenth of MAX_CONNECTIONS: a real client answers the challenge within one round trip, so a tenth of the slots serves 2,000 arrivals per second at one second of round trip). When all are taken, a new connection displaces the oldest unauthenticated one (code 4004) instead of being refused, so one process cannot hold them.',
    schema: int(1, 10_000_000),
  },
  MAX_ANONYMOUS_CONNECTIONS: {
    default: '500',
    description:
      'Most connections kept past AUTH_TIMEOUT_MS as anonymous senders, counted apart from MAX_UNAUTHENTICATED_CONNECTIONS (connections that have sent a paid send but never authenticate); a further one displaces the oldest (code 4004).',
    schema: int(0, 10_000_000),
  },
  AUTH_TIMEOUT_MS: {
    default: '15000',
    description:
      'How long a connection may stay unauthenticated, in ms; then it is closed (code 4004) unless it has sent and is kept as an anonymous sender. A challenge answer takes one round trip (seconds at worst over Tor); clients derive their keys before they connect.',
    schema: int(100, 3_600_000),
  },
  MAX_CONNECTIONS_PER_MAILBOX: {
    default: '4',
    description:
      'Most connections of one authenticated mailbox on this relay (one device, a reconnect or two); a further one closes the oldest (code 4005). Bounds what one identity makes the relay buffer to MAX_CONNECTIONS_PER_MAILBOX × SLOW_CONSUMER_BYTES.',
    schema: int(1, 1_000),
  },
  MAX_UNFINISHED_INPUT_BYTES: {
    default: String(64 * 1024 * 1024),
    description:
      'Most bytes of incoming WebSocket messages not yet complete, over all connections (each connection holds at most about MAX_FRAME_BYTES plus its buffers); past it the connection holding the most is dropped. The default is 64 MiB: a real message arrives within a round trip, so 1,000 maximal frames in flight at once is far above real traffic and far below the heap.',
    schema: int(256 * 1024, 64 * 1024 * 1024 * 1024),
  },
  MAX_TOTAL_BUFFERED_BYTES: {
    default: String(256 * 1024 * 1024),
    description:
      'Most unsent bytes over all sockets; above it no socket takes a new delivery (deliveries wait in the store) until the total falls to three quarters. 256 MiB: 256 sockets at MAX_BUFFERED_BYTES, an eighth of a 2 GiB heap.',
    schema: int(64 * 1024, 64 * 1024 * 1024 * 1024),
  },
  CONN_FRAMES_PER_SECOND: {
    default: '100',
    description:
      'Sustained frames per second one connection may send; more get rate_limited. WebSocket pings count (one past the rate gets no pong); acks of delivered messages do not.',
    schema: int(1, 1_000_000),
  },
  CONN_FRAME_BURST: {
    default: '200',
    description: 'Frames one connection may send at once above the sustained rate.',
    schema: int(1, 1_000_000),
  },
  CONN_BYTES_PER_SECOND: {
    default: String(256 * 1024),
    description:
      'Sustained bytes per second (WebSocket message payloads) one connection may send; more get rate_limited. Acks of delivered messages are not counted. 256 KiB/s is about 90 sends of a 2 KiB envelope a second (near the frame rate) but holds one connection filling a store with maximal envelopes to about 4 a second.',
    schema: int(1, 1024 * 1024 * 1024),
  },
  CONN_BYTE_BURST: {
    default: String(1024 * 1024),
    description: `Bytes one connection may send at once above the sustained rate: a message fanned out to ten devices in maximal envelopes. At least ${MAX_FRAME_BYTES} (MAX_FRAME_BYTES), or a maximal frame could never pass.`,
    schema: int(MAX_FRAME_BYTES, 1024 * 1024 * 1024),
  },
  MAILBOX_SENDS_PER_SECOND: {
    default: '100',
    description:
      'Sustained messages per second to one mailbox through this relay; more get rate_limited.',
    schema: int(1, 1_000_000),
  },
  MAILBOX_SEND_BURST: {
    default: '200',
    description: 'Messages to one mailbox allowed at once above the sustained rate.',
    schema: int(1, 1_000_000),
  },
  MAILBOX_SENDER_SHARES: {
    default: '4',
    description:
      "Shares the send rate and burst of one mailbox are cut into: one connection may take at most one share (by default a quarter: 25 a second, 50 at once), so one flooder cannot spend the rate of the others writing to that mailbox. When the mailbox's whole rate is spent, a sender that has written to it for at least a second and used under half its share still passes, by borrowing up to one burst. 1 = one connection may take the whole rate (docs/adr/0022-fair-shares-of-a-mailbox-send-rate.md).",
    schema: int(1, 1_000),
  },
  PREKEY_FETCHES_PER_MINUTE: {
    default: '6',
    description:
      "Sustained one-time prekeys handed out per minute for one mailbox (shared by all relays on one Redis). A fetch within the rate gets the bundle with one; a fetch past it gets the bundle without one (PQXDH works without), never rate_limited. Plain fetches are bounded by each connection's frame rate. Lower makes draining a device's one-time prekeys slower, but more first messages in a surge go without one (docs/adr/0023-withhold-one-time-prekeys-past-the-fetch-rate.md).",
    schema: int(1, 1_000_000),
  },
  PREKEY_FETCH_BURST: {
    default: '16',
    description:
      'One-time prekeys for one mailbox handed out at once above the sustained rate (fetches past it get the bundle without one); keep it well below MAX_ONE_TIME_PREKEYS so that one burst cannot empty a device.',
    schema: int(1, 1_000_000),
  },
  PREKEY_PUBLISHES_PER_MINUTE: {
    default: '30',
    description:
      'Sustained prekeys.publish frames per minute over all connections of this relay (and each connection at most 8 times, MAX_PREKEY_PUBLISHES_PER_CONNECTION); more get rate_limited. A publish may store about 60 KB for PREKEY_TTL_SECONDS, and any fresh key can authenticate: 30 a minute holds throwaway bundles to about 30 KB/s (256 MB in over two hours, against 4.7 s unbounded) while devices publish a few times at enrolment and once a week after.',
    schema: int(1, 1_000_000),
  },
  PREKEY_PUBLISH_BURST: {
    default: '120',
    description:
      'prekeys.publish frames over all connections allowed at once above the sustained rate (enrolling 30 devices, four publishes each).',
    schema: int(1, 1_000_000),
  },
  MAX_TRACKED_MAILBOXES: {
    default: '100000',
    description:
      'Most target mailboxes whose send rate, and separately whose prekey fetch rate, is tracked at once (memory bound); the least recently used is forgotten.',
    schema: int(1, 10_000_000),
  },
  FLOOD_CLOSE_AFTER: {
    default: '400',
    description: `Rate-limited frames within ABUSE_WINDOW_MS after which the connection is closed (code ${CloseCode.FLOODING}).`,
    schema: int(1, 1_000_000),
  },
  MAX_INVALID_FRAMES: {
    default: '20',
    description: `Invalid frames within ABUSE_WINDOW_MS after which the connection is closed (code ${CloseCode.TOO_MANY_ERRORS}).`,
    schema: int(1, 1_000_000),
  },
  ABUSE_WINDOW_MS: {
    default: '60000',
    description: 'Window for FLOOD_CLOSE_AFTER and MAX_INVALID_FRAMES, in ms.',
    schema: int(1, 3_600_000),
  },
  PING_INTERVAL_MS: {
    default: '30000',
    description: 'Interval of WebSocket pings to every connection, in ms.',
    schema: int(10, 3_600_000),
  },
  HEARTBEAT_TIMEOUT_MS: {
    default: '45000',
    description:
      'A connection that has not answered a ping for this long is dropped, in ms (at least PING_INTERVAL_MS).',
    schema: int(10, 7_200_000),
  },
  MAX_INFLIGHT: {
    default: '256',
    description: `Delivered but unacknowledged messages per connection; the rest wait in the store until acks make room. At most ${MAX_PEEK_SCAN}, the most one refill reads.`,
    schema: int(1, MAX_PEEK_SCAN),
  },
  MAX_BUFFERED_BYTES: {
    default: String(1024 * 1024),
    description:
      'Unsent bytes on a socket above which no more deliveries are written to it (they wait in the store).',
    schema: int(1024, 1024 * 1024 * 1024),
  },
  SLOW_CONSUMER_BYTES: {
    default: String(4 * 1024 * 1024),
    description: `Unsent bytes on a socket above which the client is closed as not reading (code ${CloseCode.SLOW_CONSUMER}).`,
    schema: int(1024, 4 * 1024 * 1024 * 1024),
  },
  POW_BITS: {
    default: '10',
    description:
      "Base difficulty, in leading zero bits, of the proof-of-work a connection solves before its first send to a mailbox (first contact; ADR 0011); 0 turns it off. 10 bits is 2^10 hashes on average: about 6 ms on the pure-JS SHA-256 with the JIT and 0.3 s without it (Tor Browser 'Safer'), per mailbox (npm run bench:pow; ADR 0011).",
    schema: int(0, POW_MAX_BITS),
  },
  POW_MAX_BITS: {
    default: '18',
    description:
      'Most bits the difficulty may rise to under load. 18 bits is about 1.2 s with the JIT and about 75 s without it (npm run bench:pow); at least POW_BITS.',
    schema: int(1, POW_MAX_BITS),
  },
  POW_CHALLENGE_TTL_MS: {
    default: '300000',
    description: `How long a proof-of-work challenge may be answered, in ms (at most ${POW_MAX_TTL_MS}); long enough for POW_MAX_BITS without the JIT.`,
    schema: int(1_000, POW_MAX_TTL_MS),
  },
  POW_ADMISSIONS_PER_MINUTE: {
    default: '600',
    description: `First-contact admissions per minute (sliding ${POW_WINDOW_MS / 1000} s window) over all mailboxes on this relay above which every doubling adds one bit of difficulty.`,
    schema: int(1, 10_000_000),
  },
  POW_TARGET_ADMISSIONS_PER_MINUTE: {
    default: '60',
    description:
      'First-contact admissions per minute to one mailbox above which every doubling adds one bit of difficulty for challenges to that mailbox.',
    schema: int(1, 10_000_000),
  },
  POW_SENDS_PER_ADMISSION: {
    default: '100',
    description:
      'Envelopes one admission may store for its mailbox before the connection must solve a new challenge (a tenth of the default MAX_QUEUED_PER_MAILBOX, so one proof takes at most a tenth of a queue).',
    schema: int(1, MAX_POW_SENDS_PER_ADMISSION),
  },
  STORE_PAUSE_PENDING_OPS: {
    default: String(DEFAULT_STORE_PAUSE_PENDING_OPS),
    description:
      'Store operations waiting (sends, acks, refills, prekey work) at which the relay stops reading from the clients that send, until the store catches up (backpressure instead of refusing with overloaded). Default (docs/adr/0012-backpressure.md): enough for full Redis batches, few enough to keep the queue in front of Redis to milliseconds; the bench sweep of it there needs a quiet machine to choose.',
    schema: int(1, 1_000_000),
  },
  STORE_RESUME_PENDING_OPS: {
    default: String(DEFAULT_STORE_RESUME_PENDING_OPS),
    description:
      'Store operations waiting at or below which paused clients are read again; below STORE_PAUSE_PENDING_OPS (the gap keeps the relay from pausing and resuming on every operation).',
    schema: int(0, 1_000_000),
  },
  MAX_PENDING_STORE_OPS: {
    default: String(MAX_PENDING_STORE_OPS),
    description:
      'Hard safety bound on operations waiting for Redis, far above STORE_PAUSE_PENDING_OPS: what clients had already sent when reading paused (one socket read each) must fit under it. Past it, sends and prekey work get overloaded; acknowledgements are never refused for load.',
    schema: int(1, 10_000_000),
  },
  SHUTDOWN_GRACE_MS: {
    default: '10000',
    description:
      'On SIGTERM/SIGINT, how long in-flight store operations may take before sockets are closed, in ms.',
    schema: int(0, 600_000),
  },
  LOG_LEVEL: {
    default: 'info',
    description: `Log level: ${LOG_LEVELS.join(', ')}. Logs never contain addresses, ids, keys or envelopes.`,
    schema: z.enum(LOG_LEVELS),
  },
  ORG_PUBLIC_KEY: {
    default: '',
    description:
      "The organization's Ed25519 public key (43 base64url characters, as `passage org init` prints it). Set → the relay serves the organization profile at `GET /v1/org/profile` and accepts `PUT /v1/org/profile` of a profile signed by this key with a greater version; unset → both answer 404.",
    schema: z
      .string()
      .refine((s) => {
        const key = fromBase64url(s);
        return key !== undefined && key.length === 32 && isUsablePublicKey(key);
      }, 'must be an Ed25519 public key in base64url (43 characters)')
      .optional(),
  },
  ONION_LOCATION: {
    default: '',
    description:
      'The onion service address of this Passage (`http://<56 characters>.onion`, no path). Set → every page response carries `Onion-Location` with it and the path, so Tor Browser offers the onion service; unset → no such header.',
    schema: z
      .string()
      .regex(
        /^https?:\/\/[a-z2-7]{56}\.onion(:\d{1,5})?\/?$/,
        'must be http(s)://<56 base32 characters>.onion, optionally with a port, and no path',
      )
      .transform((s) => s.replace(/\/$/, ''))
      .optional(),
  },
  STATIC_DIR: {
    default: '',
    description: 'Directory of the built client to serve. Unset → client/dist of this checkout.',
    schema: z.string().min(1).optional(),
  },
} as const;

type VariableName = keyof typeof VARIABLES;

/** The documented table of environment variables (for the README and its check). */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = Object.entries(VARIABLES).map(
  ([name, v]) => ({ name, default: v.default, description: v.description }),
);

type Parsed = { [K in VariableName]: z.output<(typeof VARIABLES)[K]['schema']> };

/**
 * Reads and validates the configuration. An empty variable counts as unset.
 * @throws ConfigError naming every invalid variable.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  const problems: string[] = [];
  const parsed: Partial<Record<VariableName, unknown>> = {};
  for (const [name, variable] of Object.entries(VARIABLES) as [
    VariableName,
    (typeof VARIABLES)[VariableName],
  ][]) {
    const raw = env[name];
    const text =
      raw === undefined || raw.trim() === '' ? variable.default || undefined : raw.trim();
    const result = (variable.schema as z.ZodType).safeParse(text);
    if (result.success) parsed[name] = result.data;
    else problems.push(`${name}: ${result.error.issues[0]?.message ?? 'invalid'}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const p = parsed as Parsed;

  if (p.REDIS_URL !== undefined && p.REDIS_CLUSTER_NODES !== undefined) {
    problems.push('REDIS_URL and REDIS_CLUSTER_NODES: set one, not both');
  }
  if (p.HEARTBEAT_TIMEOUT_MS < p.PING_INTERVAL_MS) {
    problems.push('HEARTBEAT_TIMEOUT_MS: must be at least PING_INTERVAL_MS');
  }
  if (p.SLOW_CONSUMER_BYTES <= p.MAX_BUFFERED_BYTES) {
    problems.push('SLOW_CONSUMER_BYTES: must be greater than MAX_BUFFERED_BYTES');
  }
  if (p.POW_BITS > p.POW_MAX_BITS) {
    problems.push('POW_MAX_BITS: must be at least POW_BITS');
  }
  if (p.STORE_RESUME_PENDING_OPS >= p.STORE_PAUSE_PENDING_OPS) {
    problems.push('STORE_RESUME_PENDING_OPS: must be less than STORE_PAUSE_PENDING_OPS');
  }
  if (p.MAX_PENDING_STORE_OPS <= p.STORE_PAUSE_PENDING_OPS) {
    problems.push('MAX_PENDING_STORE_OPS: must be greater than STORE_PAUSE_PENDING_OPS');
  }
  if (p.DEDUP_TTL_SECONDS < p.QUEUE_TTL_SECONDS) {
    // A resend of a message acked early could otherwise be stored and delivered a second time
    // while the sender still retries it.
    problems.push('DEDUP_TTL_SECONDS: must be at least QUEUE_TTL_SECONDS');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    port: p.PORT,
    host: p.HOST,
    ...(p.REDIS_URL === undefined ? {} : { redisUrl: p.REDIS_URL }),
    ...(p.REDIS_CLUSTER_NODES === undefined ? {} : { redisClusterNodes: p.REDIS_CLUSTER_NODES }),
    storeLimits: {
      queueTtlSeconds: p.QUEUE_TTL_SECONDS,
      maxQueuedPerMailbox: p.MAX_QUEUED_PER_MAILBOX,
      dedupTtlSeconds: p.DEDUP_TTL_SECONDS,
      maxDedupIdsPerMailbox: p.MAX_DEDUP_IDS_PER_MAILBOX,
      prekeyTtlSeconds: p.PREKEY_TTL_SECONDS,
      maxOneTimePrekeys: p.MAX_ONE_TIME_PREKEYS,
    },
    maxPendingStoreOps: p.MAX_PENDING_STORE_OPS,
    relay: {
      maxConnections: p.MAX_CONNECTIONS,
      maxUnauthenticatedConnections: p.MAX_UNAUTHENTICATED_CONNECTIONS,
      maxAnonymousConnections: p.MAX_ANONYMOUS_CONNECTIONS,
      authTimeoutMs: p.AUTH_TIMEOUT_MS,
      maxConnectionsPerMailbox: p.MAX_CONNECTIONS_PER_MAILBOX,
      maxUnfinishedInputBytes: p.MAX_UNFINISHED_INPUT_BYTES,
      maxTotalBufferedBytes: p.MAX_TOTAL_BUFFERED_BYTES,
      connFramesPerSecond: p.CONN_FRAMES_PER_SECOND,
      connFrameBurst: p.CONN_FRAME_BURST,
      connBytesPerSecond: p.CONN_BYTES_PER_SECOND,
      connByteBurst: p.CONN_BYTE_BURST,
      mailboxSendsPerSecond: p.MAILBOX_SENDS_PER_SECOND,
      mailboxSendBurst: p.MAILBOX_SEND_BURST,
      mailboxSenderShares: p.MAILBOX_SENDER_SHARES,
      prekeyFetchesPerSecond: p.PREKEY_FETCHES_PER_MINUTE / 60,
      prekeyFetchBurst: p.PREKEY_FETCH_BURST,
      prekeyPublishesPerSecond: p.PREKEY_PUBLISHES_PER_MINUTE / 60,
      prekeyPublishBurst: p.PREKEY_PUBLISH_BURST,
      maxTrackedMailboxes: p.MAX_TRACKED_MAILBOXES,
      floodCloseAfter: p.FLOOD_CLOSE_AFTER,
      maxInvalidFrames: p.MAX_INVALID_FRAMES,
      abuseWindowMs: p.ABUSE_WINDOW_MS,
      pingIntervalMs: p.PING_INTERVAL_MS,
      heartbeatTimeoutMs: p.HEARTBEAT_TIMEOUT_MS,
      maxInflight: p.MAX_INFLIGHT,
      maxBufferedBytes: p.MAX_BUFFERED_BYTES,
      slowConsumerBytes: p.SLOW_CONSUMER_BYTES,
      powBits: p.POW_BITS,
      powMaxBits: p.POW_MAX_BITS,
      powChallengeTtlMs: p.POW_CHALLENGE_TTL_MS,
      powAdmissionsPerWindow: p.POW_ADMISSIONS_PER_MINUTE,
      powTargetAdmissionsPerWindow: p.POW_TARGET_ADMISSIONS_PER_MINUTE,
      powSendsPerAdmission: p.POW_SENDS_PER_ADMISSION,
      storePausePendingOps: p.STORE_PAUSE_PENDING_OPS,
      storeResumePendingOps: p.STORE_RESUME_PENDING_OPS,
    },
    shutdownGraceMs: p.SHUTDOWN_GRACE_MS,
    logLevel: p.LOG_LEVEL,
    staticDir: p.STATIC_DIR ?? DEFAULT_STATIC_DIR,
    ...(p.ORG_PUBLIC_KEY === undefined ? {} : { organizationKey: p.ORG_PUBLIC_KEY }),
    ...(p.ONION_LOCATION === undefined ? {} : { onionLocation: p.ONION_LOCATION }),
  };
}
