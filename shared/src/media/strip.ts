/**
 * Lossless, byte-level removal of hidden data from the photos a contact sends, before they are
 * encrypted. Nothing is decoded or re-encoded: the compressed image data is copied byte for byte,
 * and only the containers' metadata segments are dropped. (Re-encoding through a canvas is not
 * an option: Tor Browser's fingerprinting protection makes canvas reads return a white image.)
 *
 * Supported: JPEG, PNG and WebP, detected by their magic bytes, never by the declared type.
 * Anything else (HEIC, PDF, GIF, TIFF, ...) is `unsupported_type`, so the page can tell the
 * contact that this file's hidden data cannot be removed before it is sent. Input that does not
 * parse cleanly is `malformed`: a file this module does not fully understand is never reported as
 * cleaned.
 *
 * What is kept is an allowlist: the image data and what a decoder needs to show its colours
 * correctly. Everything else, including segments and chunks this module does not know, and any
 * data after the image's end marker, is dropped.
 *
 * Pure and synchronous, over `Uint8Array`; no DOM, no Node.
 */

/** Image types this module can clean. */
export type StripImageType = 'image/jpeg' | 'image/png' | 'image/webp';

/** Stable codes of the reasons a file cannot be cleaned. */
export const StripErrorCode = {
  /** The file is not a JPEG, PNG or WebP; `type` is the detected type, else the declared one. */
  UNSUPPORTED_TYPE: 'unsupported_type',
  /**
   * The file starts like (or is declared as) a supported type but does not parse: a truncated or
   * overlong segment, a bad CRC, a missing end marker, a size that does not add up.
   */
  MALFORMED: 'malformed',
} as const;
export type StripErrorCode = (typeof StripErrorCode)[keyof typeof StripErrorCode];

/** The outcome of `stripMetadata`. */
export type StripResult =
  | {
      readonly ok: true;
      readonly type: StripImageType;
      /** The cleaned file: a new array, never a view of the input. */
      readonly bytes: Uint8Array;
      /** Names of what was removed, each once, in the order first met (e.g. 'EXIF', 'tEXt'). */
      readonly removed: readonly string[];
    }
  | { readonly ok: false; readonly code: StripErrorCode; readonly type?: string };

/** Name reported in `removed` for bytes after the image's end marker. */
export const TRAILING_DATA = 'trailing data';

/**
 * Removes metadata from a JPEG, PNG or WebP without re-encoding it. `declaredType` (the file's
 * MIME type as the browser reports it) only chooses the error: a file whose bytes are not a
 * supported image is `malformed` if it was declared as one, else `unsupported_type`.
 */
export function stripMetadata(bytes: Uint8Array, declaredType?: string): StripResult {
  const detected = detectType(bytes);
  switch (detected) {
    case 'image/jpeg':
      return stripJpeg(bytes);
    case 'image/png':
      return stripPng(bytes);
    case 'image/webp':
      return stripWebp(bytes);
    case undefined:
      if (declaredType !== undefined && isSupportedType(declaredType)) {
        return malformed(declaredType);
      }
      return unsupported(declaredType);
    default:
      return unsupported(detected);
  }
}

function isSupportedType(type: string): type is StripImageType {
  return type === 'image/jpeg' || type === 'image/png' || type === 'image/webp';
}

function malformed(type?: string): StripResult {
  return type === undefined
    ? { ok: false, code: StripErrorCode.MALFORMED }
    : { ok: false, code: StripErrorCode.MALFORMED, type };
}

function unsupported(type?: string): StripResult {
  return type === undefined
    ? { ok: false, code: StripErrorCode.UNSUPPORTED_TYPE }
    : { ok: false, code: StripErrorCode.UNSUPPORTED_TYPE, type };
}

// ---------------------------------------------------------------------------------------------
// Detection

const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

function startsWith(bytes: Uint8Array, prefix: ArrayLike<number>, at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (bytes[at + i] !== prefix[i]) return false;
  }
  return true;
}

function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
}

/** ISO-BMFF brands of HEIF-family stills (HEIC, AVIF); others are reported as video. */
const HEIF_BRANDS: Readonly<Record<string, string>> = {
  heic: 'image/heic',
  heix: 'image/heic',
  heim: 'image/heic',
  heis: 'image/heic',
  mif1: 'image/heif',
  msf1: 'image/heif',
  avif: 'image/avif',
  avis: 'image/avif',
};

/** The type the magic bytes say, supported or not; undefined if nothing is recognised. */
function detectType(bytes: Uint8Array): string | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, PNG_SIGNATURE)) return 'image/png';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'image/webp';
  if (startsWith(bytes, ascii('ftyp'), 4) && bytes.length >= 12) {
    return HEIF_BRANDS[fourcc(bytes, 8)] ?? 'video/mp4';
  }
  if (startsWith(bytes, ascii('%PDF-'))) return 'application/pdf';
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'image/gif';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) {
    return 'image/tiff';
  }
  if (startsWith(bytes, ascii('BM'))) return 'image/bmp';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Output

/** Collects the kept pieces and the names of the removed ones. */
class Output {
  private readonly parts: Uint8Array[] = [];
  private length = 0;
  private readonly removedNames: string[] = [];

  push(part: Uint8Array): void {
    if (part.length === 0) return;
    this.parts.push(part);
    this.length += part.length;
  }

  remove(name: string): void {
    if (!this.removedNames.includes(name)) this.removedNames.push(name);
  }

  finish(type: StripImageType): StripResult {
    const bytes = new Uint8Array(this.length);
    let at = 0;
    for (const part of this.parts) {
      bytes.set(part, at);
      at += part.length;
    }
    return { ok: true, type, bytes, removed: this.removedNames };
  }
}

function u16be(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

function u32be(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0
  );
}

function u32le(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at + 3]! << 24) | (bytes[at + 2]! << 16) | (bytes[at + 1]! << 8) | bytes[at]!) >>> 0
  );
}

function putU32le(out: Uint8Array, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
  out[at + 2] = (value >>> 16) & 0xff;
  out[at + 3] = (value >>> 24) & 0xff;
}

// ---------------------------------------------------------------------------------------------
// JPEG

const JPEG_SOI = 0xd8;
const JPEG_EOI = 0xd9;
const JPEG_SOS = 0xda;
const JPEG_APP0 = 0xe0;
const JPEG_APP1 = 0xe1;
const JPEG_APP2 = 0xe2;
const JPEG_APP13 = 0xed;
const JPEG_APP14 = 0xee;
const JPEG_APP15 = 0xef;
const JPEG_COM = 0xfe;
const JPEG_TEM = 0x01;

const JFIF_ID = ascii('JFIF\0');
const EXIF_ID = ascii('Exif\0');
const XMP_ID = ascii('http://ns.adobe.com/xap/1.0/\0');
const XMP_EXTENSION_ID = ascii('http://ns.adobe.com/xmp/extension/\0');
const ICC_ID = ascii('ICC_PROFILE\0');
const ADOBE_ID = ascii('Adobe');
/** Bytes of a JFIF APP0 payload up to and including the thumbnail's width and height. */
const JFIF_HEADER_BYTES = 14;

/**
 * Segments with a length that are kept: the frame headers SOF0..SOF15 (0xC0..0xCF without JPG,
 * 0xC8), DHT and DAC (0xC4, 0xCC, which sit among them), SOS, DQT, DNL, DRI, DHP and EXP.
 */
const JPEG_KEPT_MARKERS: ReadonlySet<number> = new Set([
  0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xda,
  0xdb, 0xdc, 0xdd, 0xde, 0xdf,
]);

function isRst(marker: number): boolean {
  return marker >= 0xd0 && marker <= 0xd7;
}

/**
 * Walks the JPEG's markers from SOI to EOI.
 *
 * Kept: APP0 "JFIF" (without its thumbnail, which can show the uncropped photo), APP2
 * "ICC_PROFILE" (the colour profile; wide-gamut phone photos look wrong without it), APP14
 * "Adobe" (its transform flag tells decoders how to convert CMYK/YCCK; without it such images
 * decode with wrong colours), and the table, frame and scan segments (`JPEG_KEPT_MARKERS`).
 * Dropped: APP1 (Exif, with GPS, device serials and a thumbnail; XMP), APP13
 * (Photoshop/IPTC), COM, every other APPn (including APP2 MPF, which points at extra images
 * after EOI), reserved and extension markers, and everything after EOI — such trailers can hide whole files with their own
 * metadata, e.g. the MP4 of Samsung's and Google's motion photos.
 *
 * After SOS the entropy-coded data is copied verbatim, with its stuffed bytes and RSTn markers.
 * Progressive and multi-scan JPEGs put more segments (DHT, SOS, DQT, DRI, ...) between scans;
 * those go through the same rules as the ones before the first scan, so an APPn or COM between
 * scans is dropped too.
 */
function stripJpeg(bytes: Uint8Array): StripResult {
  const out = new Output();
  const n = bytes.length;
  out.push(bytes.subarray(0, 2));
  let pos = 2;
  let seenScan = false;
  for (;;) {
    // A marker: 0xFF, any number of 0xFF fill bytes (dropped, they carry nothing), the code.
    if (pos >= n || bytes[pos] !== 0xff) return malformed('image/jpeg');
    while (pos < n && bytes[pos] === 0xff) pos++;
    if (pos >= n) return malformed('image/jpeg');
    const marker = bytes[pos]!;
    const start = pos - 1;
    pos++;
    if (marker === JPEG_EOI) {
      if (!seenScan) return malformed('image/jpeg');
      out.push(Uint8Array.of(0xff, JPEG_EOI));
      if (pos < n) out.remove(TRAILING_DATA);
      return out.finish('image/jpeg');
    }
    if (marker === 0x00 || marker === JPEG_SOI) return malformed('image/jpeg');
    if (marker === JPEG_TEM || isRst(marker)) {
      // Stand-alone markers without a length.
      out.push(Uint8Array.of(0xff, marker));
      continue;
    }
    if (pos + 2 > n) return malformed('image/jpeg');
    const length = u16be(bytes, pos);
    if (length < 2 || pos + length > n) return malformed('image/jpeg');
    const payload = bytes.subarray(pos + 2, pos + length);
    const segment = bytes.subarray(start, pos + length);
    pos += length;

    const verdict = jpegSegmentVerdict(marker, payload);
    if (verdict.keep) {
      out.push(verdict.replacement ?? segment);
    }
    if (verdict.removed !== undefined) out.remove(verdict.removed);

    if (marker === JPEG_SOS) {
      seenScan = true;
      const end = entropyEnd(bytes, pos);
      if (end === undefined) return malformed('image/jpeg');
      out.push(bytes.subarray(pos, end));
      pos = end;
    }
  }
}

type SegmentVerdict = {
  readonly keep: boolean;
  readonly removed?: string;
  readonly replacement?: Uint8Array;
};

function jpegSegmentVerdict(marker: number, payload: Uint8Array): SegmentVerdict {
  if (marker === JPEG_APP0) {
    if (!startsWith(payload, JFIF_ID)) return { keep: false, removed: 'APP0' };
    if (payload.length < JFIF_HEADER_BYTES) return { keep: true };
    const hasThumbnail =
      payload[12] !== 0 || payload[13] !== 0 || payload.length > JFIF_HEADER_BYTES;
    if (!hasThumbnail) return { keep: true };
    // Rewrite as a JFIF header with a 0x0 thumbnail.
    const replacement = new Uint8Array(4 + JFIF_HEADER_BYTES);
    replacement.set([0xff, JPEG_APP0, 0, 2 + JFIF_HEADER_BYTES]);
    replacement.set(payload.subarray(0, 12), 4);
    return { keep: true, removed: 'JFIF thumbnail', replacement };
  }
  if (marker === JPEG_APP1) {
    if (startsWith(payload, EXIF_ID)) return { keep: false, removed: 'EXIF' };
    if (startsWith(payload, XMP_ID) || startsWith(payload, XMP_EXTENSION_ID)) {
      return { keep: false, removed: 'XMP' };
    }
    return { keep: false, removed: 'APP1' };
  }
  if (marker === JPEG_APP2 && startsWith(payload, ICC_ID)) return { keep: true };
  if (marker === JPEG_APP13) return { keep: false, removed: 'IPTC' };
  if (marker === JPEG_APP14 && startsWith(payload, ADOBE_ID)) return { keep: true };
  if (marker >= JPEG_APP0 && marker <= JPEG_APP15) {
    return { keep: false, removed: `APP${marker - JPEG_APP0}` };
  }
  if (marker === JPEG_COM) return { keep: false, removed: 'COM' };
  if (JPEG_KEPT_MARKERS.has(marker)) return { keep: true };
  // Reserved and extension markers (JPGn, RES): no baseline or progressive decoder needs them,
  // and they could carry anything.
  return { keep: false, removed: `marker 0x${marker.toString(16).padStart(2, '0')}` };
}

/**
 * The offset of the 0xFF that starts the first marker after entropy-coded data beginning at
 * `from` (stuffed 0xFF00 and RSTn belong to the data); undefined if the data runs to the end.
 */
function entropyEnd(bytes: Uint8Array, from: number): number | undefined {
  const n = bytes.length;
  let i = from;
  while (i < n) {
    if (bytes[i] !== 0xff) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && bytes[j] === 0xff) j++;
    if (j >= n) return undefined;
    const next = bytes[j]!;
    if (next === 0x00 || isRst(next)) {
      i = j + 1;
      continue;
    }
    return i;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// PNG

/** PNG's limit on a chunk's data length (2^31 - 1). */
const PNG_MAX_CHUNK_BYTES = 0x7fffffff;
const PNG_IHDR_BYTES = 13;

/**
 * Chunks kept: the critical ones, the ancillary ones that change how pixels are shown (colour
 * space, transparency, physical size, background, significant bits) and APNG's animation chunks.
 * Everything else — tEXt, zTXt, iTXt, eXIf, tIME, and any ancillary chunk not listed — is
 * dropped. iCCP's profile name is free text, but it is part of the colour profile; it is kept.
 */
const PNG_KEPT_CHUNKS: ReadonlySet<string> = new Set([
  'IHDR',
  'PLTE',
  'IDAT',
  'IEND',
  'tRNS',
  'gAMA',
  'cHRM',
  'sRGB',
  'iCCP',
  'cICP',
  'sBIT',
  'pHYs',
  'bKGD',
  'acTL',
  'fcTL',
  'fdAT',
]);

const CRC32_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO 3309, as PNG uses it) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function isAsciiLetter(byte: number): boolean {
  return (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
}

function stripPng(bytes: Uint8Array): StripResult {
  const out = new Output();
  const n = bytes.length;
  out.push(bytes.subarray(0, PNG_SIGNATURE.length));
  let pos = PNG_SIGNATURE.length;
  let first = true;
  let seenIdat = false;
  for (;;) {
    if (pos + 12 > n) return malformed('image/png');
    const length = u32be(bytes, pos);
    if (length > PNG_MAX_CHUNK_BYTES || length > n - pos - 12) return malformed('image/png');
    for (let i = 4; i < 8; i++) {
      if (!isAsciiLetter(bytes[pos + i]!)) return malformed('image/png');
    }
    const type = fourcc(bytes, pos + 4);
    const end = pos + 12 + length;
    if (crc32(bytes.subarray(pos + 4, end - 4)) !== u32be(bytes, end - 4)) {
      return malformed('image/png');
    }
    if (first !== (type === 'IHDR')) return malformed('image/png');
    if (type === 'IHDR' && length !== PNG_IHDR_BYTES) return malformed('image/png');
    first = false;
    const chunk = bytes.subarray(pos, end);
    pos = end;
    if (type === 'IDAT') seenIdat = true;
    if (type === 'IEND') {
      if (length !== 0 || !seenIdat) return malformed('image/png');
      out.push(chunk);
      if (pos < n) out.remove(TRAILING_DATA);
      return out.finish('image/png');
    }
    // Bit 5 of a chunk type's first byte is clear for critical chunks.
    const critical = (chunk[4]! & 0x20) === 0;
    if (PNG_KEPT_CHUNKS.has(type)) {
      out.push(chunk);
    } else if (critical) {
      // A critical chunk this module does not know: a decoder could not show the image either.
      return malformed('image/png');
    } else {
      out.remove(type);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// WebP

const WEBP_HEADER_BYTES = 12;
const RIFF_CHUNK_HEADER_BYTES = 8;
const VP8X_PAYLOAD_BYTES = 10;
const VP8X_EXIF_FLAG = 0x08;
const VP8X_XMP_FLAG = 0x04;
/** ANMF's frame header (position, size, duration, flags) before its sub-chunks. */
const ANMF_HEADER_BYTES = 16;

const WEBP_KEPT_CHUNKS: ReadonlySet<string> = new Set([
  'VP8X',
  'ICCP',
  'ANIM',
  'ANMF',
  'ALPH',
  'VP8 ',
  'VP8L',
]);
/** Sub-chunks kept inside an ANMF frame; its unknown chunks are dropped like top-level ones. */
const WEBP_FRAME_CHUNKS: ReadonlySet<string> = new Set(['ALPH', 'VP8 ', 'VP8L']);

type RiffChunk = { readonly id: string; readonly payload: Uint8Array };

/** Splits `bytes[from, end)` into RIFF chunks; undefined if a size overruns `end`. */
function riffChunks(bytes: Uint8Array, from: number, end: number): RiffChunk[] | undefined {
  const chunks: RiffChunk[] = [];
  let pos = from;
  while (pos < end) {
    if (pos + RIFF_CHUNK_HEADER_BYTES > end) return undefined;
    const size = u32le(bytes, pos + 4);
    const padded = size + (size & 1);
    if (padded > end - pos - RIFF_CHUNK_HEADER_BYTES) return undefined;
    const start = pos + RIFF_CHUNK_HEADER_BYTES;
    chunks.push({ id: fourcc(bytes, pos), payload: bytes.subarray(start, start + size) });
    pos = start + padded;
  }
  return chunks;
}

/** The name reported for a dropped chunk: 'XMP' for 'XMP ', the printable FourCC otherwise. */
function riffChunkName(id: string): string {
  if (id === 'XMP ') return 'XMP';
  return /^[\x20-\x7e]{4}$/.test(id) ? id.trimEnd() : 'unknown chunk';
}

/** A RIFF chunk with a fresh header; odd payloads get a zero pad byte. */
function riffChunk(id: string, payload: Uint8Array): Uint8Array {
  const chunk = new Uint8Array(RIFF_CHUNK_HEADER_BYTES + payload.length + (payload.length & 1));
  chunk.set(ascii(id));
  putU32le(chunk, 4, payload.length);
  chunk.set(payload, RIFF_CHUNK_HEADER_BYTES);
  return chunk;
}

/**
 * Keeps VP8X (with its EXIF and XMP flags cleared), ICCP, ANIM, ANMF (with its unknown
 * sub-chunks dropped), ALPH, VP8 and VP8L; drops EXIF, XMP and unknown chunks, and any bytes
 * after the RIFF size. Chunk headers are rewritten, and pad bytes zeroed, so nothing rides along
 * in padding.
 */
function stripWebp(bytes: Uint8Array): StripResult {
  const out = new Output();
  const riffSize = u32le(bytes, 4);
  // The RIFF size counts 'WEBP' and the chunks; it may not run past the file's end.
  if (riffSize < 4 || riffSize > bytes.length - 8) return malformed('image/webp');
  const end = 8 + riffSize;
  const chunks = riffChunks(bytes, WEBP_HEADER_BYTES, end);
  if (chunks === undefined || chunks.length === 0) return malformed('image/webp');
  const firstId = chunks[0]!.id;
  if (firstId !== 'VP8X' && firstId !== 'VP8 ' && firstId !== 'VP8L')
    return malformed('image/webp');

  const kept: Uint8Array[] = [];
  let hasImage = false;
  for (const { id, payload } of chunks) {
    if (!WEBP_KEPT_CHUNKS.has(id)) {
      out.remove(riffChunkName(id));
      continue;
    }
    if (id === 'VP8X') {
      if (payload.length < VP8X_PAYLOAD_BYTES) return malformed('image/webp');
      const vp8x = payload.slice();
      vp8x[0] = vp8x[0]! & ~(VP8X_EXIF_FLAG | VP8X_XMP_FLAG);
      kept.push(riffChunk(id, vp8x));
      continue;
    }
    if (id === 'ANMF') {
      const frame = stripAnmf(payload, out);
      if (frame === undefined) return malformed('image/webp');
      kept.push(riffChunk(id, frame));
      hasImage = true;
      continue;
    }
    if (id === 'VP8 ' || id === 'VP8L') hasImage = true;
    kept.push(riffChunk(id, payload));
  }
  if (!hasImage) return malformed('image/webp');
  if (end < bytes.length) out.remove(TRAILING_DATA);

  const header = new Uint8Array(WEBP_HEADER_BYTES);
  header.set(ascii('RIFF'));
  putU32le(header, 4, 4 + kept.reduce((sum, chunk) => sum + chunk.length, 0));
  header.set(ascii('WEBP'), 8);
  out.push(header);
  for (const chunk of kept) out.push(chunk);
  return out.finish('image/webp');
}

/** An ANMF payload with only its frame header and image sub-chunks; undefined if malformed. */
function stripAnmf(payload: Uint8Array, out: Output): Uint8Array | undefined {
  if (payload.length < ANMF_HEADER_BYTES) return undefined;
  const chunks = riffChunks(payload, ANMF_HEADER_BYTES, payload.length);
  if (chunks === undefined) return undefined;
  const parts: Uint8Array[] = [payload.subarray(0, ANMF_HEADER_BYTES)];
  let hasImage = false;
  for (const { id, payload: sub } of chunks) {
    if (!WEBP_FRAME_CHUNKS.has(id)) {
      out.remove(riffChunkName(id));
      continue;
    }
    if (id !== 'ALPH') hasImage = true;
    parts.push(riffChunk(id, sub));
  }
  if (!hasImage) return undefined;
  const frame = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    frame.set(part, at);
    at += part.length;
  }
  return frame;
}
