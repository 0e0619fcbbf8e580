/**
 * Named limits of wire protocol v1. Every limit is enforced where bytes enter (the frame
 * schemas, `ws`'s `maxPayload`) and each has a test at the limit and one past it.
 */

/** The protocol version every frame carries in `v`; checked before anything else is parsed. */
export const PROTOCOL_VERSION = 1;

/** WebSocket subprotocol a client offers; the relay refuses the upgrade without it. */
export const WS_SUBPROTOCOL = 'passage.v1';

/** Largest opaque envelope the relay accepts, in bytes (before base64url). */
export const MAX_ENVELOPE_BYTES = 65_536;

/**
 * Largest WebSocket message, in bytes, in either direction: a maximal envelope in base64url plus
 * the JSON around it, with room for the largest prekey publish. Passed to `ws` as `maxPayload`.
 */
export const MAX_FRAME_BYTES = 98_304;

/**
 * Most WebSocket frames one message may arrive in. Browsers and `ws` send a message as one
 * frame; the bound stops a peer from making the relay hold thousands of tiny fragments (each a
 * buffer object) of a message it never finishes. Passed to `ws` as `maxFragments`; past it the
 * connection is closed with 1008.
 */
export const MAX_MESSAGE_FRAGMENTS = 16;

/**
 * Most separate socket reads of not yet parsed bytes the relay holds for one connection (a
 * frame trickled in tiny TCP segments). A maximal frame in segments of 96 bytes fits. Passed to
 * `ws` as `maxBufferedChunks`; past it the connection is closed with 1008.
 */
export const MAX_RECEIVE_CHUNKS = 1_024;

/** Client-chosen message ids: 16 random bytes, 22 base64url characters. */
export const MESSAGE_ID_BYTES = 16;

/** Mailbox ids: SHA-256 of a labelled Ed25519 public key, 43 base64url characters. */
export const MAILBOX_ID_BYTES = 32;

/** Bytes of the relay's fresh authentication challenge. */
export const AUTH_NONCE_BYTES = 32;

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

/** Request ids are client-chosen integers in [0, MAX_REQUEST_ID], echoed in the answer. */
export const MAX_REQUEST_ID = 2_147_483_647;

/** Most message ids one `ack` frame may carry. */
export const MAX_ACK_IDS = 256;

/** Largest identity part or signed-prekey part of a published prekey bundle, in bytes. */
export const MAX_PREKEY_PART_BYTES = 4_096;

/** Largest single one-time prekey (it may carry an ML-KEM share), in bytes. */
export const MAX_ONE_TIME_PREKEY_BYTES = 1_600;

/** Most one-time prekeys in one `prekeys.publish` frame. */
export const MAX_ONE_TIME_PREKEYS_PER_PUBLISH = 32;

/** Most one-time prekeys the directory keeps per mailbox; a publish beyond it is refused. */
export const MAX_ONE_TIME_PREKEYS_STORED = 100;

/** One-time prekey ids are integers in [0, MAX_PREKEY_ID]. */
export const MAX_PREKEY_ID = 4_294_967_295;

/**
 * Proof-of-work for first contact (`pow.request` / `pow.solve`, shared/src/pow): the version of
 * the challenge format, checked before any other field of a challenge.
 */
export const POW_VERSION = 1;

/** Bytes of the relay's random proof-of-work challenge nonce. */
export const POW_NONCE_BYTES = 16;

/** Bytes of a proof-of-work solution. 2^64 candidates: no difficulty this format allows runs out. */
export const POW_SOLUTION_BYTES = 8;

/** The least difficulty a challenge may ask for, in leading zero bits. */
export const POW_MIN_BITS = 1;

/**
 * The most a challenge may ask for: 2^32 hashes is minutes on a laptop and far more on a cheap
 * phone, so a relay asking for more is broken or hostile and the client refuses rather than spin.
 */
export const POW_MAX_BITS = 32;

/** How far in the future a challenge's expiry may lie, in ms (verifier and solver both check). */
export const POW_MAX_TTL_MS = 10 * 60 * 1000;

/** Most `send`s one proof-of-work admission may carry (the relay's setting is at most this). */
export const MAX_POW_SENDS_PER_ADMISSION = 10_000;

/** Largest admission count a `firstcontact.count` frame reports (the relay's counters saturate). */
export const MAX_FIRST_CONTACT_COUNT = 4_294_967_295;

/**
 * Largest state blob (`state.put`), in bytes before base64url: the one opaque, encrypted record a
 * mailbox keeps of itself on the relay (a returning contact's sessions, transcript and answers).
 * It travels in one frame, so it fits under MAX_FRAME_BYTES with the JSON around it; the frame
 * bound is every connection's allowance, unauthenticated ones included, and is not raised for it
 * (docs/adr/0014-state-and-attachment-blobs.md).
 */
export const MAX_STATE_BLOB_BYTES = 65_536;

/**
 * State generations are integers in [1, MAX_STATE_GENERATION] drawn at random by the relay for
 * each stored state (0 means "none"), so that a generation is never handed out twice for one
 * mailbox, not even after a delete (a counter would start again at 1: compare-and-set would then
 * let a stale tab overwrite a newer state of the same number).
 */
export const MAX_STATE_GENERATION = Number.MAX_SAFE_INTEGER;

/** Attachment blob ids: 16 random bytes drawn by the relay (a capability), 22 base64url chars. */
export const BLOB_ID_BYTES = 16;

/** Upload tokens of `blob.reserved`: 32 random bytes; the relay keeps only their SHA-256. */
export const BLOB_TOKEN_BYTES = 32;

/**
 * Largest attachment blob the relay keeps (`PUT /v1/blobs/<id>`), in bytes: an attachment
 * encrypted once by the client. An organization's profile may set a smaller limit, which clients
 * enforce; the relay enforces only this one.
 */
export const MAX_BLOB_BYTES = 8_388_608;

/** How long an upload token of `blob.reserved` may be used, in ms. */
export const BLOB_RESERVATION_TTL_MS = 10 * 60 * 1000;

/**
 * Most `blob.reserve` frames answered on one connection. With the proof-of-work a connection
 * must have solved first, it bounds what one solved challenge lets a client store:
 * MAX_BLOB_RESERVATIONS_PER_CONNECTION × MAX_BLOB_BYTES (64 MiB) for the queue TTL.
 */
export const MAX_BLOB_RESERVATIONS_PER_CONNECTION = 8;
