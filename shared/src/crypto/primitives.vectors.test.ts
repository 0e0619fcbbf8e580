/**
 * The Wycheproof suite: every applicable vector of every primitive Passage uses, on both
 * backends. Run by `npm run test:vectors` with `WYCHEPROOF_DIR` naming the directory of the
 * Wycheproof JSON files (CI: `WYCHEPROOF_DIR=../shared/vectors/wycheproof`, relative to the
 * repository root). The files are read from there, never copied into the repository.
 *
 * How each result is judged:
 * - "valid": the operation succeeds with exactly the expected output (or verdict `true`).
 * - "invalid": the operation fails the way our API reports that failure: AEAD open throws
 *   `decrypt_failed`; a wrong nonce, key, seed or ciphertext length throws `bad_length`; an
 *   ML-KEM key that fails the modulus check throws `bad_encoding`; an HKDF size beyond
 *   255 × 32 throws `limit_exceeded`; Ed25519 answers `false`; a modified HMAC tag does not
 *   match.
 * - "acceptable" (only X25519 has them): our policy is RFC 7748's computation with an abort on
 *   an all-zero result. So an acceptable vector whose expected shared secret is all zero (a
 *   low-order public key) must throw `low_order`, and every other acceptable vector (twist
 *   points, non-canonical u ≥ p, the top bit set) must give exactly the expected secret.
 *
 * chacha20_poly1305_test.json is not run: Passage uses XChaCha20-Poly1305 only, and the
 * 12-byte-nonce construction is not part of the primitive interface.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CryptoErrorCode } from './errors.js';
import type { CryptoErrorCode as Code } from './errors.js';
import { loadNobleBackend } from './noble.js';
import type { Primitives } from './primitives.js';
import { loadSodiumBackend } from './sodium.js';

const directory = ((): string => {
  const named = process.env['WYCHEPROOF_DIR'];
  if (named === undefined || named === '') {
    throw new Error(
      'WYCHEPROOF_DIR is not set. Set it to the directory that holds the Wycheproof JSON files, ' +
        'e.g. WYCHEPROOF_DIR=../shared/vectors/wycheproof npm run test:vectors',
    );
  }
  const path = resolve(process.cwd(), named);
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new Error(`WYCHEPROOF_DIR names ${path}, which is not a directory.`);
  }
  return path;
})();

type Json = Record<string, unknown>;

function field(object: Json, name: string): unknown {
  if (!(name in object)) throw new Error(`vector field "${name}" is missing`);
  return object[name];
}

function text(object: Json, name: string): string {
  const value = field(object, name);
  if (typeof value !== 'string') throw new Error(`vector field "${name}" is not a string`);
  return value;
}

function num(object: Json, name: string): number {
  const value = field(object, name);
  if (typeof value !== 'number') throw new Error(`vector field "${name}" is not a number`);
  return value;
}

function bytes(object: Json, name: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text(object, name), 'hex'));
}

function objects(value: unknown, what: string): Json[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not an array`);
  return value.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) throw new Error(`${what} holds a non-object`);
    return item as Json;
  });
}

interface Group {
  readonly group: Json;
  readonly tests: Json[];
}

function readGroups(file: string): Group[] {
  const parsed: unknown = JSON.parse(readFileSync(join(directory, file), 'utf8'));
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${file} is not an object`);
  return objects((parsed as Json)['testGroups'], `${file} testGroups`).map((group) => ({
    group,
    tests: objects(group['tests'], `${file} tests`),
  }));
}

function toHex(value: Uint8Array): string {
  return Buffer.from(value).toString('hex');
}

/** The CryptoError code `operation` throws, or 'none' when it returns. */
function thrownCode(operation: () => unknown): Code | 'none' {
  try {
    operation();
    return 'none';
  } catch (error: unknown) {
    if (error instanceof Error && error.name === 'CryptoError' && 'code' in error) {
      return error.code as Code;
    }
    throw error;
  }
}

type Result = 'valid' | 'invalid' | 'acceptable';

function result(test: Json): Result {
  const value = text(test, 'result');
  if (value !== 'valid' && value !== 'invalid' && value !== 'acceptable') {
    throw new Error(`unknown result "${value}"`);
  }
  return value;
}

/** Marks a vector that does not apply (another curve, key size or parameter set). */
const SKIP = Symbol('not applicable');

/** Runs one vector; returns null when it passes, or why it failed; SKIP if not applicable. */
type Check = (p: Primitives, group: Json, test: Json) => string | null | typeof SKIP;

const checks: Readonly<Record<string, Check>> = {
  'x25519_test.json': (p, group, test) => {
    if (text(group, 'curve') !== 'curve25519') return SKIP;
    const expected = text(test, 'shared');
    const lowOrder = /^(00)+$/.test(expected);
    let outcome: string;
    try {
      outcome = toHex(p.x25519(bytes(test, 'private'), bytes(test, 'public')));
    } catch (error: unknown) {
      outcome = `threw ${(error as { code?: string }).code ?? String(error)}`;
    }
    switch (result(test)) {
      case 'valid':
        return outcome === expected ? null : `expected ${expected}, got ${outcome}`;
      case 'acceptable':
        if (lowOrder)
          return outcome === 'threw low_order' ? null : `expected low_order, got ${outcome}`;
        return outcome === expected ? null : `expected ${expected}, got ${outcome}`;
      case 'invalid':
        return outcome.startsWith('threw ') ? null : `expected a failure, got ${outcome}`;
    }
  },

  'xchacha20_poly1305_test.json': (p, group, test) => {
    if (num(group, 'keySize') !== 256 || num(group, 'tagSize') !== 128) return SKIP;
    const key = bytes(test, 'key');
    const nonce = bytes(test, 'iv');
    const aad = bytes(test, 'aad');
    const message = bytes(test, 'msg');
    const sealed = Uint8Array.from([...bytes(test, 'ct'), ...bytes(test, 'tag')]);
    if (result(test) === 'valid') {
      const ours = toHex(p.xchacha20poly1305Seal(key, nonce, message, aad));
      if (ours !== toHex(sealed)) return `seal gave ${ours}`;
      const opened = toHex(p.xchacha20poly1305Open(key, nonce, sealed, aad));
      return opened === toHex(message) ? null : `open gave ${opened}`;
    }
    if (nonce.length !== 24) {
      const sealCode = thrownCode(() => p.xchacha20poly1305Seal(key, nonce, message, aad));
      const openCode = thrownCode(() => p.xchacha20poly1305Open(key, nonce, sealed, aad));
      return sealCode === CryptoErrorCode.BAD_LENGTH && openCode === CryptoErrorCode.BAD_LENGTH
        ? null
        : `expected bad_length, got ${sealCode}/${openCode}`;
    }
    const code = thrownCode(() => p.xchacha20poly1305Open(key, nonce, sealed, aad));
    return code === CryptoErrorCode.DECRYPT_FAILED ? null : `expected decrypt_failed, got ${code}`;
  },

  'ed25519_test.json': (p, group, test) => {
    const publicKey = group['publicKey'];
    if (typeof publicKey !== 'object' || publicKey === null) throw new Error('no publicKey');
    const pk = bytes(publicKey as Json, 'pk');
    const verdict = p.ed25519Verify(pk, bytes(test, 'msg'), bytes(test, 'sig'));
    const expected = result(test) === 'valid';
    if (result(test) === 'acceptable') throw new Error('no acceptable Ed25519 vectors expected');
    return verdict === expected ? null : `verify answered ${String(verdict)}`;
  },

  'hkdf_sha256_test.json': (p, _group, test) => {
    const run = (): Uint8Array =>
      p.hkdfSha256(bytes(test, 'ikm'), bytes(test, 'salt'), bytes(test, 'info'), num(test, 'size'));
    if (result(test) === 'valid') {
      const okm = toHex(run());
      return okm === text(test, 'okm') ? null : `got ${okm}`;
    }
    const code = thrownCode(run);
    return code === CryptoErrorCode.LIMIT_EXCEEDED ? null : `expected limit_exceeded, got ${code}`;
  },

  'hmac_sha256_test.json': (p, group, test) => checkMac(p.hmacSha256.bind(p), group, test),
  'hmac_sha512_test.json': (p, group, test) => checkMac(p.hmacSha512.bind(p), group, test),

  'mlkem_768_test.json': (p, group, test) => {
    if (text(group, 'parameterSet') !== 'ML-KEM-768') return SKIP;
    const seed = bytes(test, 'seed');
    const ciphertext = bytes(test, 'c');
    if (result(test) === 'valid') {
      const pair = p.mlkem768KeyPairFromSeed(seed);
      if (toHex(pair.publicKey) !== text(test, 'ek')) return 'keygen gave another ek';
      const shared = toHex(p.mlkem768Decapsulate(pair.secretKey, ciphertext));
      return shared === text(test, 'K') ? null : `decapsulation gave ${shared}`;
    }
    // Invalid vectors have a seed or a ciphertext of the wrong length.
    if (seed.length !== 64) {
      const code = thrownCode(() => p.mlkem768KeyPairFromSeed(seed));
      return code === CryptoErrorCode.BAD_LENGTH
        ? null
        : `keygen: expected bad_length, got ${code}`;
    }
    const pair = p.mlkem768KeyPairFromSeed(seed);
    const code = thrownCode(() => p.mlkem768Decapsulate(pair.secretKey, ciphertext));
    return code === CryptoErrorCode.BAD_LENGTH ? null : `decaps: expected bad_length, got ${code}`;
  },

  'mlkem_768_encaps_test.json': (p, group, test) => {
    if (text(group, 'parameterSet') !== 'ML-KEM-768') return SKIP;
    const ek = bytes(test, 'ek');
    const m = bytes(test, 'm');
    if (result(test) === 'valid') {
      const { ciphertext, sharedSecret } = p.mlkem768Encapsulate(ek, m);
      if (toHex(ciphertext) !== text(test, 'c')) return 'encapsulation gave another ciphertext';
      return toHex(sharedSecret) === text(test, 'K') ? null : 'encapsulation gave another K';
    }
    const code = thrownCode(() => p.mlkem768Encapsulate(ek, m));
    const expected = ek.length === 1184 ? CryptoErrorCode.BAD_ENCODING : CryptoErrorCode.BAD_LENGTH;
    return code === expected ? null : `expected ${expected}, got ${code}`;
  },
};

/** HMAC vectors: the tag may be truncated to the group's `tagSize` bits; compare that prefix. */
function checkMac(
  mac: (key: Uint8Array, data: Uint8Array) => Uint8Array,
  group: Json,
  test: Json,
): string | null {
  const tagBytes = num(group, 'tagSize') / 8;
  const expected = bytes(test, 'tag');
  const ours = mac(bytes(test, 'key'), bytes(test, 'msg')).subarray(0, tagBytes);
  const matches = expected.length === tagBytes && toHex(ours) === toHex(expected);
  if (result(test) === 'valid') return matches ? null : `tag ${toHex(ours)}`;
  return matches ? 'a modified tag matched' : null;
}

const FILES = Object.keys(checks);

const BACKENDS: ReadonlyArray<readonly [string, () => Promise<Primitives>]> = [
  ['libsodium', loadSodiumBackend],
  ['noble', loadNobleBackend],
];

/** file → backend → [passed, applicable, skipped] */
const summary = new Map<string, Map<string, readonly [number, number, number]>>();

afterAll(() => {
  const lines = ['', 'Wycheproof vectors passed (passed/applicable, skipped as not applicable):'];
  for (const file of FILES) {
    const row = [...(summary.get(file) ?? new Map<string, readonly [number, number, number]>())]
      .map(
        ([backend, [passed, applicable, skipped]]) =>
          `${backend} ${String(passed)}/${String(applicable)}${skipped > 0 ? ` (${String(skipped)} skipped)` : ''}`,
      )
      .join('   ');
    lines.push(`  ${file.padEnd(30)} ${row}`);
  }
  lines.push('  chacha20_poly1305_test.json    not run: Passage uses XChaCha20-Poly1305 only', '');
  process.stdout.write(lines.join('\n'));
});

describe.each(BACKENDS)('Wycheproof on %s', (backend, load) => {
  it.each(FILES)('passes every applicable vector of %s', async (file) => {
    const p = await load();
    const check = checks[file]!;
    const failures: string[] = [];
    let applicable = 0;
    let skipped = 0;
    for (const { group, tests } of readGroups(file)) {
      for (const test of tests) {
        const outcome = check(p, group, test);
        if (outcome === SKIP) {
          skipped++;
          continue;
        }
        applicable++;
        if (outcome !== null) failures.push(`tcId ${String(num(test, 'tcId'))}: ${outcome}`);
      }
    }
    const perFile = summary.get(file) ?? new Map<string, readonly [number, number, number]>();
    perFile.set(backend, [applicable - failures.length, applicable, skipped]);
    summary.set(file, perFile);
    expect(applicable).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  });
});
