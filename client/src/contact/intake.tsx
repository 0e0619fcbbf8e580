/**
 * The intake questionnaire from the organization's profile, then the first message. The
 * fields asked follow the answers (conditions on earlier answers, `askedFields`); checking
 * happens when the person moves on, the messages are in the page's language, the focus goes to
 * the first question that needs attention, and nothing is stored or sent until the first
 * message is sent.
 */
import { signal, type Signal } from '@preact/signals';
import { useRef } from 'preact/hooks';
import {
  askedFields,
  intakeIssues,
  type IntakeAnswer,
  type Questionnaire,
} from '@passage/shared/client/index';
import type { QuestionnaireField, TranslatedText } from '@passage/shared/org/profile';
import type { Language } from '../i18n/catalogue.js';
import { language, t } from './i18n.js';

/** The profile's text in the page's language, else in the profile's first language. */
export function localText(
  text: TranslatedText,
  languages: readonly string[],
  lang: Language,
): string {
  return text[lang] ?? text[languages[0] ?? ''] ?? Object.values(text)[0] ?? '';
}

export interface IntakeDraft {
  readonly answers: Signal<ReadonlyMap<string, IntakeAnswer>>;
  readonly message: Signal<string>;
}

export function newDraft(): IntakeDraft {
  return { answers: signal(new Map()), message: signal('') };
}

/** The answers given to the fields that are asked now, in questionnaire order. */
export function currentAnswers(q: Questionnaire, draft: IntakeDraft): IntakeAnswer[] {
  const all = [...draft.answers.value.values()];
  const asked = askedFields(q, all);
  return asked.flatMap((f) => {
    const a = draft.answers.value.get(f.id);
    return a === undefined ? [] : [a];
  });
}

function setAnswer(draft: IntakeDraft, field: string, answer: IntakeAnswer | undefined): void {
  const next = new Map(draft.answers.value);
  if (answer === undefined) next.delete(field);
  else next.set(field, answer);
  draft.answers.value = next;
}

type FieldError = 'required' | 'too_long';

function errorsOf(q: Questionnaire, draft: IntakeDraft): Map<string, FieldError> {
  const errors = new Map<string, FieldError>();
  for (const issue of intakeIssues(q, currentAnswers(q, draft))) {
    if (issue.code === 'missing_required') errors.set(issue.field, 'required');
    else if (issue.code === 'too_long') errors.set(issue.field, 'too_long');
  }
  return errors;
}

function Field(props: {
  field: QuestionnaireField;
  languages: readonly string[];
  draft: IntakeDraft;
  error: FieldError | undefined;
}) {
  const { field, languages, draft, error } = props;
  const lang = language.value;
  const label = localText(field.label, languages, lang);
  const id = `q-${field.id}`;
  const errorId = `${id}-error`;
  const answer = draft.answers.value.get(field.id);
  const marker = (
    <span class="marker">{t(field.required ? 'intake.required' : 'intake.optional')}</span>
  );
  const errorText =
    error === 'required'
      ? t('intake.error.required')
      : error === 'too_long' && field.kind === 'text'
        ? t('intake.error.too_long', { count: field.maxLength })
        : undefined;
  const errorLine = errorText !== undefined && (
    <p class="field-error" id={errorId}>
      {errorText}
    </p>
  );
  if (field.kind === 'text') {
    const text = answer !== undefined && 'text' in answer ? answer.text : '';
    return (
      <div class={error === undefined ? 'field' : 'field invalid'} data-field={field.id}>
        <label for={id}>
          <span data-data>{label}</span> {marker}
        </label>
        {errorLine}
        <textarea
          id={id}
          rows={4}
          maxLength={field.maxLength}
          autocomplete="off"
          autocapitalize="sentences"
          aria-invalid={error !== undefined}
          aria-describedby={errorText !== undefined ? errorId : `${id}-left`}
          value={text}
          onInput={(e) => {
            const value = e.currentTarget.value;
            setAnswer(
              draft,
              field.id,
              value.trim() === '' ? undefined : { field: field.id, text: value },
            );
          }}
        />
        <p class="chars-left" id={`${id}-left`}>
          {t('intake.chars_left', { count: field.maxLength - text.length })}
        </p>
      </div>
    );
  }
  const picked = answer !== undefined && 'choices' in answer ? answer.choices : [];
  const single = field.kind === 'single';
  return (
    <fieldset
      class={error === undefined ? 'field' : 'field invalid'}
      data-field={field.id}
      aria-invalid={error !== undefined}
      aria-describedby={errorText !== undefined ? errorId : undefined}
      id={id}
      tabIndex={-1}
    >
      <legend>
        <span data-data>{label}</span> {marker}
      </legend>
      {errorLine}
      {field.choices.map((c) => (
        <label class="choice" key={c.id}>
          <input
            type={single ? 'radio' : 'checkbox'}
            name={id}
            value={c.id}
            checked={picked.includes(c.id)}
            onChange={(e) => {
              const on = e.currentTarget.checked;
              const next = single
                ? on
                  ? [c.id]
                  : []
                : on
                  ? [...picked.filter((x) => x !== c.id), c.id]
                  : picked.filter((x) => x !== c.id);
              // Keep the questionnaire's order of choices, whatever order they were ticked in.
              const ordered = field.choices.map((x) => x.id).filter((x) => next.includes(x));
              setAnswer(
                draft,
                field.id,
                ordered.length === 0 ? undefined : { field: field.id, choices: ordered },
              );
            }}
          />
          <span data-data>{localText(c.label, languages, language.value)}</span>
        </label>
      ))}
    </fieldset>
  );
}

export function IntakeScreen(props: {
  questionnaire: Questionnaire;
  languages: readonly string[];
  draft: IntakeDraft;
  onNext: () => void;
  onBack: () => void;
}) {
  const { questionnaire, languages, draft } = props;
  const tried = useRef(signal(false)).current;
  const summary = useRef<HTMLParagraphElement>(null);
  const asked = askedFields(questionnaire, [...draft.answers.value.values()]);
  const errors = tried.value ? errorsOf(questionnaire, draft) : new Map<string, FieldError>();
  return (
    <section aria-labelledby="intake-heading">
      <h1 id="intake-heading">{t('intake.heading')}</h1>
      <p>{t('intake.intro')}</p>
      {errors.size > 0 && (
        <p class="form-error" role="alert" ref={summary}>
          {t('intake.error.summary', { count: errors.size })}
        </p>
      )}
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          tried.value = true;
          const found = errorsOf(questionnaire, draft);
          if (found.size === 0) {
            props.onNext();
            return;
          }
          const first = asked.find((f) => found.has(f.id));
          if (first !== undefined) {
            queueMicrotask(() => {
              const el = document.getElementById(`q-${first.id}`);
              const target = el?.tagName === 'FIELDSET' ? el.querySelector('input') : el;
              target?.focus();
            });
          }
        }}
      >
        {asked.map((f) => (
          <Field
            key={f.id}
            field={f}
            languages={languages}
            draft={draft}
            error={errors.get(f.id)}
          />
        ))}
        <div class="actions">
          <button type="submit" class="primary">
            {t('intake.next')}
          </button>
          <button type="button" class="secondary" onClick={props.onBack}>
            {t('intake.back')}
          </button>
        </div>
      </form>
    </section>
  );
}

export function MessageScreen(props: {
  draft: IntakeDraft;
  onSend: (text: string) => void;
  onBack: () => void;
  busy: boolean;
}) {
  const { draft } = props;
  const tried = useRef(signal(false)).current;
  const empty = draft.message.value.trim() === '';
  const showError = tried.value && empty;
  return (
    <section aria-labelledby="message-heading">
      <h1 id="message-heading">{t('message.heading')}</h1>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          tried.value = true;
          if (draft.message.value.trim() === '') {
            document.getElementById('first-message')?.focus();
            return;
          }
          props.onSend(draft.message.value);
        }}
      >
        <div class={showError ? 'field invalid' : 'field'}>
          <label for="first-message">{t('message.label')}</label>
          <p class="hint" id="first-message-hint">
            {t('message.hint')}
          </p>
          {showError && (
            <p class="field-error" id="first-message-error" role="alert">
              {t('message.error.empty')}
            </p>
          )}
          <textarea
            id="first-message"
            rows={7}
            autocomplete="off"
            autocapitalize="sentences"
            aria-invalid={showError}
            aria-describedby={
              showError ? 'first-message-error first-message-hint' : 'first-message-hint'
            }
            value={draft.message.value}
            onInput={(e) => {
              draft.message.value = e.currentTarget.value;
            }}
          />
        </div>
        <div class="actions">
          <button type="submit" class="primary" disabled={props.busy}>
            {t('message.send')}
          </button>
          <button type="button" class="secondary" onClick={props.onBack} disabled={props.busy}>
            {t('intake.back')}
          </button>
        </div>
      </form>
    </section>
  );
}
