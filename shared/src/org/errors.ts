/**
 * Stable error codes of the organization profile: every reason a profile is refused, by the
 * relay on publish or by a page before it trusts it. Callers branch on `code`, never on the
 * message; a code never changes meaning once released. Messages are generic and name no key,
 * device or organization, so an `OrgError` may be logged as it is.
 *
 * Adding a code: add a member with a doc comment and its message in `ORG_ERROR_MESSAGES` (the
 * compiler insists on the latter), and a row in docs/protocol.md.
 */
export const OrgErrorCode = {
  /** Larger than `MAX_PROFILE_BYTES`; nothing of it was read. */
  TOO_LARGE: 'profile_too_large',
  /** The leading format version is not one this code understands. */
  UNSUPPORTED_VERSION: 'profile_unsupported_version',
  /** The container does not decode: truncated, trailing bytes, lengths that do not add up, or
   * times out of order. Decided before the signature is checked. */
  MALFORMED: 'profile_malformed',
  /** Signed by another organization key than the one pinned (or configured on the relay). */
  WRONG_KEY: 'profile_wrong_key',
  /** The signature does not verify under the organization key. */
  BAD_SIGNATURE: 'profile_bad_signature',
  /** Signed, but the content is not a valid profile: not canonical JSON, not matching the
   * schema, or a questionnaire that breaks a rule (`issues` says which, by path). Only checked
   * after the signature. */
  INVALID: 'profile_invalid',
  /** Past its expiry time. */
  EXPIRED: 'profile_expired',
  /** Older than the profile accepted before, or another profile with the same version. */
  ROLLBACK: 'profile_rollback',
  /** The roster inside does not verify: another organization key, a bad signature, a device
   * identity that is not self-signed, or a malformed roster. */
  ROSTER_INVALID: 'profile_roster_invalid',
  /** The roster inside is past its expiry. */
  ROSTER_EXPIRED: 'profile_roster_expired',
  /** The roster inside is older than the roster accepted before (or another one with its
   * serial). */
  ROSTER_ROLLBACK: 'profile_roster_rollback',
} as const;

export type OrgErrorCode = (typeof OrgErrorCode)[keyof typeof OrgErrorCode];

/** The generic, safe message of each code. */
export const ORG_ERROR_MESSAGES: Readonly<Record<OrgErrorCode, string>> = {
  profile_too_large: 'The organization profile is too large.',
  profile_unsupported_version: 'The organization profile format is not supported.',
  profile_malformed: 'The organization profile is malformed.',
  profile_wrong_key: 'The organization profile is signed by another key.',
  profile_bad_signature: 'The organization profile signature does not verify.',
  profile_invalid: 'The organization profile content is not valid.',
  profile_expired: 'The organization profile has expired.',
  profile_rollback: 'The organization profile is older than one already accepted.',
  profile_roster_invalid: 'The roster in the organization profile does not verify.',
  profile_roster_expired: 'The roster in the organization profile has expired.',
  profile_roster_rollback: 'The roster in the organization profile is older than one accepted.',
};

/** One broken rule of a profile's content: where (a path of keys and indexes) and which rule. */
export interface ProfileIssue {
  /** The path to the offending value, e.g. `questionnaire.fields.2.when.0.field`. */
  readonly path: string;
  /** The rule, one of {@link ProfileIssueCode}. */
  readonly code: ProfileIssueCode;
}

/** The rules a profile's content can break (the `code` of a {@link ProfileIssue}). */
export const ProfileIssueCode = {
  /** The bytes are not UTF-8 JSON. */
  NOT_JSON: 'not_json',
  /** Valid JSON, but not its canonical form (sorted keys, no white space, no duplicate key). */
  NOT_CANONICAL: 'not_canonical',
  /** A value does not match the schema (type, length, range, an unknown key). */
  SCHEMA: 'schema',
  /** A language is listed twice. */
  DUPLICATE_LANGUAGE: 'duplicate_language',
  /** A translated text lacks one of the profile's languages, or has one it does not list. */
  TRANSLATION_MISMATCH: 'translation_mismatch',
  /** Two fields share an id. */
  DUPLICATE_FIELD_ID: 'duplicate_field_id',
  /** Two choices of one field share an id. */
  DUPLICATE_CHOICE_ID: 'duplicate_choice_id',
  /** A choice field without choices. */
  EMPTY_CHOICES: 'empty_choices',
  /** A condition names a field the questionnaire does not have. */
  UNKNOWN_FIELD: 'unknown_field',
  /** A condition names the field itself or a later one (conditions look back only). */
  CONDITION_NOT_EARLIER: 'condition_not_earlier',
  /** A condition names a text field (conditions are on choices). */
  CONDITION_ON_TEXT: 'condition_on_text',
  /** A condition names a choice its field does not have. */
  UNKNOWN_CHOICE: 'unknown_choice',
  /** An urgency weight outside [0, `MAX_URGENCY_WEIGHT`] or not an integer. */
  URGENCY_OUT_OF_RANGE: 'urgency_out_of_range',
} as const;

export type ProfileIssueCode = (typeof ProfileIssueCode)[keyof typeof ProfileIssueCode];

/** The one error type of the organization profile. */
export class OrgError extends Error {
  override readonly name = 'OrgError';
  readonly code: OrgErrorCode;
  /** For `profile_invalid`: every broken rule (empty otherwise). */
  readonly issues: readonly ProfileIssue[];

  constructor(
    code: OrgErrorCode,
    options?: { readonly cause?: unknown; readonly issues?: readonly ProfileIssue[] },
  ) {
    super(
      ORG_ERROR_MESSAGES[code],
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.issues = options?.issues ?? [];
  }
}

/** True when `error` is an `OrgError`, optionally with the given code. */
export function isOrgError(error: unknown, code?: OrgErrorCode): error is OrgError {
  return error instanceof OrgError && (code === undefined || error.code === code);
}
