/**
 * Named limits of the signed organization profile, in one place. The relay, the pages and the
 * admin's tool check the same numbers; each has a test at the limit and one past it.
 */

/** Version byte of the signed profile container (checked before anything else is read). */
export const PROFILE_FORMAT_VERSION = 1;

/**
 * Largest signed profile, in bytes, container and signature included. A full roster
 * (`MAX_ROSTER_DEVICES` devices) is 8,367 bytes; the rest is the questionnaire in every
 * language. Also the relay's HTTP body limit for a publish.
 */
export const MAX_PROFILE_BYTES = 65_536;

/** Longest validity of one profile (expires − issued), in seconds: 30 days. */
export const MAX_PROFILE_VALIDITY_SECONDS = 30 * 86_400;

/** Validity a profile is signed with unless the admin asks for another, in seconds: 7 days. */
export const DEFAULT_PROFILE_VALIDITY_SECONDS = 7 * 86_400;

/** Longest display name of the organization, in UTF-16 code units. */
export const MAX_DISPLAY_NAME_CHARS = 100;

/** Longest neutral page title (the browser tab's text), in UTF-16 code units. */
export const MAX_PAGE_TITLE_CHARS = 60;

/** Most languages a profile offers (the first is the default). */
export const MAX_LANGUAGES = 8;

/** Longest language tag (BCP 47 in the form `ll` or `ll-Xxxx-RR`), in characters. */
export const MAX_LANGUAGE_TAG_CHARS = 16;

/** Most fields in the intake questionnaire. */
export const MAX_QUESTIONNAIRE_FIELDS = 32;

/** Most choices of one single- or multiple-choice field. */
export const MAX_FIELD_CHOICES = 16;

/** Most conditions on one field (all must hold for it to be asked). */
export const MAX_FIELD_CONDITIONS = 4;

/** Longest question, choice or help text in one language, in UTF-16 code units. */
export const MAX_QUESTION_TEXT_CHARS = 500;

/** Longest answer a text field may ask for, in UTF-16 code units. */
export const MAX_TEXT_ANSWER_CHARS = 4_000;

/** Longest field or choice id (`[a-z][a-z0-9_]*`). */
export const MAX_QUESTIONNAIRE_ID_CHARS = 32;

/** Highest urgency weight of one answer; 0 means "says nothing about urgency". */
export const MAX_URGENCY_WEIGHT = 10;

/** Fewest and most days of inactivity after which a case expires. */
export const MIN_RETENTION_DAYS = 1;
export const MAX_RETENTION_DAYS = 365;

/** Most files of the page's build whose digests a profile carries (`client.files`). */
export const MAX_CLIENT_FILES = 64;

/** Longest URL path of such a file, in characters. */
export const MAX_CLIENT_PATH_CHARS = 128;
