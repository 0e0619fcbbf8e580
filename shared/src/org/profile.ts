/**
 * The content of the organization profile: what a contact's page shows and asks, signed by the
 * organization inside the container of `signed.ts`. It is canonical JSON (UTF-8, keys sorted,
 * no white space), so one profile has exactly one encoding and the signed bytes can be compared;
 * it is validated with zod and then the questionnaire's own rules, and only ever after the
 * signature has been checked (a stranger's bytes are not parsed as JSON at all).
 *
 *   {
 *     "disguise": { "icon": "notes", "title": "Notes" },   neutral tab title and icon
 *     "displayName": "Rainbow Shelter",                     shown once the page is open
 *     "languages": ["ru", "en"],                            the first is the default
 *     "questionnaire": { "fields": [ … ] },                 the intake (below)
 *     "retentionDays": 90,                                  a case expires after this inactivity
 *     "maxAttachmentBytes": 2097152,                        optional: the largest attachment blob
 *                                                           (1 … MAX_BLOB_BYTES; absent: the relay's)
 *     "client": { "files": { "/index.html": "sha384-…" } }  optional: the page's files as built
 *   }
 *
 * A field is `text` (a free answer of at most `maxLength`), `single` (one choice) or `multiple`
 * (any number of choices), each with a translated `label`, a `required` flag and `when`: the
 * conditions (all must hold) under which it is asked, each naming an EARLIER choice field and
 * the choices of which at least one must have been picked. Each choice carries an urgency weight
 * in [0, `MAX_URGENCY_WEIGHT`] that the team's triage adds up. Every translated text has exactly
 * the profile's languages.
 */
import { z } from 'zod';
import { OrgError, OrgErrorCode, ProfileIssueCode, type ProfileIssue } from './errors.js';
import {
  MAX_CLIENT_FILES,
  MAX_CLIENT_PATH_CHARS,
  MAX_DISPLAY_NAME_CHARS,
  MAX_FIELD_CHOICES,
  MAX_FIELD_CONDITIONS,
  MAX_LANGUAGE_TAG_CHARS,
  MAX_LANGUAGES,
  MAX_PAGE_TITLE_CHARS,
  MAX_QUESTION_TEXT_CHARS,
  MAX_QUESTIONNAIRE_FIELDS,
  MAX_QUESTIONNAIRE_ID_CHARS,
  MAX_RETENTION_DAYS,
  MAX_TEXT_ANSWER_CHARS,
  MAX_URGENCY_WEIGHT,
  MIN_RETENTION_DAYS,
} from './limits.js';
import { utf8Decode, utf8Encode } from './utf8.js';
import { MAX_BLOB_BYTES } from '../protocol/limits.js';

/**
 * The neutral icons a page can wear (the page bundles them; a profile names one). A picture of
 * the organization's own would need the page's CSP to allow `data:` images or another endpoint,
 * and would be one more thing that says what the page is.
 */
export const DISGUISE_ICONS = [
  'notes',
  'calendar',
  'weather',
  'recipes',
  'calculator',
  'book',
  'generic',
] as const;

export type DisguiseIcon = (typeof DISGUISE_ICONS)[number];

/**
 * True when `s` holds a character no text of a profile (or a device label) may hold: a C0 or C1
 * control, or a bidirectional override or isolate, with which a name could be made to read as
 * another organization's.
 */
export function hasForbiddenCharacters(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return true;
    if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) return true;
  }
  return false;
}

const text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !hasForbiddenCharacters(s) && s.trim() === s && s.length > 0, {
      message: 'control characters, bidirectional overrides or surrounding spaces',
    });

const LANGUAGE_TAG = /^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2})?$/;
const QUESTIONNAIRE_ID = new RegExp(`^[a-z][a-z0-9_]{0,${MAX_QUESTIONNAIRE_ID_CHARS - 1}}$`);

const languageTag = z.string().max(MAX_LANGUAGE_TAG_CHARS).regex(LANGUAGE_TAG);
const id = z.string().regex(QUESTIONNAIRE_ID);

/** A text in every language of the profile: language tag → text. */
const translated = z
  .record(languageTag, text(MAX_QUESTION_TEXT_CHARS))
  .refine((r) => Object.keys(r).length <= MAX_LANGUAGES, { message: 'too many translations' });

const condition = z.strictObject({
  field: id,
  anyOf: z.array(id).min(1).max(MAX_FIELD_CHOICES),
});

// The urgency's range is a questionnaire rule (its own issue code), not the schema's.
const choice = z.strictObject({ id, label: translated, urgency: z.number() });

const common = {
  id,
  label: translated,
  required: z.boolean(),
  when: z.array(condition).max(MAX_FIELD_CONDITIONS),
};

const field = z.discriminatedUnion('kind', [
  z.strictObject({
    ...common,
    kind: z.literal('text'),
    maxLength: z.number().int().min(1).max(MAX_TEXT_ANSWER_CHARS),
  }),
  z.strictObject({
    ...common,
    kind: z.enum(['single', 'multiple']),
    // The lower bound is a questionnaire rule (`empty_choices`), not the schema's.
    choices: z.array(choice).max(MAX_FIELD_CHOICES),
  }),
]);

/** The schema of the profile's content (shape only; {@link profileIssues} adds the rules). */
export const ProfileContentSchema = z.strictObject({
  displayName: text(MAX_DISPLAY_NAME_CHARS),
  languages: z.array(languageTag).min(1).max(MAX_LANGUAGES),
  disguise: z.strictObject({
    title: text(MAX_PAGE_TITLE_CHARS),
    icon: z.enum(DISGUISE_ICONS),
  }),
  retentionDays: z.number().int().min(MIN_RETENTION_DAYS).max(MAX_RETENTION_DAYS),
  /**
   * The largest attachment blob (encrypted and padded, as the relay stores it) the pages send,
   * in bytes, 1 … the relay's `MAX_BLOB_BYTES`; absent, the relay's bound. Optional, so that a
   * profile signed before it existed still verifies (and encodes to the same bytes).
   */
  maxAttachmentBytes: z.number().int().min(1).max(MAX_BLOB_BYTES).optional(),
  /**
   * The page as the organization built it (`passage org publish --client <dist>`): the SHA-384
   * (as an `integrity` value) of every file the relay serves of it, by URL path
   * (`/index.html`, `/assets/…`). `passage verify <url>` compares what a relay serves with
   * these. Optional: absent, nothing is claimed about the page.
   */
  client: z
    .strictObject({
      files: z
        .record(
          z
            .string()
            .max(MAX_CLIENT_PATH_CHARS)
            .regex(/^\/[A-Za-z0-9_-][A-Za-z0-9._/-]*$/)
            .refine((p) => !p.includes('..') && !p.includes('//'), 'a plain path'),
          z.string().regex(/^sha384-[A-Za-z0-9+/]{64}$/),
        )
        .refine((files) => {
          const n = Object.keys(files).length;
          return n >= 1 && n <= MAX_CLIENT_FILES;
        }, `1 … ${MAX_CLIENT_FILES} files`),
    })
    .optional(),
  questionnaire: z.strictObject({
    fields: z.array(field).max(MAX_QUESTIONNAIRE_FIELDS),
  }),
});

/** The content of a profile, as signed. */
export type ProfileContent = z.infer<typeof ProfileContentSchema>;
export type QuestionnaireField = ProfileContent['questionnaire']['fields'][number];
export type TranslatedText = Readonly<Record<string, string>>;

/**
 * The questionnaire's rules beyond the schema, as a list of issues (empty when it keeps them
 * all): unique languages, every text in exactly the profile's languages, unique field ids and
 * choice ids, choices present, urgency weights in range, and conditions that look back at an
 * earlier choice field and name choices it has.
 */
export function profileIssues(content: ProfileContent): ProfileIssue[] {
  const issues: ProfileIssue[] = [];
  const add = (path: (string | number)[], code: ProfileIssueCode) =>
    issues.push({ path: path.join('.'), code });

  const languages = new Set(content.languages);
  if (languages.size !== content.languages.length) {
    add(['languages'], ProfileIssueCode.DUPLICATE_LANGUAGE);
  }
  const checkTranslated = (t: TranslatedText, path: (string | number)[]) => {
    const keys = Object.keys(t);
    if (keys.length !== languages.size || keys.some((k) => !languages.has(k))) {
      add(path, ProfileIssueCode.TRANSLATION_MISMATCH);
    }
  };

  /** Choice ids of the choice fields seen so far, by field id; text fields map to null. */
  const earlier = new Map<string, ReadonlySet<string> | null>();
  const allIds = new Set(content.questionnaire.fields.map((f) => f.id));
  content.questionnaire.fields.forEach((f, i) => {
    const at = ['questionnaire', 'fields', i];
    checkTranslated(f.label, [...at, 'label']);
    f.when.forEach((c, j) => {
      const where = [...at, 'when', j];
      if (!earlier.has(c.field)) {
        add(
          [...where, 'field'],
          allIds.has(c.field)
            ? ProfileIssueCode.CONDITION_NOT_EARLIER
            : ProfileIssueCode.UNKNOWN_FIELD,
        );
        return;
      }
      const choices = earlier.get(c.field);
      if (choices === null || choices === undefined) {
        add([...where, 'field'], ProfileIssueCode.CONDITION_ON_TEXT);
        return;
      }
      c.anyOf.forEach((choiceId, k) => {
        if (!choices.has(choiceId)) add([...where, 'anyOf', k], ProfileIssueCode.UNKNOWN_CHOICE);
      });
    });
    if (earlier.has(f.id)) add([...at, 'id'], ProfileIssueCode.DUPLICATE_FIELD_ID);
    if (f.kind === 'text') {
      if (!earlier.has(f.id)) earlier.set(f.id, null);
      return;
    }
    if (f.choices.length === 0) add([...at, 'choices'], ProfileIssueCode.EMPTY_CHOICES);
    const ids = new Set<string>();
    f.choices.forEach((c, k) => {
      const where = [...at, 'choices', k];
      if (ids.has(c.id)) add([...where, 'id'], ProfileIssueCode.DUPLICATE_CHOICE_ID);
      ids.add(c.id);
      checkTranslated(c.label, [...where, 'label']);
      if (!Number.isInteger(c.urgency) || c.urgency < 0 || c.urgency > MAX_URGENCY_WEIGHT) {
        add([...where, 'urgency'], ProfileIssueCode.URGENCY_OUT_OF_RANGE);
      }
    });
    if (!earlier.has(f.id)) earlier.set(f.id, ids);
  });
  return issues;
}

/**
 * Canonical JSON: object keys sorted (by UTF-16 code units, JavaScript's default order), no
 * white space, strings and numbers as `JSON.stringify` writes them. Only for the values a
 * profile holds (objects, arrays, strings, finite numbers, booleans).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new RangeError('canonicalJson: not a finite number');
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return JSON.stringify(value);
  }
  throw new RangeError('canonicalJson: not a JSON value');
}

/** Checks `value` as profile content (schema, then rules); throws `profile_invalid`. */
export function checkProfileContent(value: unknown): ProfileContent {
  const parsed = ProfileContentSchema.safeParse(value);
  if (!parsed.success) {
    // One issue per path: a value can break several checks of one schema (too short and
    // blank); the path is what the admin needs.
    const paths = new Set(parsed.error.issues.map((issue) => issue.path.map(String).join('.')));
    throw new OrgError(OrgErrorCode.INVALID, {
      issues: [...paths].map((path) => ({ path, code: ProfileIssueCode.SCHEMA })),
    });
  }
  const issues = profileIssues(parsed.data);
  if (issues.length > 0) throw new OrgError(OrgErrorCode.INVALID, { issues });
  return parsed.data;
}

/** The canonical bytes of valid content; throws `profile_invalid` for invalid content. */
export function encodeProfileContent(content: ProfileContent): Uint8Array {
  return utf8Encode(canonicalJson(checkProfileContent(content)));
}

/**
 * Decodes signed content bytes: UTF-8, JSON, canonical form, schema, rules; every failure is
 * `profile_invalid` with its issue. Call it only on bytes whose signature has been checked.
 */
export function decodeProfileContent(bytes: Uint8Array): ProfileContent {
  let textValue: string;
  let json: unknown;
  try {
    textValue = utf8Decode(bytes);
    json = JSON.parse(textValue);
  } catch (cause) {
    throw new OrgError(OrgErrorCode.INVALID, {
      cause,
      issues: [{ path: '', code: ProfileIssueCode.NOT_JSON }],
    });
  }
  const content = checkProfileContent(json);
  // Sorted keys, no white space, no duplicate key (JSON.parse keeps the last one silently).
  if (canonicalJson(json) !== textValue) {
    throw new OrgError(OrgErrorCode.INVALID, {
      issues: [{ path: '', code: ProfileIssueCode.NOT_CANONICAL }],
    });
  }
  return content;
}
