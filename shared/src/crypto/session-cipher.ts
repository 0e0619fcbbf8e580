/**
 * `SessionCipher`: the transitions of cipher.ts and fanout.ts, each committed to its store at
 * once. For callers with nothing else to write in the same transaction (the CLI, the tests, a
 * contact's page that keeps nothing); a caller that must store the message itself before the
 * `ack` calls the transitions and commits their transaction together with its own data.
 */
import type { Primitives } from './primitives.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import type { DecryptOptions, DecryptResult, FailureBudget } from './cipher.js';
import { decryptEnvelope, encryptFor, startSession } from './cipher.js';
import type { AddressedEnvelope } from './fanout.js';
import { fanOut, fanOutToRoster, removeSession, retainRosterSessions } from './fanout.js';
import type { PublicIdentity } from './identity.js';
import type { Roster } from './roster.js';
import type { Session } from './session.js';
import type { DeviceStore } from './store.js';

export class SessionCipher {
  constructor(
    private readonly p: Primitives,
    readonly store: DeviceStore,
    /** The device's budget of failed decryptions (cipher.ts `FailureBudget`), if any. */
    private readonly budget?: FailureBudget,
  ) {}

  get identity(): DeviceStore['identity'] {
    return this.store.identity;
  }

  /** The current session with a peer device, if any (the one `encryptFor` uses). */
  session(peer: PublicIdentity): Session | undefined {
    return this.store.loadSession(peer.address)?.current;
  }

  /** Every session held with a peer device, current first, then archived (newest first). */
  sessionsWith(peer: PublicIdentity): readonly Session[] {
    return this.store.loadSession(peer.address)?.sessions ?? [];
  }

  /** Peer devices with a record. */
  get peerCount(): number {
    return this.store.sessionCount;
  }

  startSession(bundle: VerifiedPrekeyBundle): Session {
    const { record, transaction } = startSession(this.p, this.store, bundle);
    this.store.commit(transaction);
    return record.current;
  }

  encryptFor(recipient: PublicIdentity, plaintext: Uint8Array): Uint8Array {
    const { envelope, transaction } = encryptFor(this.p, this.store, recipient, plaintext);
    this.store.commit(transaction);
    return envelope;
  }

  decrypt(envelope: Uint8Array, options: DecryptOptions = {}): DecryptResult {
    const budget = options.budget ?? this.budget;
    const result = decryptEnvelope(
      this.p,
      this.store,
      envelope,
      budget === undefined ? options : { ...options, budget },
    );
    this.store.commit(result.transaction);
    return result;
  }

  fanOut(
    recipients: readonly PublicIdentity[],
    plaintext: Uint8Array,
    bundleFor?: (device: PublicIdentity) => VerifiedPrekeyBundle | undefined,
  ): AddressedEnvelope[] {
    const { envelopes, transaction } = fanOut(this.p, this.store, recipients, plaintext, bundleFor);
    this.store.commit(transaction);
    return envelopes;
  }

  fanOutToRoster(
    roster: Roster,
    nowSeconds: number,
    plaintext: Uint8Array,
    bundleFor?: (device: PublicIdentity) => VerifiedPrekeyBundle | undefined,
  ): AddressedEnvelope[] {
    const result = fanOutToRoster(this.p, this.store, roster, nowSeconds, plaintext, bundleFor);
    this.store.commit(result.transaction);
    return result.envelopes;
  }

  retainRosterSessions(roster: Roster): number {
    const { dropped, transaction } = retainRosterSessions(this.store, roster);
    this.store.commit(transaction);
    return dropped;
  }

  removeSession(peer: PublicIdentity): boolean {
    const transaction = removeSession(this.store, peer);
    if (transaction === null) return false;
    this.store.commit(transaction);
    return true;
  }
}
