/**
 * The session layer: one device's pairwise sessions (crypto/session-cipher.ts over a
 * `DeviceStore`), and the prekey bundles it fetches from the relay's directory to start new
 * ones. It seals one plaintext for a list of devices (fan-out, ADR 0006) and opens what the
 * inbox hands it; each of the two is one transaction, committed to the store before the
 * envelopes leave or before the ack goes (store.ts): nothing between computing and committing
 * awaits, so no other transition can interleave.
 *
 * Which devices a message goes to is not decided here (routing.ts, from the verified roster):
 * `seal` encrypts to exactly the devices it is given.
 */
import { CryptoErrorCode, isCryptoError } from '../crypto/errors.js';
import { FailureBudget } from '../crypto/cipher.js';
import { decodeWirePrekeyBundle, type VerifiedPrekeyBundle } from '../crypto/bundle.js';
import type { PublicIdentity } from '../crypto/identity.js';
import type { Primitives } from '../crypto/primitives.js';
import type { Roster } from '../crypto/roster.js';
import { SessionCipher } from '../crypto/session-cipher.js';
import type { DeviceStore } from '../crypto/store.js';
import type { FrameOf, ServerFrameType } from '../protocol/frames.js';
import { PROTOCOL_VERSION } from '../protocol/limits.js';
import { mailboxIdFromPublicKey } from '../protocol/mailbox.js';
import type { RequestFrame } from './connection.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { Clock } from './transport.js';

/** Bundles fetched at once when a message starts sessions with many devices. */
export const MAX_PARALLEL_BUNDLE_FETCHES = 8;

/**
 * Fetches a device's published bundle: null when it published none; throws
 * `ClientError('bad_bundle')` for a bundle that is not the device's or does not verify, and the
 * request's own errors (`RelayError`, `ClientError`) when the relay could not answer.
 */
export type BundleSource = (device: PublicIdentity) => Promise<VerifiedPrekeyBundle | null>;

/** A request to the relay (`PassageClient.request`). */
export type Requester = <T extends ServerFrameType>(
  frame: RequestFrame,
  expect: T,
) => Promise<FrameOf<T>>;

/** The mailbox a device reads (derived from its Ed25519 key, docs/protocol.md). */
export function mailboxOf(p: Pick<Primitives, 'sha256'>, device: PublicIdentity): string {
  return mailboxIdFromPublicKey(device.signingKey, (d) => p.sha256(d));
}

/** A `BundleSource` over the relay's prekey directory (`prekeys.fetch`). */
export function relayBundleSource(p: Primitives, request: Requester): BundleSource {
  return async (device) => {
    const mailbox = mailboxOf(p, device);
    const answer = await request(
      { v: PROTOCOL_VERSION, t: 'prekeys.fetch', mailbox },
      'prekeys.bundle',
    );
    if (answer.mailbox !== mailbox) throw new ClientError(ClientErrorCode.BAD_BUNDLE);
    if (answer.bundle === null) return null;
    let bundle: VerifiedPrekeyBundle;
    try {
      bundle = decodeWirePrekeyBundle(p, answer.bundle);
    } catch (error) {
      throw new ClientError(ClientErrorCode.BAD_BUNDLE, { cause: error });
    }
    // The directory is the relay's: a bundle of another identity is a swap, never used.
    if (!bundle.identity.equals(device)) throw new ClientError(ClientErrorCode.BAD_BUNDLE);
    return bundle;
  };
}

/** One sealed envelope and where it goes. */
export interface SealedEnvelope {
  readonly recipient: PublicIdentity;
  readonly mailbox: string;
  readonly envelope: Uint8Array;
}

/** Why a device got no envelope. */
export type UnreachableReason =
  /** No session, and the device has published no prekeys. */
  | 'no_bundle'
  /** No session, and the relay's bundle for it is not its own or does not verify. */
  | 'bad_bundle';

export interface SealResult {
  readonly sealed: readonly SealedEnvelope[];
  /** Devices left out, and why (a device still gets every later message once reachable). */
  readonly unreachable: readonly {
    readonly device: PublicIdentity;
    readonly reason: UnreachableReason;
  }[];
}

/** What opening one envelope gave. */
export type OpenResult =
  | {
      readonly ok: true;
      /** The sending device, authenticated by its session. */
      readonly sender: PublicIdentity;
      readonly plaintext: Uint8Array;
      /** The handshake used up one of this device's one-time prekeys (top up). */
      readonly consumedOneTimePrekey: boolean;
      /** The signed prekeys were rotated by this message (publish them). */
      readonly rotatedPrekeys: boolean;
    }
  | {
      readonly ok: false;
      /** A `CryptoErrorCode`. */
      readonly code: string;
      /** True when the envelope should stay unacknowledged and be read later (a budget). */
      readonly retry: boolean;
    };

export interface SessionsOptions {
  readonly p: Primitives;
  readonly store: DeviceStore;
  readonly bundles: BundleSource;
  readonly clock: Clock;
}

export class Sessions {
  readonly #p: Primitives;
  readonly #cipher: SessionCipher;
  readonly #bundles: BundleSource;
  readonly #clock: Clock;

  constructor(options: SessionsOptions) {
    this.#p = options.p;
    this.#clock = options.clock;
    this.#bundles = options.bundles;
    this.#cipher = new SessionCipher(
      options.p,
      options.store,
      new FailureBudget(() => options.clock.now()),
    );
  }

  /** The store the sessions live in (what a state blob serializes). */
  get store(): DeviceStore {
    return this.#cipher.store;
  }

  get self(): PublicIdentity {
    return this.#cipher.identity.publicIdentity;
  }

  /** True when a message to `device` needs no handshake. */
  canSend(device: PublicIdentity): boolean {
    return this.#cipher.session(device)?.canSend === true;
  }

  /**
   * Seals `plaintext` for every device in `recipients` that has a session or a published
   * bundle, in one committed transaction. Bundles are fetched first (that is the only await);
   * a fetch the relay could not answer rejects, with nothing committed. Throws
   * `ClientError('no_recipients')` when no recipient is reachable.
   */
  async seal(recipients: readonly PublicIdentity[], plaintext: Uint8Array): Promise<SealResult> {
    const { bundles, unreachable } = await this.fetchBundles(
      recipients.filter((d) => !this.canSend(d)),
    );
    // From here on synchronous: computed against the committed state and committed at once.
    // A device may have got a session meanwhile (another seal): fan-out then uses it.
    const reachable = recipients.filter((d) => this.canSend(d) || bundles.has(d.address));
    if (reachable.length === 0) throw new ClientError(ClientErrorCode.NO_RECIPIENTS);
    const envelopes = this.#cipher.fanOut(reachable, plaintext, (d) => bundles.get(d.address));
    return {
      sealed: envelopes.map((e) => ({
        recipient: e.recipient,
        mailbox: mailboxOf(this.#p, e.recipient),
        envelope: e.envelope,
      })),
      unreachable: unreachable.filter((u) => !reachable.some((d) => d.equals(u.device))),
    };
  }

  /**
   * Fetches the bundles of these devices (`MAX_PARALLEL_BUNDLE_FETCHES` at a time): those
   * found, by address, and the devices without a usable one. Rejects with the first error of a
   * fetch the relay could not answer.
   */
  async fetchBundles(devices: readonly PublicIdentity[]): Promise<{
    bundles: Map<string, VerifiedPrekeyBundle>;
    unreachable: { device: PublicIdentity; reason: UnreachableReason }[];
  }> {
    const bundles = new Map<string, VerifiedPrekeyBundle>();
    const unreachable: { device: PublicIdentity; reason: UnreachableReason }[] = [];
    for (let i = 0; i < devices.length; i += MAX_PARALLEL_BUNDLE_FETCHES) {
      const batch = devices.slice(i, i + MAX_PARALLEL_BUNDLE_FETCHES);
      const results = await Promise.allSettled(batch.map((d) => this.#bundles(d)));
      for (const [j, result] of results.entries()) {
        const device = batch[j]!;
        if (result.status === 'fulfilled') {
          if (result.value === null) unreachable.push({ device, reason: 'no_bundle' });
          else bundles.set(device.address, result.value);
          continue;
        }
        const error: unknown = result.reason;
        if (error instanceof ClientError && error.code === ClientErrorCode.BAD_BUNDLE) {
          unreachable.push({ device, reason: 'bad_bundle' });
          continue;
        }
        throw error;
      }
    }
    return { bundles, unreachable };
  }

  /**
   * Opens an envelope delivered to this device and commits what it changed. Never throws at
   * a peer's bytes: a failure is a result with its `CryptoErrorCode`; `limit_exceeded` (the
   * sender's failure budget, or the device's peer bound) asks to leave it unacknowledged.
   */
  open(envelope: Uint8Array): OpenResult {
    try {
      const result = this.#cipher.decrypt(envelope, {
        nowSeconds: Math.floor(this.#clock.now() / 1000),
      });
      return {
        ok: true,
        sender: result.sender,
        plaintext: result.plaintext,
        consumedOneTimePrekey: result.consumedOneTimePrekeyId !== null,
        rotatedPrekeys: result.rotatedPrekeys,
      };
    } catch (error) {
      // A failing commit is a bug of the store, not the peer's doing: let the inbox retry it.
      if (!isCryptoError(error) || error.code === CryptoErrorCode.INTERNAL) throw error;
      return {
        ok: false,
        code: error.code,
        retry: error.code === CryptoErrorCode.LIMIT_EXCEEDED,
      };
    }
  }

  /** Deletes the sessions with these devices (a removed coordinator); returns how many. */
  forget(devices: readonly PublicIdentity[]): number {
    let n = 0;
    for (const d of devices) if (this.#cipher.removeSession(d)) n++;
    return n;
  }

  /** Keeps only the sessions with roster devices (a contact's device); returns how many went. */
  retainRoster(roster: Roster): number {
    return this.#cipher.retainRosterSessions(roster);
  }
}
