/** The contact page's screens, and the frame every screen shares (quick exit, language). */
import { signal } from '@preact/signals';
import type { CodenameWordList } from '@passage/shared/crypto/codename';
import type { OrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { LANGUAGES, LANGUAGE_NAMES } from '../i18n/catalogue.js';
import { language, t } from './i18n.js';
import { onQuickExit, quickExit } from './quick-exit.js';
import type { ProfileFailure } from './profile.js';
import type * as IntakeScreens from './intake.js';
import type * as ChatScreens from './chat.js';
import type * as Live from './conversation.js';
import type { IntakeDraft } from './intake.js';

export type Screen =
  | { readonly name: 'loading' }
  | { readonly name: 'failed'; readonly failure: ProfileFailure }
  | { readonly name: 'welcome'; readonly loaded: Loaded }
  | { readonly name: 'intake'; readonly loaded: Loaded; readonly draft: IntakeDraft }
  | { readonly name: 'message'; readonly loaded: Loaded; readonly draft: IntakeDraft }
  | {
      readonly name: 'sending';
      readonly loaded: Loaded;
      readonly draft: IntakeDraft;
      readonly failed: boolean;
    }
  | {
      readonly name: 'codename';
      readonly loaded: Loaded;
      readonly codename: string;
      readonly list: CodenameWordList;
      readonly conversation: Live.LiveConversation;
    }
  | {
      /** The codename typed back (a few of its words) before the conversation opens. */
      readonly name: 'confirm';
      readonly loaded: Loaded;
      readonly codename: string;
      readonly list: CodenameWordList;
      readonly positions: readonly number[];
      readonly conversation: Live.LiveConversation;
    }
  | {
      readonly name: 'chat';
      readonly loaded: Loaded;
      readonly conversation: Live.LiveConversation;
    }
  | {
      readonly name: 'resume';
      readonly loaded: Loaded;
      readonly busy: boolean;
      readonly problem?: ChatScreens.ResumeProblem;
    };

/** Opens a saved conversation from the codename the person typed. */
function resumeConversation(loaded: Loaded, typed: string): void {
  screen.value = { name: 'resume', loaded, busy: true };
  loaded.live.LiveConversation.resume({ p: loaded.p, profile: loaded.profile, typed }).then(
    (conversation) => {
      onQuickExit(() => conversation.close());
      screen.value = { name: 'chat', loaded, conversation };
    },
    (error: unknown) => {
      const code = (error as { code?: unknown }).code;
      const problem: ChatScreens.ResumeProblem =
        code === 'invalid_codename'
          ? 'invalid'
          : code === 'state_not_found'
            ? 'not_found'
            : 'failed';
      screen.value = { name: 'resume', loaded, busy: false, problem };
    },
  );
}

/** Sends the intake and the first message: a new codename, its keys, the conversation. */
function startConversation(loaded: Loaded, draft: IntakeDraft): void {
  screen.value = { name: 'sending', loaded, draft, failed: false };
  const q = loaded.profile.content.questionnaire;
  loaded.live.LiveConversation.start({
    p: loaded.p,
    profile: loaded.profile,
    language: language.value,
    answers: loaded.screens.currentAnswers(q, draft),
    text: draft.message.value,
  }).then(
    ({ conversation, codename, list }) => {
      onQuickExit(() => conversation.close());
      screen.value = { name: 'codename', loaded, codename, list, conversation };
    },
    () => {
      screen.value = { name: 'sending', loaded, draft, failed: true };
    },
  );
}

/** What the page holds once the crypto backend and the profile are loaded (load.ts). */
export interface Loaded {
  readonly p: Primitives;
  readonly profile: OrgProfile;
  /** The organization key's fingerprint, as `passage org init` prints it (digits). */
  readonly fingerprint: string;
  /** The screens after the welcome, loaded with the client core (not in the first chunk). */
  readonly screens: typeof IntakeScreens;
  readonly chat: typeof ChatScreens;
  readonly live: typeof Live;
}

export const screen = signal<Screen>({ name: 'loading' });

/** Set by main.ts: loads (again) what the first screen needs. */
export const retry = signal<() => void>(() => undefined);

function QuickExit() {
  return (
    <div class="exit-bar">
      <button type="button" class="exit" onClick={quickExit}>
        {t('exit.button')}
      </button>
      <p class="exit-hint">{t('exit.hint')}</p>
    </div>
  );
}

function LanguageSwitch() {
  return (
    <nav class="languages" aria-label={t('page.language')}>
      {LANGUAGES.map((l) => (
        <button
          type="button"
          lang={l}
          translate={false}
          class="language"
          aria-pressed={language.value === l}
          onClick={() => {
            language.value = l;
          }}
        >
          {LANGUAGE_NAMES[l]}
        </button>
      ))}
    </nav>
  );
}

function Loading() {
  return (
    <p class="loading" role="status">
      {t('page.loading')}
    </p>
  );
}

const FAILURE_TEXT = {
  no_organization: 'error.no_organization',
  profile_invalid: 'error.profile_invalid',
  unreachable: 'error.unreachable',
} as const;

function Failed({ failure }: { failure: ProfileFailure }) {
  return (
    <section aria-labelledby="failed-heading">
      <h1 id="failed-heading">{t('error.heading')}</h1>
      <p>{t(FAILURE_TEXT[failure])}</p>
      {failure === 'unreachable' && (
        <button type="button" class="primary" onClick={() => retry.value()}>
          {t('error.retry')}
        </button>
      )}
    </section>
  );
}

/** A profile whose name says DEMO is the demo organization (`npm start` without one). */
function isDemo(profile: OrgProfile): boolean {
  return /\bDEMO\b/.test(profile.content.displayName);
}

function Welcome({ loaded }: { loaded: Loaded }) {
  const { profile, fingerprint: digits } = loaded;
  const org = profile.content.displayName;
  return (
    <section aria-labelledby="welcome-heading">
      {isDemo(profile) && (
        <p class="demo" role="note">
          <strong>{t('demo.badge')}</strong> {t('demo.notice')}
        </p>
      )}
      <p class="org">{org}</p>
      <h1 id="welcome-heading">{t('welcome.heading')}</h1>
      <p>{t('welcome.intro', { org })}</p>
      <div class="safety">
        <h2>{t('welcome.safety.heading')}</h2>
        <ul>
          <li>{t('welcome.safety.private')}</li>
          <li>{t('welcome.safety.close')}</li>
          <li>{t('welcome.safety.exit')}</li>
        </ul>
      </div>
      <div class="actions">
        <button
          type="button"
          class="primary"
          data-action="start"
          onClick={() => {
            const draft = loaded.screens.newDraft();
            const fields = profile.content.questionnaire.fields.length;
            screen.value =
              fields > 0 ? { name: 'intake', loaded, draft } : { name: 'message', loaded, draft };
          }}
        >
          {t('welcome.start')}
        </button>
        <button
          type="button"
          class="secondary"
          data-action="resume"
          onClick={() => (screen.value = { name: 'resume', loaded, busy: false })}
        >
          {t('welcome.resume')}
        </button>
      </div>
      <details class="check">
        <summary>{t('welcome.check.heading', { org })}</summary>
        <p>{t('welcome.check.body')}</p>
        <p class="fingerprint-label">{t('welcome.check.digits')}</p>
        <p class="fingerprint" translate={false}>
          {digits}
        </p>
      </details>
      <p class="exit-limits">{t('exit.limits')}</p>
    </section>
  );
}

export function App() {
  const s = screen.value;
  return (
    <>
      <QuickExit />
      <main id="content" lang={language.value} data-screen={s.name}>
        <LanguageSwitch />
        {s.name === 'loading' && <Loading />}
        {s.name === 'failed' && <Failed failure={s.failure} />}
        {s.name === 'welcome' && <Welcome loaded={s.loaded} />}
        {s.name === 'sending' && (
          <s.loaded.chat.SendingScreen
            failed={s.failed}
            onRetry={() => startConversation(s.loaded, s.draft)}
          />
        )}
        {s.name === 'codename' && (
          <s.loaded.chat.CodenameScreen
            codename={s.codename}
            onContinue={() =>
              (screen.value = {
                name: 'confirm',
                loaded: s.loaded,
                codename: s.codename,
                list: s.list,
                positions: s.loaded.chat.confirmPositions(s.codename),
                conversation: s.conversation,
              })
            }
          />
        )}
        {s.name === 'confirm' && (
          <s.loaded.chat.ConfirmCodenameScreen
            codename={s.codename}
            list={s.list}
            positions={s.positions}
            onConfirmed={() =>
              (screen.value = { name: 'chat', loaded: s.loaded, conversation: s.conversation })
            }
            onShowAgain={() =>
              (screen.value = {
                name: 'codename',
                loaded: s.loaded,
                codename: s.codename,
                list: s.list,
                conversation: s.conversation,
              })
            }
          />
        )}
        {s.name === 'chat' && <s.loaded.chat.ChatScreen conversation={s.conversation} />}
        {s.name === 'resume' && (
          <s.loaded.chat.ResumeScreen
            busy={s.busy}
            problem={s.problem}
            onOpen={(typed) => resumeConversation(s.loaded, typed)}
            onBack={() => (screen.value = { name: 'welcome', loaded: s.loaded })}
          />
        )}
        {s.name === 'intake' && (
          <s.loaded.screens.IntakeScreen
            questionnaire={s.loaded.profile.content.questionnaire}
            languages={s.loaded.profile.content.languages}
            draft={s.draft}
            onNext={() => (screen.value = { name: 'message', loaded: s.loaded, draft: s.draft })}
            onBack={() => (screen.value = { name: 'welcome', loaded: s.loaded })}
          />
        )}
        {s.name === 'message' && (
          <s.loaded.screens.MessageScreen
            draft={s.draft}
            busy={false}
            onSend={() => startConversation(s.loaded, s.draft)}
            onBack={() =>
              (screen.value =
                s.loaded.profile.content.questionnaire.fields.length > 0
                  ? { name: 'intake', loaded: s.loaded, draft: s.draft }
                  : { name: 'welcome', loaded: s.loaded })
            }
          />
        )}
      </main>
    </>
  );
}
