/**
 * Attachment sealing (docs/client.md "Attachments", ADR 0024): a file is encrypted once, on the
 * sender's device, into one opaque blob that the relay keeps for its queue TTL; only the blob's
 * id, its key, the SHA-256 of the blob and its size travel in the conversation (an `attachment`
 * message, which the ratchet encrypts for every recipient device).
 *
 *   padded = file ‖ 0x80 ‖ 0x00…            to `attachmentPaddedBytes(file.length)` (Padmé)
 *   blob   = XChaCha20-Poly1305(key, nonce = 24 zero bytes, padded, ad = "passage/v1/attachment")
 *   digest = SHA-256(blob), size = blob.length
 *
 * - The key is 32 fresh random bytes for every file, drawn inside `sealAttachment` (a caller
 *   cannot pass one), and nothing else is ever sealed under it: a retried upload sends the same
 *   blob again, it does not encrypt again. A (key, nonce) pair is therefore used exactly once,
 *   which is all XChaCha20-Poly1305 asks of a nonce, so the nonce is a fixed constant (as age
 *   does with its per-file key) rather than 24 random bytes more in every blob.
 * - Padding: the length is rounded up as Padmé does (Nikitin et al., "Reducing Metadata Leakage
 *   from Encrypted Files and Communication with PURBs", 2019): at most 12 % more bytes, and the
 *   blob's size reveals O(log log n) bits of the file's size instead of all of them; and never
 *   less than `MIN_ATTACHMENT_PADDED_BYTES`, so that small files all look alike.
 * - Opening checks, in order and before anything is decrypted: the reference is well formed,
 *   the blob's length is the size the message announced, that size is one sealing can produce,
 *   and the SHA-256 of the blob is the digest; then the AEAD opens it, and the padding is
 *   checked strictly. The digest is what makes every recipient of one message get the same file:
 *   the AEAD is not key-committing, but the blob is fixed by its hash, and one key opens it one
 *   way only.
 *
 * Every failure is an `AttachmentError` with a stable code; nothing else is thrown.
 */
import type { Primitives } from '../crypto/primitives.js';
import { POLY1305_TAG_BYTES, XCHACHA20POLY1305_NONCE_BYTES } from '../crypto/primitives.js';
import { bytesEqual, labelBytes } from '../crypto/encoding.js';
import { pad, unpad } from '../crypto/padding.js';
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import { MAX_BLOB_BYTES } from '../protocol/limits.js';
import {
  ATTACHMENT_DIGEST_BYTES,
  ATTACHMENT_KEY_BYTES,
  MAX_ATTACHMENT_BYTES,
} from './conversation/limits.js';
import type { AttachmentMessage } from './conversation/messages.js';

// ---------------------------------------------------------------------------------------------
// Errors

/** Stable codes of attachment sealing, opening and transport. */
export const AttachmentErrorCode = {
  /** The file has no bytes (nothing is sealed or sent), or an opened blob holds none. */
  EMPTY: 'attachment_empty',
  /** The file seals to more than the limit: the relay's `MAX_BLOB_BYTES`, or the smaller one of
   * the organization's profile (`maxAttachmentBytes`). Nothing was uploaded. */
  TOO_LARGE: 'attachment_too_large',
  /** A reference whose key, digest or size is not of the form a message carries. */
  BAD_REFERENCE: 'attachment_bad_reference',
  /** The blob fetched is not as long as the message announced (checked before its hash). */
  SIZE_MISMATCH: 'attachment_size_mismatch',
  /** The announced size is not one that sealing produces (checked before the hash). */
  BAD_LENGTH: 'attachment_bad_length',
  /** The SHA-256 of the blob is not the message's digest: another or a damaged blob. */
  DIGEST_MISMATCH: 'attachment_digest_mismatch',
  /** The blob matched its digest but did not authenticate under the key (a sender's bug or a
   * forgery by the sender itself). Nothing of it is returned. */
  DECRYPT_FAILED: 'attachment_decrypt_failed',
  /** The decrypted bytes are not padded as sealing pads them. */
  BAD_PADDING: 'attachment_bad_padding',
  /** The endpoint was made without a blob transport (`EndpointOptions.blobs`). */
  NO_TRANSPORT: 'attachment_no_transport',

  // The relay's answers to `PUT` / `GET /v1/blobs/<id>` (docs/protocol.md), and the network.
  /** No reservation for this id and token (wrong, used or expired token). A new reservation
   * may succeed: retryable, with a new `blob.reserve`. */
  BLOB_NOT_RESERVED: 'blob_not_reserved',
  /** The relay refused a body over its `MAX_BLOB_BYTES` (413). */
  BLOB_TOO_LARGE: 'blob_too_large',
  /** The relay refused an empty body (400). */
  BLOB_EMPTY: 'blob_empty',
  /** No blob of this id (unknown, expired or malformed: one answer for all). */
  NO_BLOB: 'no_blob',
  /** The relay's store is full or its upload slots are taken (503, 429): retryable. */
  OVERLOADED: 'overloaded',
  /** The relay's store (or the relay, behind a proxy: any other 5xx) cannot be reached:
   * retryable. */
  UNAVAILABLE: 'unavailable',
  /** The request failed on the network, or its body stream broke: retryable. */
  NETWORK: 'blob_network',
  /** No progress within the transport's timeout; the request was aborted: retryable. */
  TIMEOUT: 'blob_timeout',
  /** An answer of no status or body this protocol has (a 4xx it does not use, a 200 to a PUT). */
  BAD_REPLY: 'blob_bad_reply',
} as const;
export type AttachmentErrorCode = (typeof AttachmentErrorCode)[keyof typeof AttachmentErrorCode];

const RETRYABLE: ReadonlySet<AttachmentErrorCode> = new Set<AttachmentErrorCode>([
  AttachmentErrorCode.BLOB_NOT_RESERVED,
  AttachmentErrorCode.OVERLOADED,
  AttachmentErrorCode.UNAVAILABLE,
  AttachmentErrorCode.NETWORK,
  AttachmentErrorCode.TIMEOUT,
]);

/**
 * A failure of an attachment: `code` is stable, `retryable` says whether the same request may
 * succeed later. The message names only the code (no id, key, name or byte of the file).
 */
export class AttachmentError extends Error {
  override readonly name = 'AttachmentError';
  readonly retryable: boolean;
  constructor(
    readonly code: AttachmentErrorCode,
    options?: { cause?: unknown },
  ) {
    super(`attachment: ${code}`, options);
    this.retryable = RETRYABLE.has(code);
  }
}

// ---------------------------------------------------------------------------------------------
// Sizes

/** The smallest padded file, in bytes: every file up to 4 KiB − 1 seals to the same size. */
export const MIN_ATTACHMENT_PADDED_BYTES = 4_096;

/** The associated data of every attachment's AEAD (a versioned label: domain separation). */
const ATTACHMENT_AD = labelBytes('passage/v1/attachment');

/** The fixed nonce: every key seals one blob only (module comment). */
const ATTACHMENT_NONCE = new Uint8Array(XCHACHA20POLY1305_NONCE_BYTES);

/** Padmé (PURBs, 2019): `n` rounded up so that only its top O(log log n) bits remain. */
function padme(n: number): number {
  if (n <= 2) return n;
  // Integer logarithms (every size here is below 2^32): exact, unlike Math.log2.
  const e = 31 - Math.clz32(n);
  const s = 32 - Math.clz32(e);
  const zeroBits = e - s;
  const step = 2 ** zeroBits;
  return Math.ceil(n / step) * step;
}

/** The padded length of a file of `fileBytes` bytes (the file, the 0x80 marker, zeros). */
export function attachmentPaddedBytes(fileBytes: number): number {
  return Math.max(MIN_ATTACHMENT_PADDED_BYTES, padme(fileBytes + 1));
}

/** The size of the blob a file of `fileBytes` bytes seals to: padded, plus the AEAD tag. */
export function sealedAttachmentBytes(fileBytes: number): number {
  return attachmentPaddedBytes(fileBytes) + POLY1305_TAG_BYTES;
}

/** True when `size` is a blob size that sealing some file produces. */
function isSealedSize(size: number): boolean {
  const padded = size - POLY1305_TAG_BYTES;
  return padded >= MIN_ATTACHMENT_PADDED_BYTES && attachmentPaddedBytes(padded - 1) === padded;
}

/**
 * The largest file that seals within `maxSealedBytes` (a blob bound: the relay's or a
 * profile's), or 0 when none does. What a page shows as "files up to …".
 */
export function largestAttachmentFile(maxSealedBytes: number): number {
  if (maxSealedBytes < sealedAttachmentBytes(1)) return 0;
  // The sealed size grows with the file size: the largest file that fits, by bisection.
  let lo = 1;
  let hi = Math.max(1, Math.floor(maxSealedBytes));
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (sealedAttachmentBytes(mid) <= maxSealedBytes) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The largest file any attachment may be: what seals within the relay's `MAX_BLOB_BYTES`. */
export const MAX_ATTACHMENT_FILE_BYTES = largestAttachmentFile(MAX_ATTACHMENT_BYTES);

// ---------------------------------------------------------------------------------------------
// Sealing and opening

/** A sealed file: the blob to upload, and what the `attachment` message carries of it. */
export interface SealedAttachment {
  readonly blob: Uint8Array;
  /** The fresh key, base64url (the message's `key`). */
  readonly key: string;
  /** SHA-256 of `blob`, base64url (the message's `digest`). */
  readonly digest: string;
  /** `blob.length` (the message's `size`). */
  readonly size: number;
}

/** What opening needs of an `attachment` message. */
export type AttachmentReference = Pick<AttachmentMessage, 'key' | 'digest' | 'size'>;

/**
 * Seals `file` under a fresh random key. `maxSealedBytes` is the blob bound to keep to (the
 * profile's, never above the relay's).
 *
 * @throws AttachmentError('attachment_empty' | 'attachment_too_large')
 */
export function sealAttachment(
  p: Pick<Primitives, 'random' | 'sha256' | 'xchacha20poly1305Seal'>,
  file: Uint8Array,
  maxSealedBytes: number = MAX_ATTACHMENT_BYTES,
): SealedAttachment {
  if (file.length === 0) throw new AttachmentError(AttachmentErrorCode.EMPTY);
  const limit = Math.min(maxSealedBytes, MAX_ATTACHMENT_BYTES, MAX_BLOB_BYTES);
  const size = sealedAttachmentBytes(file.length);
  // Written so that a limit that is not a number (NaN) refuses rather than lets anything through.
  if (!(size <= limit)) throw new AttachmentError(AttachmentErrorCode.TOO_LARGE);
  const padded = pad(file, [attachmentPaddedBytes(file.length)]);
  const key = p.random.bytes(ATTACHMENT_KEY_BYTES);
  const blob = p.xchacha20poly1305Seal(key, ATTACHMENT_NONCE, padded, ATTACHMENT_AD);
  // The padded copy of the file goes at once (the caller's own bytes are the caller's).
  padded.fill(0);
  return { blob, key: toBase64url(key), digest: toBase64url(p.sha256(blob)), size: blob.length };
}

/**
 * Opens a fetched blob, checking it against the message before decrypting (module comment).
 * Returns the file's bytes.
 *
 * @throws AttachmentError('attachment_bad_reference' | 'attachment_size_mismatch' |
 *   'attachment_bad_length' | 'attachment_digest_mismatch' | 'attachment_decrypt_failed' |
 *   'attachment_bad_padding' | 'attachment_empty'), in that order of checks
 */
export function openAttachment(
  p: Pick<Primitives, 'sha256' | 'xchacha20poly1305Open'>,
  reference: AttachmentReference,
  blob: Uint8Array,
): Uint8Array {
  // A reference is typed, but comes from a peer's message: nothing in it may make this throw.
  const key = typeof reference.key === 'string' ? fromBase64url(reference.key) : undefined;
  const digest = typeof reference.digest === 'string' ? fromBase64url(reference.digest) : undefined;
  const size = reference.size;
  if (
    key?.length !== ATTACHMENT_KEY_BYTES ||
    digest?.length !== ATTACHMENT_DIGEST_BYTES ||
    typeof size !== 'number' ||
    !Number.isSafeInteger(size) ||
    size < 1 ||
    size > MAX_ATTACHMENT_BYTES
  ) {
    throw new AttachmentError(AttachmentErrorCode.BAD_REFERENCE);
  }
  if (blob.length !== size) throw new AttachmentError(AttachmentErrorCode.SIZE_MISMATCH);
  if (!isSealedSize(size)) throw new AttachmentError(AttachmentErrorCode.BAD_LENGTH);
  if (!bytesEqual(p.sha256(blob), digest)) {
    throw new AttachmentError(AttachmentErrorCode.DIGEST_MISMATCH);
  }
  let padded: Uint8Array;
  try {
    padded = p.xchacha20poly1305Open(key, ATTACHMENT_NONCE, blob, ATTACHMENT_AD);
  } catch (cause) {
    throw new AttachmentError(AttachmentErrorCode.DECRYPT_FAILED, { cause });
  }
  let file: Uint8Array;
  try {
    file = unpad(padded, [padded.length]);
  } catch (cause) {
    throw new AttachmentError(AttachmentErrorCode.BAD_PADDING, { cause });
  } finally {
    padded.fill(0);
  }
  // Strict: the padding must be the one sealing chose for this length (no larger bucket).
  if (attachmentPaddedBytes(file.length) !== blob.length - POLY1305_TAG_BYTES) {
    throw new AttachmentError(AttachmentErrorCode.BAD_PADDING);
  }
  if (file.length === 0) throw new AttachmentError(AttachmentErrorCode.EMPTY);
  return file;
}
