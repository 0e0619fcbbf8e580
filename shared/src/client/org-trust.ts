/**
 * The organization as this device trusts it: the signed profile (and the roster inside it),
 * fetched through an injected port (a page: `fetch('/v1/org/profile')`) and verified against
 * the organization key the device pins (`verifyOrgProfile`: signature, expiry, the roster's own
 * signature and expiry, and the version against the profile accepted before and against
 * `minVersion`, the floor a restored contact keeps in its state blob). Only the highest version
 * seen is kept: a relay that serves an older profile, one signed by another
 * key, an expired one, or one with a device slipped into its roster is refused with the
 * `OrgError` of the check that failed, and the profile held before stays in use.
 *
 * No I/O of its own: the fetch and the clock are injected.
 */
import { OrgError, OrgErrorCode } from '../org/errors.js';
import type { Ed25519PublicKey } from '../crypto/keys.js';
import { verifyOrgProfile, type OrgProfile } from '../crypto/org-profile.js';
import type { Primitives } from '../crypto/primitives.js';
import type { Roster } from '../crypto/roster.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { Clock } from './transport.js';

/** Fetches the organization's signed profile as the relay serves it (bytes, unverified). */
export type ProfileFetcher = () => Promise<Uint8Array>;

export interface OrgTrustOptions {
  readonly p: Primitives;
  /** The organization key the device pins (published by the organization elsewhere). */
  readonly organizationKey: Ed25519PublicKey;
  readonly fetchProfile: ProfileFetcher;
  readonly clock: Clock;
  /** A profile accepted before (a restored device): later ones must not be older. */
  readonly lastAccepted?: OrgProfile | null;
  /**
   * The lowest profile version to accept (0 by default): what a device that keeps only a
   * version, not the profile, has seen — the contact's state blob (`profileVersion`). A lower
   * version is refused with `profile_rollback`. It binds only as far as the source of the
   * floor can be trusted: a relay that serves an old profile can serve an old blob too, so
   * against a hostile relay the bound is the profile's validity (ADR 0017).
   */
  readonly minVersion?: number;
}

/** What changed when a profile was accepted. */
export interface ProfileChange {
  readonly profile: OrgProfile;
  /** The version held before (null for the first profile). */
  readonly previousVersion: number | null;
  /** Devices of the previous roster that the new one no longer lists. */
  readonly removed: readonly Roster['devices'][number][];
  /** Devices the new roster lists that the previous one did not. */
  readonly added: readonly Roster['devices'][number][];
}

export class OrgTrust {
  readonly #options: OrgTrustOptions;
  #minVersion: number;
  #current: OrgProfile | null;
  #fetchedAtMs: number | undefined;

  /** @throws RangeError for a `minVersion` that is not a non-negative safe integer. */
  constructor(options: OrgTrustOptions) {
    const min = options.minVersion ?? 0;
    if (!Number.isSafeInteger(min) || min < 0) {
      throw new RangeError('OrgTrust minVersion must be a non-negative integer');
    }
    this.#options = options;
    this.#minVersion = min;
    this.#current = options.lastAccepted ?? null;
  }

  /** The profile accepted last (the highest version), if any; it may have expired since. */
  get current(): OrgProfile | null {
    return this.#current;
  }

  /**
   * Raises the lowest version accepted (a restored contact's saved `profileVersion`); a held
   * profile below it is dropped, so the next refresh must bring one at or above it.
   */
  raiseMinVersion(version: number): void {
    if (!Number.isSafeInteger(version) || version < 0) {
      throw new RangeError('OrgTrust minVersion must be a non-negative integer');
    }
    if (version <= this.#minVersion) return;
    this.#minVersion = version;
    if (this.#current !== null && this.#current.version < version) {
      this.#current = null;
      this.#fetchedAtMs = undefined;
    }
  }

  /** When the last refresh succeeded (clock ms), if one has. */
  get fetchedAtMs(): number | undefined {
    return this.#fetchedAtMs;
  }

  /**
   * Fetches and verifies the profile; on success it becomes `current` (when its version is the
   * one held, nothing changes). Throws the `OrgError` of the first failed check (the held
   * profile stays), or `ClientError('no_profile')` when the fetch itself failed.
   */
  async refresh(): Promise<ProfileChange | null> {
    let bytes: Uint8Array;
    try {
      bytes = await this.#options.fetchProfile();
    } catch (error) {
      throw new ClientError(ClientErrorCode.NO_PROFILE, { cause: error });
    }
    return this.accept(bytes);
  }

  /**
   * Verifies profile bytes obtained some other way and accepts them as `refresh` does
   * (synchronously). Null when it is the profile already held.
   */
  accept(bytes: Uint8Array): ProfileChange | null {
    const nowSeconds = Math.floor(this.#options.clock.now() / 1000);
    const previous = this.#current;
    const profile = verifyOrgProfile(this.#options.p, bytes, {
      organizationKey: this.#options.organizationKey,
      nowSeconds,
      lastAccepted: previous,
    });
    if (profile.version < this.#minVersion) throw new OrgError(OrgErrorCode.ROLLBACK);
    this.#fetchedAtMs = this.#options.clock.now();
    if (previous !== null && previous.version === profile.version) return null;
    this.#current = profile;
    const before = previous?.roster.devices ?? [];
    const after = profile.roster.devices;
    return {
      profile,
      previousVersion: previous?.version ?? null,
      removed: before.filter((d) => !after.some((n) => n.equals(d))),
      added: after.filter((d) => !before.some((o) => o.equals(d))),
    };
  }

  /**
   * The profile to route by now: the one held, if neither it nor its roster has expired.
   * Throws `ClientError('no_profile')` when none is held, or the `OrgError` for expiry.
   */
  usable(): OrgProfile {
    const profile = this.#current;
    if (profile === null) throw new ClientError(ClientErrorCode.NO_PROFILE);
    const nowSeconds = Math.floor(this.#options.clock.now() / 1000);
    if (nowSeconds >= profile.expiresAtSeconds) throw new OrgError(OrgErrorCode.EXPIRED);
    if (nowSeconds >= profile.roster.expiresAtSeconds)
      throw new OrgError(OrgErrorCode.ROSTER_EXPIRED);
    return profile;
  }
}
