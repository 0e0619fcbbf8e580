/**
 * SHA-256 as a parameter. The protocol and proof-of-work are imported by the relay, which may
 * not import the crypto layer, and only `crypto/noble.ts` may import a hash library; so the code
 * here that needs SHA-256 (mailbox ids, proof-of-work) takes the function from its caller: the
 * relay passes Node's, a page the pure-JS one behind the crypto layer.
 */

/** SHA-256 of `data` (FIPS 180-4): 32 bytes. */
export type Sha256 = (data: Uint8Array) => Uint8Array;

/** A SHA-256 digest's length. */
export const SHA256_BYTES = 32;

/**
 * `sha256(data)`, checked to be 32 bytes, so that a wrong function passed in (SHA-512, a
 * truncation) fails loudly instead of producing ids or proofs that nobody else agrees with.
 */
export function digestWith(sha256: Sha256, data: Uint8Array): Uint8Array {
  const digest = sha256(data);
  if (!(digest instanceof Uint8Array) || digest.length !== SHA256_BYTES) {
    throw new RangeError(`a SHA-256 digest is ${SHA256_BYTES} bytes`);
  }
  return digest;
}

/**
 * The bytes of an ASCII label (domain-separation constants). Refuses anything outside ASCII,
 * where "the label's bytes" would depend on an encoding choice.
 */
export function asciiBytes(label: string): Uint8Array {
  const out = new Uint8Array(label.length);
  for (let i = 0; i < label.length; i++) {
    const code = label.charCodeAt(i);
    if (code > 0x7f) throw new RangeError('a label is ASCII');
    out[i] = code;
  }
  return out;
}
