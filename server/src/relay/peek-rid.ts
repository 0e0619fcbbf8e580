/**
 * The request id of a raw client frame, read without parsing it: what the relay needs to answer
 * `rate_limited` to a frame the connection's rate refuses anyway, so that a flood's refused
 * frames (most of what a flooder sends) cost a byte search instead of JSON.parse and the schema
 * (issue 7 §3). Not a parser: a frame it cannot read this way is parsed as usual, and the
 * answer to a frame it does read is only ever `rate_limited` (never a decision on its content).
 *
 * It reads the first `"rid":` followed directly by 1–10 digits that make an integer in
 * [0, MAX_REQUEST_ID]. Every string a valid client frame carries is base64url or a fixed name
 * (no `"` in any), so in a valid frame that text is the rid key itself. In a frame that is not
 * valid (an escaped quote in a string, a repeated key) the number may not be what a parser would
 * take; such a frame, over the rate, then gets `rate_limited` with that number as its rid instead
 * of its parse error, which tells its sender nothing it did not write itself.
 */
import { MAX_REQUEST_ID } from '@passage/shared/protocol/limits';

const RID_KEY = Buffer.from('"rid":');
/** Digits of MAX_REQUEST_ID (2,147,483,647). */
const MAX_RID_DIGITS = 10;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** The request id `frame` carries, or undefined when it cannot be read without parsing. */
export function peekRequestId(frame: Buffer): number | undefined {
  const at = frame.indexOf(RID_KEY);
  if (at < 0) return undefined;
  let i = at + RID_KEY.length;
  let value = 0;
  let digits = 0;
  for (; i < frame.length; i++) {
    const c = frame[i]!;
    if (c < DIGIT_0 || c > DIGIT_9) break;
    if (++digits > MAX_RID_DIGITS) return undefined;
    value = value * 10 + (c - DIGIT_0);
  }
  // JSON has no leading zeros ("rid":05 is not a number), and the number must end the value.
  if (digits === 0 || (digits > 1 && frame[at + RID_KEY.length] === DIGIT_0)) return undefined;
  const next = frame[i];
  if (next !== 0x2c /* , */ && next !== 0x7d /* } */) return undefined;
  return value <= MAX_REQUEST_ID ? value : undefined;
}
