/**
 * The organization-signed roster of coordinator devices. The contact's page pins the
 * organization's Ed25519 key; before sending to anyone it verifies the roster against that key,
 * and fans out to exactly the devices listed (fanout.ts). The relay serves the roster but cannot
 * add, remove or swap a device without the organization's key, cannot serve an expired roster,
 * and cannot roll a contact back to an older one (which might still list a revoked device).
 *
 *   roster = 0x01 ‖ org key (32) ‖ serial (4) ‖ issued at (4) ‖ expires at (4) ‖ count (2)
 *            ‖ count × device identity (129, identity.ts) ‖ signature (64)
 *   signature = Ed25519(org, "passage/v1/sig/roster" ‖ 0 ‖ everything before the signature)
 *
 * Times are Unix seconds. The serial only grows; a roster with the serial already accepted must
 * be byte-for-byte the one accepted (two different rosters with one serial are an equivocation).
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from './primitives.js';
import {
  ByteReader,
  bytesEqual,
  concatBytes,
  expectVersion,
  labelPrefix,
  u16,
  u32,
  u8,
} from './encoding.js';
import { PUBLIC_IDENTITY_BYTES, PublicIdentity } from './identity.js';
import { KDF_LABELS } from './kdf.js';
import type { Ed25519PublicKey, Ed25519Seed } from './keys.js';
import { asEd25519PublicKey } from './keys.js';

export const ROSTER_FORMAT_VERSION = 1;
/** Most devices in one roster (20 coordinators with a few devices each, and room). */
export const MAX_ROSTER_DEVICES = 64;
/** Largest encoded roster, in bytes. */
export const MAX_ROSTER_BYTES =
  1 +
  ED25519_PUBLIC_KEY_BYTES +
  4 +
  4 +
  4 +
  2 +
  MAX_ROSTER_DEVICES * PUBLIC_IDENTITY_BYTES +
  ED25519_SIGNATURE_BYTES;

const SIGNATURE_PREFIX = labelPrefix(KDF_LABELS.rosterSignature);

/** What the organization signs. */
export interface RosterContent {
  readonly serial: number;
  readonly issuedAtSeconds: number;
  readonly expiresAtSeconds: number;
  readonly devices: readonly PublicIdentity[];
}

/** A verified roster (with its bytes, to compare against the next one). */
export interface Roster extends RosterContent {
  readonly organizationKey: Ed25519PublicKey;
  readonly bytes: Uint8Array;
}

function checkContent(content: RosterContent): void {
  const n = content.devices.length;
  if (n === 0 || n > MAX_ROSTER_DEVICES) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  if (new Set(content.devices.map((d) => d.id)).size !== n) {
    throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  }
  if (content.issuedAtSeconds > content.expiresAtSeconds) {
    throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  }
}

/** Signs a roster with the organization's Ed25519 seed (the enrolment tool's job). */
export function signRoster(
  p: Primitives,
  organizationSeed: Ed25519Seed,
  content: RosterContent,
): Uint8Array {
  checkContent(content);
  const organizationKey = p.ed25519KeyPairFromSeed(organizationSeed).publicKey;
  const body = concatBytes(
    u8(ROSTER_FORMAT_VERSION),
    organizationKey,
    u32(content.serial),
    u32(content.issuedAtSeconds),
    u32(content.expiresAtSeconds),
    u16(content.devices.length),
    ...content.devices.map((d) => d.encode()),
  );
  return concatBytes(body, p.ed25519Sign(organizationSeed, concatBytes(SIGNATURE_PREFIX, body)));
}

export interface RosterCheck {
  /** The organization key the page pins. */
  readonly organizationKey: Ed25519PublicKey;
  readonly nowSeconds: number;
  /** The roster accepted before, if any: a lower serial is a rollback. */
  readonly lastAccepted?: Roster | null;
}

/**
 * Verifies a roster. Throws `unsupported_version`/`bad_encoding` (malformed, duplicate devices,
 * more than `MAX_ROSTER_DEVICES`), `bad_signature` (another organization key, a bad signature,
 * or a device identity that is not self-signed), `roster_expired`, or `roster_rollback`.
 */
export function verifyRoster(p: Primitives, bytes: Uint8Array, check: RosterCheck): Roster {
  if (bytes.length > MAX_ROSTER_BYTES) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  const r = new ByteReader(bytes);
  expectVersion(r, ROSTER_FORMAT_VERSION);
  const organizationKey = asEd25519PublicKey(r.bytesN(ED25519_PUBLIC_KEY_BYTES));
  const serial = r.u32();
  const issuedAtSeconds = r.u32();
  const expiresAtSeconds = r.u32();
  const count = r.u16();
  if (count > MAX_ROSTER_DEVICES) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  const deviceBytes: Uint8Array[] = [];
  for (let i = 0; i < count; i++) deviceBytes.push(r.bytesN(PUBLIC_IDENTITY_BYTES));
  const signature = r.bytesN(ED25519_SIGNATURE_BYTES);
  r.end();

  // The signature first: nothing unsigned is interpreted further.
  const body = bytes.subarray(0, bytes.length - ED25519_SIGNATURE_BYTES);
  if (
    !bytesEqual(organizationKey, check.organizationKey) ||
    !p.ed25519Verify(organizationKey, concatBytes(SIGNATURE_PREFIX, body), signature)
  ) {
    throw new CryptoError(CryptoErrorCode.BAD_SIGNATURE);
  }
  const devices = deviceBytes.map((d) => PublicIdentity.decode(p, d));
  const content = { serial, issuedAtSeconds, expiresAtSeconds, devices };
  checkContent(content);
  if (check.nowSeconds >= expiresAtSeconds) throw new CryptoError(CryptoErrorCode.ROSTER_EXPIRED);
  const last = check.lastAccepted ?? null;
  if (last !== null) {
    if (serial < last.serial || (serial === last.serial && !bytesEqual(bytes, last.bytes))) {
      throw new CryptoError(CryptoErrorCode.ROSTER_ROLLBACK);
    }
  }
  return { ...content, organizationKey, bytes: bytes.slice() };
}
