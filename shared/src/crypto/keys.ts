/**
 * Typed keys. A key is a `Uint8Array` with a compile-time brand, so an X25519 public key cannot be
 * passed where an Ed25519 one (or a secret) is expected, and every brand is only ever applied
 * after its length was checked. The brands cost nothing at run time.
 */
import { requireBytes } from './errors.js';
import type { Primitives } from './primitives.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SEED_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  MLKEM768_SECRET_KEY_BYTES,
  X25519_KEY_BYTES,
} from './primitives.js';

declare const KEY_BRAND: unique symbol;
type Branded<T extends string> = Uint8Array & { readonly [KEY_BRAND]: T };

export type X25519PublicKey = Branded<'X25519PublicKey'>;
export type X25519SecretKey = Branded<'X25519SecretKey'>;
export type Ed25519PublicKey = Branded<'Ed25519PublicKey'>;
/** The 32-byte Ed25519 seed (libsodium's and noble's secret key input). */
export type Ed25519Seed = Branded<'Ed25519Seed'>;
export type MlKemPublicKey = Branded<'MlKem768PublicKey'>;
export type MlKemSecretKey = Branded<'MlKem768SecretKey'>;

function brand<T extends Uint8Array>(bytes: Uint8Array, length: number): T {
  requireBytes(bytes, length);
  return bytes as T;
}

export const asX25519PublicKey = (b: Uint8Array): X25519PublicKey => brand(b, X25519_KEY_BYTES);
export const asX25519SecretKey = (b: Uint8Array): X25519SecretKey => brand(b, X25519_KEY_BYTES);
export const asEd25519PublicKey = (b: Uint8Array): Ed25519PublicKey =>
  brand(b, ED25519_PUBLIC_KEY_BYTES);
export const asEd25519Seed = (b: Uint8Array): Ed25519Seed => brand(b, ED25519_SEED_BYTES);
export const asMlKemPublicKey = (b: Uint8Array): MlKemPublicKey =>
  brand(b, MLKEM768_PUBLIC_KEY_BYTES);
export const asMlKemSecretKey = (b: Uint8Array): MlKemSecretKey =>
  brand(b, MLKEM768_SECRET_KEY_BYTES);

export interface X25519KeyPair {
  readonly publicKey: X25519PublicKey;
  readonly secretKey: X25519SecretKey;
}

export interface MlKemKeyPair {
  readonly publicKey: MlKemPublicKey;
  readonly secretKey: MlKemSecretKey;
}

/** An X25519 key pair from a 32-byte secret. */
export function x25519KeyPairFromSecret(p: Primitives, secret: Uint8Array): X25519KeyPair {
  const secretKey = asX25519SecretKey(secret);
  return { secretKey, publicKey: asX25519PublicKey(p.x25519PublicKey(secretKey)) };
}

/** A fresh X25519 key pair from the backend's (possibly seeded) random source. */
export function generateX25519KeyPair(p: Primitives): X25519KeyPair {
  return x25519KeyPairFromSecret(p, p.random.bytes(X25519_KEY_BYTES));
}

/** An ML-KEM-768 key pair from its 64-byte key-generation seed. */
export function mlKemKeyPairFromSeed(p: Primitives, seed: Uint8Array): MlKemKeyPair {
  const pair = p.mlkem768KeyPairFromSeed(seed);
  return {
    publicKey: asMlKemPublicKey(pair.publicKey),
    secretKey: asMlKemSecretKey(pair.secretKey),
  };
}
