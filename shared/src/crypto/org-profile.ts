/**
 * Signing and verifying the organization profile (container: `org/signed.ts`, content:
 * `org/profile.ts`). The admin's tool signs; a page verifies against the organization key it
 * pins, and only then trusts the roster it fans out to and the questionnaire it shows.
 *
 * A page's checks, in order (each refusal has its own `OrgErrorCode`):
 *   1. size, format version, structure                       (before anything is trusted)
 *   2. the pinned organization key, the signature, expiry    (`checkSignedProfile`)
 *   3. the version against the profile accepted before: lower is a rollback, equal must be
 *      byte for byte the same profile
 *   4. the roster inside: `verifyRoster` with the same organization key, its own expiry and
 *      its serial against the roster accepted before
 *   5. the content: canonical JSON, the zod schema, the questionnaire's rules
 * The clock is the caller's (a page's `Date.now`, a test's fixed time).
 */
import { OrgError, OrgErrorCode } from '../org/errors.js';
import { decodeProfileContent, encodeProfileContent, type ProfileContent } from '../org/profile.js';
import { checkSignedProfile, encodeProfileBody, profileSignedMessage } from '../org/signed.js';
import { CryptoErrorCode, isCryptoError } from './errors.js';
import { bytesEqual, concatBytes } from './encoding.js';
import type { Ed25519PublicKey, Ed25519Seed } from './keys.js';
import type { Primitives } from './primitives.js';
import { verifyRoster, type Roster } from './roster.js';

/** What the organization signs into a profile. */
export interface OrgProfileInput {
  readonly version: number;
  readonly issuedAtSeconds: number;
  readonly expiresAtSeconds: number;
  /** The signed roster (`signRoster`), under the same organization key. */
  readonly roster: Uint8Array;
  readonly content: ProfileContent;
}

/** A verified profile. */
export interface OrgProfile {
  readonly organizationKey: Ed25519PublicKey;
  readonly version: number;
  readonly issuedAtSeconds: number;
  readonly expiresAtSeconds: number;
  readonly roster: Roster;
  readonly content: ProfileContent;
  /** The profile's bytes, to compare the next one against. */
  readonly bytes: Uint8Array;
}

/**
 * Signs a profile with the organization's seed. Throws `profile_invalid` for content that is not
 * valid, `profile_too_large` past `MAX_PROFILE_BYTES`, RangeError for bad numbers.
 */
export function signOrgProfile(
  p: Primitives,
  organizationSeed: Ed25519Seed,
  input: OrgProfileInput,
): Uint8Array {
  const organizationKey = p.ed25519KeyPairFromSeed(organizationSeed).publicKey;
  const body = encodeProfileBody({
    organizationKey,
    version: input.version,
    issuedAtSeconds: input.issuedAtSeconds,
    expiresAtSeconds: input.expiresAtSeconds,
    roster: input.roster,
    content: encodeProfileContent(input.content),
  });
  return concatBytes(body, p.ed25519Sign(organizationSeed, profileSignedMessage(body)));
}

/** What a page checks a profile against. */
export interface OrgProfileCheck {
  /** The organization key the page pins. */
  readonly organizationKey: Ed25519PublicKey;
  readonly nowSeconds: number;
  /** The profile accepted before, if any (its roster is the roster accepted before). */
  readonly lastAccepted?: OrgProfile | null;
}

function rosterRefusal(error: unknown): OrgError {
  if (isCryptoError(error, CryptoErrorCode.ROSTER_EXPIRED)) {
    return new OrgError(OrgErrorCode.ROSTER_EXPIRED, { cause: error });
  }
  if (isCryptoError(error, CryptoErrorCode.ROSTER_ROLLBACK)) {
    return new OrgError(OrgErrorCode.ROSTER_ROLLBACK, { cause: error });
  }
  if (isCryptoError(error)) return new OrgError(OrgErrorCode.ROSTER_INVALID, { cause: error });
  throw error;
}

/**
 * Verifies a profile as a page must before using it; throws `OrgError` with the code of the
 * first check that fails (see the module comment for the order).
 */
export function verifyOrgProfile(
  p: Primitives,
  bytes: Uint8Array,
  check: OrgProfileCheck,
): OrgProfile {
  const read = checkSignedProfile(bytes, {
    organizationKey: check.organizationKey,
    verify: (key, message, signature) => p.ed25519Verify(key, message, signature),
    nowSeconds: check.nowSeconds,
  });
  const last = check.lastAccepted ?? null;
  if (last !== null) {
    if (
      read.version < last.version ||
      (read.version === last.version && !bytesEqual(bytes, last.bytes))
    ) {
      throw new OrgError(OrgErrorCode.ROLLBACK);
    }
  }
  let roster: Roster;
  try {
    roster = verifyRoster(p, read.roster, {
      organizationKey: check.organizationKey,
      nowSeconds: check.nowSeconds,
      lastAccepted: last?.roster ?? null,
    });
  } catch (error) {
    throw rosterRefusal(error);
  }
  const content = decodeProfileContent(read.content);
  return {
    organizationKey: check.organizationKey,
    version: read.version,
    issuedAtSeconds: read.issuedAtSeconds,
    expiresAtSeconds: read.expiresAtSeconds,
    roster,
    content,
    bytes: bytes.slice(),
  };
}
