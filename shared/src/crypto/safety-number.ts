/**
 * Safety numbers: what two people compare to know that no one sits between them. As Signal's
 * numeric fingerprints (libsignal `NumericFingerprintGenerator`, version 2 display):
 *
 *   fp(key)  = SHA-512 iterated 5200 times: h₀ = version (2) ‖ key ‖ id, hᵢ₊₁ = SHA-512(hᵢ ‖ key)
 *   digits   = the first 30 bytes of fp as six 5-byte chunks, each (big-endian) mod 100000,
 *              zero-padded to 5 digits → 30 digits per identity
 *   number   = the two 30-digit strings in ascending order, concatenated → 60 digits
 *
 * The key is the device's Ed25519 identity key (which signs its X25519 key); the "stable id" is
 * Passage's versioned label, since identities here have no phone number or account id. Sorting
 * makes the number the same on both sides whatever the order. The iteration count makes
 * grinding for a key with a colliding fingerprint expensive.
 *
 * The QR payload carries the two 32-byte fingerprints (local first), versioned:
 *   0x01 ‖ fp(local)[0..32] ‖ fp(remote)[0..32]
 * and the scanner checks that the scanned local is its remote and vice versa.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { ED25519_PUBLIC_KEY_BYTES } from './primitives.js';
import {
  ByteReader,
  bytesEqual,
  concatBytes,
  expectVersion,
  labelBytes,
  u16,
  u8,
} from './encoding.js';
import { CODENAME_WORDLIST } from './codename.js';
import { KDF_LABELS } from './kdf.js';
import type { Ed25519PublicKey } from './keys.js';

/** Fingerprint format version (hashed in, as Signal's 2-byte version). */
export const SAFETY_NUMBER_VERSION = 0;
/** SHA-512 iterations per fingerprint (Signal's value). */
export const SAFETY_NUMBER_ITERATIONS = 5200;
/** Digits per identity, and in the combined number. */
export const FINGERPRINT_DIGITS = 30;
export const SAFETY_NUMBER_DIGITS = 60;
/** Version byte of the QR payload. */
export const SAFETY_NUMBER_QR_VERSION = 1;
const QR_FINGERPRINT_BYTES = 32;
export const SAFETY_NUMBER_QR_BYTES = 1 + 2 * QR_FINGERPRINT_BYTES;

const STABLE_ID = labelBytes(KDF_LABELS.safetyNumber);

function fingerprint(p: Primitives, key: Ed25519PublicKey): Uint8Array {
  if (key.length !== ED25519_PUBLIC_KEY_BYTES) throw new CryptoError(CryptoErrorCode.BAD_LENGTH);
  let hash = concatBytes(u16(SAFETY_NUMBER_VERSION), key, STABLE_ID);
  for (let i = 0; i < SAFETY_NUMBER_ITERATIONS; i++) hash = p.sha512(concatBytes(hash, key));
  return hash;
}

function digits(fp: Uint8Array): string {
  let out = '';
  for (let offset = 0; offset < 30; offset += 5) {
    // 40-bit big-endian chunk; stays exact in a double (< 2⁵³).
    let chunk = 0;
    for (let i = 0; i < 5; i++) chunk = chunk * 256 + fp[offset + i]!;
    out += String(chunk % 100_000).padStart(5, '0');
  }
  return out;
}

/** The 30 digits of one key (e.g. the organization's key, published elsewhere to compare). */
export function fingerprintDigits(p: Primitives, key: Ed25519PublicKey): string {
  return digits(fingerprint(p, key));
}

/** Words in {@link fingerprintWords}: 7 × log2(7776) ≈ 90.5 bits, as many as a codename. */
export const FINGERPRINT_WORDS = 7;

/**
 * The fingerprint of one key as words of the codename list (EFF large list), for reading out
 * on the phone or printing beside the digits: bytes 32–63 of the same iterated hash (the digits
 * use bytes 0–29), read as one big-endian number whose lowest `count` digits in base 7,776 are
 * the words, most significant first. The same key always gives the same words; a person may
 * compare either form.
 */
export function fingerprintWords(
  p: Primitives,
  key: Ed25519PublicKey,
  count: number = FINGERPRINT_WORDS,
): string[] {
  if (!Number.isInteger(count) || count < 1 || count > 19) {
    // 19 words of 12.9 bits use at most the 256 bits taken from the hash.
    throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  }
  const fp = fingerprint(p, key);
  let n = 0n;
  for (let i = 32; i < 64; i++) n = (n << 8n) | BigInt(fp[i]!);
  const size = BigInt(CODENAME_WORDLIST.length);
  const words: string[] = [];
  for (let i = 0; i < count; i++) {
    words.push(CODENAME_WORDLIST[Number(n % size)]!);
    n /= size;
  }
  return words.reverse();
}

/** The 60-digit safety number of two identity keys; the same whichever order they are given. */
export function safetyNumber(p: Primitives, a: Ed25519PublicKey, b: Ed25519PublicKey): string {
  const [x, y] = [fingerprintDigits(p, a), fingerprintDigits(p, b)].sort();
  return x! + y!;
}

/** A safety number in twelve groups of five digits, as it is shown. */
export function formatSafetyNumber(number: string): string {
  return number.match(/\d{5}/g)?.join(' ') ?? '';
}

/** The QR payload this device shows: its own fingerprint first. */
export function safetyNumberQrPayload(
  p: Primitives,
  local: Ed25519PublicKey,
  remote: Ed25519PublicKey,
): Uint8Array {
  return concatBytes(
    u8(SAFETY_NUMBER_QR_VERSION),
    fingerprint(p, local).slice(0, QR_FINGERPRINT_BYTES),
    fingerprint(p, remote).slice(0, QR_FINGERPRINT_BYTES),
  );
}

/**
 * Checks a QR payload scanned from the peer's screen: true when it names exactly these two
 * keys (its local is our remote and its remote our local). Throws for a payload that is not
 * one (`unsupported_version`, `bad_encoding`); answers false for one about other keys.
 */
export function verifySafetyNumberQr(
  p: Primitives,
  local: Ed25519PublicKey,
  remote: Ed25519PublicKey,
  scanned: Uint8Array,
): boolean {
  const r = new ByteReader(scanned);
  expectVersion(r, SAFETY_NUMBER_QR_VERSION);
  const theirLocal = r.bytesN(QR_FINGERPRINT_BYTES);
  const theirRemote = r.bytesN(QR_FINGERPRINT_BYTES);
  r.end();
  const ours = fingerprint(p, local).slice(0, QR_FINGERPRINT_BYTES);
  const theirs = fingerprint(p, remote).slice(0, QR_FINGERPRINT_BYTES);
  // Both comparisons always run: no early exit that times which half differed.
  const a = bytesEqual(theirLocal, theirs);
  const b = bytesEqual(theirRemote, ours);
  return a && b;
}
