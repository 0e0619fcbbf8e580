/**
 * The key file: a wrong passphrase and a damaged file are told apart; every flipped bit and
 * every truncation is "damaged"; parameters out of bounds are refused before any work.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import { asEd25519PublicKey, asEd25519Seed } from '@passage/shared/crypto/keys';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { concatBytes, labelPrefix } from '@passage/shared/crypto/encoding';
import { CliError, CliErrorCode } from './errors.js';
import {
  KEY_FILE_BYTES,
  MAX_KEY_FILE_MEMORY_KIB,
  MIN_KEY_FILE_MEMORY_KIB,
  keyFilePublicKey,
  openKeyFile,
  sealKeyFile,
  type OrgSecrets,
} from './keyfile.js';

/** Cheap parameters for the unit tests (the CLI tests run the real ones). */
const FAST = { iterations: 1, memoryKiB: MIN_KEY_FILE_MEMORY_KIB };
const PASSPHRASE = 'correct horse battery staple';

let p: Primitives;
let secrets: OrgSecrets;
let file: Uint8Array;
beforeAll(async () => {
  p = await loadSodiumBackend();
  const seed = asEd25519Seed(p.random.bytes(32));
  secrets = {
    seed,
    publicKey: asEd25519PublicKey(p.ed25519KeyPairFromSeed(seed).publicKey),
    stateKey: p.random.bytes(32),
  };
  file = sealKeyFile(p, secrets, PASSPHRASE, FAST);
});

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return error.code;
  }
}

/** Re-seals the checksum after an edit (what someone who changes the file on purpose does). */
function withChecksum(edited: Uint8Array): Uint8Array {
  const signed = edited.subarray(0, edited.length - 32);
  const sum = p.sha256(concatBytes(labelPrefix('passage/v1/org-key-file/checksum'), signed));
  return concatBytes(signed, sum);
}

describe('org key file', () => {
  it('opens with its passphrase and gives back the seed, public key and state key', () => {
    expect(file.length).toBe(KEY_FILE_BYTES);
    const opened = openKeyFile(p, file, PASSPHRASE);
    expect(opened.seed).toEqual(secrets.seed);
    expect(opened.publicKey).toEqual(secrets.publicKey);
    expect(opened.stateKey).toEqual(secrets.stateKey);
  });

  it('opens with the same passphrase in another Unicode normalization form', () => {
    const composed = sealKeyFile(p, secrets, 'pass\u00e9phrase-long', FAST);
    expect(openKeyFile(p, composed, 'passe\u0301phrase-long').seed).toEqual(secrets.seed);
  });

  it('draws a fresh salt and nonce for every file', () => {
    expect(sealKeyFile(p, secrets, PASSPHRASE, FAST)).not.toEqual(file);
  });

  it('gives the public key without the passphrase', () => {
    expect(keyFilePublicKey(p, file)).toEqual(secrets.publicKey);
  });

  it('refuses a wrong passphrase as wrong_passphrase', () => {
    expect(codeOf(() => openKeyFile(p, file, PASSPHRASE + '!'))).toBe(
      CliErrorCode.WRONG_PASSPHRASE,
    );
  });

  it('refuses every flipped bit as damaged, never as a wrong passphrase', () => {
    for (let i = 0; i < file.length; i++) {
      const bad = file.slice();
      bad[i]! ^= 1 << (i % 8);
      const code = codeOf(() => openKeyFile(p, bad, PASSPHRASE));
      expect([CliErrorCode.KEY_FILE_DAMAGED, CliErrorCode.KEY_FILE_UNSUPPORTED]).toContain(code);
    }
  });

  it('refuses every truncation and an appended byte as damaged', () => {
    for (let n = 0; n < file.length; n++) {
      expect(codeOf(() => openKeyFile(p, file.subarray(0, n), PASSPHRASE))).toBe(
        CliErrorCode.KEY_FILE_DAMAGED,
      );
    }
    expect(codeOf(() => openKeyFile(p, concatBytes(file, new Uint8Array(1)), PASSPHRASE))).toBe(
      CliErrorCode.KEY_FILE_DAMAGED,
    );
  });

  it('refuses another file (the state file, text) as not a key file', () => {
    expect(codeOf(() => openKeyFile(p, new TextEncoder().encode('hello\n'), PASSPHRASE))).toBe(
      CliErrorCode.KEY_FILE_DAMAGED,
    );
  });

  it('refuses an unknown format version as unsupported, whatever follows', () => {
    const v2 = file.slice();
    v2[7] = 2;
    expect(codeOf(() => openKeyFile(p, v2, PASSPHRASE))).toBe(CliErrorCode.KEY_FILE_UNSUPPORTED);
  });

  it('refuses parameters out of bounds before deriving anything', () => {
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const tooMuch = file.slice();
    view(tooMuch).setUint32(13, MAX_KEY_FILE_MEMORY_KIB + 1);
    expect(codeOf(() => openKeyFile(p, withChecksum(tooMuch), PASSPHRASE))).toBe(
      CliErrorCode.KEY_FILE_DAMAGED,
    );
    const zero = file.slice();
    view(zero).setUint32(9, 0);
    expect(codeOf(() => openKeyFile(p, withChecksum(zero), PASSPHRASE))).toBe(
      CliErrorCode.KEY_FILE_DAMAGED,
    );
  });

  it('reads a public key swapped in on purpose (checksum recomputed) as a wrong passphrase: the checksum tells damage, not tampering', () => {
    const swapped = file.slice();
    swapped.set(p.random.bytes(32), 9 + 8 + 16 + 24);
    // The header is the AEAD's associated data, so the body no longer opens.
    expect(codeOf(() => openKeyFile(p, withChecksum(swapped), PASSPHRASE))).toBe(
      CliErrorCode.WRONG_PASSPHRASE,
    );
  });
});
