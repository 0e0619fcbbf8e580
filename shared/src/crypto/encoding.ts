/**
 * Byte-level helpers for the crypto layer's versioned encodings: concatenation, fixed-width
 * big-endian integers, and a strict reader that refuses short input, wrong lengths and trailing
 * bytes. Every decoder in this folder goes through `ByteReader`, so "strict" means the same thing
 * everywhere: one value has exactly one encoding, and anything else is a `CryptoError('bad_encoding')`.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import { utf8ToBytes } from './noble.js';

/** Concatenates byte arrays into a fresh array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Equality of two byte arrays in time that depends only on their lengths, for comparing values
 * an attacker may probe (keys, fingerprints, tags).
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Lower-case hex, used for map keys (never for secrets that leave memory). */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** UTF-8 bytes of a label; labels are ASCII constants, so this is their byte spelling. */
export function labelBytes(label: string): Uint8Array {
  return utf8ToBytes(label);
}

/** A label followed by a 0x00 separator, used as a domain-separation prefix before data. */
export function labelPrefix(label: string): Uint8Array {
  return concatBytes(utf8ToBytes(label), new Uint8Array([0]));
}

export function u8(value: number): Uint8Array {
  return new Uint8Array([value & 0xff]);
}

export function u16(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new RangeError('u16 out of range');
  }
  return new Uint8Array([value >>> 8, value & 0xff]);
}

export function u32(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError('u32 out of range');
  }
  return new Uint8Array([value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]);
}

/**
 * Reads a byte string front to back. Any read past the end, and `end()` with bytes left over,
 * throws `CryptoError('bad_encoding')`: decoders call `end()` last so trailing bytes are rejected.
 */
export class ByteReader {
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {}

  /** Bytes not yet read. */
  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  /** The next `n` bytes, copied so that the caller owns them. */
  bytesN(n: number): Uint8Array {
    if (n < 0 || this.offset + n > this.bytes.length) {
      throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
    }
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** Everything that is left. */
  rest(): Uint8Array {
    return this.bytesN(this.remaining);
  }

  u8(): number {
    return this.bytesN(1)[0]!;
  }

  u16(): number {
    const b = this.bytesN(2);
    return (b[0]! << 8) | b[1]!;
  }

  u32(): number {
    const b = this.bytesN(4);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  }

  /** A boolean encoded as exactly 0x00 or 0x01; any other byte is malformed. */
  flag(): boolean {
    const b = this.u8();
    if (b > 1) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
    return b === 1;
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.offset !== this.bytes.length) {
      throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
    }
  }
}

/**
 * Reads the leading version byte and checks it, before anything else is decoded (libsignal's
 * habit of checking the version nibble first).
 */
export function expectVersion(reader: ByteReader, expected: number): void {
  if (reader.remaining < 1) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  const version = reader.u8();
  if (version !== expected) {
    throw new CryptoError(CryptoErrorCode.UNSUPPORTED_VERSION);
  }
}
