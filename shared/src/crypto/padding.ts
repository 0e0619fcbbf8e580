/**
 * Padding to a few fixed sizes, so that the length of a ciphertext says little about the length
 * of what it carries. The scheme is ISO/IEC 7816-4's: the data, one 0x80 byte, then zero bytes up
 * to the smallest bucket that holds data + 1 byte. It is unambiguous for any data (the marker is
 * the last non-zero byte), and `unpad` is strict: anything that `pad` could not have produced is
 * rejected with `CryptoError('bad_padding')`.
 *
 * Padding is applied to plaintext before it is encrypted and removed after the AEAD tag has
 * verified, so `unpad` only ever sees authenticated bytes and its timing reveals nothing an
 * attacker could choose.
 */
import { CryptoError, CryptoErrorCode, requireBytes } from './errors.js';

/** 60 KiB: the largest default bucket (see `PADDING_BUCKETS_BYTES`). */
const LARGEST_BUCKET_BYTES = 61_440;

/** The 0x80 byte that ends the data (ISO/IEC 7816-4). */
const PADDING_MARKER = 0x80;

/**
 * The padded sizes, in bytes, ascending. 256 B fits a short message, 1 KiB a paragraph, 4 KiB a
 * long report, 16 KiB a very long one; the largest, 60 KiB, leaves 4 KiB below the relay's
 * `MAX_ENVELOPE_BYTES` (64 KiB) for what the envelope adds around the padded plaintext (headers,
 * the sealed sender, keys, nonces, tags). A padded value holds at most bucket − 1 bytes of data.
 */
export const PADDING_BUCKETS_BYTES: readonly number[] = Object.freeze([
  256,
  1_024,
  4_096,
  16_384,
  LARGEST_BUCKET_BYTES,
]);

/** The most data `pad` accepts with the default buckets: the largest bucket less the marker. */
export const MAX_PADDED_DATA_BYTES = LARGEST_BUCKET_BYTES - 1;

function checkBuckets(buckets: readonly number[]): void {
  if (buckets.length === 0) throw new CryptoError(CryptoErrorCode.BAD_LENGTH);
  let previous = 0;
  for (const bucket of buckets) {
    if (!Number.isSafeInteger(bucket) || bucket <= previous) {
      throw new CryptoError(CryptoErrorCode.BAD_LENGTH);
    }
    previous = bucket;
  }
}

/**
 * Pads `data` to the smallest of `buckets` (ascending sizes in bytes) that holds
 * `data.length + 1` bytes. Returns a fresh array; `data` is not modified.
 *
 * @throws CryptoError('limit_exceeded') when the data does not fit in the largest bucket;
 *   CryptoError('bad_length') when `buckets` is empty or not strictly ascending integers.
 */
export function pad(
  data: Uint8Array,
  buckets: readonly number[] = PADDING_BUCKETS_BYTES,
): Uint8Array {
  requireBytes(data);
  checkBuckets(buckets);
  const size = buckets.find((bucket) => bucket >= data.length + 1);
  if (size === undefined) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  const padded = new Uint8Array(size);
  padded.set(data);
  padded[data.length] = PADDING_MARKER;
  return padded;
}

/**
 * Removes the padding that `pad` added. Strict: the length must be one of `buckets`, the last
 * non-zero byte must be 0x80, and only zero bytes may follow it. Returns a fresh array.
 *
 * @throws CryptoError('bad_padding') for anything `pad` with these buckets could not produce.
 */
export function unpad(
  padded: Uint8Array,
  buckets: readonly number[] = PADDING_BUCKETS_BYTES,
): Uint8Array {
  requireBytes(padded);
  checkBuckets(buckets);
  if (!buckets.includes(padded.length)) throw new CryptoError(CryptoErrorCode.BAD_PADDING);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (end < 0 || padded[end] !== PADDING_MARKER) throw new CryptoError(CryptoErrorCode.BAD_PADDING);
  // The data must have needed this bucket: `pad` never picks a larger bucket than necessary, so
  // a shorter payload here means the bytes were not produced by `pad`.
  const index = buckets.indexOf(padded.length);
  const smaller = index > 0 ? buckets[index - 1] : undefined;
  if (smaller !== undefined && end + 1 <= smaller)
    throw new CryptoError(CryptoErrorCode.BAD_PADDING);
  return padded.slice(0, end);
}
