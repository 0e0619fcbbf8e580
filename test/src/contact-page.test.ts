/**
 * The contact page in real Chromium, served by the real relay with its real headers (CSP
 * included), at 360 × 740 like a cheap phone, in Russian and in English: every screen is
 * screenshotted into test-artifacts/screens/, checked with axe-core (no serious or critical
 * violation), and checked for text that did not come from a catalogue (a pseudo-localised run
 * wraps every catalogue text in ⟦…⟧). The quick exit, by button and by Shift × 3, leaves no
 * trace: the page's history entry is replaced, no storage API holds anything.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { signedProfile, sampleProfileContent } from '@passage/testing/org-fixtures';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { deviceIdentities, organizationKey } from '@passage/testing/crypto-fixtures';
import { noHorizontalScroll, SCREENS_DIR, seriousAxeViolations, shoot } from './page-checks.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const EXIT_URL = 'https://www.google.com/';
const LANGS = ['ru', 'en'] as const;

let p: Primitives;
let withOrg: RelayProcess;
let withoutOrg: RelayProcess;
let demo: RelayProcess;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SCREENS_DIR, { recursive: true });
  p = await loadPrimitives();
  const { seed, publicKey: orgKey } = organizationKey(p);
  const demoKey = organizationKey(p);
  [withOrg, withoutOrg, demo] = await Promise.all([
    startRelay({ ORG_PUBLIC_KEY: toBase64url(orgKey) }),
    startRelay(),
    startRelay({ ORG_PUBLIC_KEY: toBase64url(demoKey.publicKey) }),
  ]);
  const now = Math.floor(Date.now() / 1000);
  const profile = signedProfile(p, seed, deviceIdentities(p, 2), now, {
    content: { ...sampleProfileContent(), displayName: 'Радуга — помощь' },
  });
  const put = await fetch(`${withOrg.url}/v1/org/profile`, {
    method: 'PUT',
    body: Buffer.from(profile),
  });
  expect(put.status).toBe(200);
  const demoProfile = signedProfile(p, demoKey.seed, deviceIdentities(p, 1), now, {
    content: { ...sampleProfileContent(), displayName: 'DEMO — Passage test organization' },
  });
  const demoPut = await fetch(`${demo.url}/v1/org/profile`, {
    method: 'PUT',
    body: Buffer.from(demoProfile),
  });
  expect(demoPut.status).toBe(200);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stopAllRelays();
});

interface Opened {
  readonly context: BrowserContext;
  readonly page: Page;
  readonly consoleErrors: string[];
}

async function open(
  url: string,
  lang: (typeof LANGS)[number],
  options: { pseudo?: boolean; withoutWebAssembly?: boolean } = {},
): Promise<Opened> {
  const context = await browser.newContext({
    viewport: { width: 360, height: 740 },
    deviceScaleFactor: 1,
    locale: lang === 'ru' ? 'ru-RU' : 'en-GB',
    hasTouch: true,
  });
  // The exit's neutral site is answered here: the test makes no request off this machine.
  await context.route(`${EXIT_URL}**`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: '<title>neutral</title>' }),
  );
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  await page.addInitScript(
    ({ pseudo, withoutWebAssembly }) => {
      const w = window as unknown as { __violations: string[]; __passagePseudo?: boolean };
      w.__violations = [];
      if (pseudo) w.__passagePseudo = true;
      if (withoutWebAssembly) delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
      document.addEventListener('securitypolicyviolation', (e) => {
        w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    },
    { pseudo: options.pseudo === true, withoutWebAssembly: options.withoutWebAssembly === true },
  );
  await page.goto(url);
  return { context, page, consoleErrors };
}

async function screenName(page: Page, expected: string): Promise<void> {
  await page.waitForSelector(`main[data-screen="${expected}"]`, { timeout: 30_000 });
}

/** Text nodes on screen that are not wrapped in the pseudo-localisation marks. */
async function unmarkedText(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n !== null; n = walker.nextNode()) {
      const text = n.textContent?.trim() ?? '';
      if (text === '' || n.parentElement?.closest('noscript, [translate="no"], [data-data]'))
        continue;
      if (!/^⟦[\s\S]*⟧$/.test(text)) out.push(text);
    }
    return out;
  });
}

describe('the contact page in Chromium', () => {
  it.each(LANGS)(
    'welcome (%s): the organization, its fingerprint, safety notes; under the CSP, accessible, 360 px',
    async (lang) => {
      const { context, page, consoleErrors } = await open(withOrg.url, lang);
      try {
        await screenName(page, 'welcome');
        await page.click('details.check summary');
        await shoot(page, `welcome-${lang}`);
        const state = await page.evaluate(() => ({
          lang: document.documentElement.lang,
          title: document.title,
          backend: document.documentElement.dataset['backend'],
          violations: (window as unknown as { __violations: string[] }).__violations,
          org: document.querySelector('.org')?.textContent,
          fingerprint: document.querySelector('.fingerprint')?.textContent,
          exit: document.querySelector('button.exit')?.textContent,
        }));
        expect(state.lang).toBe(lang);
        expect(state.title).toBe('Notes');
        expect(state.backend).toBe('libsodium');
        expect(state.violations).toEqual([]);
        expect(state.org).toBe('Радуга — помощь');
        expect(state.fingerprint).toMatch(/^(\d{5} ){5}\d{5}$/);
        expect(state.exit).toBe(lang === 'ru' ? 'Быстрый выход' : 'Quick exit');
        expect(consoleErrors).toEqual([]);
        expect(await seriousAxeViolations(page)).toEqual([]);
        expect(await noHorizontalScroll(page)).toBe(true);
      } finally {
        await context.close();
      }
    },
    60_000,
  );

  it.each(LANGS)(
    'the demo organization (%s): marked DEMO before anything else',
    async (lang) => {
      const { context, page } = await open(demo.url, lang);
      try {
        await screenName(page, 'welcome');
        await shoot(page, `welcome-demo-${lang}`);
        expect(await page.textContent('.demo')).toContain(lang === 'ru' ? 'ДЕМО' : 'DEMO');
        expect(await seriousAxeViolations(page)).toEqual([]);
      } finally {
        await context.close();
      }
    },
    60_000,
  );

  it('shows no DEMO notice for a real organization', async () => {
    const { context, page } = await open(withOrg.url, 'ru');
    try {
      await screenName(page, 'welcome');
      expect(await page.locator('.demo').count()).toBe(0);
    } finally {
      await context.close();
    }
  }, 60_000);

  it.each(LANGS)(
    'no organization (%s): a plain message',
    async (lang) => {
      const { context, page } = await open(withoutOrg.url, lang);
      try {
        await screenName(page, 'failed');
        await shoot(page, `no-organization-${lang}`);
        const text = await page.textContent('main');
        expect(text).toContain(lang === 'ru' ? 'не настроена организация' : 'No organization');
        expect(await seriousAxeViolations(page)).toEqual([]);
      } finally {
        await context.close();
      }
    },
    60_000,
  );

  it('shows no text that is not from a catalogue (pseudo-localised run)', async () => {
    for (const url of [withOrg.url, withoutOrg.url]) {
      const { context, page } = await open(url, 'ru', { pseudo: true });
      try {
        await page.waitForSelector('main[data-screen="welcome"], main[data-screen="failed"]');
        await page.evaluate(() =>
          document.querySelectorAll('details').forEach((d) => (d.open = true)),
        );
        const unmarked = await unmarkedText(page);
        // The organization's name comes from its profile, not from a catalogue.
        expect(unmarked.filter((t) => t !== 'Радуга — помощь')).toEqual([]);
      } finally {
        await context.close();
      }
    }
  }, 60_000);

  it('catches a text that is not from a catalogue (the check can fail)', async () => {
    const { context, page } = await open(withOrg.url, 'en', { pseudo: true });
    try {
      await screenName(page, 'welcome');
      await page.evaluate(() => {
        const p = document.createElement('p');
        p.textContent = 'hard-coded';
        document.querySelector('main')?.append(p);
      });
      expect(await unmarkedText(page)).toContain('hard-coded');
    } finally {
      await context.close();
    }
  }, 60_000);

  it('switches language in place, without changing the URL or the history', async () => {
    const { context, page } = await open(withOrg.url, 'en');
    try {
      await screenName(page, 'welcome');
      const before = await page.evaluate(() => ({ url: location.href, length: history.length }));
      await page.click('button.language[lang="ru"]');
      await page.waitForFunction(() => document.documentElement.lang === 'ru');
      expect(await page.textContent('button.exit')).toBe('Быстрый выход');
      expect(await page.evaluate(() => ({ url: location.href, length: history.length }))).toEqual(
        before,
      );
    } finally {
      await context.close();
    }
  }, 60_000);

  it('works on the pure-JS backend with WebAssembly switched off', async () => {
    const { context, page, consoleErrors } = await open(withOrg.url, 'ru', {
      withoutWebAssembly: true,
    });
    try {
      await screenName(page, 'welcome');
      expect(await page.evaluate(() => document.documentElement.dataset['backend'])).toBe('noble');
      expect(
        await page.evaluate(() => (window as unknown as { __violations: string[] }).__violations),
      ).toEqual([]);
      expect(consoleErrors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  for (const how of ['button', 'Shift × 3'] as const) {
    it(`quick exit by ${how}: replaces the page's history entry and leaves no storage`, async () => {
      const { context, page } = await open(withOrg.url, 'ru');
      try {
        await screenName(page, 'welcome');
        const lengthBefore = await page.evaluate(() => history.length);
        const navigated = page.waitForURL(EXIT_URL);
        if (how === 'button') {
          await page.click('button.exit');
        } else {
          for (let i = 0; i < 3; i++) await page.keyboard.press('Shift');
        }
        await navigated;
        expect(await page.evaluate(() => history.length)).toBe(lengthBefore);
        // Back leaves the tab's history (there was nothing before the page), never to the page.
        await page.goBack().catch(() => null);
        expect(page.url()).not.toBe(`${withOrg.url}/`);
        const origin = await context.newPage();
        await origin.goto(`${withOrg.url}/healthz`);
        const storage = await origin.evaluate(async () => ({
          local: localStorage.length,
          session: sessionStorage.length,
          cookie: document.cookie,
          idb: (await indexedDB.databases()).length,
          caches: (await caches.keys()).length,
          workers: (await navigator.serviceWorker.getRegistrations()).length,
        }));
        expect(storage).toEqual({
          local: 0,
          session: 0,
          cookie: '',
          idb: 0,
          caches: 0,
          workers: 0,
        });
      } finally {
        await context.close();
      }
    }, 60_000);
  }

  it('does not exit on Shift used for capitals', async () => {
    const { context, page } = await open(withOrg.url, 'en');
    try {
      await screenName(page, 'welcome');
      for (let i = 0; i < 3; i++) await page.keyboard.press('Shift+KeyA');
      await page.keyboard.press('Shift');
      await page.keyboard.press('Shift');
      expect(
        await page.evaluate(() => document.documentElement.classList.contains('exiting')),
      ).toBe(false);
      expect(page.url()).toBe(`${withOrg.url}/`);
    } finally {
      await context.close();
    }
  }, 60_000);

  it.each(LANGS)(
    'intake (%s): required answers checked in the page language, conditions follow answers, then the first message',
    async (lang) => {
      const { context, page, consoleErrors } = await open(withOrg.url, lang);
      try {
        await screenName(page, 'welcome');
        await page.click('button[data-action="start"]');
        await screenName(page, 'intake');
        await shoot(page, `intake-${lang}`);
        expect(await seriousAxeViolations(page)).toEqual([]);
        expect(
          await page
            .locator('[data-field]')
            .evaluateAll((els) => els.map((e) => e.getAttribute('data-field'))),
        ).toEqual(['safe_now', 'needs']);

        await page.click('button[type="submit"]');
        await page.waitForSelector('.form-error');
        await shoot(page, `intake-errors-${lang}`);
        expect(await seriousAxeViolations(page)).toEqual([]);
        expect(await page.textContent('.form-error')).toBe(
          lang === 'ru' ? 'Остался без ответа 1 вопрос.' : '1 question still needs an answer.',
        );
        expect(await page.textContent('[data-field="safe_now"] .field-error')).toBe(
          lang === 'ru' ? 'Пожалуйста, ответьте на этот вопрос.' : 'Please answer this question.',
        );
        // The focus is on the question to answer, not left on the button.
        expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe(
          'q-safe_now',
        );
        expect(await page.locator('main').getAttribute('data-screen')).toBe('intake');

        await page.check('input[name="q-safe_now"][value="no"]');
        expect(
          await page
            .locator('[data-field]')
            .evaluateAll((els) => els.map((e) => e.getAttribute('data-field'))),
        ).toEqual(['safe_now', 'needs', 'danger']);
        await page.check('input[name="q-safe_now"][value="yes"]');
        expect(await page.locator('[data-field]').count()).toBe(2);
        await page.check('input[name="q-safe_now"][value="no"]');
        await page.fill('#q-danger', 'x');
        expect(await page.textContent('#q-danger-left')).toBe(
          lang === 'ru' ? 'Осталось 1999 знаков' : '1999 characters left',
        );
        await page.click('button[type="submit"]');
        await screenName(page, 'message');
        await page.click('button[type="submit"]');
        await page.waitForSelector('#first-message-error');
        await shoot(page, `message-${lang}`);
        expect(await seriousAxeViolations(page)).toEqual([]);
        expect(await page.evaluate(() => document.activeElement?.id)).toBe('first-message');

        // Back keeps what was answered; nothing of it went anywhere (no storage, same URL).
        await page.click('button.secondary');
        await screenName(page, 'intake');
        expect(await page.isChecked('input[name="q-safe_now"][value="no"]')).toBe(true);
        expect(await page.inputValue('#q-danger')).toBe('x');
        expect(
          await page.evaluate(
            () => localStorage.length + sessionStorage.length + document.cookie.length,
          ),
        ).toBe(0);
        expect(page.url()).toBe(`${withOrg.url}/`);
        expect(
          await page.evaluate(() => (window as unknown as { __violations: string[] }).__violations),
        ).toEqual([]);
        expect(consoleErrors).toEqual([]);
        expect(await noHorizontalScroll(page)).toBe(true);
      } finally {
        await context.close();
      }
    },
    60_000,
  );

  it('shows no text that is not from a catalogue on the intake and message screens', async () => {
    const { context, page } = await open(withOrg.url, 'en', { pseudo: true });
    try {
      await screenName(page, 'welcome');
      await page.click('button[data-action="start"]');
      await screenName(page, 'intake');
      await page.click('button[type="submit"]');
      await page.check('input[name="q-safe_now"][value="no"]');
      expect(await unmarkedText(page)).toEqual([]);
      await page.click('button[type="submit"]');
      await screenName(page, 'message');
      await page.click('button[type="submit"]');
      expect(await unmarkedText(page)).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
