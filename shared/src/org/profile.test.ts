/**
 * The profile's content: the schema, the questionnaire's rules (each issue code), the canonical
 * encoding, and every limit at the bound and one past it.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { sampleProfileContent } from '@passage/testing/org-fixtures';
import { OrgError, OrgErrorCode, type ProfileIssue } from './errors.js';
import {
  MAX_DISPLAY_NAME_CHARS,
  MAX_FIELD_CHOICES,
  MAX_FIELD_CONDITIONS,
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
import {
  canonicalJson,
  checkProfileContent,
  decodeProfileContent,
  encodeProfileContent,
  type ProfileContent,
  type QuestionnaireField,
} from './profile.js';
import { utf8Encode } from './utf8.js';
import { MAX_BLOB_BYTES } from '../protocol/limits.js';
import { MAX_CLIENT_FILES, MAX_CLIENT_PATH_CHARS } from './limits.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };

/** The sample content, changed by `edit` (on a deep copy). */
function edited(edit: (c: Mutable<ProfileContent>) => void): unknown {
  const c = structuredClone(sampleProfileContent()) as Mutable<ProfileContent>;
  edit(c);
  return c;
}

/** The issues `checkProfileContent` reports for `value` ([] if it accepts it). */
function issuesOf(value: unknown): ProfileIssue[] {
  try {
    checkProfileContent(value);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(OrgError);
    expect((error as OrgError).code).toBe(OrgErrorCode.INVALID);
    return [...(error as OrgError).issues];
  }
}

const bytes = (s: string) => new TextEncoder().encode(s);
const tr = (s: string) => ({ ru: s, en: s });
const choiceField = (id: string, n: number): QuestionnaireField => ({
  id,
  kind: 'single',
  label: tr('q'),
  required: false,
  when: [],
  choices: Array.from({ length: n }, (_, i) => ({ id: `c${i}`, label: tr(`c${i}`), urgency: 0 })),
});

describe('profile content: accepted', () => {
  it('accepts the sample with every field kind and a condition', () => {
    expect(issuesOf(sampleProfileContent())).toEqual([]);
  });

  it('encodes canonically (sorted keys, no white space) and decodes to the same content', () => {
    const encoded = encodeProfileContent(sampleProfileContent());
    const text = new TextDecoder().decode(encoded);
    expect(text.startsWith('{"disguise":{"icon":"notes","title":"Notes"},"displayName":')).toBe(
      true,
    );
    expect(text).not.toMatch(/\s"|":\s/);
    expect(decodeProfileContent(encoded)).toEqual(sampleProfileContent());
  });

  it('accepts an empty questionnaire and one language', () => {
    const c = edited((c) => {
      c.languages = ['en'];
      c.questionnaire.fields = [];
    });
    expect(issuesOf(c)).toEqual([]);
  });

  it('accepts conditions on an earlier multiple-choice field naming several choices', () => {
    const c = edited((c) => {
      c.questionnaire.fields[2]!.when = [
        { field: 'safe_now', anyOf: ['no'] },
        { field: 'needs', anyOf: ['shelter', 'legal'] },
      ];
    });
    expect(issuesOf(c)).toEqual([]);
  });

  it('round-trips generated valid content through its canonical bytes', () => {
    const fieldArb = fc.record({
      kind: fc.constantFrom('text', 'single', 'multiple'),
      required: fc.boolean(),
      label: fc
        .string({ minLength: 1, maxLength: 40 })
        .filter((s) => /^\p{L}[\p{L} ]*\p{L}$|^\p{L}$/u.test(s)),
      choices: fc.array(fc.integer({ min: 0, max: MAX_URGENCY_WEIGHT }), {
        minLength: 1,
        maxLength: 5,
      }),
      maxLength: fc.integer({ min: 1, max: MAX_TEXT_ANSWER_CHARS }),
      conditional: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(fieldArb, { maxLength: 8 }), (specs) => {
        const fields: QuestionnaireField[] = [];
        specs.forEach((s, i) => {
          const previous = fields.findLast((f) => f.kind !== 'text');
          const when =
            s.conditional && previous !== undefined && 'choices' in previous
              ? [{ field: previous.id, anyOf: [previous.choices[0]!.id] }]
              : [];
          const base = { id: `f${i}`, label: tr(s.label), required: s.required, when };
          fields.push(
            s.kind === 'text'
              ? { ...base, kind: 'text', maxLength: s.maxLength }
              : {
                  ...base,
                  kind: s.kind,
                  choices: s.choices.map((u, k) => ({ id: `c${k}`, label: tr('x'), urgency: u })),
                },
          );
        });
        const content = { ...sampleProfileContent(), questionnaire: { fields } };
        const encoded = encodeProfileContent(content);
        expect(decodeProfileContent(encoded)).toEqual(content);
        expect(encodeProfileContent(decodeProfileContent(encoded))).toEqual(encoded);
      }),
      { numRuns: 200 },
    );
  });
});

describe('profile content: the questionnaire rules', () => {
  it('refuses a condition on a later field', () => {
    const c = edited((c) => {
      c.questionnaire.fields[0]!.when = [{ field: 'needs', anyOf: ['legal'] }];
    });
    expect(issuesOf(c)).toEqual([
      { path: 'questionnaire.fields.0.when.0.field', code: 'condition_not_earlier' },
    ]);
  });

  it('refuses a condition on the field itself', () => {
    const c = edited((c) => {
      c.questionnaire.fields[1]!.when = [{ field: 'needs', anyOf: ['legal'] }];
    });
    expect(issuesOf(c)).toEqual([
      { path: 'questionnaire.fields.1.when.0.field', code: 'condition_not_earlier' },
    ]);
  });

  it('refuses a condition on an unknown field id', () => {
    const c = edited((c) => {
      c.questionnaire.fields[2]!.when = [{ field: 'nowhere', anyOf: ['no'] }];
    });
    expect(issuesOf(c)).toEqual([
      { path: 'questionnaire.fields.2.when.0.field', code: 'unknown_field' },
    ]);
  });

  it('refuses a condition on a text field', () => {
    const c = edited((c) => {
      c.questionnaire.fields.push({
        ...choiceField('after', 2),
        when: [{ field: 'danger', anyOf: ['c0'] }],
      });
    });
    expect(issuesOf(c)).toEqual([
      { path: 'questionnaire.fields.3.when.0.field', code: 'condition_on_text' },
    ]);
  });

  it('refuses a condition naming a choice its field does not have', () => {
    const c = edited((c) => {
      c.questionnaire.fields[2]!.when = [{ field: 'safe_now', anyOf: ['no', 'maybe'] }];
    });
    expect(issuesOf(c)).toEqual([
      { path: 'questionnaire.fields.2.when.0.anyOf.1', code: 'unknown_choice' },
    ]);
  });

  it('refuses duplicate field ids', () => {
    const c = edited((c) => {
      c.questionnaire.fields[1]!.id = 'safe_now';
    });
    expect(issuesOf(c)).toEqual([
      { path: 'questionnaire.fields.1.id', code: 'duplicate_field_id' },
    ]);
  });

  it('refuses duplicate choice ids within a field', () => {
    const c = edited((c) => {
      const f = c.questionnaire.fields[1]!;
      if (f.kind !== 'text') f.choices[1]!.id = 'shelter';
    });
    expect(issuesOf(c)).toEqual([
      { path: 'questionnaire.fields.1.choices.1.id', code: 'duplicate_choice_id' },
    ]);
  });

  it('refuses a choice field with no choices', () => {
    const c = edited((c) => {
      const f = c.questionnaire.fields[1]!;
      if (f.kind !== 'text') f.choices = [];
    });
    expect(issuesOf(c)).toEqual([
      { path: 'questionnaire.fields.1.choices', code: 'empty_choices' },
    ]);
  });

  it.each([
    ['negative', -1],
    ['one past the highest', MAX_URGENCY_WEIGHT + 1],
    ['fractional', 2.5],
  ])('refuses an urgency weight that is %s', (_name, urgency) => {
    const c = edited((c) => {
      const f = c.questionnaire.fields[0]!;
      if (f.kind !== 'text') f.choices[0]!.urgency = urgency;
    });
    expect(issuesOf(c)).toEqual([
      { path: 'questionnaire.fields.0.choices.0.urgency', code: 'urgency_out_of_range' },
    ]);
  });

  it('accepts urgency weights 0 and MAX_URGENCY_WEIGHT', () => {
    const c = edited((c) => {
      const f = c.questionnaire.fields[0]!;
      if (f.kind !== 'text') {
        f.choices[0]!.urgency = 0;
        f.choices[1]!.urgency = MAX_URGENCY_WEIGHT;
      }
    });
    expect(issuesOf(c)).toEqual([]);
  });

  it('refuses a translation missing a language, or with one the profile does not list', () => {
    const missing = edited((c) => {
      c.questionnaire.fields[0]!.label = { ru: 'Вопрос' };
    });
    expect(issuesOf(missing)).toEqual([
      { path: 'questionnaire.fields.0.label', code: 'translation_mismatch' },
    ]);
    const extra = edited((c) => {
      const f = c.questionnaire.fields[0]!;
      if (f.kind !== 'text') f.choices[0]!.label = { ru: 'Да', en: 'Yes', de: 'Ja' };
    });
    expect(issuesOf(extra)).toEqual([
      { path: 'questionnaire.fields.0.choices.0.label', code: 'translation_mismatch' },
    ]);
  });

  it('refuses a language listed twice', () => {
    const c = edited((c) => {
      c.languages = ['ru', 'en', 'ru'];
    });
    expect(issuesOf(c)).toEqual([{ path: 'languages', code: 'duplicate_language' }]);
  });
});

describe('profile content: the schema', () => {
  const schemaIssue = (path: string) => [{ path, code: 'schema' }];

  it('refuses an unknown key at the top, in a field and in a choice', () => {
    expect(issuesOf({ ...sampleProfileContent(), extra: 1 })).toEqual(schemaIssue(''));
    const inField = edited((c) => {
      (c.questionnaire.fields[2] as unknown as Record<string, unknown>)['hint'] = 'x';
    });
    expect(issuesOf(inField)).toEqual(schemaIssue('questionnaire.fields.2'));
    const inChoice = edited((c) => {
      const f = c.questionnaire.fields[0]!;
      if (f.kind !== 'text') (f.choices[0] as unknown as Record<string, unknown>)['color'] = 'red';
    });
    expect(issuesOf(inChoice)).toEqual(schemaIssue('questionnaire.fields.0.choices.0'));
  });

  it('refuses an unknown field kind, and a text field with choices', () => {
    const kind = edited((c) => {
      (c.questionnaire.fields[2] as unknown as Record<string, unknown>)['kind'] = 'date';
    });
    expect(issuesOf(kind)).toEqual(schemaIssue('questionnaire.fields.2.kind'));
    const textChoices = edited((c) => {
      (c.questionnaire.fields[2] as unknown as Record<string, unknown>)['choices'] = [];
    });
    expect(issuesOf(textChoices)).toEqual(schemaIssue('questionnaire.fields.2'));
  });

  it('refuses a missing required key', () => {
    const c = edited((c) => {
      delete (c as Partial<ProfileContent>).retentionDays;
    });
    expect(issuesOf(c)).toEqual(schemaIssue('retentionDays'));
  });

  it('refuses an unknown icon', () => {
    const c = edited((c) => {
      (c.disguise as Record<string, unknown>)['icon'] = 'rainbow';
    });
    expect(issuesOf(c)).toEqual(schemaIssue('disguise.icon'));
  });

  it.each([
    ['a control character', 'Rainbow\u0007Shelter'],
    ['a right-to-left override', 'Rainbow \u202eShelter'],
    ['a bidirectional isolate', '\u2067Rainbow'],
    ['surrounding spaces', ' Rainbow Shelter'],
    ['nothing', ''],
  ])('refuses a display name with %s', (_name, displayName) => {
    expect(issuesOf({ ...sampleProfileContent(), displayName })).toEqual(
      schemaIssue('displayName'),
    );
  });

  it.each(['RU', 'english', 'r', 'ru_RU', 'ru-ru', ''])('refuses the language tag %j', (tag) => {
    const c = edited((c) => {
      c.languages = [tag];
    });
    expect(issuesOf(c).some((i) => i.path === 'languages.0' && i.code === 'schema')).toBe(true);
  });

  it.each(['Safe', '1st', 'a-b', 'a'.repeat(MAX_QUESTIONNAIRE_ID_CHARS + 1), ''])(
    'refuses the field id %j',
    (id) => {
      const c = edited((c) => {
        c.questionnaire.fields[1]!.id = id;
      });
      expect(issuesOf(c)).toEqual(schemaIssue('questionnaire.fields.1.id'));
    },
  );

  it('refuses a condition with no choices named', () => {
    const c = edited((c) => {
      c.questionnaire.fields[2]!.when = [{ field: 'safe_now', anyOf: [] }];
    });
    expect(issuesOf(c)).toEqual(schemaIssue('questionnaire.fields.2.when.0.anyOf'));
  });
});

describe('profile content: limits at the bound and one past it', () => {
  it('display name: MAX_DISPLAY_NAME_CHARS', () => {
    expect(
      issuesOf({ ...sampleProfileContent(), displayName: 'a'.repeat(MAX_DISPLAY_NAME_CHARS) }),
    ).toEqual([]);
    expect(
      issuesOf({ ...sampleProfileContent(), displayName: 'a'.repeat(MAX_DISPLAY_NAME_CHARS + 1) }),
    ).toEqual([{ path: 'displayName', code: 'schema' }]);
  });

  it('page title: MAX_PAGE_TITLE_CHARS', () => {
    const at = edited((c) => {
      c.disguise.title = 't'.repeat(MAX_PAGE_TITLE_CHARS);
    });
    const past = edited((c) => {
      c.disguise.title = 't'.repeat(MAX_PAGE_TITLE_CHARS + 1);
    });
    expect(issuesOf(at)).toEqual([]);
    expect(issuesOf(past)).toEqual([{ path: 'disguise.title', code: 'schema' }]);
  });

  it('languages: MAX_LANGUAGES', () => {
    const tags = ['aa', 'bb', 'cc', 'dd', 'ee', 'ff', 'gg', 'hh', 'ii'];
    const withLanguages = (n: number) =>
      edited((c) => {
        c.languages = tags.slice(0, n);
        c.questionnaire.fields = [];
      });
    expect(issuesOf(withLanguages(MAX_LANGUAGES))).toEqual([]);
    expect(issuesOf(withLanguages(MAX_LANGUAGES + 1))).toEqual([
      { path: 'languages', code: 'schema' },
    ]);
  });

  it('fields: MAX_QUESTIONNAIRE_FIELDS', () => {
    const withFields = (n: number) =>
      edited((c) => {
        c.questionnaire.fields = Array.from({ length: n }, (_, i) => choiceField(`f${i}`, 1));
      });
    expect(issuesOf(withFields(MAX_QUESTIONNAIRE_FIELDS))).toEqual([]);
    expect(issuesOf(withFields(MAX_QUESTIONNAIRE_FIELDS + 1))).toEqual([
      { path: 'questionnaire.fields', code: 'schema' },
    ]);
  });

  it('choices: MAX_FIELD_CHOICES', () => {
    const withChoices = (n: number) =>
      edited((c) => {
        c.questionnaire.fields = [choiceField('f', n)];
      });
    expect(issuesOf(withChoices(MAX_FIELD_CHOICES))).toEqual([]);
    expect(issuesOf(withChoices(MAX_FIELD_CHOICES + 1))).toEqual([
      { path: 'questionnaire.fields.0.choices', code: 'schema' },
    ]);
  });

  it('conditions: MAX_FIELD_CONDITIONS', () => {
    const withConditions = (n: number) =>
      edited((c) => {
        c.questionnaire.fields[2]!.when = Array.from({ length: n }, () => ({
          field: 'safe_now',
          anyOf: ['no'],
        }));
      });
    expect(issuesOf(withConditions(MAX_FIELD_CONDITIONS))).toEqual([]);
    expect(issuesOf(withConditions(MAX_FIELD_CONDITIONS + 1))).toEqual([
      { path: 'questionnaire.fields.2.when', code: 'schema' },
    ]);
  });

  it('question text: MAX_QUESTION_TEXT_CHARS', () => {
    const withLabel = (n: number) =>
      edited((c) => {
        c.questionnaire.fields[0]!.label = tr('q'.repeat(n));
      });
    expect(issuesOf(withLabel(MAX_QUESTION_TEXT_CHARS))).toEqual([]);
    expect(issuesOf(withLabel(MAX_QUESTION_TEXT_CHARS + 1)).every((i) => i.code === 'schema')).toBe(
      true,
    );
    expect(issuesOf(withLabel(MAX_QUESTION_TEXT_CHARS + 1)).length).toBeGreaterThan(0);
  });

  it('text answer length: 1 to MAX_TEXT_ANSWER_CHARS', () => {
    const withMax = (n: number) =>
      edited((c) => {
        const f = c.questionnaire.fields[2]!;
        if (f.kind === 'text') f.maxLength = n;
      });
    expect(issuesOf(withMax(MAX_TEXT_ANSWER_CHARS))).toEqual([]);
    expect(issuesOf(withMax(1))).toEqual([]);
    expect(issuesOf(withMax(MAX_TEXT_ANSWER_CHARS + 1))).toEqual([
      { path: 'questionnaire.fields.2.maxLength', code: 'schema' },
    ]);
    expect(issuesOf(withMax(0))).toEqual([
      { path: 'questionnaire.fields.2.maxLength', code: 'schema' },
    ]);
  });

  it('retention: MIN_RETENTION_DAYS to MAX_RETENTION_DAYS days', () => {
    const r = (retentionDays: number) => issuesOf({ ...sampleProfileContent(), retentionDays });
    expect(r(MIN_RETENTION_DAYS)).toEqual([]);
    expect(r(MAX_RETENTION_DAYS)).toEqual([]);
    for (const bad of [MIN_RETENTION_DAYS - 1, MAX_RETENTION_DAYS + 1, 1.5]) {
      expect(r(bad)).toEqual([{ path: 'retentionDays', code: 'schema' }]);
    }
  });
});

describe('profile content: the attachment limit', () => {
  const withLimit = (maxAttachmentBytes: unknown) =>
    issuesOf({ ...sampleProfileContent(), maxAttachmentBytes });

  it('takes 1 … MAX_BLOB_BYTES', () => {
    expect(withLimit(1)).toEqual([]);
    expect(withLimit(MAX_BLOB_BYTES)).toEqual([]);
  });

  it('refuses 0, MAX_BLOB_BYTES + 1, a fraction and a string', () => {
    for (const bad of [0, MAX_BLOB_BYTES + 1, 1.5, '1000']) {
      expect(withLimit(bad)).toEqual([{ path: 'maxAttachmentBytes', code: 'schema' }]);
    }
  });

  it('is optional: content without it (as signed before it existed) decodes to the same bytes', () => {
    const old = sampleProfileContent();
    expect('maxAttachmentBytes' in old).toBe(false);
    const bytes = utf8Encode(canonicalJson(old));
    expect(decodeProfileContent(bytes)).toEqual(old);
    expect(encodeProfileContent(old)).toEqual(bytes);
  });

  it('round-trips when set', () => {
    const content = { ...sampleProfileContent(), maxAttachmentBytes: 2_097_152 };
    expect(decodeProfileContent(encodeProfileContent(content))).toEqual(content);
  });
});

describe('profile content: the page’s file digests', () => {
  const D = `sha384-${'Q'.repeat(64)}`;
  const withFiles = (files: unknown) => issuesOf({ ...sampleProfileContent(), client: { files } });

  it('takes paths with their SHA-384, and round-trips', () => {
    const files = { '/index.html': D, '/assets/index-C70L-iMM.js': D, '/assets/a_b.css': D };
    expect(withFiles(files)).toEqual([]);
    const content = { ...sampleProfileContent(), client: { files } };
    expect(decodeProfileContent(encodeProfileContent(content))).toEqual(content);
  });

  it(`takes up to ${MAX_CLIENT_FILES} files`, () => {
    const files = Object.fromEntries(
      Array.from({ length: MAX_CLIENT_FILES }, (_, i) => [`/assets/f${i}.js`, D]),
    );
    expect(withFiles(files)).toEqual([]);
    expect(withFiles({ ...files, '/one-more.js': D })).not.toEqual([]);
  });

  it.each([
    ['no file at all', {}],
    ['a relative path', { 'index.html': D }],
    ['a path that climbs', { '/assets/../key': D }],
    ['a double slash', { '//evil.example/x.js': D }],
    ['a query', { '/index.html?x': D }],
    ['a path too long', { [`/${'a'.repeat(MAX_CLIENT_PATH_CHARS)}`]: D }],
    ['a SHA-256 instead', { '/index.html': `sha256-${'Q'.repeat(43)}=` }],
    ['a short digest', { '/index.html': `sha384-${'Q'.repeat(63)}` }],
    ['a digest that is not a string', { '/index.html': 1 }],
  ])('refuses %s', (_what, files) => {
    expect(withFiles(files)).not.toEqual([]);
  });

  it('refuses another key beside files', () => {
    expect(
      issuesOf({ ...sampleProfileContent(), client: { files: { '/index.html': D }, extra: 1 } }),
    ).not.toEqual([]);
  });
});

describe('profile content: decoding signed bytes', () => {
  const canonical = canonicalJson(sampleProfileContent());
  const codeOfDecode = (b: Uint8Array): readonly ProfileIssue[] => {
    try {
      decodeProfileContent(b);
      return [];
    } catch (error) {
      expect((error as OrgError).code).toBe(OrgErrorCode.INVALID);
      return (error as OrgError).issues;
    }
  };

  it('refuses bytes that are not UTF-8', () => {
    expect(codeOfDecode(Uint8Array.from([0x7b, 0xff, 0x7d]))).toEqual([
      { path: '', code: 'not_json' },
    ]);
  });

  it('refuses text that is not JSON', () => {
    expect(codeOfDecode(bytes(canonical.slice(0, -1)))).toEqual([{ path: '', code: 'not_json' }]);
  });

  it('refuses JSON with white space', () => {
    expect(codeOfDecode(bytes(JSON.stringify(JSON.parse(canonical), null, 1)))).toEqual([
      { path: '', code: 'not_canonical' },
    ]);
  });

  it('refuses JSON with its keys out of order', () => {
    expect(codeOfDecode(bytes(JSON.stringify(sampleProfileContent())))).toEqual([
      { path: '', code: 'not_canonical' },
    ]);
  });

  it('refuses JSON with a key twice (which JSON.parse would silently collapse)', () => {
    const twice = canonical.replace('"retentionDays":90', '"retentionDays":5,"retentionDays":90');
    expect(codeOfDecode(bytes(twice))).toEqual([{ path: '', code: 'not_canonical' }]);
  });

  it('refuses a string escaped where the canonical form is not', () => {
    expect(codeOfDecode(bytes(canonical.replace('"Notes"', '"N\\u006ftes"')))).toEqual([
      { path: '', code: 'not_canonical' },
    ]);
  });

  it('refuses JSON that is canonical but not a profile', () => {
    expect(codeOfDecode(bytes('[]'))).toEqual([{ path: '', code: 'schema' }]);
  });
});
