/**
 * Named limits of conversation messages (what travels inside the ratchet plaintext) and of the
 * shared case state, in one place. Each has a test at the limit and one past it, and a row in
 * docs/conversation.md (a test keeps the table equal to this file).
 */
import { MAX_PADDED_DATA_BYTES } from '../../crypto/padding.js';
import { MAX_BLOB_BYTES } from '../../protocol/limits.js';

/** The version every conversation message carries in `v`; checked before anything else. */
export const CONVERSATION_VERSION = 1;

/**
 * Largest encoded conversation message, in bytes: what the ratchet's padding takes at most
 * (the largest bucket less its marker byte). Padding itself is the ratchet's (padding.ts).
 */
export const MAX_CONVERSATION_MESSAGE_BYTES = MAX_PADDED_DATA_BYTES;

/** Message ids and attachment blob ids: 16 random bytes, 22 base64url characters. */
export const CONVERSATION_ID_BYTES = 16;

/** Highest sender timestamp and HLC wall time, in Unix milliseconds (2^48 − 1, year 10889). */
export const MAX_TIMESTAMP_MS = 2 ** 48 - 1;

/** Longest text message, in UTF-16 code units. */
export const MAX_TEXT_CHARS = 10_000;

/** Most message ids one receipt names. */
export const MAX_RECEIPT_IDS = 256;

/** Longest tag, in UTF-16 code units. */
export const MAX_TAG_CHARS = 32;

/** Longest internal note, in UTF-16 code units. */
export const MAX_NOTE_CHARS = 4_000;

/** Longest welfare check-in interval, in hours (30 days); the shortest is 1 hour. */
export const MAX_CHECK_IN_HOURS = 720;

/**
 * Largest attachment blob a message may announce (the encrypted bytes the relay stores), in
 * bytes: the relay's own bound (`MAX_BLOB_BYTES`, 8 MiB), so that no message can name a blob
 * the relay could never have held. The largest file that seals within it is
 * `MAX_ATTACHMENT_FILE_BYTES` (client/attachments.ts).
 */
export const MAX_ATTACHMENT_BYTES = MAX_BLOB_BYTES;

/** Longest attachment file name, in UTF-16 code units. */
export const MAX_FILE_NAME_CHARS = 255;

/** Longest attachment media type (`type/subtype`, RFC 6838 restricted names), in characters. */
export const MAX_MEDIA_TYPE_CHARS = 127;

/** Attachment key (XChaCha20-Poly1305) and blob digest (SHA-256), in bytes. */
export const ATTACHMENT_KEY_BYTES = 32;
export const ATTACHMENT_DIGEST_BYTES = 32;

/** Most items (earlier messages of one case) in one history hand-off part. */
export const MAX_SYNC_ITEMS = 256;

/** Highest history hand-off part number (parts count from 0). */
export const MAX_SYNC_PARTS = 10_000;

/** Highest HLC counter; at the bound the clock moves its wall time on by 1 ms instead. */
export const MAX_HLC_COUNTER = 0xffff;

/**
 * How far a peer's HLC wall time may run ahead of this device's clock, in ms. An event further
 * ahead is held back (not applied, not lost) until this device's clock comes within the bound,
 * so that a device with a wrong clock, or a compromised one, cannot win every register for ever
 * nor drag every replica's clock into the future.
 */
export const MAX_HLC_AHEAD_MS = 60_000;

/** Case events held back for running ahead, per device; beyond it the furthest ahead is dropped. */
export const MAX_DEFERRED_CASE_EVENTS = 1_024;

/** Tag registers of one case (present and removed tags together). */
export const MAX_TAGS_PER_CASE = 64;

/** Internal notes of one case. */
export const MAX_NOTES_PER_CASE = 500;

/** Cases one device's replica holds. */
export const MAX_CASES_PER_REPLICA = 10_000;
