/**
 * Intake answers against the sample questionnaire (org-fixtures): safe_now (single, required;
 * yes 0, no 10), needs (multiple; shelter 6, legal 3), danger (text, max 2000, asked only when
 * safe_now is "no").
 */
import { describe, expect, it } from '@jest/globals';
import { sampleProfileContent } from '@passage/testing/org-fixtures';
import {
  askedFields,
  checkIntake,
  intakeIssues,
  intakeUrgency,
  type IntakeIssue,
} from './intake.js';
import type { IntakeAnswer } from './messages.js';

const q = sampleProfileContent().questionnaire;

describe('intake answers', () => {
  it.each<[string, IntakeAnswer[], number]>([
    ['only the required field, safe', [{ field: 'safe_now', choices: ['yes'] }], 0],
    [
      'every field, unsafe, both needs',
      [
        { field: 'safe_now', choices: ['no'] },
        { field: 'needs', choices: ['shelter', 'legal'] },
        { field: 'danger', text: 'x'.repeat(2000) },
      ],
      19,
    ],
    [
      'answers in another order than the questionnaire',
      [
        { field: 'needs', choices: ['legal'] },
        { field: 'safe_now', choices: ['yes'] },
      ],
      3,
    ],
  ])('accepts %s, with urgency %d', (_name, answers, urgency) => {
    expect(intakeIssues(q, answers)).toEqual([]);
    expect(checkIntake(q, answers)).toBeNull();
    expect(intakeUrgency(q, answers)).toBe(urgency);
  });

  it.each<[string, IntakeAnswer[], IntakeIssue[]]>([
    ['no answers (safe_now is required)', [], [{ field: 'safe_now', code: 'missing_required' }]],
    [
      'only an optional field',
      [{ field: 'needs', choices: ['legal'] }],
      [{ field: 'safe_now', code: 'missing_required' }],
    ],
    [
      'an unknown field',
      [
        { field: 'safe_now', choices: ['yes'] },
        { field: 'age', text: '30' },
      ],
      [{ field: 'age', code: 'unknown_field' }],
    ],
    [
      'text for a choice field',
      [{ field: 'safe_now', text: 'no' }],
      [{ field: 'safe_now', code: 'wrong_kind' }],
    ],
    [
      'choices for a text field',
      [
        { field: 'safe_now', choices: ['no'] },
        { field: 'danger', choices: ['no'] },
      ],
      [{ field: 'danger', code: 'wrong_kind' }],
    ],
    [
      'an answer to a field whose condition does not hold',
      [
        { field: 'safe_now', choices: ['yes'] },
        { field: 'danger', text: 'x' },
      ],
      [{ field: 'danger', code: 'not_asked' }],
    ],
    [
      'an unknown choice',
      [{ field: 'safe_now', choices: ['maybe'] }],
      [{ field: 'safe_now', code: 'unknown_choice' }],
    ],
    [
      'two choices for a single-choice field',
      [{ field: 'safe_now', choices: ['yes', 'no'] }],
      [{ field: 'safe_now', code: 'not_single' }],
    ],
    [
      'a text longer than the field allows',
      [
        { field: 'safe_now', choices: ['no'] },
        { field: 'danger', text: 'x'.repeat(2001) },
      ],
      [{ field: 'danger', code: 'too_long' }],
    ],
    [
      'a choice field answered with text, which then opens nothing',
      [
        { field: 'safe_now', text: 'no' },
        { field: 'danger', text: 'x' },
      ],
      [
        { field: 'safe_now', code: 'wrong_kind' },
        { field: 'danger', code: 'not_asked' },
      ],
    ],
  ])('refuses %s', (_name, answers, issues) => {
    expect(intakeIssues(q, answers)).toEqual(issues);
    expect(checkIntake(q, answers)).toEqual({ code: 'intake_invalid', detail: issues[0]!.field });
  });

  it('counts nothing for answers that break the rules', () => {
    expect(
      intakeUrgency(q, [
        { field: 'safe_now', choices: ['yes'] },
        { field: 'needs', choices: ['unknown', 'shelter'] },
        { field: 'danger', text: 'not asked' },
      ]),
    ).toBe(6);
    expect(intakeUrgency(q, [{ field: 'safe_now', choices: ['no', 'yes'] }])).toBe(10);
    expect(intakeUrgency(q, [{ field: 'safe_now', text: 'no' }])).toBe(0);
  });

  it('asks a conditional field only when an earlier choice holds, in a longer chain', () => {
    const chain = {
      fields: [
        ...q.fields,
        {
          id: 'where',
          kind: 'single' as const,
          label: { ru: 'Где?', en: 'Where?' },
          required: true,
          when: [{ field: 'needs', anyOf: ['shelter'] }],
          choices: [{ id: 'city', label: { ru: 'Город', en: 'City' }, urgency: 1 }],
        },
      ],
    };
    const base: IntakeAnswer[] = [{ field: 'safe_now', choices: ['yes'] }];
    expect(intakeIssues(chain, base)).toEqual([]);
    expect(intakeIssues(chain, [...base, { field: 'needs', choices: ['shelter'] }])).toEqual([
      { field: 'where', code: 'missing_required' },
    ]);
    expect(intakeIssues(chain, [...base, { field: 'where', choices: ['city'] }])).toEqual([
      { field: 'where', code: 'not_asked' },
    ]);
  });
});

describe('askedFields', () => {
  const ids = (answers: IntakeAnswer[]) => askedFields(q, answers).map((f) => f.id);

  it('asks the unconditional fields before any answer', () => {
    expect(ids([])).toEqual(['safe_now', 'needs']);
  });

  it('opens a conditional field when its condition holds', () => {
    expect(ids([{ field: 'safe_now', choices: ['no'] }])).toEqual(['safe_now', 'needs', 'danger']);
  });

  it('keeps a conditional field closed when another choice is picked', () => {
    expect(ids([{ field: 'safe_now', choices: ['yes'] }])).toEqual(['safe_now', 'needs']);
  });

  it('keeps it closed for a text answer to the condition field', () => {
    expect(ids([{ field: 'safe_now', text: 'no' }])).toEqual(['safe_now', 'needs']);
  });

  it('keeps it closed for an answer to an unknown field', () => {
    expect(ids([{ field: 'other', choices: ['no'] }])).toEqual(['safe_now', 'needs']);
  });

  it('lets no answer to an unasked field open a later one', () => {
    const chained = {
      ...q,
      fields: [
        ...q.fields,
        {
          id: 'after',
          kind: 'text' as const,
          label: { en: 'After' },
          required: false,
          when: [{ field: 'danger', anyOf: ['x'] }],
          maxLength: 10,
        },
      ],
    };
    // `danger` is not asked (safe_now is yes), so its "answer" opens nothing.
    const answers: IntakeAnswer[] = [
      { field: 'safe_now', choices: ['yes'] },
      { field: 'danger', choices: ['x'] },
    ];
    expect(askedFields(chained, answers).map((f) => f.id)).toEqual(['safe_now', 'needs']);
  });
});
