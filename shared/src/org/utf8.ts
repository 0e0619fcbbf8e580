/**
 * Strict UTF-8 for the profile's JSON text. `shared/` compiles without the DOM or Node typings
 * (no `TextEncoder`), and the org layer may not reach the crypto layer's helpers (the relay
 * imports it), so the codec is here. Decoding refuses everything that is not well-formed UTF-8
 * (RFC 3629): overlong forms, surrogate code points, code points above U+10FFFF, truncated and
 * stray continuation bytes. Encoding refuses a lone surrogate. Each failure is a RangeError.
 */

/** The UTF-8 bytes of `text`; a lone surrogate throws RangeError. */
export function utf8Encode(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || next < 0xdc00 || next > 0xdfff) throw new RangeError('lone surrogate');
      c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else {
      out.push(
        0xf0 | (c >> 18),
        0x80 | ((c >> 12) & 0x3f),
        0x80 | ((c >> 6) & 0x3f),
        0x80 | (c & 0x3f),
      );
    }
  }
  return Uint8Array.from(out);
}

/** The text of well-formed UTF-8 `bytes`; anything else throws RangeError. */
export function utf8Decode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!;
    let need: number;
    let c: number;
    let min: number;
    if (b < 0x80) {
      out += String.fromCharCode(b);
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      c = b & 0x1f;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      c = b & 0x0f;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      c = b & 0x07;
      min = 0x10000;
    } else {
      throw new RangeError('invalid UTF-8 lead byte');
    }
    if (i + need >= bytes.length) {
      throw new RangeError('truncated UTF-8 sequence');
    }
    for (let k = 1; k <= need; k++) {
      const cont = bytes[i + k]!;
      if ((cont & 0xc0) !== 0x80) throw new RangeError('invalid UTF-8 continuation byte');
      c = (c << 6) | (cont & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
      throw new RangeError('invalid UTF-8 code point');
    }
    out += String.fromCodePoint(c);
    i += need + 1;
  }
  return out;
}
