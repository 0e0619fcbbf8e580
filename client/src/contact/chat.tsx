/** The screens after the first message: sending, the codename (shown once), the conversation. */
import { signal } from '@preact/signals';
import { useRef } from 'preact/hooks';
import type { ContactStatus, MessageState } from '@passage/shared/client/index';
import type { CodenameWordList } from '@passage/shared/crypto/codename';
import { language, t } from './i18n.js';
import type { LiveConversation, PreparedFile, ShownMessage } from './conversation.js';
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

/**
 * Codename words typed in: a password field (keyboards do not learn from it and do not suggest
 * its words), with a toggle that shows what was typed.
 */
function CodenameWordsInput(props: {
  id: string;
  typed: { value: string };
  invalid: boolean;
  describedBy: string;
}) {
  const shown = useRef(signal(false)).current;
  return (
    <>
      <input
        id={props.id}
        class="codename-input"
        // tsc narrows JSX `type` per input kind and needs the cast; the type-aware lint
        // resolves the JSX types differently and calls it unnecessary.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
        type={(shown.value ? 'text' : 'password') as 'password'}
        autocomplete="off"
        autocapitalize="off"
        spellcheck={false}
        aria-invalid={props.invalid}
        aria-describedby={props.describedBy}
        value={props.typed.value}
        onInput={(e) => (props.typed.value = e.currentTarget.value)}
      />
      <label class="choice show-words">
        <input
          type="checkbox"
          checked={shown.value}
          onChange={(e) => (shown.value = e.currentTarget.checked)}
        />
        <span>{t('resume.show')}</span>
      </label>
    </>
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
          <CodenameWordsInput
            id="confirm-input"
            typed={typed}
            invalid={problem.value !== null}
            describedBy={problem.value !== null ? 'confirm-error confirm-hint' : 'confirm-hint'}
          />
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

/** A size in the page's language ("1.2 MB", "1,2 МБ"). */
function formatSize(bytes: number): string {
  const [value, unit] =
    bytes >= 1_000_000 ? [bytes / 1_000_000, 'megabyte'] : [Math.max(1, bytes / 1_000), 'kilobyte'];
  return new Intl.NumberFormat(language.value, {
    style: 'unit',
    unit,
    maximumFractionDigits: 1,
  }).format(value);
}

type OpenStep = 'idle' | 'opening' | 'failed';

/** A file in the conversation: its name and size, progress on its way, and a way to save it. */
function FileItem(props: { conversation: LiveConversation; message: ShownMessage }) {
  const file = props.message.file!;
  const step = useRef(signal<OpenStep>('idle')).current;
  const save = () => {
    const ref = file.ref;
    if (ref === undefined) return;
    step.value = 'opening';
    props.conversation.openFile(ref).then(
      (bytes) => {
        // Saved as a download; its type is not trusted to open anything in this page.
        const url = URL.createObjectURL(
          new Blob([bytes.slice()], { type: 'application/octet-stream' }),
        );
        const a = document.createElement('a');
        a.href = url;
        a.download = file.name;
        a.click();
        setTimeout(() => URL.revokeObjectURL(url), 1_000);
        step.value = 'idle';
      },
      () => (step.value = 'failed'),
    );
  };
  return (
    <div class="file">
      <p class="file-name" dir="auto" data-data>
        {file.name}
      </p>
      <p class="file-size">{formatSize(file.size)}</p>
      {file.progress !== undefined && (
        <p class="file-progress">
          <span>{t('file.sending', { percent: Math.round(file.progress * 100) })}</span>
          <progress max={1} value={file.progress} aria-label={file.name} />
        </p>
      )}
      {file.ref !== undefined && (
        <button
          type="button"
          class="secondary file-save"
          disabled={step.value === 'opening'}
          onClick={save}
        >
          {t(step.value === 'opening' ? 'file.opening' : 'file.save')}
        </button>
      )}
      {file.ref !== undefined && <p class="file-note">{t('file.save_note')}</p>}
      {step.value === 'failed' && (
        <p class="form-error" role="alert">
          {t('file.open_failed')}
        </p>
      )}
    </div>
  );
}

/** Picking a file: checked and cleaned first, then sent only when the person says so. */
function FilePicker(props: { conversation: LiveConversation }) {
  const picked = useRef(signal<PreparedFile | null>(null)).current;
  const reading = useRef(signal(false)).current;
  const input = useRef<HTMLInputElement>(null);
  const reset = () => {
    picked.value = null;
    if (input.current !== null) input.current.value = '';
  };
  const p = picked.value;
  return (
    <div class="file-pick">
      <h2 class="file-heading">{t('file.label')}</h2>
      <p class="hint" id="file-hint">
        {t('file.hint', { size: formatSize(props.conversation.maxFileBytes) })}
      </p>
      {/* The browser's own button speaks the browser's language, not the page's: it is hidden
          (still focusable) and the label, in the page's language, is the button. */}
      <input
        id="file-input"
        class="file-input"
        ref={input}
        type="file"
        aria-describedby="file-hint"
        disabled={reading.value}
        onChange={(e) => {
          const file = e.currentTarget.files?.[0];
          if (file === undefined) return;
          reading.value = true;
          props.conversation.prepareFile(file).then(
            (prepared) => {
              reading.value = false;
              picked.value = prepared;
            },
            () => {
              reading.value = false;
              picked.value = { kind: 'empty', name: file.name };
            },
          );
        }}
      />
      <label for="file-input" class="secondary file-button">
        {t(reading.value ? 'file.reading' : 'file.choose')}
      </label>
      {p !== null && (
        <div class={`file-check file-check-${p.kind}`} role="group" aria-labelledby="file-check">
          <p id="file-check" role={p.kind === 'cleaned' ? 'status' : 'alert'}>
            {p.kind === 'cleaned' && t('file.cleaned', { name: p.name })}
            {p.kind === 'unchecked' && t('file.unchecked', { name: p.name })}
            {p.kind === 'too_large' && t('file.too_large', { size: formatSize(p.limit) })}
            {p.kind === 'empty' && t('file.empty')}
          </p>
          <div class="actions">
            {(p.kind === 'cleaned' || p.kind === 'unchecked') && (
              <button
                type="button"
                // Sending what cannot be cleaned is the riskier choice: not the prominent one.
                class={p.kind === 'cleaned' ? 'primary' : 'secondary'}
                onClick={() => {
                  void props.conversation.sendFile(p);
                  reset();
                }}
              >
                {t(p.kind === 'cleaned' ? 'file.send' : 'file.send_anyway')}
              </button>
            )}
            <button
              type="button"
              class={p.kind === 'cleaned' ? 'secondary file-cancel' : 'primary file-cancel'}
              onClick={reset}
            >
              {t('file.cancel')}
            </button>
          </div>
        </div>
      )}
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
            {m.file === undefined ? (
              // Isolated, its direction from its own text: bidirectional controls a sender put
              // in (U+202E) reorder nothing outside it.
              <p class="body" dir="auto" data-data>
                {m.body}
              </p>
            ) : (
              <FileItem conversation={conversation} message={m} />
            )}
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
      <FilePicker conversation={conversation} />
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
          <CodenameWordsInput
            id="codename-input"
            typed={typed}
            invalid={props.problem !== undefined}
            describedBy={
              props.problem !== undefined ? 'resume-error codename-hint' : 'codename-hint'
            }
          />
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
