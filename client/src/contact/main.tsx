/**
 * The contact page (issue "The contact page"). The first screen — the quick exit and a
 * loading line — is this small chunk; the crypto backend (libsodium's WebAssembly, or the
 * pure-JS one) is fetched after it is painted. The page keeps nothing: no storage API is used
 * and the URL never changes.
 */
import { render } from 'preact';
import { effect } from '@preact/signals';
import { App, retry, screen } from './app.js';
import { language, t } from './i18n.js';
import { installQuickExitShortcut } from './quick-exit.js';
import './contact.css';

installQuickExitShortcut();

effect(() => {
  document.documentElement.lang = language.value;
  const s = screen.value;
  document.title = 'loaded' in s ? s.loaded.profile.content.disguise.title : t('page.title');
});

// Best effort against the recent-apps snapshot of Android: nothing is shown while hidden.
document.addEventListener('visibilitychange', () => {
  document.documentElement.classList.toggle('concealed', document.visibilityState === 'hidden');
});

async function load(): Promise<void> {
  screen.value = { name: 'loading' };
  const { loadOrganization } = await import('./load.js');
  const result = await loadOrganization();
  if (!result.ok) {
    screen.value = { name: 'failed', failure: result.failure };
    return;
  }
  screen.value = { name: 'welcome', loaded: result.loaded };
}

retry.value = () =>
  void load().catch(() => (screen.value = { name: 'failed', failure: 'unreachable' }));

const root = document.getElementById('app');
if (root !== null) {
  root.replaceChildren();
  render(<App />, root);
}
retry.value();
