/**
 * What the crypto tests build the same way in file after file: a fixed clock, text as bytes, the
 * code of a thrown error, a flipped bit, both primitive backends, an organization signing key
 * and a roster's worth of device identities.
 *
 * This module imports only from `@passage/shared` (no `node:` built-ins, no server code), so a
 * test of the crypto core that uses it runs wherever the crypto core runs. It deliberately
 * builds nothing from the session and prekey state (those have their own tests and change
 * shape with them); only the identity and key types, which the wire format pins.
 */
import { loadPrimitives } from '@passage/shared/crypto/backend';
import { DeviceIdentity, type PublicIdentity } from '@passage/shared/crypto/identity';
import {
  asEd25519PublicKey,
  asEd25519Seed,
  type Ed25519PublicKey,
  type Ed25519Seed,
} from '@passage/shared/crypto/keys';
import type { Primitives } from '@passage/shared/crypto/primitives';

/**
 * The clock the crypto tests run at, in Unix seconds (2027-01-15): fixed, so that expiry and
 * rotation arithmetic is reproducible, and far enough ahead that no real key has expired by it.
 */
export const FIXED_NOW_SECONDS = 1_800_000_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `text` as UTF-8 bytes. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** UTF-8 `bytes` as text. */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/**
 * The `code` of what `operation` throws (a `CryptoError`'s stable code), or undefined when it
 * returns normally or throws something without a string code. Tests compare it with the code
 * they expect, so an operation that wrongly succeeds fails the test.
 */
export function errorCodeOf(operation: () => unknown): string | undefined {
  try {
    operation();
  } catch (error: unknown) {
    if (typeof error === 'object' && error !== null && 'code' in error) {
      const { code } = error;
      return typeof code === 'string' ? code : undefined;
    }
    return undefined;
  }
  return undefined;
}

/** A copy of `bytes` with the lowest bit of `bytes[index]` flipped; the input is unchanged. */
export function flipBit(bytes: Uint8Array, index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= bytes.length) {
    throw new RangeError(`no byte ${index} in ${bytes.length} bytes`);
  }
  const out = bytes.slice();
  out[index]! ^= 0x01;
  return out;
}

/** Both primitive backends: libsodium (strict, so a missing WebAssembly fails) and noble. */
export interface Backends {
  readonly libsodium: Primitives;
  readonly noble: Primitives;
}

/** Loads both backends, for tests that check they agree or run the same case on each. */
export async function loadBothBackends(): Promise<Backends> {
  return {
    libsodium: await loadPrimitives({ prefer: 'libsodium', strict: true }),
    noble: await loadPrimitives({ prefer: 'noble' }),
  };
}

/** An organization's roster-signing key pair. */
export interface OrganizationKey {
  readonly seed: Ed25519Seed;
  readonly publicKey: Ed25519PublicKey;
}

/** A fresh random organization signing key, as the operator's set-up tool makes one. */
export function organizationKey(p: Primitives): OrganizationKey {
  const seed = asEd25519Seed(p.random.bytes(32));
  return { seed, publicKey: asEd25519PublicKey(p.ed25519KeyPairFromSeed(seed).publicKey) };
}

/** The public identities of `count` fresh devices, for a roster. */
export function deviceIdentities(p: Primitives, count: number): PublicIdentity[] {
  return Array.from({ length: count }, () => DeviceIdentity.generate(p).publicIdentity);
}
