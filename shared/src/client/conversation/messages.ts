/**
 * Conversation messages: what one ratchet plaintext carries between a contact and the team, and
 * among the team's devices. Bytes in, bytes out; padding is the ratchet's (crypto/padding.ts).
 *
 * A message is canonical JSON (UTF-8, keys sorted, no white space, no duplicate key; one message
 * has one encoding) of an object with the version `v`, a `type`, a random 128-bit `id`, the
 * sender's clock `ts` (Unix ms) and the fields of its type, nothing else. Decoding checks, in
 * order: size, UTF-8 JSON, an object with an integer `v`, the version, a known type, the type's
 * strict schema, the canonical form; each failure has its own code and nothing throws. The whole
 * schema, every bound and code, is in docs/conversation.md.
 *
 * Who may send what (`mayBeSentToContact`, `mayBeSentByContact`, `checkOrigin`) is decided here
 * too, so that the client core routes by one table: case events, internal notes and the history
 * hand-off never go to a contact, and a contact can send none of them.
 */
import { z } from 'zod';
import {
  base64urlDecodedLength,
  isCanonicalBase64url,
  toBase64url,
} from '../../protocol/base64url.js';
import type { RandomSource } from '../../crypto/primitives.js';
import {
  MAX_FIELD_CHOICES,
  MAX_QUESTIONNAIRE_FIELDS,
  MAX_QUESTIONNAIRE_ID_CHARS,
  MAX_TEXT_ANSWER_CHARS,
} from '../../org/limits.js';
import { canonicalJson, hasForbiddenCharacters } from '../../org/profile.js';
import { utf8Decode, utf8Encode } from '../../org/utf8.js';
import { ConversationError, ConversationErrorCode, type ConversationFailure } from './errors.js';
import {
  ATTACHMENT_DIGEST_BYTES,
  ATTACHMENT_KEY_BYTES,
  CONVERSATION_ID_BYTES,
  CONVERSATION_VERSION,
  MAX_ATTACHMENT_BYTES,
  MAX_CHECK_IN_HOURS,
  MAX_CONVERSATION_MESSAGE_BYTES,
  MAX_FILE_NAME_CHARS,
  MAX_HLC_COUNTER,
  MAX_MEDIA_TYPE_CHARS,
  MAX_NOTE_CHARS,
  MAX_RECEIPT_IDS,
  MAX_SYNC_ITEMS,
  MAX_SYNC_PARTS,
  MAX_TAG_CHARS,
  MAX_TEXT_CHARS,
  MAX_TIMESTAMP_MS,
} from './limits.js';

// ---------------------------------------------------------------------------------------------
// Enumerations

/** A case's triage status (PRODUCT.md). A new case is `new`. */
export const CASE_STATUSES = [
  'new',
  'screening',
  'in_progress',
  'waiting_for_contact',
  'resolved',
  'closed',
] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

/** A case's priority. A new case is `normal`. */
export const CASE_PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;
export type CasePriority = (typeof CASE_PRIORITIES)[number];

/**
 * What the contact may be shown of its case: a short, reassuring set chosen by the team, apart
 * from the triage status (a contact is never shown "screening" or "spam").
 */
export const CONTACT_STATUSES = ['received', 'in_progress', 'waiting_for_you', 'closed'] as const;
export type ContactStatus = (typeof CONTACT_STATUSES)[number];

/** The spam mark of a case: none, marked as spam (kept, listed apart), or blocked. */
export const SPAM_MARKS = ['none', 'spam', 'blocked'] as const;
export type SpamMark = (typeof SPAM_MARKS)[number];

/** Every message type, and who may send it to whom. */
export const MESSAGE_TYPES = [
  'text',
  'intake',
  'receipt',
  'attachment',
  'status_notice',
  'case_event',
  'sync_request',
  'sync_response',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

interface Audience {
  /** The type may be sent to a contact's device. */
  readonly toContact: boolean;
  /** A contact's device may send the type. */
  readonly fromContact: boolean;
}

/**
 * The routing table. Case events (internal notes among them) and the history hand-off are
 * team-only both ways; the intake comes only from the contact; the status notice only from the
 * team.
 */
const AUDIENCE: Readonly<Record<MessageType, Audience>> = {
  text: { toContact: true, fromContact: true },
  intake: { toContact: false, fromContact: true },
  receipt: { toContact: true, fromContact: true },
  attachment: { toContact: true, fromContact: true },
  status_notice: { toContact: true, fromContact: false },
  case_event: { toContact: false, fromContact: false },
  sync_request: { toContact: false, fromContact: false },
  sync_response: { toContact: false, fromContact: false },
};

/** True when a message of `type` may ever be sent to a contact. False for unknown types. */
export function mayBeSentToContact(type: string): boolean {
  return Object.hasOwn(AUDIENCE, type) && AUDIENCE[type as MessageType].toContact;
}

/** True when a contact's device may send a message of `type`. False for unknown types. */
export function mayBeSentByContact(type: string): boolean {
  return Object.hasOwn(AUDIENCE, type) && AUDIENCE[type as MessageType].fromContact;
}

// ---------------------------------------------------------------------------------------------
// Field schemas

/** Longest base64url string that can encode `bytes` bytes. */
const encodedLength = (bytes: number) => Math.ceil((bytes * 4) / 3);

/** Canonical unpadded base64url of exactly `bytes` bytes. */
const fixedBytes = (bytes: number) =>
  z
    .string()
    .max(encodedLength(bytes))
    .refine((s) => base64urlDecodedLength(s.length) === bytes && isCanonicalBase64url(s), {
      message: `expected base64url of ${bytes} bytes`,
    });

/** A message id or blob id: 16 random bytes in base64url. */
const conversationId = fixedBytes(CONVERSATION_ID_BYTES);

/** A device id (`PublicIdentity.id`: its Ed25519 key in lower-case hex). */
const DEVICE_ID = /^[0-9a-f]{64}$/;
const deviceId = z.string().regex(DEVICE_ID);

/** A case is named by its contact's device id (the codename gives the same one back). */
const caseId = deviceId;

const QUESTIONNAIRE_ID = new RegExp(`^[a-z][a-z0-9_]{0,${MAX_QUESTIONNAIRE_ID_CHARS - 1}}$`);
const questionnaireId = z.string().regex(QUESTIONNAIRE_ID);

/** True when `s` holds an unpaired UTF-16 surrogate (it has no UTF-8 encoding). */
function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return true;
    }
  }
  return false;
}

/** True when `s` holds a C0 or C1 control other than line feed and tab. */
function hasControlsBesidesLineBreaks(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x0a || c === 0x09) continue;
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/**
 * Free text a person wrote (a message, a note, an answer): not blank, line feeds and tabs
 * allowed, no other control character and no lone surrogate. Bidirectional marks are allowed:
 * right-to-left writers need them, and the apps show such text isolated (`dir="auto"`, `<bdi>`).
 */
const prose = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine(
      (s) => s.trim().length > 0 && !hasControlsBesidesLineBreaks(s) && !hasLoneSurrogate(s),
      {
        message: 'blank, control characters or a lone surrogate',
      },
    );

/**
 * A short label the apps show among others (a tag, a file name): no control character, no
 * bidirectional override or isolate (which could make "gpj.exe" read as "exe.jpg"), no
 * surrounding spaces, no lone surrogate.
 */
const label = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !hasForbiddenCharacters(s) && s.trim() === s && !hasLoneSurrogate(s), {
      message: 'control characters, bidirectional overrides or surrounding spaces',
    });

/** A file name: a label with no path separator, and not `.` or `..`. */
const fileName = label(MAX_FILE_NAME_CHARS).refine(
  (s) => !s.includes('/') && !s.includes('\\') && s !== '.' && s !== '..',
  { message: 'a path, not a file name' },
);

/** A media type as RFC 6838 restricts its names, in lower case (one spelling per type). */
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;
const mediaType = z.string().max(MAX_MEDIA_TYPE_CHARS).regex(MEDIA_TYPE);

const timestamp = z.number().int().min(0).max(MAX_TIMESTAMP_MS);

/** The fields of every message. */
const common = {
  v: z.literal(CONVERSATION_VERSION),
  id: conversationId,
  ts: timestamp,
};

/** A team device names the case a message belongs to; a contact's device never does. */
const optionalCase = { case: caseId.optional() };

// ---------------------------------------------------------------------------------------------
// Message schemas

const TextSchema = z.strictObject({
  ...common,
  ...optionalCase,
  type: z.literal('text'),
  body: prose(MAX_TEXT_CHARS),
});

const AnswerSchema = z.union([
  z.strictObject({ field: questionnaireId, text: prose(MAX_TEXT_ANSWER_CHARS) }),
  z.strictObject({
    field: questionnaireId,
    choices: z
      .array(questionnaireId)
      .min(1)
      .max(MAX_FIELD_CHOICES)
      .refine((ids) => new Set(ids).size === ids.length, { message: 'duplicate choice' }),
  }),
]);

const IntakeSchema = z.strictObject({
  ...common,
  type: z.literal('intake'),
  /** The version of the signed profile whose questionnaire was answered. */
  profileVersion: z.number().int().min(1).max(0xffff_ffff),
  answers: z
    .array(AnswerSchema)
    .max(MAX_QUESTIONNAIRE_FIELDS)
    .refine((a) => new Set(a.map((x) => x.field)).size === a.length, {
      message: 'duplicate answer',
    }),
});

const ReceiptSchema = z.strictObject({
  ...common,
  ...optionalCase,
  type: z.literal('receipt'),
  kind: z.enum(['delivered', 'read']),
  ids: z
    .array(conversationId)
    .min(1)
    .max(MAX_RECEIPT_IDS)
    .refine((ids) => new Set(ids).size === ids.length, { message: 'duplicate id' }),
});

const AttachmentSchema = z.strictObject({
  ...common,
  ...optionalCase,
  type: z.literal('attachment'),
  /** The relay's id of the encrypted blob. */
  blob: conversationId,
  /** The XChaCha20-Poly1305 key the blob is encrypted under. */
  key: fixedBytes(ATTACHMENT_KEY_BYTES),
  /** SHA-256 of the encrypted blob, checked before it is decrypted. */
  digest: fixedBytes(ATTACHMENT_DIGEST_BYTES),
  /** Bytes of the encrypted blob. */
  size: z.number().int().min(1).max(MAX_ATTACHMENT_BYTES),
  mediaType,
  fileName,
});

const StatusNoticeSchema = z.strictObject({
  ...common,
  ...optionalCase,
  type: z.literal('status_notice'),
  status: z.enum(CONTACT_STATUSES),
});

const HlcSchema = z.strictObject({
  wallMs: timestamp,
  counter: z.number().int().min(0).max(MAX_HLC_COUNTER),
  device: deviceId,
});

/** One change to a case's shared state (see case-state.ts for how each one merges). */
const CaseOpSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('status'), status: z.enum(CASE_STATUSES) }),
  z.strictObject({ kind: z.literal('priority'), priority: z.enum(CASE_PRIORITIES) }),
  /** Absent `device`: nobody is assigned. */
  z.strictObject({ kind: z.literal('assignee'), device: deviceId.optional() }),
  z.strictObject({ kind: z.literal('tag'), tag: label(MAX_TAG_CHARS), present: z.boolean() }),
  z.strictObject({ kind: z.literal('note'), text: prose(MAX_NOTE_CHARS) }),
  /** Absent `status`: the contact is shown nothing. */
  z.strictObject({ kind: z.literal('shown_status'), status: z.enum(CONTACT_STATUSES).optional() }),
  /** Absent `hours`: no welfare check-in. */
  z.strictObject({
    kind: z.literal('check_in'),
    hours: z.number().int().min(1).max(MAX_CHECK_IN_HOURS).optional(),
  }),
  z.strictObject({ kind: z.literal('duress') }),
  z.strictObject({ kind: z.literal('spam'), mark: z.enum(SPAM_MARKS) }),
]);

const CaseEventSchema = z.strictObject({
  ...common,
  type: z.literal('case_event'),
  case: caseId,
  hlc: HlcSchema,
  op: CaseOpSchema,
});

const SyncRequestSchema = z.strictObject({
  ...common,
  type: z.literal('sync_request'),
});

/** What a history hand-off carries: any message of a case, but no hand-off in a hand-off. */
const SyncItemMessageSchema = z.discriminatedUnion('type', [
  TextSchema,
  IntakeSchema,
  ReceiptSchema,
  AttachmentSchema,
  StatusNoticeSchema,
  CaseEventSchema,
]);

const SyncResponseSchema = z.strictObject({
  ...common,
  type: z.literal('sync_response'),
  /** The id of the `sync_request` answered. */
  request: conversationId,
  case: caseId,
  /** Parts of one case count from 0; `last` ends the case's hand-off. */
  part: z.number().int().min(0).max(MAX_SYNC_PARTS),
  last: z.boolean(),
  items: z
    .array(
      z.strictObject({
        /** Who sent the item: the case's contact, or a team device (its id). */
        from: z.union([z.literal('contact'), deviceId]),
        message: SyncItemMessageSchema,
      }),
    )
    .max(MAX_SYNC_ITEMS),
});

const SCHEMAS = {
  text: TextSchema,
  intake: IntakeSchema,
  receipt: ReceiptSchema,
  attachment: AttachmentSchema,
  status_notice: StatusNoticeSchema,
  case_event: CaseEventSchema,
  sync_request: SyncRequestSchema,
  sync_response: SyncResponseSchema,
} as const satisfies Record<MessageType, z.ZodType>;

/** Every message (the union of the schemas above). */
export const ConversationMessageSchema = z.discriminatedUnion('type', [
  TextSchema,
  IntakeSchema,
  ReceiptSchema,
  AttachmentSchema,
  StatusNoticeSchema,
  CaseEventSchema,
  SyncRequestSchema,
  SyncResponseSchema,
]);

export type ConversationMessage = z.infer<typeof ConversationMessageSchema>;
export type TextMessage = z.infer<typeof TextSchema>;
export type IntakeMessage = z.infer<typeof IntakeSchema>;
export type IntakeAnswer = z.infer<typeof AnswerSchema>;
export type ReceiptMessage = z.infer<typeof ReceiptSchema>;
export type AttachmentMessage = z.infer<typeof AttachmentSchema>;
export type StatusNoticeMessage = z.infer<typeof StatusNoticeSchema>;
export type CaseEvent = z.infer<typeof CaseEventSchema>;
export type CaseOp = z.infer<typeof CaseOpSchema>;
export type SyncRequestMessage = z.infer<typeof SyncRequestSchema>;
export type SyncResponseMessage = z.infer<typeof SyncResponseSchema>;
export type SyncItem = SyncResponseMessage['items'][number];

// ---------------------------------------------------------------------------------------------
// Encoding and decoding

/** A fresh random message id (or any other 128-bit conversation id). */
export function newConversationId(random: RandomSource): string {
  return toBase64url(random.bytes(CONVERSATION_ID_BYTES));
}

/**
 * The canonical bytes of a message. Our own messages only: an invalid or oversized one is a bug
 * of the caller, so this throws `ConversationError` (`msg_malformed` with the path, or
 * `msg_too_large`) rather than sending something a peer would drop.
 */
export function encodeConversationMessage(message: ConversationMessage): Uint8Array {
  const parsed = ConversationMessageSchema.safeParse(message);
  if (!parsed.success) {
    throw new ConversationError(ConversationErrorCode.MALFORMED, pathOf(parsed.error));
  }
  const bytes = utf8Encode(canonicalJson(parsed.data));
  if (bytes.length > MAX_CONVERSATION_MESSAGE_BYTES) {
    throw new ConversationError(ConversationErrorCode.TOO_LARGE);
  }
  return bytes;
}

/** A decoded message, or why it was dropped. */
export type DecodeResult =
  | { readonly ok: true; readonly message: ConversationMessage }
  | { readonly ok: false; readonly error: ConversationFailure };

function pathOf(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue === undefined ? '' : issue.path.map(String).join('.') || issue.code;
}

const fail = (code: ConversationErrorCode, detail?: string): DecodeResult => ({
  ok: false,
  error: detail === undefined ? { code } : { code, detail },
});

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** True when `text` is the canonical JSON of `json` (false for anything it cannot encode). */
function isCanonical(json: unknown, text: string): boolean {
  try {
    return canonicalJson(json) === text;
  } catch {
    // Only reachable for values the schemas refuse (null); kept so that no input can throw.
    return false;
  }
}

/**
 * Decodes a peer's plaintext. Never throws: every failure is a result with its code, which the
 * inbox counts before it acks the envelope.
 */
export function decodeConversationMessage(bytes: Uint8Array): DecodeResult {
  if (bytes.length > MAX_CONVERSATION_MESSAGE_BYTES) return fail(ConversationErrorCode.TOO_LARGE);
  let text: string;
  let json: unknown;
  try {
    text = utf8Decode(bytes);
    json = JSON.parse(text);
  } catch {
    return fail(ConversationErrorCode.NOT_JSON);
  }
  if (!isRecord(json)) return fail(ConversationErrorCode.MALFORMED, 'not an object');
  // The version first: a message of another version is not read any further.
  const v = json['v'];
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    return fail(ConversationErrorCode.MALFORMED, 'v');
  }
  if (v !== CONVERSATION_VERSION) return fail(ConversationErrorCode.UNSUPPORTED_VERSION);
  const type = json['type'];
  if (typeof type !== 'string') return fail(ConversationErrorCode.MALFORMED, 'type');
  if (!Object.hasOwn(SCHEMAS, type)) return fail(ConversationErrorCode.UNKNOWN_TYPE);
  const parsed = SCHEMAS[type as MessageType].safeParse(json);
  if (!parsed.success) return fail(ConversationErrorCode.MALFORMED, pathOf(parsed.error));
  // Sorted keys, no white space, no duplicate key (JSON.parse keeps the last one silently).
  if (!isCanonical(json, text)) return fail(ConversationErrorCode.NOT_CANONICAL);
  return { ok: true, message: parsed.data };
}

// ---------------------------------------------------------------------------------------------
// Origin

/** Who sent a message, as the session layer authenticated it. */
export type Origin =
  | { readonly from: 'contact' }
  | { readonly from: 'team'; /** The sending device's id. */ readonly device: string };

/** The types a team device sends with the case they belong to. */
const CASE_BOUND: ReadonlySet<MessageType> = new Set([
  'text',
  'receipt',
  'attachment',
  'status_notice',
  'case_event',
  'sync_response',
]);

/** The case a message names, if it names one. */
export function caseOf(message: ConversationMessage): string | undefined {
  return 'case' in message ? message.case : undefined;
}

function originIssue(message: ConversationMessage, origin: Origin): boolean {
  if (origin.from === 'contact') {
    // A contact's case is its own device: a contact naming a case could write into another's.
    return !mayBeSentByContact(message.type) || caseOf(message) !== undefined;
  }
  if (message.type === 'intake') return true;
  if (CASE_BOUND.has(message.type) && caseOf(message) === undefined) return true;
  if (message.type === 'case_event' && message.hlc.device !== origin.device) return true;
  if (message.type === 'sync_response') {
    return message.items.some((item) => {
      const from: Origin =
        item.from === 'contact' ? { from: 'contact' } : { from: 'team', device: item.from };
      if (originIssue(item.message, from)) return true;
      return from.from === 'team' && caseOf(item.message) !== message.case;
    });
  }
  return false;
}

/**
 * Whether `origin` may have sent `message` to `recipient` (this device: a contact's or a team
 * device): a team-only type from a contact or received by a contact, a contact's message that
 * names a case, a team message without its case, a case event whose HLC names another device,
 * or a hand-off item that breaks one of these rules is `msg_wrong_origin`; otherwise null.
 */
export function checkOrigin(
  message: ConversationMessage,
  origin: Origin,
  recipient: 'contact' | 'team' = 'team',
): ConversationFailure | null {
  const wrong =
    (recipient === 'contact' && !mayBeSentToContact(message.type)) || originIssue(message, origin);
  return wrong ? { code: ConversationErrorCode.WRONG_ORIGIN } : null;
}
