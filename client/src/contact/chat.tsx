/** The screens after the first message: sending, the codename (shown once), the conversation. */
import { signal } from '@preact/signals';
import { useRef } from 'preact/hooks';
import type { ContactStatus, MessageState } from '@passage/shared/client/index';
import type { CodenameWordList } from '@passage/shared/crypto/codename';
import { t } from './i18n.js';
import type { LiveConversation } from './conversation.js';
import { checkTypedWords, CONFIRM_WORDS, pickPositions, type ConfirmResult } from './confirm.js';
import { quickExit } from './quick-exit.js';

export function SendingScreen(props: { failed: boolean; onRetry: () => void }) {
  return (
    <section aria-labelledby="sending-heading">
      <h1 id="sending-heading">{t('sending.heading')}</h1>
      {props.failed ? (
        <>
          <p class="form-error" role="alert">
            {t('sending.failed')}
          </p>
          <button type="button" class="primary" onClick={props.onRetry}>
            {t('sending.retry')}
          </button>
        </>
      ) : (
        <>
          <p>{t('sending.body')}</p>
          <progress class="busy" aria-labelledby="sending-heading" />
        </>
      )}
    </section>
  );
}

export function CodenameScreen(props: { codename: string; onContinue: () => void }) {
  const words = props.codename.split(' ');
  return (
    <section aria-labelledby="codename-heading">
      <p class="done" role="status">
        {t('codename.sent')}
      </p>
      <h1 id="codename-heading">{t('codename.heading')}</h1>
      <p>{t('codename.body')}</p>
      <ol class="codename" aria-label={t('codename.words')} translate={false}>
        {words.map((w, i) => (
          <li key={i} data-data>
            {w}
          </li>
        ))}
      </ol>
      <button type="button" class="primary" onClick={props.onContinue}>
        {t('codename.continue')}
      </button>
    </section>
  );
}

/** Positions to ask for when the person has said the codename is written down. */
export function confirmPositions(codename: string): number[] {
  const total = codename.split(' ').length;
  return pickPositions(CONFIRM_WORDS, total, (b) => crypto.getRandomValues(b));
}

/**
 * The codename typed back: a few of its words, at positions drawn at random, in a field that
 * keyboards do not learn from (as on the resume screen). Until they match, the words can be
 * shown again; once they match, the codename is never shown again.
 */
export function ConfirmCodenameScreen(props: {
  codename: string;
  list: CodenameWordList;
  positions: readonly number[];
  onConfirmed: () => void;
  onShowAgain: () => void;
}) {
  const typed = useRef(signal('')).current;
  const shown = useRef(signal(false)).current;
  const problem = useRef(signal<Exclude<ConfirmResult, 'ok'> | null>(null)).current;
  const numbers = {
    a: props.positions[0]! + 1,
    b: props.positions[1]! + 1,
    c: props.positions[2]! + 1,
  };
  const words = props.codename.split(' ');
  return (
    <section aria-labelledby="confirm-heading">
      <h1 id="confirm-heading">{t('confirm.heading')}</h1>
      <p id="confirm-hint">{t('confirm.body', numbers)}</p>
      {problem.value !== null && (
        <p class="form-error" role="alert" id="confirm-error">
          {t(`confirm.${problem.value}`, numbers)}
        </p>
      )}
      <form
        noValidate
        data-positions={props.positions.join(',')}
        onSubmit={(e) => {
          e.preventDefault();
          const result = checkTypedWords(typed.value, props.list, words, props.positions);
          if (result === 'ok') {
            typed.value = '';
            props.onConfirmed();
          } else {
            problem.value = result;
          }
        }}
      >
        <div class="field">
          <label for="confirm-input">{t('confirm.label', numbers)}</label>
          <input
            id="confirm-input"
            class="codename-input"
            // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
            type={(shown.value ? 'text' : 'password') as 'password'}
            autocomplete="off"
            autocapitalize="off"
            spellcheck={false}
            aria-invalid={problem.value !== null}
            aria-describedby={
              problem.value !== null ? 'confirm-error confirm-hint' : 'confirm-hint'
            }
            value={typed.value}
            onInput={(e) => (typed.value = e.currentTarget.value)}
          />
          <label class="choice show-words">
            <input
              type="checkbox"
              checked={shown.value}
              onChange={(e) => (shown.value = e.currentTarget.checked)}
            />
            <span>{t('resume.show')}</span>
          </label>
        </div>
        <div class="actions">
          <button type="submit" class="primary">
            {t('confirm.check')}
          </button>
          <button type="button" class="secondary" onClick={props.onShowAgain}>
            {t('confirm.show_again')}
          </button>
        </div>
      </form>
    </section>
  );
}

const STATE_TEXT: Readonly<Record<MessageState, Parameters<typeof t>[0]>> = {
  queued: 'chat.state.queued',
  sent: 'chat.state.sent',
  delivered: 'chat.state.delivered',
  read: 'chat.state.read',
  failed: 'chat.state.failed',
};

const STATUS_TEXT: Readonly<Record<ContactStatus, Parameters<typeof t>[0]>> = {
  received: 'chat.status.received',
  in_progress: 'chat.status.in_progress',
  waiting_for_you: 'chat.status.waiting_for_you',
  closed: 'chat.status.closed',
};

type DeleteStep = 'idle' | 'asking' | 'deleting' | 'failed';

/** "Delete my conversation": asked once more, then the relay deletes it and the page leaves. */
function DeleteConversation(props: { conversation: LiveConversation }) {
  const step = useRef(signal<DeleteStep>('idle')).current;
  if (step.value === 'idle') {
    return (
      <div class="delete">
        <button type="button" class="secondary danger" onClick={() => (step.value = 'asking')}>
          {t('delete.button')}
        </button>
      </div>
    );
  }
  return (
    <div class="delete asking" role="group" aria-labelledby="delete-heading">
      <h2 id="delete-heading">{t('delete.heading')}</h2>
      <p>{t('delete.body')}</p>
      {step.value === 'failed' && (
        <p class="form-error" role="alert">
          {t('delete.failed')}
        </p>
      )}
      {step.value === 'deleting' && <p role="status">{t('delete.busy')}</p>}
      <div class="actions">
        <button
          type="button"
          class="primary danger"
          disabled={step.value === 'deleting'}
          onClick={() => {
            step.value = 'deleting';
            props.conversation.delete().then(quickExit, () => (step.value = 'failed'));
          }}
        >
          {t('delete.confirm')}
        </button>
        <button
          type="button"
          class="secondary"
          disabled={step.value === 'deleting'}
          onClick={() => (step.value = 'idle')}
        >
          {t('delete.cancel')}
        </button>
      </div>
    </div>
  );
}

export function ChatScreen(props: { conversation: LiveConversation }) {
  const { conversation } = props;
  const draft = useRef(signal('')).current;
  const link = conversation.link.value;
  const messages = conversation.messages.value;
  const status = conversation.status.value;
  return (
    <section aria-labelledby="chat-heading">
      <h1 id="chat-heading">{t('chat.heading')}</h1>
      <p class={`link link-${link}`} role="status">
        {t(`chat.link.${link}`)}
      </p>
      {status !== null && (
        <p class={`case-status case-status-${status}`} data-status={status}>
          <strong>{t('chat.status.label')}</strong> {t(STATUS_TEXT[status])}
        </p>
      )}
      <ol class="messages" aria-live="polite">
        {messages.map((m) => (
          <li key={m.id} class={m.mine ? 'message mine' : 'message theirs'}>
            <p class="who">{t(m.mine ? 'chat.you' : 'chat.team')}</p>
            {/* Isolated, its direction from its own text: bidirectional controls a sender put
                in (U+202E) reorder nothing outside it. */}
            <p class="body" dir="auto" data-data>
              {m.body}
            </p>
            {m.mine && m.state !== undefined && <p class="state">{t(STATE_TEXT[m.state])}</p>}
          </li>
        ))}
      </ol>
      {!messages.some((m) => !m.mine) && <p class="hint">{t('chat.empty')}</p>}
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          const text = draft.value;
          if (text.trim() === '') return;
          draft.value = '';
          void conversation.send(text);
        }}
      >
        <div class="field">
          <label for="chat-input">{t('chat.label')}</label>
          <textarea
            id="chat-input"
            rows={3}
            autocomplete="off"
            value={draft.value}
            onInput={(e) => (draft.value = e.currentTarget.value)}
          />
        </div>
        <button type="submit" class="primary">
          {t('chat.send')}
        </button>
      </form>
      <DeleteConversation conversation={conversation} />
    </section>
  );
}

export type ResumeProblem = 'invalid' | 'not_found' | 'failed';

export function ResumeScreen(props: {
  busy: boolean;
  problem?: ResumeProblem | undefined;
  onOpen: (typed: string) => void;
  onBack: () => void;
}) {
  const typed = useRef(signal('')).current;
  const shown = useRef(signal(false)).current;
  return (
    <section aria-labelledby="resume-heading">
      <h1 id="resume-heading">{t('resume.heading')}</h1>
      {props.problem !== undefined && (
        <p class="form-error" role="alert" id="resume-error">
          {t(`resume.${props.problem}`)}
        </p>
      )}
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (!props.busy && typed.value.trim() !== '') props.onOpen(typed.value);
        }}
      >
        <div class="field">
          <label for="codename-input">{t('resume.label')}</label>
          <p class="hint" id="codename-hint">
            {t('resume.hint')}
          </p>
          {/* A password field: keyboards do not learn from it and do not suggest its words. */}
          <input
            id="codename-input"
            class="codename-input"
            // tsc narrows JSX `type` per input kind and needs the cast; the type-aware lint
            // resolves the JSX types differently and calls it unnecessary.
            // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
            type={(shown.value ? 'text' : 'password') as 'password'}
            autocomplete="off"
            autocapitalize="off"
            spellcheck={false}
            aria-invalid={props.problem !== undefined}
            aria-describedby={
              props.problem !== undefined ? 'resume-error codename-hint' : 'codename-hint'
            }
            value={typed.value}
            onInput={(e) => (typed.value = e.currentTarget.value)}
          />
          <label class="choice show-words">
            <input
              type="checkbox"
              checked={shown.value}
              onChange={(e) => (shown.value = e.currentTarget.checked)}
            />
            <span>{t('resume.show')}</span>
          </label>
        </div>
        {props.busy && (
          <p role="status">
            {t('resume.busy')} <progress class="busy" aria-hidden="true" />
          </p>
        )}
        <div class="actions">
          <button type="submit" class="primary" disabled={props.busy}>
            {t('resume.open')}
          </button>
          <button type="button" class="secondary" onClick={props.onBack} disabled={props.busy}>
            {t('intake.back')}
          </button>
        </div>
      </form>
    </section>
  );
}
