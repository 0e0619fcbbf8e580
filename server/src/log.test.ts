import { describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { mailboxIdFromPublicKey } from '@passage/shared/protocol/mailbox';
import { createLogger, redact, scrub, type Logger } from './log.js';
import { sha256 } from './sha256.js';

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (s) => lines.push(s) } });
  return { logger, lines };
}

// Real-looking secrets, fixed so that a failure is reproducible.
const PUBLIC_KEY = createHash('sha256').update('log test key').digest();
const MAILBOX = mailboxIdFromPublicKey(PUBLIC_KEY, sha256);
const KEY = toBase64url(PUBLIC_KEY);
const MESSAGE_ID = toBase64url(createHash('sha256').update('log test id').digest().subarray(0, 16));
const ENVELOPE = toBase64url(createHash('sha512').update('log test envelope').digest());
const SIGNATURE = toBase64url(createHash('sha512').update('log test sig').digest());
const NONCE_HEX = createHash('sha256').update('log test nonce').digest('hex');
const IPV4 = '203.0.113.77';
const IPV6 = '2001:db8:85a3::8a2e:370:7334';
const IPV6_MAPPED = '::ffff:198.51.100.23';
const IPV6_LOOPBACK = '::1';

const SECRETS = [
  MAILBOX,
  KEY,
  MESSAGE_ID,
  ENVELOPE,
  SIGNATURE,
  NONCE_HEX,
  IPV4,
  IPV6,
  '198.51.100.23',
  '8a2e:370:7334',
];

function assertClean(lines: readonly string[]): void {
  expect(lines.length).toBeGreaterThan(0);
  const all = lines.join('');
  for (const secret of SECRETS) expect(all).not.toContain(secret);
  expect(all).not.toMatch(/"(?:ip|mailbox|to|id|ids|env|pk|sig|nonce|headers|stack)"/);
}

describe('the redacting logger', () => {
  it('drops sensitive fields of a log call and keeps the message', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        mailbox: MAILBOX,
        to: MAILBOX,
        id: MESSAGE_ID,
        ids: [MESSAGE_ID],
        env: ENVELOPE,
        pk: KEY,
        sig: SIGNATURE,
        nonce: NONCE_HEX,
        ip: IPV4,
        remoteAddress: IPV6,
        headers: { 'x-forwarded-for': IPV4 },
        frame: { t: 'send', to: MAILBOX, env: ENVELOPE },
      },
      'frame handled',
    );
    assertClean(lines);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'frame handled', level: 30 });
  });

  it('scrubs secrets from the message text and interpolation arguments', () => {
    const { logger, lines } = capture();
    logger.warn(`peer ${IPV4} sent to ${MAILBOX} id ${MESSAGE_ID}`);
    logger.warn('peer %s %s %o', IPV6, IPV6_MAPPED, { env: ENVELOPE });
    logger.warn({ reason: `from [${IPV6_LOOPBACK}]:443 key ${KEY}` }, 'with %s', SIGNATURE);
    assertClean(lines);
    expect(lines.join('')).not.toContain(IPV6_LOOPBACK + ']');
  });

  it('reduces an error to code, name and a scrubbed message', () => {
    const { logger, lines } = capture();
    const err = Object.assign(new Error(`connect ECONNREFUSED ${IPV4}:6379 for ${MAILBOX}`), {
      code: 'ECONNREFUSED',
      address: IPV4,
      mailbox: MAILBOX,
      cause: new Error(ENVELOPE),
    });
    logger.error(err);
    logger.error({ err, env: ENVELOPE }, 'store failed');
    logger.error(err, 'with message %s', IPV6);
    assertClean(lines);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first['err']).toEqual({
      name: 'Error',
      message: 'connect ECONNREFUSED [ip]:6379 for [redacted]',
      code: 'ECONNREFUSED',
    });
    expect(lines.join('')).not.toContain('at ');
  });

  it('drops sensitive fields bound to a child logger', () => {
    const { logger, lines } = capture();
    logger.child({ mailbox: MAILBOX, ip: IPV4, event: 'conn' }).info({ count: 3 }, 'child');
    assertClean(lines);
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'conn', count: 3 });
  });

  it('keeps allowlisted operational fields', () => {
    const { logger, lines } = capture();
    logger.info({ port: 8080, store: 'memory', durationMs: 12, closeCode: 1001 }, 'listening');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      port: 8080,
      store: 'memory',
      durationMs: 12,
      closeCode: 1001,
      msg: 'listening',
    });
  });

  it('never prints random base64url ids, whatever their alphabet', () => {
    const { logger, lines } = capture();
    const ids = Array.from({ length: 200 }, () => toBase64url(randomBytes(16)));
    for (const id of ids) logger.info({ reason: id }, id);
    const all = lines.join('');
    for (const id of ids) expect(all).not.toContain(id);
  });
});

describe('redact', () => {
  it('drops objects and arrays even under allowed keys', () => {
    expect(redact({ reason: { mailbox: MAILBOX }, count: [1, 2] })).toEqual({});
  });

  it('turns a bare error into an err field', () => {
    expect(redact(new TypeError('bad'))).toEqual({ err: { name: 'TypeError', message: 'bad' } });
  });

  it('returns nothing for a non-object', () => {
    expect(redact(MAILBOX)).toEqual({});
    expect(redact(null)).toEqual({});
  });
});

describe('scrub', () => {
  it('keeps error codes and snake_case words', () => {
    expect(scrub('ERR_STREAM_PREMATURE_CLOSE and heartbeat_timeout_close')).toBe(
      'ERR_STREAM_PREMATURE_CLOSE and heartbeat_timeout_close',
    );
  });

  it('replaces IPv4, IPv6 and v4-mapped addresses', () => {
    expect(scrub(`a ${IPV4} b ${IPV6} c ${IPV6_MAPPED} d fe80::1%eth0 e`)).toBe(
      'a [ip] b [ip] c [ip] d [ip] e',
    );
  });

  it('truncates very long text', () => {
    expect(scrub('word '.repeat(200)).length).toBeLessThan(310);
  });
});

// Regressions from the security review of the relay, each named after the defect it pins.
describe('regression: log scrubbing', () => {
  it('does not keep the head of an id that the length cap cuts in two', () => {
    const id = 'Zx9_Qm2-Lp4Rt7Vw1Yb3Nc5Kd8Hf6Gj0Sa2Ue4Io6Py'; // 43 characters, like a mailbox id
    for (let at = 280; at <= 300; at++) {
      const text = 'x '.repeat(at / 2) + (at % 2 === 0 ? '' : ' ') + id;
      const out = scrub(text);
      // No run of 6 or more characters of the id survives, wherever the cut falls.
      for (let i = 0; i + 6 <= id.length; i++) expect(out).not.toContain(id.slice(i, i + 6));
    }
  });

  it('does not keep the head of an address that the length cap cuts in two', () => {
    for (const address of ['203.0.113.77', '2001:db8:85a3::8a2e:370:7334']) {
      for (let at = 285; at <= 300; at++) {
        const out = scrub('x'.repeat(at) + ' ' + address + ' and more text after it');
        expect(out).not.toMatch(/203\.0|db8|85a3/);
      }
    }
  });

  it('still keeps ordinary words at the cut', () => {
    expect(scrub('word '.repeat(100))).toMatch(/word …$|word…$/);
  });
});
