/**
 * Photos as phones write them, built byte by byte: a baseline JPEG whose APP1 segment holds a
 * real EXIF structure (a big-endian TIFF header, IFD0 with a camera serial and a GPSInfo pointer,
 * and a GPS IFD with latitude and longitude as rationals), for the tests that check that
 * metadata is stripped before a photo is sealed and sent.
 */

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
const u16 = (n: number): number[] => [(n >>> 8) & 0xff, n & 0xff];
const u32 = (n: number): number[] => [...u16(n >>> 16), ...u16(n & 0xffff)];

function segment(marker: number, payload: readonly number[]): number[] {
  return [0xff, marker, ...u16(payload.length + 2), ...payload];
}

/** One 12-byte IFD entry: tag, type, count, and the value or its offset. */
function entry(tag: number, type: number, count: number, value: readonly number[]): number[] {
  const field = [...value, 0, 0, 0, 0].slice(0, 4);
  return [...u16(tag), ...u16(type), ...u32(count), ...field];
}

/** What the GPS IFD says, as bytes a test can look for (latitude 55°45'7", longitude 37°37'4"). */
export const GPS_LATITUDE_RATIONALS = Uint8Array.from([
  ...u32(55),
  ...u32(1),
  ...u32(45),
  ...u32(1),
  ...u32(7),
  ...u32(1),
]);

/** The camera serial IFD0 carries (an ASCII string a test can look for). */
export const CAMERA_SERIAL = 'SERIAL-0042-PHONE';

/** The EXIF APP1 segment: TIFF header, IFD0 (serial, GPS pointer), GPS IFD. */
function exifSegment(): number[] {
  const ASCII = 2;
  const LONG = 4;
  const RATIONAL = 5;
  const serial = [...ascii(CAMERA_SERIAL), 0];
  // Offsets are from the TIFF header. IFD0 at 8: 2 entries (2 + 24 + 4 bytes) → 38.
  const serialAt = 38;
  const gpsAt = serialAt + serial.length + (serial.length % 2);
  // GPS IFD: 4 entries (2 + 48 + 4 bytes), then the two rational triples.
  const latAt = gpsAt + 2 + 4 * 12 + 4;
  const lonAt = latAt + 24;
  const ifd0 = [
    ...u16(2),
    ...entry(0xa431, ASCII, serial.length, u32(serialAt)), // BodySerialNumber
    ...entry(0x8825, LONG, 1, u32(gpsAt)), // GPSInfo
    ...u32(0),
  ];
  const gps = [
    ...u16(4),
    ...entry(0x0001, ASCII, 2, ascii('N')), // GPSLatitudeRef
    ...entry(0x0002, RATIONAL, 3, u32(latAt)), // GPSLatitude
    ...entry(0x0003, ASCII, 2, ascii('E')), // GPSLongitudeRef
    ...entry(0x0004, RATIONAL, 3, u32(lonAt)), // GPSLongitude
    ...u32(0),
  ];
  const tiff = [
    ...ascii('MM'),
    ...u16(42),
    ...u32(8),
    ...ifd0,
    ...serial,
    ...(serial.length % 2 === 1 ? [0] : []),
    ...gps,
    ...GPS_LATITUDE_RATIONALS,
    ...u32(37),
    ...u32(1),
    ...u32(37),
    ...u32(1),
    ...u32(4),
    ...u32(1),
  ];
  return segment(0xe1, [...ascii('Exif'), 0, 0, ...tiff]);
}

/**
 * A baseline JPEG (one 8×8 grey block) with a JFIF header, an EXIF segment with GPS, a comment,
 * and `padBytes` bytes of entropy-coded data (so that tests can make it as large as a photo).
 */
export function jpegWithGps(padBytes = 2_000): Uint8Array {
  const jfif = segment(0xe0, [...ascii('JFIF'), 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const comment = segment(0xfe, ascii('taken near the safe house'));
  const dqt = segment(0xdb, [0, ...new Array<number>(64).fill(1)]);
  const sof0 = segment(0xc0, [8, ...u16(8), ...u16(8), 1, 1, 0x11, 0]);
  const dht = segment(0xc4, [0, 0, 1, ...new Array<number>(14).fill(0), 0]);
  const sos = segment(0xda, [1, 1, 0, 0, 0x3f, 0]);
  // Entropy-coded bytes: any byte but 0xff (a stuffed 0xff 0x00 here and there).
  const entropy: number[] = [];
  for (let i = 0; i < padBytes; i++) entropy.push(i % 97 === 0 ? 0xff : (i * 31 + 7) % 0xff);
  const stuffed = entropy.flatMap((b) => (b === 0xff ? [0xff, 0x00] : [b]));
  return Uint8Array.from([
    0xff,
    0xd8,
    ...jfif,
    ...exifSegment(),
    ...comment,
    ...dqt,
    ...sof0,
    ...dht,
    ...sos,
    ...stuffed,
    0xff,
    0xd9,
  ]);
}

/** True when `needle` occurs in `haystack`. */
export function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
