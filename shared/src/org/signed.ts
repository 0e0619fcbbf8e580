/**
 * The signed organization profile's container, which everyone reads: the relay (to accept a
 * publish: size, version, key, signature, expiry), the pages and the admin's tool (through
 * `crypto/org-profile.ts`, which also verifies the roster and the content). Nothing here needs
 * the crypto layer: Ed25519 verification is the caller's, as SHA-256 is for the protocol.
 *
 *   profile   = 01 ‖ org key (32) ‖ version (4) ‖ issued at (4) ‖ expires at (4)
 *               ‖ roster length (2) ‖ roster (roster.ts) ‖ content length (4) ‖ content
 *               ‖ signature (64)
 *   signature = Ed25519(org key, "passage/v1/sig/org-profile" ‖ 0 ‖ everything before it)
 *
 * Integers are big-endian; times are Unix seconds; the content is canonical JSON
 * (`profile.ts`). The version only grows: a page refuses a profile older than the one it
 * accepted, the relay one not newer than the one it holds. The label keeps a profile signature
 * from ever passing for a roster's, whose bytes are signed by the same key.
 */
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from '../protocol/limits.js';
import { asciiBytes } from '../protocol/sha256.js';
import { OrgError, OrgErrorCode } from './errors.js';
import {
  MAX_PROFILE_BYTES,
  MAX_PROFILE_VALIDITY_SECONDS,
  PROFILE_FORMAT_VERSION,
} from './limits.js';

/** Signature prefix of a profile: the label and a 0 byte. */
export const PROFILE_SIGNATURE_LABEL = 'passage/v1/sig/org-profile';

/**
 * Ed25519 verification as a parameter (the relay passes Node's, a page its crypto backend's).
 * True only for a valid signature by `publicKey` over `message`.
 */
export type Ed25519Verify = (
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
) => boolean;

/** Bytes of the fixed part before the roster. */
const HEADER_BYTES = 1 + ED25519_PUBLIC_KEY_BYTES + 4 + 4 + 4;

/** The fields of a profile container, as signed. */
export interface ProfileFields {
  readonly organizationKey: Uint8Array;
  readonly version: number;
  readonly issuedAtSeconds: number;
  readonly expiresAtSeconds: number;
  /** The encoded, organization-signed roster. */
  readonly roster: Uint8Array;
  /** The canonical JSON content. */
  readonly content: Uint8Array;
}

/** A container as read: its fields, the signed body and the signature. */
export interface ReadProfile extends ProfileFields {
  /** Everything before the signature (what is signed, after the label). */
  readonly body: Uint8Array;
  readonly signature: Uint8Array;
}

function u16(n: number): number[] {
  return [n >>> 8, n & 0xff];
}

function u32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0
  );
}

function checkTimes(issued: number, expires: number): boolean {
  return issued < expires && expires - issued <= MAX_PROFILE_VALIDITY_SECONDS;
}

/**
 * The body a profile's signature covers. Throws RangeError for fields that cannot be encoded
 * (a key of the wrong length, times out of order or longer than `MAX_PROFILE_VALIDITY_SECONDS`
 * apart, a roster over 65,535 bytes) and `profile_too_large` if the profile would pass
 * `MAX_PROFILE_BYTES`.
 */
export function encodeProfileBody(fields: ProfileFields): Uint8Array {
  const { organizationKey, version, issuedAtSeconds, expiresAtSeconds, roster, content } = fields;
  if (organizationKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new RangeError('profile: organization key must be 32 bytes');
  }
  if (!isU32(version) || !isU32(issuedAtSeconds) || !isU32(expiresAtSeconds)) {
    throw new RangeError('profile: version and times must be 32-bit unsigned integers');
  }
  if (!checkTimes(issuedAtSeconds, expiresAtSeconds)) {
    throw new RangeError('profile: expiry must follow issue, within the longest validity');
  }
  if (roster.length === 0 || roster.length > 0xffff) {
    throw new RangeError('profile: roster length out of range');
  }
  const total = HEADER_BYTES + 2 + roster.length + 4 + content.length + ED25519_SIGNATURE_BYTES;
  if (total > MAX_PROFILE_BYTES) throw new OrgError(OrgErrorCode.TOO_LARGE);
  const body = new Uint8Array(total - ED25519_SIGNATURE_BYTES);
  let at = 0;
  const put = (part: ArrayLike<number>) => {
    body.set(part, at);
    at += part.length;
  };
  put([PROFILE_FORMAT_VERSION]);
  put(organizationKey);
  put(u32(version));
  put(u32(issuedAtSeconds));
  put(u32(expiresAtSeconds));
  put(u16(roster.length));
  put(roster);
  put(u32(content.length));
  put(content);
  return body;
}

/** What the organization signs for a body: the label, a 0 byte, the body. */
export function profileSignedMessage(body: Uint8Array): Uint8Array {
  const prefix = asciiBytes(PROFILE_SIGNATURE_LABEL + '\0');
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

/**
 * Reads a container without trusting anything in it: size first (`profile_too_large`), then the
 * version byte (`profile_unsupported_version`), then the structure (`profile_malformed`:
 * truncated, trailing bytes, an empty roster, times out of order or too far apart). Checks no
 * signature.
 */
export function readProfile(bytes: Uint8Array): ReadProfile {
  if (bytes.length > MAX_PROFILE_BYTES) throw new OrgError(OrgErrorCode.TOO_LARGE);
  if (bytes.length < 1) throw new OrgError(OrgErrorCode.MALFORMED);
  if (bytes[0] !== PROFILE_FORMAT_VERSION) throw new OrgError(OrgErrorCode.UNSUPPORTED_VERSION);
  const minimum = HEADER_BYTES + 2 + 4 + ED25519_SIGNATURE_BYTES;
  if (bytes.length < minimum) throw new OrgError(OrgErrorCode.MALFORMED);
  let at = 1;
  const organizationKey = bytes.slice(at, at + ED25519_PUBLIC_KEY_BYTES);
  at += ED25519_PUBLIC_KEY_BYTES;
  const version = readU32(bytes, at);
  const issuedAtSeconds = readU32(bytes, at + 4);
  const expiresAtSeconds = readU32(bytes, at + 8);
  at += 12;
  const rosterLength = (bytes[at]! << 8) | bytes[at + 1]!;
  at += 2;
  // The roster, the content length and the signature must fit in what is left.
  if (rosterLength === 0 || at + rosterLength + 4 + ED25519_SIGNATURE_BYTES > bytes.length) {
    throw new OrgError(OrgErrorCode.MALFORMED);
  }
  const roster = bytes.slice(at, at + rosterLength);
  at += rosterLength;
  const contentLength = readU32(bytes, at);
  at += 4;
  if (at + contentLength + ED25519_SIGNATURE_BYTES !== bytes.length) {
    throw new OrgError(OrgErrorCode.MALFORMED);
  }
  const content = bytes.slice(at, at + contentLength);
  at += contentLength;
  if (!checkTimes(issuedAtSeconds, expiresAtSeconds)) throw new OrgError(OrgErrorCode.MALFORMED);
  return {
    organizationKey,
    version,
    issuedAtSeconds,
    expiresAtSeconds,
    roster,
    content,
    body: bytes.slice(0, at),
    signature: bytes.slice(at),
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What {@link checkSignedProfile} checks a container against. */
export interface SignedProfileCheck {
  /** The organization key pinned (a page) or configured (the relay). */
  readonly organizationKey: Uint8Array;
  readonly verify: Ed25519Verify;
  readonly nowSeconds: number;
}

/**
 * Reads a container and checks, in order: size, version, structure, that it names the expected
 * organization key (`profile_wrong_key`), its signature (`profile_bad_signature`) and its expiry
 * (`profile_expired`). What the relay checks before it stores a publish; a page goes on to
 * verify the roster and the content (`crypto/org-profile.ts`).
 */
export function checkSignedProfile(bytes: Uint8Array, check: SignedProfileCheck): ReadProfile {
  const profile = readProfile(bytes);
  if (!sameBytes(profile.organizationKey, check.organizationKey)) {
    throw new OrgError(OrgErrorCode.WRONG_KEY);
  }
  let valid: boolean;
  try {
    valid = check.verify(
      profile.organizationKey,
      profileSignedMessage(profile.body),
      profile.signature,
    );
  } catch (cause) {
    throw new OrgError(OrgErrorCode.BAD_SIGNATURE, { cause });
  }
  if (!valid) throw new OrgError(OrgErrorCode.BAD_SIGNATURE);
  if (check.nowSeconds >= profile.expiresAtSeconds) throw new OrgError(OrgErrorCode.EXPIRED);
  return profile;
}
