/**
 * The relay's logger. Logs are for operators and never about users: no IP addresses, mailbox
 * ids, message ids, envelopes, keys, nonces or signatures, ever. Everything a log call carries
 * goes through one function, {@link redact}, before pino sees it:
 *
 * - fields are kept only if their key is on a short allowlist of operational facts (counts,
 *   durations, codes, the port); every other key is dropped, whatever it holds;
 * - kept strings, the message text and interpolation arguments are scrubbed of anything shaped
 *   like an IP address or a long base64url/hex token (ids, keys, envelopes, nonces);
 * - an error is reduced to `code`, `name` and a scrubbed `message`: no stack (it can carry
 *   values through string interpolation), no `cause`, no extra properties.
 *
 * pino's own `redact` paths stand behind that as a second line for the field names that would
 * be sensitive if a future allowlist change let them through.
 */
import {
  pino,
  type DestinationStream,
  type Logger as PinoLogger,
  type LevelWithSilent,
} from 'pino';

/** The logger type every server module takes. */
export type Logger = PinoLogger;

/** Log levels accepted by `LOG_LEVEL`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number] & LevelWithSilent;

/**
 * Field names a log line may carry. Values are still scrubbed; the point of the list is that a
 * field nobody reviewed never reaches the output, whatever it is called.
 */
const ALLOWED_FIELDS: ReadonlySet<string> = new Set([
  'err',
  'event',
  'port',
  'store',
  'code',
  'closeCode',
  'count',
  'connections',
  'durationMs',
  'graceMs',
  'signal',
  'reason',
  'frameType',
  'mode',
  'nodes',
  'exitCode',
  'pending',
  // Load counters (relay/load-report.ts): counts and durations, no identifiers.
  'pauses',
  'pausedConnections',
  'pausedMs',
  'maxPending',
  'shed',
  'ackRetries',
  'ackAbandoned',
  'ackBugs',
]);

/** Second line of defence: pino censors these wherever they appear one level deep. */
const REDACT_PATHS = [
  'ip',
  'ips',
  'remoteAddress',
  'remotePort',
  'address',
  'mailbox',
  'to',
  'id',
  'ids',
  'env',
  'envelope',
  'pk',
  'key',
  'keys',
  'sig',
  'signature',
  'nonce',
  'identity',
  'signedPrekey',
  'oneTime',
  'headers',
  'req',
  'res',
  'url',
  '*.ip',
  '*.remoteAddress',
  '*.mailbox',
  '*.to',
  '*.id',
  '*.ids',
  '*.env',
  '*.envelope',
  '*.pk',
  '*.key',
  '*.sig',
  '*.nonce',
  '*.headers',
  'err.stack',
  'err.cause',
];

const IPV4 = /\b(?:\d{1,3}\.){3}\d{1,3}\b/g;
// Two or more colon-separated hex groups: IPv6 in every spelling (compressed, zone-suffixed,
// v4-mapped); also clock times and the like, which is an acceptable loss.
const IPV6 = /(?:[0-9A-Fa-f]{0,4}:){2,}[0-9A-Fa-f.]*(?:%[0-9A-Za-z]+)?/g;
// Base64url or hex runs of 16+ characters: message ids (22), mailbox ids and keys (43),
// signatures (86), envelopes, hex dumps. Runs of only capitals and underscores (error codes
// such as ECONNREFUSED) or only lower case and underscores (snake_case words) are kept: a random
// 16-byte id looks like either with probability below 1e-8.
const TOKEN = /[A-Za-z0-9_-]{16,}/g;
const WORDISH = /^(?:[A-Z_]+|[a-z_]+)$/;
const MAX_STRING_CHARS = 300;

function scrubToken(token: string): string {
  return WORDISH.test(token) ? token : '[redacted]';
}

// Characters of tokens and of IPv4/IPv6 addresses (with a zone suffix).
const TOKEN_OR_ADDRESS_CHAR = /[A-Za-z0-9_.:%-]/;
const TRAILING_TOKEN_OR_ADDRESS = /[A-Za-z0-9_.:%-]+$/;

/** Cuts long text at MAX_STRING_CHARS (which bounds the regexes' work below). */
function truncate(text: string): string {
  if (text.length <= MAX_STRING_CHARS) return text;
  let head = text.slice(0, MAX_STRING_CHARS);
  // A token or address that runs past the cut would leave a head too short to be recognised
  // below (up to 15 characters of an id, three octets of an address): drop that head.
  if (TOKEN_OR_ADDRESS_CHAR.test(text.charAt(MAX_STRING_CHARS))) {
    head = head.replace(TRAILING_TOKEN_OR_ADDRESS, '');
  }
  return head + '…';
}

/** Removes anything that looks like an address or an identifier from free text. */
export function scrub(text: string): string {
  return truncate(text).replace(IPV6, '[ip]').replace(IPV4, '[ip]').replace(TOKEN, scrubToken);
}

/** What is left of an error in a log line. */
export interface SafeError {
  readonly name: string;
  readonly message: string;
  readonly code?: string | number;
}

function safeError(e: unknown): SafeError {
  if (typeof e !== 'object' || e === null) return { name: 'NonError', message: scrub(String(e)) };
  const record = e as Record<string, unknown>;
  const name = typeof record['name'] === 'string' ? scrub(record['name']) : 'Error';
  const message = typeof record['message'] === 'string' ? scrub(record['message']) : '';
  const code = record['code'];
  return typeof code === 'string' || typeof code === 'number'
    ? { name, message, code: typeof code === 'string' ? scrub(code) : code }
    : { name, message };
}

type SafeValue = string | number | boolean | null | SafeError;

function safeValue(key: string, value: unknown): SafeValue | undefined {
  if (key === 'err') return safeError(value);
  switch (typeof value) {
    case 'string':
      return scrub(value);
    case 'number':
    case 'boolean':
      return value;
    default:
      // Objects and arrays are never logged field by field: their shape is not reviewed.
      return value === null ? null : undefined;
  }
}

/**
 * The one gate between a log call and the output: keeps allowlisted fields with primitive,
 * scrubbed values, reduces `err` to a {@link SafeError}, and drops everything else. An `Error`
 * passed on its own becomes `{ err }`. Idempotent.
 */
export function redact(fields: unknown): Record<string, SafeValue> {
  const out: Record<string, SafeValue> = {};
  if (fields instanceof Error) {
    out['err'] = safeError(fields);
    return out;
  }
  if (typeof fields !== 'object' || fields === null) return out;
  for (const key of Object.keys(fields)) {
    if (!ALLOWED_FIELDS.has(key)) continue;
    const value = safeValue(key, (fields as Record<string, unknown>)[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function redactArgs(args: unknown[]): unknown[] {
  const out: unknown[] = [];
  let i = 0;
  const first = args[0];
  if (typeof first === 'object' && first !== null) {
    out.push(redact(first));
    i = 1;
  }
  for (; i < args.length; i++) {
    const a = args[i];
    // Interpolation arguments (`%s`, `%o`) would bypass the field allowlist: only primitives.
    out.push(
      typeof a === 'string'
        ? scrub(a)
        : typeof a === 'number' || typeof a === 'boolean'
          ? a
          : '[redacted]',
    );
  }
  return out;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly level: LogLevel;
  /** Where lines go; stdout when absent. Tests pass a capturing stream. */
  readonly destination?: DestinationStream;
}

/** Creates the redacting logger. Use this and nothing else to log. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      // No hostname: in a container it is an identifier nobody needs in these logs.
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, remove: true },
      serializers: { err: safeError },
      formatters: {
        // Runs on every line's merged fields (after the hook below) and on child bindings.
        log: (object) => redact(object),
        bindings: (bindings) => {
          const pid: unknown = bindings['pid'];
          return { ...(typeof pid === 'number' ? { pid } : {}), ...redact(bindings) };
        },
      },
      hooks: {
        logMethod(args, method) {
          // pino would otherwise turn an Error's message into `msg` before any formatter runs.
          const safe = redactArgs(args) as Parameters<typeof method>;
          method.apply(this, safe);
        },
      },
    },
    // Synchronous: lines are few (nothing is logged per message), and a fatal line written
    // just before process.exit must not be lost in a buffer.
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
