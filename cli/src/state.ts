/**
 * The organization's state file: the profile settings, the enrolment mailbox's identity, the
 * devices of the roster (with their coordinator's name), the latest signed roster and profile,
 * the roster history, pending invites (with their secrets) and pending enrolment requests.
 *
 * It is encrypted, under a random key kept inside the key file (so one passphrase opens both):
 * it holds invite secrets (each enrols a device), the enrolment mailbox's secret key, and the
 * names of the people on the team, which a stolen laptop should not give away.
 *
 *   header = "PSGOSTA" ‖ version 01 ‖ nonce (24, fresh for every write)
 *   file   = header ‖ XChaCha20-Poly1305(state key, nonce, JSON, ad = header ‖ org public key)
 *
 * A file that does not open under this organization's state key is `state_file_damaged`
 * (changed, truncated, or another organization's); the JSON is checked with a strict schema.
 * Everything in it is bounded (below), so the file stays small.
 */
import { z } from 'zod';
import { concatBytes, u8 } from '@passage/shared/crypto/encoding';
import { CryptoErrorCode, isCryptoError } from '@passage/shared/crypto/errors';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { MAX_ROSTER_DEVICES } from '@passage/shared/crypto/roster';
import { MAX_DEVICE_LABEL_BYTES } from '@passage/shared/crypto/enrolment';
import { hasForbiddenCharacters } from '@passage/shared/org/profile';
import { utf8Decode, utf8Encode } from '@passage/shared/org/utf8';
import { isCanonicalBase64url } from '@passage/shared/protocol/base64url';
import { CliError, CliErrorCode } from './errors.js';

export const STATE_FILE_MAGIC = 'PSGOSTA';
export const STATE_FILE_VERSION = 1;
const NONCE_BYTES = 24;

/** Invites kept (pending, and used or expired ones until they are forgotten). */
export const MAX_KEPT_INVITES = 64;
/** Enrolment requests waiting for `org approve`. */
export const MAX_PENDING_ENROLMENTS = 64;
/** Roster versions remembered in the history that `org show` prints. */
export const MAX_ROSTER_HISTORY = 100;
/** Longest coordinator name, in UTF-16 code units. */
export const MAX_COORDINATOR_NAME_CHARS = 64;

const b64 = z.string().refine(isCanonicalBase64url, 'base64url');
const seconds = z.number().int().min(0).max(0xffff_ffff);
const hexId = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));

/** A coordinator's name: 1–64 characters, no controls or bidirectional overrides, trimmed. */
export const coordinatorName = z
  .string()
  .min(1)
  .max(MAX_COORDINATOR_NAME_CHARS)
  .refine((s) => s.trim() === s && !hasForbiddenCharacters(s), 'a plain, trimmed name');

const label = z
  .string()
  .refine((s) => utf8Encode(s).length <= MAX_DEVICE_LABEL_BYTES && !hasForbiddenCharacters(s));

export const StateSchema = z.strictObject({
  v: z.literal(STATE_FILE_VERSION),
  /** Profile content (checked with `checkProfileContent` where it is used). */
  profile: z.unknown(),
  /** The enrolment mailbox's secret identity (`DeviceIdentity.encodeSecret`). */
  enrolmentMailbox: b64,
  devices: z
    .array(
      z.strictObject({
        identity: b64,
        coordinator: coordinatorName,
        label,
        addedAtSeconds: seconds,
      }),
    )
    .max(MAX_ROSTER_DEVICES),
  roster: z.strictObject({ serial: seconds, bytes: b64 }).nullable(),
  rosterHistory: z
    .array(
      z.strictObject({
        serial: seconds,
        signedAtSeconds: seconds,
        devices: z.array(hexId(32)).max(MAX_ROSTER_DEVICES),
      }),
    )
    .max(MAX_ROSTER_HISTORY),
  /** The last profile version signed (0 before the first publish). */
  profileVersion: seconds,
  published: z.strictObject({ version: seconds, expiresAtSeconds: seconds, bytes: b64 }).nullable(),
  invites: z
    .array(
      z.strictObject({
        id: hexId(16),
        secret: b64,
        coordinator: coordinatorName,
        createdAtSeconds: seconds,
        expiresAtSeconds: seconds,
        usedAtSeconds: seconds.nullable(),
      }),
    )
    .max(MAX_KEPT_INVITES),
  enrolments: z
    .array(
      z.strictObject({
        inviteId: hexId(16),
        identity: b64,
        label,
        coordinator: coordinatorName,
        receivedAtSeconds: seconds,
      }),
    )
    .max(MAX_PENDING_ENROLMENTS),
});

export type OrgState = z.infer<typeof StateSchema>;

function header(nonce: Uint8Array): Uint8Array {
  return concatBytes(utf8Encode(STATE_FILE_MAGIC), u8(STATE_FILE_VERSION), nonce);
}

/** The state file for `state`, with a fresh nonce. Throws if `state` breaks the schema. */
export function sealState(
  p: Primitives,
  stateKey: Uint8Array,
  organizationKey: Uint8Array,
  state: OrgState,
): Uint8Array {
  const checked = StateSchema.parse(state);
  const nonce = p.random.bytes(NONCE_BYTES);
  const h = header(nonce);
  const body = p.xchacha20poly1305Seal(
    stateKey,
    nonce,
    utf8Encode(JSON.stringify(checked)),
    concatBytes(h, organizationKey),
  );
  return concatBytes(h, body);
}

function damaged(why: string, cause?: unknown): CliError {
  return new CliError(
    CliErrorCode.STATE_FILE_DAMAGED,
    `the state file is damaged (${why})`,
    cause === undefined ? undefined : { cause },
  );
}

/** Opens a state file; every failure is `state_file_damaged`, with what was wrong. */
export function openState(
  p: Primitives,
  stateKey: Uint8Array,
  organizationKey: Uint8Array,
  file: Uint8Array,
): OrgState {
  const magic = utf8Encode(STATE_FILE_MAGIC);
  const headerBytes = magic.length + 1 + NONCE_BYTES;
  if (file.length < headerBytes || magic.some((b, i) => file[i] !== b)) {
    throw damaged('not a Passage organization state file');
  }
  if (file[magic.length] !== STATE_FILE_VERSION) {
    throw damaged(`format version ${file[magic.length]}, this tool reads ${STATE_FILE_VERSION}`);
  }
  const h = file.subarray(0, headerBytes);
  let plain: Uint8Array;
  try {
    plain = p.xchacha20poly1305Open(
      stateKey,
      h.subarray(magic.length + 1),
      file.subarray(headerBytes),
      concatBytes(h, organizationKey),
    );
  } catch (error) {
    if (isCryptoError(error, CryptoErrorCode.DECRYPT_FAILED)) {
      throw damaged('it does not open with this key file', error);
    }
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(plain));
  } catch (error) {
    throw damaged('not JSON', error);
  }
  const parsed = StateSchema.safeParse(json);
  if (!parsed.success) throw damaged(`at ${parsed.error.issues[0]?.path.join('.') ?? '?'}`);
  return parsed.data;
}
