/**
 * Intake answers against the organization's questionnaire (org/profile.ts): which fields are
 * asked (a field is asked when all its conditions hold on the answers given to earlier fields),
 * whether the answers fit them, and the urgency the answers add up to. The message schema
 * (messages.ts) has already checked the shape; these are the rules that need the questionnaire,
 * which the team's devices hold from the signed profile of the version the intake names.
 */
import type { ProfileContent, QuestionnaireField } from '../../org/profile.js';
import { ConversationErrorCode, type ConversationFailure } from './errors.js';
import type { IntakeAnswer } from './messages.js';

export type Questionnaire = ProfileContent['questionnaire'];

/** The rules intake answers can break (the `code` of an {@link IntakeIssue}). */
export const IntakeIssueCode = {
  /** An answer names a field the questionnaire does not have. */
  UNKNOWN_FIELD: 'unknown_field',
  /** A text answer to a choice field, or choices for a text field. */
  WRONG_KIND: 'wrong_kind',
  /** An answer to a field whose conditions do not hold (it was not asked). */
  NOT_ASKED: 'not_asked',
  /** A required field that was asked and not answered. */
  MISSING_REQUIRED: 'missing_required',
  /** A choice the field does not have. */
  UNKNOWN_CHOICE: 'unknown_choice',
  /** A single-choice field answered with more than one choice. */
  NOT_SINGLE: 'not_single',
  /** A text answer longer than the field's `maxLength`. */
  TOO_LONG: 'too_long',
} as const;

export type IntakeIssueCode = (typeof IntakeIssueCode)[keyof typeof IntakeIssueCode];

/** One broken rule: the field it concerns and the rule. */
export interface IntakeIssue {
  readonly field: string;
  readonly code: IntakeIssueCode;
}

/** The answers by field id. */
function byField(answers: readonly IntakeAnswer[]): ReadonlyMap<string, IntakeAnswer> {
  return new Map(answers.map((a) => [a.field, a]));
}

/** True when every condition of `field` holds on `answers`. */
function isAsked(field: QuestionnaireField, answers: ReadonlyMap<string, IntakeAnswer>): boolean {
  return field.when.every((condition) => {
    const answer = answers.get(condition.field);
    return (
      answer !== undefined &&
      'choices' in answer &&
      answer.choices.some((c) => condition.anyOf.includes(c))
    );
  });
}

/**
 * Every rule the answers break, in questionnaire order, then answers to unknown fields (empty
 * when they keep them all). An answer to a field that was not asked counts as not given when
 * deciding what later fields ask, so one stray answer cannot open further questions.
 */
export function intakeIssues(
  questionnaire: Questionnaire,
  answers: readonly IntakeAnswer[],
): IntakeIssue[] {
  const issues: IntakeIssue[] = [];
  const given = byField(answers);
  const counted = new Map<string, IntakeAnswer>();
  for (const field of questionnaire.fields) {
    const answer = given.get(field.id);
    const asked = isAsked(field, counted);
    if (answer === undefined) {
      if (asked && field.required) issues.push({ field: field.id, code: 'missing_required' });
      continue;
    }
    if (!asked) {
      issues.push({ field: field.id, code: 'not_asked' });
      continue;
    }
    counted.set(field.id, answer);
    if (field.kind === 'text') {
      if (!('text' in answer)) issues.push({ field: field.id, code: 'wrong_kind' });
      else if (answer.text.length > field.maxLength) {
        issues.push({ field: field.id, code: 'too_long' });
      }
      continue;
    }
    if (!('choices' in answer)) {
      issues.push({ field: field.id, code: 'wrong_kind' });
      continue;
    }
    const known = new Set(field.choices.map((c) => c.id));
    if (answer.choices.some((c) => !known.has(c))) {
      issues.push({ field: field.id, code: 'unknown_choice' });
    }
    if (field.kind === 'single' && answer.choices.length !== 1) {
      issues.push({ field: field.id, code: 'not_single' });
    }
  }
  const fields = new Set(questionnaire.fields.map((f) => f.id));
  for (const answer of answers) {
    if (!fields.has(answer.field)) issues.push({ field: answer.field, code: 'unknown_field' });
  }
  return issues;
}

/**
 * The fields asked, given the answers so far, in questionnaire order: what a page shows. An
 * answer to a field that is not asked opens nothing (as in {@link intakeIssues}).
 */
export function askedFields(
  questionnaire: Questionnaire,
  answers: readonly IntakeAnswer[],
): QuestionnaireField[] {
  const given = byField(answers);
  const counted = new Map<string, IntakeAnswer>();
  const asked: QuestionnaireField[] = [];
  for (const field of questionnaire.fields) {
    if (!isAsked(field, counted)) continue;
    asked.push(field);
    const answer = given.get(field.id);
    if (answer !== undefined) counted.set(field.id, answer);
  }
  return asked;
}

/** `intake_invalid` when the answers break a rule of the questionnaire; null when they fit. */
export function checkIntake(
  questionnaire: Questionnaire,
  answers: readonly IntakeAnswer[],
): ConversationFailure | null {
  const issues = intakeIssues(questionnaire, answers);
  if (issues.length === 0) return null;
  return { code: ConversationErrorCode.INTAKE_INVALID, detail: issues[0]!.field };
}

/**
 * The urgency the answers add up to: the sum of the weights of the choices picked in the fields
 * that were asked (0 to `MAX_URGENCY_WEIGHT` each). Answers that break the rules count for
 * nothing (a stray answer to an unasked field, an unknown choice).
 */
export function intakeUrgency(
  questionnaire: Questionnaire,
  answers: readonly IntakeAnswer[],
): number {
  const given = byField(answers);
  const counted = new Map<string, IntakeAnswer>();
  let urgency = 0;
  for (const field of questionnaire.fields) {
    const answer = given.get(field.id);
    if (answer === undefined || !isAsked(field, counted)) continue;
    counted.set(field.id, answer);
    if (field.kind === 'text' || !('choices' in answer)) continue;
    // A single-choice field answered with several choices counts its first only.
    const picked = field.kind === 'single' ? answer.choices.slice(0, 1) : answer.choices;
    for (const choice of field.choices) {
      if (picked.includes(choice.id)) urgency += choice.urgency;
    }
  }
  return urgency;
}
