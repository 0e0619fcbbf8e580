/**
 * The photo fixture is what it claims to be: a JPEG that the metadata stripper reads, with an
 * EXIF segment carrying GPS that stripping removes (so tests built on it can fail).
 */
import { describe, expect, it } from '@jest/globals';
import { stripMetadata } from '@passage/shared/media/strip';
import {
  CAMERA_SERIAL,
  GPS_LATITUDE_RATIONALS,
  containsBytes,
  jpegWithGps,
} from './media-fixtures.js';

const ascii = (s: string) => Uint8Array.from([...s].map((c) => c.charCodeAt(0)));

describe('jpegWithGps', () => {
  it('holds EXIF with GPS and a serial, which stripMetadata removes', () => {
    const jpeg = jpegWithGps();
    expect(containsBytes(jpeg, GPS_LATITUDE_RATIONALS)).toBe(true);
    expect(containsBytes(jpeg, ascii(CAMERA_SERIAL))).toBe(true);
    const stripped = stripMetadata(jpeg, 'image/jpeg');
    if (!stripped.ok) throw new Error(stripped.code);
    expect(stripped.removed).toEqual(expect.arrayContaining(['EXIF']));
    expect(containsBytes(stripped.bytes, GPS_LATITUDE_RATIONALS)).toBe(false);
    expect(containsBytes(stripped.bytes, ascii(CAMERA_SERIAL))).toBe(false);
    expect(containsBytes(stripped.bytes, ascii('Exif'))).toBe(false);
    expect(stripped.bytes.length).toBeLessThan(jpeg.length);
  });
});
