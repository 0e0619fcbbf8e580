import { deflateSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { concatBytes } from '../crypto/encoding.js';
import { StripErrorCode, TRAILING_DATA, crc32, stripMetadata, type StripResult } from './strip.js';

// Fixtures are built from bytes here, so every test says exactly what the file holds.

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Whether `needle` occurs anywhere in `haystack`. */
function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).indexOf(Buffer.from(needle)) !== -1;
}

const SECRETS = [
  'GPS 55.75N',
  'Secret Author',
  'Secret Agency',
  'secret place',
  'secret trailer',
  'SERIAL-1234',
].map(text);

function expectNoSecrets(bytes: Uint8Array): void {
  for (const secret of SECRETS) expect(contains(bytes, secret)).toBe(false);
}

function expectOk(result: StripResult): Extract<StripResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected ok, got ${result.code}`);
  return result;
}

function expectFailure(result: StripResult, code: StripErrorCode, type?: string): void {
  expect(result).toEqual(type === undefined ? { ok: false, code } : { ok: false, code, type });
}

// --- JPEG -----------------------------------------------------------------------------------

function seg(marker: number, payload: Uint8Array): Uint8Array {
  const length = payload.length + 2;
  return concatBytes(Uint8Array.of(0xff, marker, length >> 8, length & 0xff), payload);
}

const SOI = Uint8Array.of(0xff, 0xd8);
const EOI = Uint8Array.of(0xff, 0xd9);
const JFIF = seg(0xe0, concatBytes(text('JFIF\0'), Uint8Array.of(1, 1, 0, 0, 1, 0, 1, 0, 0)));
const EXIF = seg(0xe1, concatBytes(text('Exif\0\0MM\0*'), text('GPS 55.75N SERIAL-1234')));
const XMP = seg(
  0xe1,
  text(
    'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><dc:creator>Secret Author</dc:creator></x:xmpmeta>',
  ),
);
const ICC = seg(
  0xe2,
  concatBytes(text('ICC_PROFILE\0'), Uint8Array.of(1, 1), text('fake-icc-profile')),
);
const MPF = seg(0xe2, text('MPF\0II*\0 points at more images'));
const IPTC = seg(0xed, text('Photoshop 3.0\x008BIM byline Secret Agency'));
const ADOBE = seg(0xee, concatBytes(text('Adobe'), Uint8Array.of(0, 100, 0, 0, 0, 0, 1)));
const COM = seg(0xfe, text('shot at secret place'));
const DQT = seg(
  0xdb,
  new Uint8Array(65).map((_, i) => (i === 0 ? 0 : i)),
);
const SOF0 = seg(0xc0, Uint8Array.of(8, 0, 1, 0, 1, 1, 1, 0x11, 0));
const DHT = seg(0xc4, Uint8Array.of(0, 1, ...new Array<number>(15).fill(0), 0));
const SOS = seg(0xda, Uint8Array.of(1, 1, 0, 0, 0x3f, 0));
// Entropy-coded data with a stuffed 0xFF00 and a restart marker, which belong to the scan.
const ENTROPY = Uint8Array.of(0x12, 0x34, 0xff, 0x00, 0x56, 0xff, 0xd0, 0x78, 0x9a);
const TRAILER = text('MotionPhoto_Data ftypmp42 secret trailer');

const JPEG_KEPT = concatBytes(SOI, JFIF, ICC, ADOBE, DQT, SOF0, DHT, SOS, ENTROPY, EOI);
const JPEG = concatBytes(
  SOI,
  JFIF,
  EXIF,
  XMP,
  ICC,
  MPF,
  IPTC,
  ADOBE,
  COM,
  DQT,
  SOF0,
  DHT,
  SOS,
  ENTROPY,
  EOI,
  TRAILER,
);

describe('stripMetadata on JPEG', () => {
  it('drops Exif, XMP, IPTC, COM, other APPn and the trailer, and keeps everything else verbatim', () => {
    const result = expectOk(stripMetadata(JPEG, 'image/jpeg'));
    expect(result.type).toBe('image/jpeg');
    expect(result.bytes).toEqual(JPEG_KEPT);
    expect(result.removed).toEqual(['EXIF', 'XMP', 'APP2', 'IPTC', 'COM', TRAILING_DATA]);
    expectNoSecrets(result.bytes);
  });

  it('keeps the ICC profile, the Adobe segment and SOS..EOI byte for byte', () => {
    const { bytes } = expectOk(stripMetadata(JPEG));
    expect(contains(bytes, ICC)).toBe(true);
    expect(contains(bytes, ADOBE)).toBe(true);
    expect(contains(bytes, concatBytes(SOS, ENTROPY, EOI))).toBe(true);
  });

  it('is idempotent', () => {
    const once = expectOk(stripMetadata(JPEG));
    const twice = expectOk(stripMetadata(once.bytes));
    expect(twice.bytes).toEqual(once.bytes);
    expect(twice.removed).toEqual([]);
  });

  it('detects the type by magic bytes, not the declared type', () => {
    expect(expectOk(stripMetadata(JPEG, 'image/png')).type).toBe('image/jpeg');
  });

  it('keeps the segments between the scans of a progressive JPEG and drops a COM among them', () => {
    const scan2 = Uint8Array.of(0xab, 0xff, 0x00, 0xcd);
    const input = concatBytes(SOI, JFIF, DQT, SOF0, DHT, SOS, ENTROPY, DHT, COM, SOS, scan2, EOI);
    const result = expectOk(stripMetadata(input));
    expect(result.bytes).toEqual(
      concatBytes(SOI, JFIF, DQT, SOF0, DHT, SOS, ENTROPY, DHT, SOS, scan2, EOI),
    );
    expect(result.removed).toEqual(['COM']);
  });

  it('removes the thumbnail of a JFIF segment', () => {
    const withThumb = seg(
      0xe0,
      concatBytes(text('JFIF\0'), Uint8Array.of(1, 1, 0, 0, 1, 0, 1, 1, 1), Uint8Array.of(1, 2, 3)),
    );
    const result = expectOk(
      stripMetadata(concatBytes(SOI, withThumb, DQT, SOF0, SOS, ENTROPY, EOI)),
    );
    expect(result.bytes).toEqual(concatBytes(SOI, JFIF, DQT, SOF0, SOS, ENTROPY, EOI));
    expect(result.removed).toEqual(['JFIF thumbnail']);
  });

  it('drops reserved and extension segments (JPGn)', () => {
    const jpg0 = seg(0xf0, text('SERIAL-1234'));
    const result = expectOk(stripMetadata(concatBytes(SOI, jpg0, DQT, SOF0, SOS, ENTROPY, EOI)));
    expect(result.bytes).toEqual(concatBytes(SOI, DQT, SOF0, SOS, ENTROPY, EOI));
    expect(result.removed).toEqual(['marker 0xf0']);
  });

  it('drops 0xFF fill bytes before a marker', () => {
    const input = concatBytes(SOI, Uint8Array.of(0xff, 0xff), DQT, SOF0, SOS, ENTROPY, EOI);
    expect(expectOk(stripMetadata(input)).bytes).toEqual(
      concatBytes(SOI, DQT, SOF0, SOS, ENTROPY, EOI),
    );
  });

  it('rejects a segment whose length runs past the end of the file', () => {
    const truncated = concatBytes(SOI, JFIF, EXIF.subarray(0, EXIF.length - 3));
    expectFailure(stripMetadata(truncated), StripErrorCode.MALFORMED, 'image/jpeg');
  });

  it('rejects a segment whose length is less than 2', () => {
    const input = concatBytes(SOI, Uint8Array.of(0xff, 0xe1, 0x00, 0x01), DQT, SOS, ENTROPY, EOI);
    expectFailure(stripMetadata(input), StripErrorCode.MALFORMED, 'image/jpeg');
  });

  it('rejects a marker whose length bytes are cut off', () => {
    expectFailure(
      stripMetadata(concatBytes(SOI, Uint8Array.of(0xff, 0xdb, 0x00))),
      StripErrorCode.MALFORMED,
      'image/jpeg',
    );
  });

  it('rejects a file declared as JPEG without SOI', () => {
    expectFailure(
      stripMetadata(JPEG.subarray(2), 'image/jpeg'),
      StripErrorCode.MALFORMED,
      'image/jpeg',
    );
  });

  it('rejects a scan with no EOI after it', () => {
    expectFailure(
      stripMetadata(JPEG_KEPT.subarray(0, JPEG_KEPT.length - 2)),
      StripErrorCode.MALFORMED,
      'image/jpeg',
    );
  });

  it('rejects EOI before any scan', () => {
    expectFailure(
      stripMetadata(concatBytes(SOI, JFIF, DQT, EOI)),
      StripErrorCode.MALFORMED,
      'image/jpeg',
    );
  });

  it('rejects a file that ends right after SOI', () => {
    expectFailure(
      stripMetadata(Uint8Array.of(0xff, 0xd8, 0xff)),
      StripErrorCode.MALFORMED,
      'image/jpeg',
    );
  });

  it('rejects bytes between segments that are not a marker', () => {
    const input = concatBytes(SOI, JFIF, Uint8Array.of(0x00), DQT, SOF0, SOS, ENTROPY, EOI);
    expectFailure(stripMetadata(input), StripErrorCode.MALFORMED, 'image/jpeg');
  });

  it('rejects a second SOI', () => {
    expectFailure(
      stripMetadata(concatBytes(SOI, JFIF, SOI, DQT, SOS, ENTROPY, EOI)),
      StripErrorCode.MALFORMED,
      'image/jpeg',
    );
  });

  it('rejects the invalid marker 0xFF00 outside a scan', () => {
    expectFailure(
      stripMetadata(concatBytes(SOI, Uint8Array.of(0xff, 0x00), SOS, ENTROPY, EOI)),
      StripErrorCode.MALFORMED,
      'image/jpeg',
    );
  });
});

// --- PNG ------------------------------------------------------------------------------------

const PNG_SIG = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

function u32(value: number): Uint8Array {
  return Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const body = concatBytes(text(type), data);
  return concatBytes(u32(data.length), body, u32(crc32(body)));
}

// A 2x2 8-bit RGB image: each row is a filter byte (0) and 3 bytes per pixel.
const RAW_ROWS = Uint8Array.of(0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255);
const IHDR = chunk('IHDR', concatBytes(u32(2), u32(2), Uint8Array.of(8, 2, 0, 0, 0)));
const IDAT = chunk('IDAT', new Uint8Array(deflateSync(RAW_ROWS)));
const IEND = chunk('IEND', new Uint8Array(0));
const GAMA = chunk('gAMA', u32(45455));
const ICCP = chunk(
  'iCCP',
  concatBytes(text('ICC profile\0\0'), new Uint8Array(deflateSync(text('fake-icc-profile')))),
);
const PHYS = chunk('pHYs', concatBytes(u32(2835), u32(2835), Uint8Array.of(1)));
const TEXT = chunk('tEXt', text('Author\0Secret Author'));
const ZTXT = chunk(
  'zTXt',
  concatBytes(text('Comment\0\0'), new Uint8Array(deflateSync(text('shot at secret place')))),
);
const ITXT = chunk('iTXt', text('XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>Secret Agency</x:xmpmeta>'));
const EXIF_PNG = chunk('eXIf', text('MM\0*GPS 55.75N SERIAL-1234'));
const TIME = chunk('tIME', Uint8Array.of(0x07, 0xea, 1, 2, 3, 4, 5));
const PRIVATE = chunk('prVt', text('SERIAL-1234'));

const PNG_KEPT = concatBytes(PNG_SIG, IHDR, GAMA, ICCP, PHYS, IDAT, IEND);
const PNG = concatBytes(
  PNG_SIG,
  IHDR,
  GAMA,
  TEXT,
  ICCP,
  ZTXT,
  PHYS,
  EXIF_PNG,
  TIME,
  IDAT,
  ITXT,
  PRIVATE,
  IEND,
  text('secret trailer'),
);

/** Parses PNG chunks, checking each CRC; throws on anything wrong. */
function pngChunks(bytes: Uint8Array): { type: string; data: Uint8Array }[] {
  expect(bytes.subarray(0, 8)).toEqual(PNG_SIG);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks = [];
  for (let pos = 8; pos < bytes.length;) {
    const length = view.getUint32(pos);
    const body = bytes.subarray(pos + 4, pos + 8 + length);
    expect(view.getUint32(pos + 8 + length)).toBe(crc32(body));
    chunks.push({ type: new TextDecoder().decode(body.subarray(0, 4)), data: body.subarray(4) });
    pos += 12 + length;
  }
  return chunks;
}

describe('crc32', () => {
  it('matches the standard check value and the CRC of IEND', () => {
    expect(crc32(text('123456789'))).toBe(0xcbf43926);
    expect(crc32(text('IEND'))).toBe(0xae426082);
  });
});

describe('stripMetadata on PNG', () => {
  it('drops text, eXIf, tIME, unknown ancillary chunks and the trailer; keeps the rest verbatim', () => {
    const result = expectOk(stripMetadata(PNG, 'image/png'));
    expect(result.type).toBe('image/png');
    expect(result.bytes).toEqual(PNG_KEPT);
    expect(result.removed).toEqual(['tEXt', 'zTXt', 'eXIf', 'tIME', 'iTXt', 'prVt', TRAILING_DATA]);
    expectNoSecrets(result.bytes);
  });

  it('produces chunks with valid CRCs whose image data still decodes to the same pixels', () => {
    const chunks = pngChunks(expectOk(stripMetadata(PNG)).bytes);
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'gAMA', 'iCCP', 'pHYs', 'IDAT', 'IEND']);
    const idat = chunks.find((c) => c.type === 'IDAT')!;
    expect(new Uint8Array(inflateSync(idat.data))).toEqual(RAW_ROWS);
  });

  it('is idempotent', () => {
    const once = expectOk(stripMetadata(PNG));
    const twice = expectOk(stripMetadata(once.bytes));
    expect(twice.bytes).toEqual(once.bytes);
    expect(twice.removed).toEqual([]);
  });

  it('keeps APNG animation chunks', () => {
    const actl = chunk('acTL', concatBytes(u32(1), u32(0)));
    const fctl = chunk('fcTL', new Uint8Array(26));
    const input = concatBytes(PNG_SIG, IHDR, actl, fctl, IDAT, IEND);
    expect(expectOk(stripMetadata(input)).bytes).toEqual(input);
  });

  it('rejects a chunk with a bad CRC', () => {
    const bad = TEXT.slice();
    bad[bad.length - 1]! ^= 1;
    expectFailure(
      stripMetadata(concatBytes(PNG_SIG, IHDR, bad, IDAT, IEND)),
      StripErrorCode.MALFORMED,
      'image/png',
    );
  });

  it('rejects a chunk whose data is altered under a valid-looking header', () => {
    const bad = IDAT.slice();
    bad[10]! ^= 0x40;
    expectFailure(
      stripMetadata(concatBytes(PNG_SIG, IHDR, bad, IEND)),
      StripErrorCode.MALFORMED,
      'image/png',
    );
  });

  it('rejects a truncated chunk', () => {
    expectFailure(
      stripMetadata(concatBytes(PNG_SIG, IHDR, IDAT.subarray(0, IDAT.length - 5))),
      StripErrorCode.MALFORMED,
      'image/png',
    );
  });

  it('rejects a file without IEND', () => {
    expectFailure(
      stripMetadata(concatBytes(PNG_SIG, IHDR, IDAT)),
      StripErrorCode.MALFORMED,
      'image/png',
    );
  });

  it('rejects a file whose first chunk is not IHDR', () => {
    expectFailure(
      stripMetadata(concatBytes(PNG_SIG, GAMA, IHDR, IDAT, IEND)),
      StripErrorCode.MALFORMED,
      'image/png',
    );
  });

  it('rejects an IHDR of the wrong length', () => {
    const ihdr = chunk('IHDR', concatBytes(u32(2), u32(2), Uint8Array.of(8, 2, 0, 0)));
    expectFailure(
      stripMetadata(concatBytes(PNG_SIG, ihdr, IDAT, IEND)),
      StripErrorCode.MALFORMED,
      'image/png',
    );
  });

  it('rejects a file without IDAT', () => {
    expectFailure(
      stripMetadata(concatBytes(PNG_SIG, IHDR, IEND)),
      StripErrorCode.MALFORMED,
      'image/png',
    );
  });

  it('rejects an unknown critical chunk', () => {
    const input = concatBytes(PNG_SIG, IHDR, chunk('CRIT', text('x')), IDAT, IEND);
    expectFailure(stripMetadata(input), StripErrorCode.MALFORMED, 'image/png');
  });

  it('rejects a chunk type that is not four letters', () => {
    const input = concatBytes(PNG_SIG, IHDR, chunk('a1b2', text('x')), IDAT, IEND);
    expectFailure(stripMetadata(input), StripErrorCode.MALFORMED, 'image/png');
  });

  it('rejects a chunk length above 2^31 - 1', () => {
    const input = concatBytes(PNG_SIG, IHDR, u32(0x80000000), text('tEXt'), IDAT, IEND);
    expectFailure(stripMetadata(input), StripErrorCode.MALFORMED, 'image/png');
  });

  it('rejects an IEND with data', () => {
    expectFailure(
      stripMetadata(concatBytes(PNG_SIG, IHDR, IDAT, chunk('IEND', text('x')))),
      StripErrorCode.MALFORMED,
      'image/png',
    );
  });

  it('rejects a signature with nothing after it', () => {
    expectFailure(stripMetadata(PNG_SIG), StripErrorCode.MALFORMED, 'image/png');
  });
});

// --- WebP -----------------------------------------------------------------------------------

function u32le(value: number): Uint8Array {
  return Uint8Array.of(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24);
}

function riff(id: string, payload: Uint8Array): Uint8Array {
  return concatBytes(
    text(id),
    u32le(payload.length),
    payload,
    payload.length % 2 ? Uint8Array.of(0) : new Uint8Array(0),
  );
}

function webp(...chunks: readonly Uint8Array[]): Uint8Array {
  const body = concatBytes(text('WEBP'), ...chunks);
  return concatBytes(text('RIFF'), u32le(body.length), body);
}

const VP8X_ICC = 0x20;
const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;
const VP8X_ANIM = 0x02;
const vp8x = (flags: number): Uint8Array =>
  riff('VP8X', Uint8Array.of(flags, 0, 0, 0, 1, 0, 0, 1, 0, 0));
// An odd-sized VP8 payload, so its chunk carries a pad byte.
const VP8 = riff('VP8 ', Uint8Array.of(0x30, 0x01, 0x00, 0x9d, 0x01, 0x2a, 2, 0, 2, 0, 0x11));
const WEBP_ICCP = riff('ICCP', text('fake-icc-profile'));
const WEBP_EXIF = riff('EXIF', text('MM\0*GPS 55.75N SERIAL-1234'));
const WEBP_XMP = riff('XMP ', text('<x:xmpmeta>Secret Author</x:xmpmeta>'));

const WEBP = webp(vp8x(VP8X_ICC | VP8X_EXIF | VP8X_XMP), WEBP_ICCP, VP8, WEBP_EXIF, WEBP_XMP);
const WEBP_KEPT = webp(vp8x(VP8X_ICC), WEBP_ICCP, VP8);

describe('stripMetadata on WebP', () => {
  it('drops EXIF and XMP, clears their VP8X flags and rewrites the RIFF size', () => {
    const result = expectOk(stripMetadata(WEBP, 'image/webp'));
    expect(result.type).toBe('image/webp');
    expect(result.bytes).toEqual(WEBP_KEPT);
    expect(result.removed).toEqual(['EXIF', 'XMP']);
    expect(new DataView(result.bytes.buffer).getUint32(4, true)).toBe(result.bytes.length - 8);
    expectNoSecrets(result.bytes);
  });

  it('keeps the ICC profile and the VP8 chunk, with its pad byte, byte for byte', () => {
    const { bytes } = expectOk(stripMetadata(WEBP));
    expect(contains(bytes, WEBP_ICCP)).toBe(true);
    expect(contains(bytes, VP8)).toBe(true);
  });

  it('is idempotent', () => {
    const once = expectOk(stripMetadata(WEBP));
    const twice = expectOk(stripMetadata(once.bytes));
    expect(twice.bytes).toEqual(once.bytes);
    expect(twice.removed).toEqual([]);
  });

  it('keeps a simple lossy file as it is', () => {
    const simple = webp(VP8);
    expect(expectOk(stripMetadata(simple))).toEqual({
      ok: true,
      type: 'image/webp',
      bytes: simple,
      removed: [],
    });
  });

  it('drops bytes after the RIFF size and unknown chunks', () => {
    const input = concatBytes(
      webp(vp8x(0), VP8, riff('zzzz', text('SERIAL-1234'))),
      text('secret trailer'),
    );
    const result = expectOk(stripMetadata(input));
    expect(result.bytes).toEqual(webp(vp8x(0), VP8));
    expect(result.removed).toEqual(['zzzz', TRAILING_DATA]);
  });

  it('names a dropped chunk with an unprintable FourCC "unknown chunk"', () => {
    const odd = concatBytes(Uint8Array.of(0, 1, 2, 3), u32le(2), text('ab'));
    expect(expectOk(stripMetadata(webp(VP8, odd))).removed).toEqual(['unknown chunk']);
  });

  it('drops unknown chunks inside an animation frame and zeroes pad bytes', () => {
    const header = new Uint8Array(16);
    const dirtyPad = VP8.slice();
    dirtyPad[dirtyPad.length - 1] = 0x53;
    const frame = riff('ANMF', concatBytes(header, dirtyPad, riff('XMP ', text('Secret Author'))));
    const anim = riff('ANIM', new Uint8Array(6));
    const result = expectOk(stripMetadata(webp(vp8x(VP8X_ANIM | VP8X_XMP), anim, frame)));
    expect(result.bytes).toEqual(
      webp(vp8x(VP8X_ANIM), anim, riff('ANMF', concatBytes(header, VP8))),
    );
    expect(result.removed).toEqual(['XMP']);
  });

  it('rejects a RIFF size larger than the file', () => {
    const bad = WEBP.slice();
    bad.set(u32le(WEBP.length), 4);
    expectFailure(stripMetadata(bad), StripErrorCode.MALFORMED, 'image/webp');
  });

  it('rejects a truncated file', () => {
    expectFailure(
      stripMetadata(WEBP.subarray(0, WEBP.length - 4)),
      StripErrorCode.MALFORMED,
      'image/webp',
    );
  });

  it('rejects a chunk whose size overflows the RIFF body', () => {
    const bad = webp(VP8, concatBytes(text('EXIF'), u32le(1000), text('GPS')));
    expectFailure(stripMetadata(bad), StripErrorCode.MALFORMED, 'image/webp');
  });

  it('rejects an odd-sized last chunk without its pad byte', () => {
    const unpadded = VP8.subarray(0, VP8.length - 1);
    expectFailure(stripMetadata(webp(unpadded)), StripErrorCode.MALFORMED, 'image/webp');
  });

  it('rejects a RIFF size below 4', () => {
    const bad = concatBytes(text('RIFF'), u32le(2), text('WEBP'));
    expectFailure(stripMetadata(bad), StripErrorCode.MALFORMED, 'image/webp');
  });

  it('rejects a file whose first chunk is not VP8X, VP8 or VP8L', () => {
    expectFailure(stripMetadata(webp(WEBP_EXIF, VP8)), StripErrorCode.MALFORMED, 'image/webp');
  });

  it('rejects a VP8X chunk that is too short', () => {
    expectFailure(
      stripMetadata(webp(riff('VP8X', new Uint8Array(4)), VP8)),
      StripErrorCode.MALFORMED,
      'image/webp',
    );
  });

  it('rejects a file with no image chunk', () => {
    expectFailure(
      stripMetadata(webp(vp8x(VP8X_ICC), WEBP_ICCP)),
      StripErrorCode.MALFORMED,
      'image/webp',
    );
  });

  it('rejects an animation frame without image data', () => {
    const frame = riff('ANMF', new Uint8Array(16));
    expectFailure(
      stripMetadata(webp(vp8x(VP8X_ANIM), frame)),
      StripErrorCode.MALFORMED,
      'image/webp',
    );
  });
});

// --- Other types ----------------------------------------------------------------------------

describe('stripMetadata on other files', () => {
  it('reports an empty file as unsupported, or as malformed if declared as an image', () => {
    expectFailure(stripMetadata(new Uint8Array(0)), StripErrorCode.UNSUPPORTED_TYPE);
    expectFailure(
      stripMetadata(new Uint8Array(0), 'image/png'),
      StripErrorCode.MALFORMED,
      'image/png',
    );
  });

  it('reports HEIC as unsupported by its magic bytes, whatever it is declared as', () => {
    const heic = concatBytes(u32(24), text('ftypheic'), u32(0), text('mif1heic'));
    expectFailure(stripMetadata(heic, 'image/jpeg'), StripErrorCode.UNSUPPORTED_TYPE, 'image/heic');
  });

  it('reports PDF as unsupported', () => {
    expectFailure(
      stripMetadata(text('%PDF-1.7\n%secret'), 'application/pdf'),
      StripErrorCode.UNSUPPORTED_TYPE,
      'application/pdf',
    );
  });

  it('reports GIF as unsupported', () => {
    expectFailure(
      stripMetadata(text('GIF89a\x01\x00\x01\x00')),
      StripErrorCode.UNSUPPORTED_TYPE,
      'image/gif',
    );
  });

  it('reports unrecognised bytes as unsupported with the declared type', () => {
    const random = Uint8Array.of(0x13, 0x37, 0xca, 0xfe, 0, 1, 2, 3);
    expectFailure(
      stripMetadata(random, 'application/octet-stream'),
      StripErrorCode.UNSUPPORTED_TYPE,
      'application/octet-stream',
    );
    expectFailure(stripMetadata(random), StripErrorCode.UNSUPPORTED_TYPE);
  });

  it('reports a RIFF file that is not WebP as unsupported', () => {
    const wav = concatBytes(text('RIFF'), u32le(4), text('WAVE'));
    expectFailure(stripMetadata(wav), StripErrorCode.UNSUPPORTED_TYPE);
  });
});

// --- Properties -----------------------------------------------------------------------------

const mutation = fc.record({
  edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
  cut: fc.option(fc.nat(), { nil: undefined }),
});

describe('stripMetadata on mutated files', () => {
  for (const [name, fixture] of [
    ['JPEG', JPEG],
    ['PNG', PNG],
    ['WebP', WEBP],
  ] as const) {
    it(`never throws on a mutated or truncated ${name}, never grows it, and is idempotent`, () => {
      fc.assert(
        fc.property(mutation, ({ edits, cut }) => {
          const input = fixture.slice(
            0,
            cut === undefined ? fixture.length : cut % (fixture.length + 1),
          );
          for (const [at, value] of edits) if (input.length > 0) input[at % input.length] = value;
          const result = stripMetadata(input);
          if (!result.ok) return;
          expect(result.bytes.length).toBeLessThanOrEqual(input.length);
          const again = stripMetadata(result.bytes);
          expect(again.ok && again.bytes).toEqual(result.bytes);
        }),
        { numRuns: 2000 },
      );
    });
  }
});
