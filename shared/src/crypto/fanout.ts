/**
 * Multi-device messaging (ADR 0006): one pairwise session per device pair, and one message
 * encrypted for a list of devices. Pure transitions over the stores, like cipher.ts: each
 * returns the envelopes and one transaction for the caller to commit before they leave.
 *
 * Who may receive is decided by the caller, from a roster verified with roster.ts: fan-out
 * encrypts to exactly the identities it is given and never to one it learnt from the network.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import { RecordOverlay, encryptIn, startSessionIn } from './cipher.js';
import type { PublicIdentity } from './identity.js';
import type { Roster } from './roster.js';
import type { IdentityKeyStore, SessionStore, Transaction } from './store.js';
import { sessionsTransaction } from './store.js';

/** An envelope for one device. */
export interface AddressedEnvelope {
  readonly recipient: PublicIdentity;
  readonly envelope: Uint8Array;
}

/** What a fan-out returns: commit `transaction` before any envelope leaves. */
export interface FanOutResult {
  readonly envelopes: AddressedEnvelope[];
  readonly transaction: Transaction;
}

/**
 * Encrypts one message for every device in `recipients` (each through its own pairwise
 * session). A device without a session gets one from `bundleFor` (a verified bundle). All or
 * nothing: if any device has neither a usable session nor a bundle, `no_session` is thrown; if
 * new devices do not fit under `MAX_PEER_DEVICES`, `limit_exceeded`; either way before anything
 * is encrypted.
 */
export function fanOut(
  p: Primitives,
  state: IdentityKeyStore & SessionStore,
  recipients: readonly PublicIdentity[],
  plaintext: Uint8Array,
  bundleFor: (device: PublicIdentity) => VerifiedPrekeyBundle | undefined = () => undefined,
): FanOutResult {
  const records = new RecordOverlay(state);
  const bundles: VerifiedPrekeyBundle[] = [];
  for (const device of recipients) {
    if (records.load(device.address)?.current.canSend === true) continue;
    const bundle = bundleFor(device);
    if (bundle === undefined || !bundle.identity.equals(device)) {
      throw new CryptoError(CryptoErrorCode.NO_SESSION);
    }
    bundles.push(bundle);
  }
  // All or nothing also at the peer bound: make room (or refuse) before starting anything.
  const keep = new Set(recipients.map((d) => d.address));
  records.admit(bundles.filter((b) => records.load(b.identity.address) === undefined).length, keep);
  for (const bundle of bundles) startSessionIn(p, state, records, bundle);
  const envelopes = recipients.map((recipient) => ({
    recipient,
    envelope: encryptIn(p, state, records, recipient, plaintext),
  }));
  return { envelopes, transaction: records.transaction() };
}

/**
 * Fans out to the devices of a roster verified with `verifyRoster`, except this device itself
 * (a coordinator writing to its colleagues). Throws `roster_expired` once the roster has
 * expired at `nowSeconds`, so a page left open does not keep using a stale list.
 */
export function fanOutToRoster(
  p: Primitives,
  state: IdentityKeyStore & SessionStore,
  roster: Roster,
  nowSeconds: number,
  plaintext: Uint8Array,
  bundleFor?: (device: PublicIdentity) => VerifiedPrekeyBundle | undefined,
): FanOutResult {
  if (nowSeconds >= roster.expiresAtSeconds) throw new CryptoError(CryptoErrorCode.ROSTER_EXPIRED);
  const me = state.identity.publicIdentity;
  return fanOut(
    p,
    state,
    roster.devices.filter((d) => !d.equals(me)),
    plaintext,
    bundleFor,
  );
}

/**
 * Deletes the records of devices not listed in `roster` (verified with `verifyRoster`), and
 * returns how many. A contact's page runs it on every roster it accepts: leaving a device out
 * of `fanOutToRoster` stops writing to it, but only this stops a device that the organization
 * removed (a seized phone) from still being READ, as if it spoke for the organization. Not for
 * coordinators, whose sessions with contacts are not on any roster. Replays stay refused: the
 * handshakes answered are remembered with the signed prekey, not in the record.
 */
export function retainRosterSessions(
  state: SessionStore,
  roster: Roster,
): { readonly dropped: number; readonly transaction: Transaction } {
  const listed = new Set(roster.devices.map((d) => d.address));
  const gone = [...state.sessionAddresses()].filter((a) => !listed.has(a));
  return { dropped: gone.length, transaction: sessionsTransaction(gone.map((a) => [a, null])) };
}

/**
 * Deletes the record of a peer device, so that nothing more is sent to it or accepted from it
 * (until a new handshake). Null when there is none.
 */
export function removeSession(state: SessionStore, peer: PublicIdentity): Transaction | null {
  if (state.loadSession(peer.address) === undefined) return null;
  return sessionsTransaction([[peer.address, null]]);
}
