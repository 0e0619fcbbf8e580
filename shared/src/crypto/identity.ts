/**
 * Device identities: a device's Ed25519 signing key and the X25519 key signed by it (the X25519
 * key does the Diffie-Hellman work of the handshake and of sealed envelopes; the signature ties
 * it to the signing key, which is what mailboxes, rosters and safety numbers name). Prekeys are
 * in prekeys.ts, the published bundle in bundle.ts.
 *
 * Encodings (integers big-endian; every decoder is strict: unknown version, wrong length and
 * trailing bytes are rejected before any signature is checked):
 *   identity         = 0x01 ‖ Ed25519 pk (32) ‖ X25519 pk (32) ‖ sig (64)               129 bytes
 *   identity secrets = 0x01 ‖ Ed25519 seed (32) ‖ X25519 secret (32)                     65 bytes
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SEED_BYTES,
  ED25519_SIGNATURE_BYTES,
  X25519_KEY_BYTES,
} from './primitives.js';
import {
  ByteReader,
  bytesEqual,
  concatBytes,
  expectVersion,
  labelPrefix,
  toHex,
  u8,
} from './encoding.js';
import { KDF_LABELS } from './kdf.js';
import type { Ed25519PublicKey, Ed25519Seed, X25519KeyPair, X25519PublicKey } from './keys.js';
import {
  asEd25519PublicKey,
  asEd25519Seed,
  asX25519PublicKey,
  x25519KeyPairFromSecret,
} from './keys.js';

/** Version byte of the identity encodings. */
export const IDENTITY_ENCODING_VERSION = 1;
export const PUBLIC_IDENTITY_BYTES =
  1 + ED25519_PUBLIC_KEY_BYTES + X25519_KEY_BYTES + ED25519_SIGNATURE_BYTES;

const IDENTITY_SIG_PREFIX = labelPrefix(KDF_LABELS.identityKeySignature);

/** A device's public identity: what a peer pins, what sealed envelopes name as the sender. */
export class PublicIdentity {
  /** The encoding, computed once: receivers compare incoming identities against it. */
  private readonly encoded: Uint8Array;

  private constructor(
    readonly signingKey: Ed25519PublicKey,
    readonly dhKey: X25519PublicKey,
    readonly signature: Uint8Array,
  ) {
    this.encoded = concatBytes(u8(IDENTITY_ENCODING_VERSION), signingKey, dhKey, signature);
  }

  /**
   * The `id` that an encoded identity would have, without verifying anything: only for looking
   * up a peer already verified, never to trust the bytes. Null when the bytes cannot be one.
   */
  static idOfEncoded(bytes: Uint8Array): string | null {
    if (bytes.length !== PUBLIC_IDENTITY_BYTES || bytes[0] !== IDENTITY_ENCODING_VERSION) {
      return null;
    }
    return toHex(bytes.subarray(1, 1 + ED25519_PUBLIC_KEY_BYTES));
  }

  /**
   * The address that an encoded identity would have (see `address`), without verifying
   * anything: only for looking up a peer already verified. Null when the bytes cannot be one.
   */
  static addressOfEncoded(bytes: Uint8Array): string | null {
    if (PublicIdentity.idOfEncoded(bytes) === null) return null;
    return toHex(bytes.subarray(1, 1 + ED25519_PUBLIC_KEY_BYTES + X25519_KEY_BYTES));
  }

  /** True when `bytes` is exactly this (verified) identity's encoding. */
  hasEncoding(bytes: Uint8Array): boolean {
    return bytesEqual(this.encoded, bytes);
  }

  /**
   * Decodes and verifies (the X25519 key must be signed by the Ed25519 key). Throws
   * `bad_encoding` for a signing key that is not of prime order, `bad_signature` for a bad
   * signature.
   */
  static decode(p: Primitives, bytes: Uint8Array): PublicIdentity {
    const r = new ByteReader(bytes);
    expectVersion(r, IDENTITY_ENCODING_VERSION);
    const signingKey = asEd25519PublicKey(r.bytesN(ED25519_PUBLIC_KEY_BYTES));
    const dhKey = asX25519PublicKey(r.bytesN(X25519_KEY_BYTES));
    const signature = r.bytesN(ED25519_SIGNATURE_BYTES);
    r.end();
    // Only prime-order keys (no small or mixed order): one secret key owns one identity.
    if (!p.ed25519IsValidPublicKey(signingKey)) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
    if (!p.ed25519Verify(signingKey, identitySignedMessage(signingKey, dhKey), signature)) {
      throw new CryptoError(CryptoErrorCode.BAD_SIGNATURE);
    }
    return new PublicIdentity(signingKey, dhKey, signature);
  }

  /** @internal Used by `DeviceIdentity`, which has just made the signature. */
  static fromTrusted(
    signingKey: Ed25519PublicKey,
    dhKey: X25519PublicKey,
    signature: Uint8Array,
  ): PublicIdentity {
    return new PublicIdentity(signingKey, dhKey, signature);
  }

  /** The versioned encoding (129 bytes). */
  encode(): Uint8Array {
    return this.encoded.slice();
  }

  /** A stable map key for this device (hex of the signing key; not secret, never logged). */
  get id(): string {
    return toHex(this.signingKey);
  }

  /**
   * The store key of this device as a peer: its signing key and its X25519 key (a "twin"
   * sharing one of them is another peer). Not secret, never logged.
   */
  get address(): string {
    return toHex(this.encoded.subarray(1, 1 + ED25519_PUBLIC_KEY_BYTES + X25519_KEY_BYTES));
  }

  equals(other: PublicIdentity): boolean {
    return bytesEqual(this.signingKey, other.signingKey) && bytesEqual(this.dhKey, other.dhKey);
  }
}

function identitySignedMessage(signingKey: Uint8Array, dhKey: Uint8Array): Uint8Array {
  return concatBytes(IDENTITY_SIG_PREFIX, signingKey, dhKey);
}

/** A device's secret identity. */
export class DeviceIdentity {
  private constructor(
    private readonly p: Primitives,
    readonly signingSeed: Ed25519Seed,
    readonly dh: X25519KeyPair,
    readonly publicIdentity: PublicIdentity,
  ) {}

  /** From an Ed25519 seed and an X25519 secret (a codename's subkeys, or stored secrets). */
  static fromSeeds(p: Primitives, signingSeed: Uint8Array, dhSecret: Uint8Array): DeviceIdentity {
    const seed = asEd25519Seed(signingSeed.slice());
    const dh = x25519KeyPairFromSecret(p, dhSecret.slice());
    const signingKey = asEd25519PublicKey(p.ed25519KeyPairFromSeed(seed).publicKey);
    const signature = p.ed25519Sign(seed, identitySignedMessage(signingKey, dh.publicKey));
    return new DeviceIdentity(
      p,
      seed,
      dh,
      PublicIdentity.fromTrusted(signingKey, dh.publicKey, signature),
    );
  }

  /** A fresh identity from the backend's random source (coordinator devices). */
  static generate(p: Primitives): DeviceIdentity {
    return DeviceIdentity.fromSeeds(
      p,
      p.random.bytes(ED25519_SEED_BYTES),
      p.random.bytes(X25519_KEY_BYTES),
    );
  }

  sign(message: Uint8Array): Uint8Array {
    return this.p.ed25519Sign(this.signingSeed, message);
  }

  /** The secrets, `01 ‖ Ed25519 seed (32) ‖ X25519 secret (32)`; store only encrypted. */
  encodeSecret(): Uint8Array {
    return concatBytes(u8(IDENTITY_ENCODING_VERSION), this.signingSeed, this.dh.secretKey);
  }

  /** Strict decoding of `encodeSecret`. */
  static decodeSecret(p: Primitives, bytes: Uint8Array): DeviceIdentity {
    const r = new ByteReader(bytes);
    expectVersion(r, IDENTITY_ENCODING_VERSION);
    const seed = r.bytesN(ED25519_SEED_BYTES);
    const secret = r.bytesN(X25519_KEY_BYTES);
    r.end();
    return DeviceIdentity.fromSeeds(p, seed, secret);
  }
}
