/**
 * Stable error codes of conversation messages and the shared case state: why a decrypted
 * message was dropped, or why a case event was not applied. The inbox acks a dropped message
 * and counts it by code (`DropCounts`); nothing here throws at a peer's bytes. A code never
 * changes meaning once released; messages are generic and hold no content, id or name, so a
 * `ConversationError` may be logged as it is.
 *
 * Adding a code: a member with a doc comment, its message in `CONVERSATION_ERROR_MESSAGES` (the
 * compiler insists), and a row in docs/conversation.md (a test insists).
 */
export const ConversationErrorCode = {
  /** Longer than `MAX_CONVERSATION_MESSAGE_BYTES`; nothing of it was read. */
  TOO_LARGE: 'msg_too_large',
  /** Not well-formed UTF-8, or not JSON. */
  NOT_JSON: 'msg_not_json',
  /** JSON, but not an object with an integer `v`, or not matching its type's strict schema (a
   * missing or unknown field, a wrong type, a value out of bounds, a bad id or enum value). */
  MALFORMED: 'msg_malformed',
  /** `v` is not a version this code reads. */
  UNSUPPORTED_VERSION: 'msg_unsupported_version',
  /** A `type` this code does not know (a newer peer, or garbage): dropped and counted. */
  UNKNOWN_TYPE: 'msg_unknown_type',
  /** Valid, but not the canonical encoding (sorted keys, no white space, no duplicate key). */
  NOT_CANONICAL: 'msg_not_canonical',
  /** A type its sender may not send: a team-only type from the contact, a contact's message that
   * names a case, a team message that names none, or a case event whose HLC names another
   * device than the one that sent it. */
  WRONG_ORIGIN: 'msg_wrong_origin',
  /** Intake answers that do not fit the questionnaire (see `IntakeIssueCode`). */
  INTAKE_INVALID: 'intake_invalid',
  /** A case event whose HLC is further ahead of this device's clock than `MAX_HLC_AHEAD_MS`;
   * held back and applied when the clock catches up. */
  CLOCK_AHEAD: 'case_clock_ahead',
  /** A case event past a bound of the case state (`MAX_TAGS_PER_CASE`, `MAX_NOTES_PER_CASE`,
   * `MAX_CASES_PER_REPLICA`) or of the held-back events; not applied. */
  CASE_LIMIT: 'case_limit',
} as const;

export type ConversationErrorCode =
  (typeof ConversationErrorCode)[keyof typeof ConversationErrorCode];

/** The generic, safe message of each code. */
export const CONVERSATION_ERROR_MESSAGES: Readonly<Record<ConversationErrorCode, string>> = {
  msg_too_large: 'The conversation message is too large.',
  msg_not_json: 'The conversation message is not UTF-8 JSON.',
  msg_malformed: 'The conversation message is malformed.',
  msg_unsupported_version: 'The conversation message version is not supported.',
  msg_unknown_type: 'The conversation message type is not known.',
  msg_not_canonical: 'The conversation message is not canonically encoded.',
  msg_wrong_origin: 'The conversation message may not come from its sender.',
  intake_invalid: 'The intake answers do not fit the questionnaire.',
  case_clock_ahead: 'The case event is ahead of this device clock; it is held back.',
  case_limit: 'The case event exceeds a bound of the case state.',
};

/** Why a message or event was refused: a code and, for `msg_malformed`, the failing path. */
export interface ConversationFailure {
  readonly code: ConversationErrorCode;
  /** Which field failed (a path, never a value). */
  readonly detail?: string;
}

/** The error our own encoder throws for a message it will not encode (a bug of the caller). */
export class ConversationError extends Error {
  override readonly name = 'ConversationError';
  readonly code: ConversationErrorCode;
  readonly detail: string | undefined;

  constructor(code: ConversationErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(CONVERSATION_ERROR_MESSAGES[code], options);
    this.code = code;
    this.detail = detail;
  }
}

/** True when `error` is a `ConversationError`, optionally with the given code. */
export function isConversationError(
  error: unknown,
  code?: ConversationErrorCode,
): error is ConversationError {
  return error instanceof ConversationError && (code === undefined || error.code === code);
}

/** Counts of dropped messages and refused events by code: what a UI or a health view shows. */
export class DropCounts {
  private readonly counts = new Map<ConversationErrorCode, number>();

  /** Counts one drop for `code`. */
  add(code: ConversationErrorCode): void {
    this.counts.set(code, (this.counts.get(code) ?? 0) + 1);
  }

  /** The drops counted for `code`. */
  get(code: ConversationErrorCode): number {
    return this.counts.get(code) ?? 0;
  }

  /** Every code with its count (codes never seen are 0). */
  snapshot(): Readonly<Record<ConversationErrorCode, number>> {
    const out = {} as Record<ConversationErrorCode, number>;
    for (const code of Object.values(ConversationErrorCode)) out[code] = this.get(code);
    return out;
  }
}
