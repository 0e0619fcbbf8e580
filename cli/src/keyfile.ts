/**
 * The organization key file: the Ed25519 seed (and the key of the state file) encrypted under
 * the admin's passphrase. Pure: bytes in, bytes out (files.ts writes them).
 *
 *   header   = "PSGOKEY" ‖ version 01 ‖ kdf 01 (Argon2id v1.3) ‖ iterations (4) ‖ memory KiB (4)
 *              ‖ salt (16) ‖ nonce (24) ‖ organization public key (32)
 *   body     = XChaCha20-Poly1305(K, nonce, seed (32) ‖ state key (32), ad = header)
 *   K        = Argon2id(NFC(passphrase), salt, iterations, memory) → 32 bytes
 *   checksum = SHA-256("passage/v1/org-key-file/checksum" ‖ 0 ‖ header ‖ body)
 *   file     = header ‖ body ‖ checksum
 *
 * The checksum is not a security measure (anyone who changes the file can recompute it): it
 * tells a damaged file (truncated, a flipped bit, another file) from a wrong passphrase, which
 * the AEAD alone cannot. The public key is in the clear so that the fingerprint can be shown,
 * and it is checked against the seed after decryption. Salt and nonce are fresh per file; the
 * parameters are in the header, bounded on reading so that a crafted file cannot make the tool
 * allocate gigabytes.
 */
import { concatBytes, labelPrefix, u32, u8 } from '@passage/shared/crypto/encoding';
import { CryptoErrorCode, isCryptoError } from '@passage/shared/crypto/errors';
import {
  asEd25519Seed,
  type Ed25519PublicKey,
  type Ed25519Seed,
} from '@passage/shared/crypto/keys';
import { asEd25519PublicKey } from '@passage/shared/crypto/keys';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { utf8Encode } from '@passage/shared/org/utf8';
import { CliError, CliErrorCode } from './errors.js';

export const KEY_FILE_MAGIC = 'PSGOKEY';
export const KEY_FILE_VERSION = 1;
const KDF_ARGON2ID13 = 1;

/** The Argon2id parameters of a key file. */
export interface KeyFileKdfParams {
  readonly iterations: number;
  readonly memoryKiB: number;
}

/**
 * Parameters of a new key file: RFC 9106's second recommended option (t = 3, m = 64 MiB),
 * about 0.2 s with libsodium on a laptop. The key is opened a few times a month; a stolen file
 * costs an attacker that much memory and time per guess.
 */
export const ORG_KEY_KDF_PARAMS: KeyFileKdfParams = Object.freeze({
  iterations: 3,
  memoryKiB: 64 * 1024,
});

/** Bounds a key file's parameters must keep to be read at all. */
export const MIN_KEY_FILE_ITERATIONS = 1;
export const MAX_KEY_FILE_ITERATIONS = 16;
export const MIN_KEY_FILE_MEMORY_KIB = 8 * 1024;
export const MAX_KEY_FILE_MEMORY_KIB = 1024 * 1024;

/** Fewest characters of a new passphrase. */
export const MIN_PASSPHRASE_CHARS = 12;

const SALT_BYTES = 16;
const NONCE_BYTES = 24;
const KEY_BYTES = 32;
const SEED_BYTES = 32;
export const STATE_KEY_BYTES = 32;
const TAG_BYTES = 16;
const CHECKSUM_BYTES = 32;
const CHECKSUM_LABEL = 'passage/v1/org-key-file/checksum';

const HEADER_BYTES = KEY_FILE_MAGIC.length + 1 + 1 + 4 + 4 + SALT_BYTES + NONCE_BYTES + 32;
/** Bytes of a key file. */
export const KEY_FILE_BYTES =
  HEADER_BYTES + SEED_BYTES + STATE_KEY_BYTES + TAG_BYTES + CHECKSUM_BYTES;

/** What a key file holds. */
export interface OrgSecrets {
  readonly seed: Ed25519Seed;
  readonly publicKey: Ed25519PublicKey;
  /** The key of the state file (state.ts). */
  readonly stateKey: Uint8Array;
}

function passphraseKey(
  p: Primitives,
  passphrase: string,
  salt: Uint8Array,
  params: KeyFileKdfParams,
): Uint8Array {
  // NFC, so that the same passphrase typed on another keyboard or system gives the same key.
  return p.argon2id(utf8Encode(passphrase.normalize('NFC')), salt, {
    iterations: params.iterations,
    memoryKiB: params.memoryKiB,
    outputBytes: KEY_BYTES,
  });
}

function checksum(p: Primitives, data: Uint8Array): Uint8Array {
  return p.sha256(concatBytes(labelPrefix(CHECKSUM_LABEL), data));
}

/** A new key file for `secrets` under `passphrase`, with a fresh salt and nonce. */
export function sealKeyFile(
  p: Primitives,
  secrets: OrgSecrets,
  passphrase: string,
  params: KeyFileKdfParams = ORG_KEY_KDF_PARAMS,
): Uint8Array {
  const salt = p.random.bytes(SALT_BYTES);
  const nonce = p.random.bytes(NONCE_BYTES);
  const header = concatBytes(
    utf8Encode(KEY_FILE_MAGIC),
    u8(KEY_FILE_VERSION),
    u8(KDF_ARGON2ID13),
    u32(params.iterations),
    u32(params.memoryKiB),
    salt,
    nonce,
    secrets.publicKey,
  );
  const body = p.xchacha20poly1305Seal(
    passphraseKey(p, passphrase, salt, params),
    nonce,
    concatBytes(secrets.seed, secrets.stateKey),
    header,
  );
  const signed = concatBytes(header, body);
  return concatBytes(signed, checksum(p, signed));
}

function damaged(why: string): CliError {
  return new CliError(CliErrorCode.KEY_FILE_DAMAGED, `the key file is damaged (${why})`);
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** The public key in a key file's header, without the passphrase (checked for damage). */
export function keyFilePublicKey(p: Primitives, file: Uint8Array): Ed25519PublicKey {
  return asEd25519PublicKey(checkStructure(p, file).publicKey);
}

function checkStructure(p: Primitives, file: Uint8Array) {
  const magic = utf8Encode(KEY_FILE_MAGIC);
  if (file.length < magic.length + 1 || magic.some((b, i) => file[i] !== b)) {
    throw damaged('not a Passage organization key file');
  }
  if (file[magic.length] !== KEY_FILE_VERSION) {
    throw new CliError(
      CliErrorCode.KEY_FILE_UNSUPPORTED,
      `the key file has format version ${file[magic.length]}, this tool reads ${KEY_FILE_VERSION}`,
    );
  }
  if (file.length !== KEY_FILE_BYTES) throw damaged('wrong length');
  const signed = file.subarray(0, file.length - CHECKSUM_BYTES);
  const expected = checksum(p, signed);
  const actual = file.subarray(file.length - CHECKSUM_BYTES);
  if (expected.some((b, i) => actual[i] !== b)) throw damaged('checksum mismatch');
  let at = magic.length + 1;
  if (file[at] !== KDF_ARGON2ID13) throw damaged('unknown key derivation');
  at += 1;
  const iterations = readU32(file, at);
  const memoryKiB = readU32(file, at + 4);
  at += 8;
  if (
    iterations < MIN_KEY_FILE_ITERATIONS ||
    iterations > MAX_KEY_FILE_ITERATIONS ||
    memoryKiB < MIN_KEY_FILE_MEMORY_KIB ||
    memoryKiB > MAX_KEY_FILE_MEMORY_KIB
  ) {
    throw damaged('key derivation parameters out of bounds');
  }
  const salt = file.slice(at, at + SALT_BYTES);
  at += SALT_BYTES;
  const nonce = file.slice(at, at + NONCE_BYTES);
  at += NONCE_BYTES;
  const publicKey = file.slice(at, at + 32);
  at += 32;
  return {
    params: { iterations, memoryKiB },
    salt,
    nonce,
    publicKey,
    header: file.subarray(0, at),
    body: file.subarray(at, file.length - CHECKSUM_BYTES),
  };
}

/**
 * Opens a key file. Throws `key_file_damaged` (not a key file, wrong length, checksum, bad
 * parameters, a seed that does not match the public key), `key_file_unsupported_version`, or
 * `wrong_passphrase` (the file is intact and the AEAD does not open).
 */
export function openKeyFile(p: Primitives, file: Uint8Array, passphrase: string): OrgSecrets {
  const s = checkStructure(p, file);
  let plain: Uint8Array;
  try {
    plain = p.xchacha20poly1305Open(
      passphraseKey(p, passphrase, s.salt, s.params),
      s.nonce,
      s.body,
      s.header,
    );
  } catch (error) {
    if (isCryptoError(error, CryptoErrorCode.DECRYPT_FAILED)) {
      throw new CliError(CliErrorCode.WRONG_PASSPHRASE, 'wrong passphrase');
    }
    throw error;
  }
  const seed = asEd25519Seed(plain.slice(0, SEED_BYTES));
  const publicKey = p.ed25519KeyPairFromSeed(seed).publicKey;
  if (publicKey.some((b, i) => s.publicKey[i] !== b)) {
    throw damaged('the key does not match its public key');
  }
  return {
    seed,
    publicKey: asEd25519PublicKey(publicKey),
    stateKey: plain.slice(SEED_BYTES),
  };
}
