/**
 * Stable error codes of Passage's crypto core. Callers branch on `code`, never on the message
 * text; a code never changes meaning once released. Messages are generic and contain no key,
 * plaintext or identifier, so a `CryptoError` may be logged as is (its `cause` may hold a
 * backend's own exception, which is not shown to users either).
 *
 * Adding a code: add a member here with a doc comment and its message in
 * `CRYPTO_ERROR_MESSAGES` (the compiler insists on the latter).
 */
export const CryptoErrorCode = {
  /** An X25519 result is all zero: the peer's public key is of low order (or otherwise
   * contributes nothing). The handshake must abort. */
  LOW_ORDER: 'low_order',
  /** An AEAD ciphertext does not authenticate (wrong key, nonce, associated data, a flipped
   * bit, or shorter than its tag), or an early authentication tag (of a ratchet message or of a
   * PQXDH initial message) does not verify: not made by a holder of the key. Nothing of the
   * plaintext is returned. */
  DECRYPT_FAILED: 'decrypt_failed',
  /** A signature that had to verify does not (used by protocols built on the primitives; the
   * primitive `ed25519Verify` itself answers `false`). */
  BAD_SIGNATURE: 'bad_signature',
  /** A key, seed, nonce, salt, ciphertext or requested output has a length the primitive does
   * not accept. Usually a bug in the caller, or a truncated value. */
  BAD_LENGTH: 'bad_length',
  /** A value is not a byte array, or bytes do not decode as the structure they claim to be
   * (e.g. an ML-KEM public key whose coefficients are not reduced modulo q). */
  BAD_ENCODING: 'bad_encoding',
  /** A size or parameter beyond a documented bound (HKDF output over 255 × 32 bytes, Argon2id
   * memory beyond its maximum, data larger than the largest padding bucket, an upper bound for
   * `uniform` outside [1, 2³² − 1]). */
  LIMIT_EXCEEDED: 'limit_exceeded',
  /** Padded bytes are malformed: not a bucket size, no 0x80 marker, or a non-zero byte after
   * it. */
  BAD_PADDING: 'bad_padding',
  /** No backend could be loaded (e.g. the caller asked for libsodium and WebAssembly is off). */
  BACKEND_UNAVAILABLE: 'backend_unavailable',
  /** A test-only hook was called outside tests. */
  TEST_ONLY: 'test_only',
  /** A backend failed in a way the wrapper does not expect: a bug, never attacker input. */
  INTERNAL: 'internal',

  // Protocol layer (identity, handshake, ratchet, envelope, roster, codename).
  /** An encoding's leading version byte is not one this code understands. */
  UNSUPPORTED_VERSION: 'unsupported_version',
  /** A ratchet message was already decrypted (or its key discarded): never delivered twice. */
  REPLAY: 'replay',
  /** A ratchet header asks to skip more message keys than `MAX_SKIP`; rejected before any work. */
  TOO_MANY_SKIPPED: 'too_many_skipped',
  /** A handshake names a prekey this device does not (or no longer) hold. */
  UNKNOWN_PREKEY: 'unknown_prekey',
  /** There is no session to encrypt or decrypt with (or this side may not send yet). */
  NO_SESSION: 'no_session',
  /** A roster is past its expiry time. */
  ROSTER_EXPIRED: 'roster_expired',
  /** A roster is older than one already accepted (or a different one with the same version). */
  ROSTER_ROLLBACK: 'roster_rollback',
  /** A codename does not have the expected words, or a word is not in the word list. */
  INVALID_CODENAME: 'invalid_codename',
} as const;

export type CryptoErrorCode = (typeof CryptoErrorCode)[keyof typeof CryptoErrorCode];

/** The generic, safe message of each code. */
export const CRYPTO_ERROR_MESSAGES: Readonly<Record<CryptoErrorCode, string>> = {
  low_order: 'The peer key is of low order.',
  decrypt_failed: 'Decryption failed.',
  bad_signature: 'A signature does not verify.',
  bad_length: 'A cryptographic input has the wrong length.',
  bad_encoding: 'A cryptographic input is malformed.',
  limit_exceeded: 'A cryptographic input exceeds its limit.',
  bad_padding: 'The padding is malformed.',
  backend_unavailable: 'No cryptographic backend is available.',
  test_only: 'This function is for tests only.',
  internal: 'A cryptographic operation failed unexpectedly.',
  unsupported_version: 'The encoding version is not supported.',
  replay: 'The message was already received.',
  too_many_skipped: 'The message is too far ahead.',
  unknown_prekey: 'The handshake names an unknown prekey.',
  no_session: 'There is no session for this device.',
  roster_expired: 'The roster has expired.',
  roster_rollback: 'The roster is older than one already accepted.',
  invalid_codename: 'The codename is not valid.',
};

/**
 * The one error type of the crypto core. `message` is the generic text of `code`; `cause`
 * carries the underlying exception when there is one (for debugging; never shown to users).
 */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  readonly code: CryptoErrorCode;
  /**
   * Internal, never on the wire: the input failed before any early tag (or the check that it
   * names its sender) authenticated it, so anyone could have made it. Such a failure cost one
   * HMAC or one DH and is not charged to the named peer's failure budget (cipher.ts), so that an
   * outsider who only knows a peer's public identity cannot use up that peer's budget.
   */
  readonly unauthenticated: boolean;

  constructor(
    code: CryptoErrorCode,
    options?: { readonly cause?: unknown; readonly unauthenticated?: boolean },
  ) {
    super(
      CRYPTO_ERROR_MESSAGES[code],
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.unauthenticated = options?.unauthenticated === true;
  }
}

/** True when `error` is a `CryptoError`, optionally with the given code. */
export function isCryptoError(error: unknown, code?: CryptoErrorCode): error is CryptoError {
  return error instanceof CryptoError && (code === undefined || error.code === code);
}

/**
 * Checks that `value` is a `Uint8Array` (of `length` bytes when given). Both backends call it on
 * every input before touching a library, so that a wrong input fails the same way on both:
 * `bad_encoding` for a non-byte value, `bad_length` for a wrong length.
 */
export function requireBytes(value: unknown, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  if (length !== undefined && value.length !== length) {
    throw new CryptoError(CryptoErrorCode.BAD_LENGTH);
  }
}

/**
 * Runs `operation` (a call into a backend's crypto library) and turns any exception it throws
 * into a `CryptoError` with `code`, keeping the library's own error as `cause`: the libraries'
 * texts differ, the codes must not. A `CryptoError` passes through unchanged.
 */
export function mapFailure<T>(code: CryptoErrorCode, operation: () => T): T {
  try {
    return operation();
  } catch (error: unknown) {
    if (error instanceof CryptoError) throw error;
    throw new CryptoError(code, { cause: error });
  }
}
