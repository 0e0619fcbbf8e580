import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CryptoErrorCode } from './errors.js';
import type { CryptoErrorCode as Code } from './errors.js';
import { MAX_PADDED_DATA_BYTES, PADDING_BUCKETS_BYTES, pad, unpad } from './padding.js';

function codeOf(operation: () => unknown): Code {
  try {
    operation();
  } catch (error: unknown) {
    if (error instanceof Error && error.name === 'CryptoError' && 'code' in error) {
      return error.code as Code;
    }
    throw error;
  }
  throw new Error('expected a CryptoError, but the operation succeeded');
}

describe('pad', () => {
  it('pads empty data to the smallest bucket: 0x80 then zeros', () => {
    const padded = pad(new Uint8Array(0));
    expect(padded.length).toBe(256);
    expect(padded[0]).toBe(0x80);
    expect(padded.subarray(1).every((byte) => byte === 0)).toBe(true);
  });

  it('keeps 255 bytes in 256 and moves 256 bytes to 1024 (the marker needs a byte)', () => {
    expect(pad(new Uint8Array(255).fill(1)).length).toBe(256);
    expect(pad(new Uint8Array(256).fill(1)).length).toBe(1024);
  });

  it('accepts the most data the largest bucket holds', () => {
    expect(MAX_PADDED_DATA_BYTES).toBe(PADDING_BUCKETS_BYTES.at(-1)! - 1);
    expect(pad(new Uint8Array(MAX_PADDED_DATA_BYTES)).length).toBe(61_440);
  });

  it('leaves its input unchanged and returns a fresh array', () => {
    const data = Uint8Array.from([1, 2, 3]);
    const padded = pad(data);
    padded[0] = 9;
    expect([...data]).toEqual([1, 2, 3]);
  });

  it('round-trips any data, including data that ends in 0x80 or zeros', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (data) => {
        const padded = pad(data);
        expect(PADDING_BUCKETS_BYTES).toContain(padded.length);
        expect([...unpad(padded)]).toEqual([...data]);
      }),
    );
    for (const tail of [[0x80], [0x00], [0x80, 0x00], [0x00, 0x80]]) {
      expect([...unpad(pad(Uint8Array.from(tail)))]).toEqual(tail);
    }
  });

  it('uses custom buckets when given', () => {
    expect(pad(Uint8Array.from([1]), [4, 8]).length).toBe(4);
    expect([...unpad(Uint8Array.from([1, 2, 3, 4, 0x80, 0, 0, 0]), [4, 8])]).toEqual([1, 2, 3, 4]);
  });

  it('rejects data larger than the largest bucket with limit_exceeded', () => {
    expect(codeOf(() => pad(new Uint8Array(MAX_PADDED_DATA_BYTES + 1)))).toBe(
      CryptoErrorCode.LIMIT_EXCEEDED,
    );
    expect(codeOf(() => pad(new Uint8Array(4), [4]))).toBe(CryptoErrorCode.LIMIT_EXCEEDED);
  });

  it('rejects empty, unordered or fractional bucket lists with bad_length', () => {
    expect(codeOf(() => pad(new Uint8Array(1), []))).toBe(CryptoErrorCode.BAD_LENGTH);
    expect(codeOf(() => pad(new Uint8Array(1), [16, 8]))).toBe(CryptoErrorCode.BAD_LENGTH);
    expect(codeOf(() => pad(new Uint8Array(1), [8, 8]))).toBe(CryptoErrorCode.BAD_LENGTH);
    expect(codeOf(() => pad(new Uint8Array(1), [7.5]))).toBe(CryptoErrorCode.BAD_LENGTH);
    expect(codeOf(() => unpad(new Uint8Array(8), []))).toBe(CryptoErrorCode.BAD_LENGTH);
  });

  it('rejects a value that is not a byte array with bad_encoding', () => {
    expect(codeOf(() => pad([1, 2] as unknown as Uint8Array))).toBe(CryptoErrorCode.BAD_ENCODING);
    expect(codeOf(() => unpad('x' as unknown as Uint8Array))).toBe(CryptoErrorCode.BAD_ENCODING);
  });
});

describe('unpad', () => {
  function padded(size: number, dataLength: number): Uint8Array {
    const bytes = new Uint8Array(size).fill(0);
    bytes.fill(0x41, 0, dataLength);
    bytes[dataLength] = 0x80;
    return bytes;
  }

  it('returns the data before the marker', () => {
    expect(unpad(padded(256, 10)).length).toBe(10);
  });

  it('rejects a length that is not a bucket size', () => {
    expect(codeOf(() => unpad(padded(255, 10)))).toBe(CryptoErrorCode.BAD_PADDING);
    expect(codeOf(() => unpad(padded(257, 10)))).toBe(CryptoErrorCode.BAD_PADDING);
    expect(codeOf(() => unpad(new Uint8Array(0)))).toBe(CryptoErrorCode.BAD_PADDING);
  });

  it('rejects all-zero bytes (no marker)', () => {
    expect(codeOf(() => unpad(new Uint8Array(256)))).toBe(CryptoErrorCode.BAD_PADDING);
  });

  it('rejects a last non-zero byte other than 0x80', () => {
    const bytes = padded(256, 10);
    bytes[10] = 0x81;
    expect(codeOf(() => unpad(bytes))).toBe(CryptoErrorCode.BAD_PADDING);
    const trailing = padded(256, 10);
    trailing[200] = 0x01;
    expect(codeOf(() => unpad(trailing))).toBe(CryptoErrorCode.BAD_PADDING);
    const last = padded(256, 10);
    last[255] = 0x80 ^ 0x01;
    expect(codeOf(() => unpad(last))).toBe(CryptoErrorCode.BAD_PADDING);
  });

  it('rejects data padded to a larger bucket than pad would choose', () => {
    expect(codeOf(() => unpad(padded(1024, 10)))).toBe(CryptoErrorCode.BAD_PADDING);
    expect(codeOf(() => unpad(padded(1024, 255)))).toBe(CryptoErrorCode.BAD_PADDING);
    expect(unpad(padded(1024, 256)).length).toBe(256);
  });
});
