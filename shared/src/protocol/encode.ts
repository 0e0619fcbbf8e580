/**
 * The encoder of every relay → client frame: the one place that spells a server frame's text.
 *
 * The frames the relay writes per message (`deliver`, `stored`) and the other small ones are
 * string templates rather than `JSON.stringify` of an object: on the hot path that saves an
 * object and a generic serialisation per frame. Each template writes exactly what
 * `JSON.stringify` writes for the frame object with its keys in schema order, so the wire is
 * the same whichever way a frame is built; encode.test.ts checks that, and that every output
 * parses with the frame's zod schema and round-trips, differentially over generated values.
 *
 * The encoders do not validate. Every string argument must already be canonical base64url
 * (which needs no JSON escaping): a mailbox id derived by the relay, a nonce it drew, or an id,
 * envelope or prekey that came in through `parseClientFrame` or out of the store (which only
 * holds what was parsed). Every number must be an integer in its field's range.
 */
import { ERROR_MESSAGES, ErrorCode, RETRYABLE_CODES } from './errors.js';
import type { FrameOf } from './frames.js';
import { PROTOCOL_VERSION } from './limits.js';

const V = PROTOCOL_VERSION;

/** `challenge`: the nonce (base64url of AUTH_NONCE_BYTES) the client must sign. */
export function encodeChallengeFrame(nonce: string): string {
  return `{"v":${V},"t":"challenge","nonce":"${nonce}"}`;
}

/** `authed`: the connection now reads `mailbox`. */
export function encodeAuthedFrame(rid: number, mailbox: string): string {
  return `{"v":${V},"t":"authed","rid":${rid},"mailbox":"${mailbox}"}`;
}

/** `stored`: the envelope with message id `id` is in the store. Hot path. */
export function encodeStoredFrame(rid: number, id: string): string {
  return `{"v":${V},"t":"stored","rid":${rid},"id":"${id}"}`;
}

/** `deliver`: an envelope for the authenticated mailbox. Hot path. */
export function encodeDeliverFrame(id: string, env: string): string {
  return `{"v":${V},"t":"deliver","id":"${id}","env":"${env}"}`;
}

/** `pong`: the answer to a `ping` frame. */
export function encodePongFrame(rid: number): string {
  return `{"v":${V},"t":"pong","rid":${rid}}`;
}

/** `prekeys.count`: one-time prekeys left (0 … MAX_ONE_TIME_PREKEYS_STORED). */
export function encodePrekeysCountFrame(rid: number, remaining: number): string {
  return `{"v":${V},"t":"prekeys.count","rid":${rid},"remaining":${remaining}}`;
}

/** The challenge part of a `pow.challenge` frame, byte fields already base64url. */
export type EncodablePowChallenge = FrameOf<'pow.challenge'>['challenge'];

/** `pow.challenge`: the answer to `pow.request`. */
export function encodePowChallengeFrame(rid: number, challenge: EncodablePowChallenge): string {
  const c = challenge;
  return (
    `{"v":${V},"t":"pow.challenge","rid":${rid},"challenge":` +
    `{"v":${c.v},"nonce":"${c.nonce}","bits":${c.bits},"exp":${c.exp},"to":"${c.to}"}}`
  );
}

/** `pow.admitted`: this connection may send to `to`, up to `sends` envelopes stored. */
export function encodePowAdmittedFrame(rid: number, to: string, sends: number): string {
  return `{"v":${V},"t":"pow.admitted","rid":${rid},"to":"${to}","sends":${sends}}`;
}

/** `firstcontact.count`: the spam signal of the authenticated mailbox. */
export function encodeFirstContactCountFrame(
  rid: number,
  admissions: number,
  bits: number,
  likelySpam: boolean,
): string {
  return `{"v":${V},"t":"firstcontact.count","rid":${rid},"admissions":${admissions},"bits":${bits},"likelySpam":${likelySpam}}`;
}

/** `state.stored`: the state blob is stored under `generation` (1 … MAX_STATE_GENERATION). */
export function encodeStateStoredFrame(rid: number, generation: number): string {
  return `{"v":${V},"t":"state.stored","rid":${rid},"generation":${generation}}`;
}

/** `state.blob`: the held state blob and its generation, or null and 0 when none is held. */
export function encodeStateBlobFrame(
  rid: number,
  held: { readonly blob: string; readonly generation: number } | null,
): string {
  return held === null
    ? `{"v":${V},"t":"state.blob","rid":${rid},"blob":null,"generation":0}`
    : `{"v":${V},"t":"state.blob","rid":${rid},"blob":"${held.blob}","generation":${held.generation}}`;
}

/** `state.deleted`: no state is held now. */
export function encodeStateDeletedFrame(rid: number): string {
  return `{"v":${V},"t":"state.deleted","rid":${rid}}`;
}

/** `blob.reserved`: the upload `id` and `token` (base64url), usable until `exp` (Unix ms). */
export function encodeBlobReservedFrame(
  rid: number,
  id: string,
  token: string,
  exp: number,
): string {
  return `{"v":${V},"t":"blob.reserved","rid":${rid},"id":"${id}","token":"${token}","exp":${exp}}`;
}

/** The bundle part of a `prekeys.bundle` frame: what a fetch took from the directory. */
export type EncodableBundle = FrameOf<'prekeys.bundle'>['bundle'];

/**
 * `prekeys.bundle`: the answer to `prekeys.fetch`, `bundle` null when none is published.
 * Rare and of several shapes, so `JSON.stringify` of a fresh object in schema order: a store
 * record with a key of its own is not copied onto the wire.
 */
export function encodePrekeysBundleFrame(
  rid: number,
  mailbox: string,
  bundle: EncodableBundle,
): string {
  const frame: FrameOf<'prekeys.bundle'> = {
    v: V,
    t: 'prekeys.bundle',
    rid,
    mailbox,
    bundle:
      bundle === null
        ? null
        : {
            identity: bundle.identity,
            signedPrekey: bundle.signedPrekey,
            oneTime:
              bundle.oneTime === null ? null : { id: bundle.oneTime.id, key: bundle.oneTime.key },
          },
  };
  return JSON.stringify(frame);
}

/**
 * What follows the optional `rid` in each code's error frame: code, retryable and message,
 * computed once per code (the message through JSON.stringify, so it is escaped as it would be).
 */
const ERROR_FRAME_TAILS: ReadonlyMap<ErrorCode, string> = new Map(
  Object.values(ErrorCode).map((code) => [
    code,
    `,"code":${JSON.stringify(code)},"retryable":${RETRYABLE_CODES.has(code)},"message":${JSON.stringify(ERROR_MESSAGES[code])}}`,
  ]),
);

/**
 * `error`: a request failed or a frame was rejected, with the generic message for `code`;
 * `rid` when the failed request carried a valid one. Answers floods (`rate_limited`), so it
 * is a template too.
 */
export function encodeErrorFrame(code: ErrorCode, rid?: number): string {
  const head = rid === undefined ? `{"v":${V},"t":"error"` : `{"v":${V},"t":"error","rid":${rid}`;
  return head + ERROR_FRAME_TAILS.get(code)!;
}
