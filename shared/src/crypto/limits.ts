/**
 * Bounds on what the crypto core lets a device hold, in one place. Each is checked where the
 * state it bounds changes, and each has a test at the bound and one past it. What a stranger can
 * make a device hold follows from these (ADR 0006, "Bounded state").
 */

/**
 * Peer devices with a session record, at most. At the bound a new peer is admitted by evicting
 * the least recently active peer this device has never written to (anyone can become one: a
 * handshake from a throwaway identity); when every peer is one this device wrote to, a new peer
 * is refused with `limit_exceeded`. Replay protection does not depend on the record (it is kept
 * with the signed prekey), so evicting a record reopens no replay.
 */
export const MAX_PEER_DEVICES = 10_000;

/**
 * Sessions of one peer device kept beside its current one (Signal's "archived session states"),
 * for a peer this device has written to. When both devices start a handshake at once, or one
 * restarts while the other's messages are in flight, each side ends up with more than one live
 * session per peer; keeping the previous ones lets every message find its session. The oldest
 * archived session is dropped beyond this.
 */
export const MAX_ARCHIVED_SESSIONS = 4;

/**
 * Handshakes (initiator base keys) remembered per signed prekey, so that a replayed initial
 * message cannot start a session again while that signed prekey is held (libsignal keeps the
 * base keys used with a last-resort Kyber prekey the same way). When the current signed prekey's
 * memory fills, the handshake that fills it also rotates the signed prekeys early: the full one
 * becomes the previous one, takes no further handshake (`limit_exceeded`), and is deleted with
 * its memory at the next rotation, after which its replays fail with `unknown_prekey`.
 */
export const MAX_REMEMBERED_HANDSHAKES_PER_SIGNED_PREKEY = 10_000;

/**
 * Archived sessions kept for a peer this device has never written to (anyone can be one): one,
 * for a peer that restarted with messages of its previous session still queued. Simultaneous
 * initiation, which needs more, only happens with a peer this device wrote to.
 */
export const MAX_ARCHIVED_SESSIONS_UNWRITTEN = 1;

/**
 * Skipped message keys kept for one peer device, over all its sessions ("2000 in all" of
 * docs/protocol.md): beyond it the oldest go, from the oldest archived session first.
 */
export const MAX_SKIPPED_KEYS_PER_PEER = 2_000;

/**
 * Skipped message keys kept for all the peers this device has never written to, together: what
 * strangers can make a device hold in skipped keys. When it is full, a further stranger's
 * message that skips keeps none of them (it is still read; the skipped messages are then lost),
 * so strangers cannot take the room of the peers this device talks with.
 */
export const MAX_SKIPPED_KEYS_UNWRITTEN_PEERS = 10_000;

/** Skipped message keys kept for all peers together (about 4.4 MB of key material at most). */
export const MAX_SKIPPED_KEYS_PER_DEVICE = 64_000;

/**
 * Failed decryptions of envelopes naming one held peer that are worked on per
 * `FAILED_DECRYPTION_WINDOW_MS`; beyond, further envelopes naming that peer are refused with
 * `limit_exceeded` before any work until the window ends (`FailureBudget`, cipher.ts). Forged
 * ratchet and initial messages are already cheap (their early tags); this bounds the ones that
 * are not: messages a peer itself (or whoever holds its keys) makes fail after the tag, such as
 * an initial message with a valid tag and a bad KEM ciphertext, which costs the whole responder
 * handshake.
 */
export const MAX_FAILED_DECRYPTIONS_PER_PEER = 8;
export const FAILED_DECRYPTION_WINDOW_MS = 60_000;
