/**
 * Attachment sealing and opening (attachments.ts), on both crypto backends: the format as
 * specified (key, fixed nonce, label, Padmé padding), the size buckets and their bounds, and
 * every way a blob or its reference can be wrong, each with its own code in the documented
 * order of checks.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { loadPrimitives } from '../crypto/backend.js';
import { labelBytes } from '../crypto/encoding.js';
import type { Primitives } from '../crypto/primitives.js';
import { withRandom } from '../crypto/random.js';
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import { MAX_BLOB_BYTES } from '../protocol/limits.js';
import {
  AttachmentError,
  AttachmentErrorCode,
  MAX_ATTACHMENT_FILE_BYTES,
  MIN_ATTACHMENT_PADDED_BYTES,
  attachmentPaddedBytes,
  largestAttachmentFile,
  openAttachment,
  sealAttachment,
  sealedAttachmentBytes,
  type AttachmentReference,
  type SealedAttachment,
} from './attachments.js';
import { MAX_ATTACHMENT_BYTES } from './conversation/limits.js';

const backends: Record<'libsodium' | 'noble', Primitives> = {} as never;
beforeAll(async () => {
  backends.libsodium = await loadPrimitives({ prefer: 'libsodium', strict: true });
  backends.noble = await loadPrimitives({ prefer: 'noble' });
});

const TAG = 16;
const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);
const refOf = (s: SealedAttachment): AttachmentReference => ({
  key: s.key,
  digest: s.digest,
  size: s.size,
});

/** The code an operation fails with (and that it fails with an `AttachmentError` only). */
function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AttachmentError);
    return (error as AttachmentError).code;
  }
  return 'no error';
}

describe('attachment sizes', () => {
  it('announces no blob the relay cannot hold (MAX_ATTACHMENT_BYTES is the relay bound)', () => {
    expect(MAX_ATTACHMENT_BYTES).toBe(MAX_BLOB_BYTES);
  });

  it('seals the largest file to at most MAX_BLOB_BYTES, and one byte more past it', () => {
    expect(sealedAttachmentBytes(MAX_ATTACHMENT_FILE_BYTES)).toBeLessThanOrEqual(MAX_BLOB_BYTES);
    expect(sealedAttachmentBytes(MAX_ATTACHMENT_FILE_BYTES + 1)).toBeGreaterThan(MAX_BLOB_BYTES);
    // Padmé at 8 MiB rounds to 128 KiB steps: the largest file is a step below the bound.
    expect(MAX_ATTACHMENT_FILE_BYTES).toBe(MAX_BLOB_BYTES - 128 * 1024 - 1);
  });

  it('pads every small file to the same size', () => {
    const sizes = new Set(
      [1, 2, 100, 4_000, MIN_ATTACHMENT_PADDED_BYTES - 1].map((n) => sealedAttachmentBytes(n)),
    );
    expect([...sizes]).toEqual([MIN_ATTACHMENT_PADDED_BYTES + TAG]);
    expect(sealedAttachmentBytes(MIN_ATTACHMENT_PADDED_BYTES)).toBeGreaterThan(
      MIN_ATTACHMENT_PADDED_BYTES + TAG,
    );
  });

  it('pads by at most 12 % past the smallest size, and always to a size it can read back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_ATTACHMENT_FILE_BYTES }), (n) => {
        const padded = attachmentPaddedBytes(n);
        expect(padded).toBeGreaterThanOrEqual(n + 1);
        if (n >= MIN_ATTACHMENT_PADDED_BYTES) expect(padded / (n + 1)).toBeLessThanOrEqual(1.12);
        // Padding a padded length again changes nothing (so a blob's size names one bucket).
        expect(attachmentPaddedBytes(padded - 1)).toBe(padded);
      }),
      { numRuns: 2_000 },
    );
  });

  it('finds the largest file under a smaller (profile) bound, and none under a tiny one', () => {
    const limit = 1_000_000;
    const largest = largestAttachmentFile(limit);
    expect(sealedAttachmentBytes(largest)).toBeLessThanOrEqual(limit);
    expect(sealedAttachmentBytes(largest + 1)).toBeGreaterThan(limit);
    expect(largestAttachmentFile(MIN_ATTACHMENT_PADDED_BYTES + TAG)).toBe(
      MIN_ATTACHMENT_PADDED_BYTES - 1,
    );
    expect(largestAttachmentFile(MIN_ATTACHMENT_PADDED_BYTES + TAG - 1)).toBe(0);
  });
});

describe.each(['libsodium', 'noble'] as const)('sealing on %s', (name) => {
  const p = () => backends[name];

  it('round-trips files of every size class', () => {
    for (const n of [1, 4_094, 4_095, 4_096, 65_537, 300_001]) {
      const file = p().random.bytes(n);
      const sealed = sealAttachment(p(), file);
      expect(sealed.size).toBe(sealedAttachmentBytes(n));
      expect(sealed.blob.length).toBe(sealed.size);
      expect(openAttachment(p(), refOf(sealed), sealed.blob)).toEqual(file);
    }
  });

  it('is the specified format: zero nonce, versioned label, 0x80 padding, SHA-256 digest', () => {
    const key = bytes(32, 0x5a);
    const fixed = withRandom(p(), { bytes: () => key.slice(), uniform: () => 0 });
    const file = new TextEncoder().encode('a passport scan');
    const sealed = sealAttachment(fixed, file);
    const padded = new Uint8Array(MIN_ATTACHMENT_PADDED_BYTES);
    padded.set(file);
    padded[file.length] = 0x80;
    const expected = p().xchacha20poly1305Seal(
      key,
      new Uint8Array(24),
      padded,
      labelBytes('passage/v1/attachment'),
    );
    expect(sealed.blob).toEqual(expected);
    expect(sealed.key).toBe(toBase64url(key));
    expect(sealed.digest).toBe(toBase64url(p().sha256(expected)));
  });

  it('draws a fresh key for every file (equal files give unrelated blobs)', () => {
    const file = bytes(1_000);
    const a = sealAttachment(p(), file);
    const b = sealAttachment(p(), file);
    expect(a.key).not.toBe(b.key);
    expect(a.digest).not.toBe(b.digest);
  });

  it('opens what the other backend sealed', () => {
    const other = backends[name === 'libsodium' ? 'noble' : 'libsodium'];
    const file = p().random.bytes(10_000);
    const sealed = sealAttachment(other, file);
    expect(openAttachment(p(), refOf(sealed), sealed.blob)).toEqual(file);
  });

  it('opens whatever it sealed, and leaves the caller’s file untouched (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 20_000 }), (file) => {
        const copy = file.slice();
        const sealed = sealAttachment(p(), file);
        expect(file).toEqual(copy);
        expect(openAttachment(p(), refOf(sealed), sealed.blob)).toEqual(file);
      }),
      { numRuns: 50 },
    );
  });

  // --- refusals ---------------------------------------------------------------------------

  it('refuses an empty file', () => {
    expect(codeOf(() => sealAttachment(p(), new Uint8Array(0)))).toBe(AttachmentErrorCode.EMPTY);
  });

  it('refuses a file one byte over the largest, and seals the largest', () => {
    expect(codeOf(() => sealAttachment(p(), bytes(MAX_ATTACHMENT_FILE_BYTES + 1)))).toBe(
      AttachmentErrorCode.TOO_LARGE,
    );
    expect(sealAttachment(p(), bytes(MAX_ATTACHMENT_FILE_BYTES)).size).toBeLessThanOrEqual(
      MAX_BLOB_BYTES,
    );
  });

  it('refuses everything when the bound it is given is not a number', () => {
    expect(codeOf(() => sealAttachment(p(), bytes(1), Number.NaN))).toBe(
      AttachmentErrorCode.TOO_LARGE,
    );
  });

  it('refuses a file over a smaller bound (a profile’s), at the bound and one past it', () => {
    const limit = sealedAttachmentBytes(50_000);
    const largest = largestAttachmentFile(limit);
    expect(sealAttachment(p(), bytes(largest), limit).size).toBeLessThanOrEqual(limit);
    expect(codeOf(() => sealAttachment(p(), bytes(largest + 1), limit))).toBe(
      AttachmentErrorCode.TOO_LARGE,
    );
  });

  it('refuses a blob under the wrong key (after its digest matched)', () => {
    const sealed = sealAttachment(p(), bytes(500));
    const ref = { ...refOf(sealed), key: toBase64url(bytes(32, 1)) };
    expect(codeOf(() => openAttachment(p(), ref, sealed.blob))).toBe(
      AttachmentErrorCode.DECRYPT_FAILED,
    );
  });

  it('refuses a blob with a flipped byte by its digest, before decrypting', () => {
    const sealed = sealAttachment(p(), bytes(500));
    let decrypted = false;
    const watching = {
      ...p(),
      xchacha20poly1305Open: (...args: Parameters<Primitives['xchacha20poly1305Open']>) => {
        decrypted = true;
        return p().xchacha20poly1305Open(...args);
      },
    };
    for (const at of [0, 100, sealed.size - 1]) {
      const flipped = sealed.blob.slice();
      flipped[at]! ^= 0x01;
      expect(codeOf(() => openAttachment(watching, refOf(sealed), flipped))).toBe(
        AttachmentErrorCode.DIGEST_MISMATCH,
      );
    }
    expect(decrypted).toBe(false);
  });

  it('refuses a flipped byte that comes with a matching digest (a sender’s forgery) by its tag', () => {
    const sealed = sealAttachment(p(), bytes(500));
    const flipped = sealed.blob.slice();
    flipped[10]! ^= 0x80;
    const ref = { ...refOf(sealed), digest: toBase64url(p().sha256(flipped)) };
    expect(codeOf(() => openAttachment(p(), ref, flipped))).toBe(
      AttachmentErrorCode.DECRYPT_FAILED,
    );
  });

  it('refuses a truncated blob by its size, before hashing it', () => {
    const sealed = sealAttachment(p(), bytes(500));
    let hashed = false;
    const watching = {
      ...p(),
      sha256: (d: Uint8Array) => ((hashed = true), p().sha256(d)),
    };
    for (const cut of [0, 1, sealed.size - 1]) {
      expect(
        codeOf(() => openAttachment(watching, refOf(sealed), sealed.blob.subarray(0, cut))),
      ).toBe(AttachmentErrorCode.SIZE_MISMATCH);
    }
    expect(hashed).toBe(false);
  });

  it('refuses a blob longer than announced (trailing bytes)', () => {
    const sealed = sealAttachment(p(), bytes(500));
    const longer = new Uint8Array(sealed.size + 1);
    longer.set(sealed.blob);
    expect(codeOf(() => openAttachment(p(), refOf(sealed), longer))).toBe(
      AttachmentErrorCode.SIZE_MISMATCH,
    );
  });

  it('refuses an announced size that sealing never produces', () => {
    const sealed = sealAttachment(p(), bytes(500));
    const cut = sealed.blob.subarray(0, sealed.size - 1);
    const ref = { key: sealed.key, digest: toBase64url(p().sha256(cut)), size: cut.length };
    expect(codeOf(() => openAttachment(p(), ref, cut))).toBe(AttachmentErrorCode.BAD_LENGTH);
  });

  it('refuses a truncated blob cut to another bucket’s size, with its digest, by its tag', () => {
    const sealed = sealAttachment(p(), bytes(10_000));
    const size = sealedAttachmentBytes(1);
    const cut = sealed.blob.subarray(0, size);
    const ref = { key: sealed.key, digest: toBase64url(p().sha256(cut)), size };
    expect(codeOf(() => openAttachment(p(), ref, cut))).toBe(AttachmentErrorCode.DECRYPT_FAILED);
  });

  it('refuses another blob of the same size (digest mismatch)', () => {
    const a = sealAttachment(p(), bytes(500));
    const b = sealAttachment(p(), bytes(500));
    expect(codeOf(() => openAttachment(p(), refOf(a), b.blob))).toBe(
      AttachmentErrorCode.DIGEST_MISMATCH,
    );
  });

  it('refuses a reference announcing another size than the blob’s', () => {
    const sealed = sealAttachment(p(), bytes(500));
    const ref = { ...refOf(sealed), size: sealedAttachmentBytes(5_000) };
    expect(codeOf(() => openAttachment(p(), ref, sealed.blob))).toBe(
      AttachmentErrorCode.SIZE_MISMATCH,
    );
  });

  it('refuses a malformed reference (key, digest, size) before looking at the blob', () => {
    const sealed = sealAttachment(p(), bytes(500));
    const good = refOf(sealed);
    for (const ref of [
      { ...good, key: toBase64url(bytes(31)) },
      { ...good, key: `${good.key}=` },
      { ...good, digest: toBase64url(bytes(33)) },
      { ...good, digest: '' },
      { ...good, size: 0 },
      { ...good, size: 1.5 },
      { ...good, size: MAX_ATTACHMENT_BYTES + 1 },
      { ...good, key: 42 as unknown as string },
      { ...good, digest: null as unknown as string },
      { ...good, size: '4112' as unknown as number },
    ]) {
      expect(codeOf(() => openAttachment(p(), ref, sealed.blob))).toBe(
        AttachmentErrorCode.BAD_REFERENCE,
      );
    }
  });

  /** Seals `padded` as the format does, under a fresh key: a reference to it. */
  const sealRaw = (padded: Uint8Array) => {
    const key = p().random.bytes(32);
    const blob = p().xchacha20poly1305Seal(
      key,
      new Uint8Array(24),
      padded,
      labelBytes('passage/v1/attachment'),
    );
    const ref = { key: toBase64url(key), digest: toBase64url(p().sha256(blob)), size: blob.length };
    return { ref, blob };
  };

  it('refuses an authenticated blob without its padding marker', () => {
    const { ref, blob } = sealRaw(bytes(MIN_ATTACHMENT_PADDED_BYTES, 0x41));
    expect(codeOf(() => openAttachment(p(), ref, blob))).toBe(AttachmentErrorCode.BAD_PADDING);
  });

  it('refuses an authenticated blob padded to a larger bucket than its file needs', () => {
    const padded = new Uint8Array(attachmentPaddedBytes(MIN_ATTACHMENT_PADDED_BYTES));
    padded[10] = 0x80;
    const { ref, blob } = sealRaw(padded);
    expect(codeOf(() => openAttachment(p(), ref, blob))).toBe(AttachmentErrorCode.BAD_PADDING);
  });

  it('refuses an authenticated blob that holds an empty file', () => {
    const padded = new Uint8Array(MIN_ATTACHMENT_PADDED_BYTES);
    padded[0] = 0x80;
    const { ref, blob } = sealRaw(padded);
    expect(codeOf(() => openAttachment(p(), ref, blob))).toBe(AttachmentErrorCode.EMPTY);
  });

  it('fails only with an AttachmentError, whatever the blob and reference (property)', () => {
    const sealed = sealAttachment(p(), bytes(3_000));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 5_000 }),
        fc.oneof(
          fc.constant(sealed.key),
          fc.string(),
          fc.uint8Array({ maxLength: 40 }).map(toBase64url),
        ),
        fc.oneof(fc.constant(sealed.digest), fc.string()),
        fc.oneof(fc.constant(sealed.size), fc.integer(), fc.double()),
        (blob, key, digest, size) => {
          const code = codeOf(() => openAttachment(p(), { key, digest, size }, blob));
          expect(Object.values(AttachmentErrorCode)).toContain(code);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses every single flipped bit of a blob (property)', () => {
    const file = bytes(2_000, 3);
    const sealed = sealAttachment(p(), file);
    fc.assert(
      fc.property(fc.nat(sealed.size - 1), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const flipped = sealed.blob.slice();
        flipped[at]! ^= 1 << bit;
        expect(codeOf(() => openAttachment(p(), refOf(sealed), flipped))).toBe(
          AttachmentErrorCode.DIGEST_MISMATCH,
        );
      }),
      { numRuns: 100 },
    );
    expect(fromBase64url(sealed.key)).toHaveLength(32);
  });
});
