/**
 * The contact page's flow in real Chromium against a real relay, with the organization's team
 * device run by the client core in Node: intake → first message → the codename shown once →
 * the conversation, where the coordinator's reply arrives. The bytes the team device decrypts
 * are the intake answers and the words the person typed; nothing is kept by the page.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import {
  ContactStateStore,
  PassageClient,
  TeamDevice,
  inlinePowSolver,
  systemClock,
  type ReceivedMessage,
} from '@passage/shared/client/index';
import { CaseReplica } from '@passage/shared/client/conversation/case-replica';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import {
  ENGLISH_CODENAME_LIST,
  deriveCodenameKeys,
  generateCodename,
  identityFromCodename,
  readCodename,
} from '@passage/shared/crypto/codename';
import { RUSSIAN_CODENAME_LIST } from '@passage/shared/crypto/codename-ru';
import { mailboxIdFromPublicKey } from '@passage/shared/protocol/mailbox';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { organizationKey } from '@passage/testing/crypto-fixtures';
import { sampleProfileContent, signedProfile } from '@passage/testing/org-fixtures';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { until } from '@passage/testing/wait';
import { wsTransport } from '@passage/testing/ws-transport';

const SCREENS_DIR = new URL('../../test-artifacts/screens/', import.meta.url);
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-quic',
];

let p: Primitives;
let relay: RelayProcess;
let team: TeamDevice;
let browser: Browser;
const received: ReceivedMessage[] = [];

beforeAll(async () => {
  mkdirSync(SCREENS_DIR, { recursive: true });
  p = await loadSodiumBackend();
  const org = organizationKey(p);
  relay = await startRelay({ ORG_PUBLIC_KEY: toBase64url(org.publicKey), POW_BITS: '1' });
  const device = DeviceIdentity.generate(p);
  const now = Math.floor(Date.now() / 1000);
  const put = await fetch(`${relay.url}/v1/org/profile`, {
    method: 'PUT',
    body: Buffer.from(
      signedProfile(p, org.seed, [device.publicIdentity], now, { content: sampleProfileContent() }),
    ),
  });
  expect(put.status).toBe(200);
  team = new TeamDevice({
    p,
    organizationKey: org.publicKey,
    fetchProfile: async () =>
      new Uint8Array(await (await fetch(`${relay.url}/v1/org/profile`)).arrayBuffer()),
    store: MemoryDeviceStore.create(p, device, now),
    replica: new CaseReplica(device.publicIdentity.id),
    relay: {
      url: `ws://127.0.0.1:${relay.port}/v1/ws`,
      transport: wsTransport(),
      timing: { backoffInitialMs: 50, backoffMaxMs: 500 },
      // A reply is a first send to the contact's mailbox on this socket: it pays too.
      solvePow: inlinePowSolver({
        sha256: (d) => p.sha256(d),
        clock: systemClock(),
        randomBytes: (n) => p.random.bytes(n),
      }),
    },
    clock: systemClock(),
  });
  team.on('message', (m) => received.push(m));
  let published = false;
  team.prekeys.events.on('published', () => (published = true));
  await team.start();
  await until(() => published);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}, 60_000);

afterAll(async () => {
  team?.close();
  await browser?.close();
  await stopAllRelays();
});

describe('the contact page, first visit to a live conversation', () => {
  it.each(['ru', 'en'] as const)(
    '(%s) intake, first message, codename, the reply; nothing kept by the page',
    async (lang) => {
      received.length = 0;
      const context = await browser.newContext({
        viewport: { width: 360, height: 740 },
        locale: lang === 'ru' ? 'ru-RU' : 'en-GB',
      });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      try {
        await page.goto(relay.url);
        await page.waitForSelector('main[data-screen="welcome"]');
        await page.click('button[data-action="start"]');
        await page.check('input[name="q-safe_now"][value="no"]');
        await page.check('input[name="q-needs"][value="shelter"]');
        await page.fill('#q-danger', 'они ищут меня');
        await page.click('button[type="submit"]');
        await page.waitForSelector('main[data-screen="message"]');
        const words =
          lang === 'ru' ? 'Мне нужна помощь, я в опасности.' : 'I need help, I am in danger.';
        await page.fill('#first-message', words);
        await page.click('button[type="submit"]');
        await page.waitForSelector('main[data-screen="codename"]', { timeout: 30_000 });
        await page.screenshot({
          path: new URL(`codename-${lang}.png`, SCREENS_DIR).pathname,
          fullPage: true,
        });
        const codename = (await page.locator('.codename li').allTextContents()).join(' ');
        expect(codename.split(' ')).toHaveLength(lang === 'ru' ? 8 : 7);
        if (lang === 'ru') expect(codename).toMatch(/^[а-я ]+$/);

        // What the team device decrypted: the intake answers and the words typed.
        await until(() => received.some((m) => m.message.type === 'text'), 30_000);
        const intake = received.find((m) => m.message.type === 'intake');
        const text = received.find((m) => m.message.type === 'text');
        expect(intake?.message.type === 'intake' && intake.message.answers).toEqual([
          { field: 'safe_now', choices: ['no'] },
          { field: 'needs', choices: ['shelter'] },
          { field: 'danger', text: 'они ищут меня' },
        ]);
        expect(intake?.intake?.urgency).toBe(16);
        expect(text?.message.type === 'text' && text.message.body).toBe(words);

        await page.click('.codename ~ button.primary');
        await page.waitForSelector('main[data-screen="chat"]');
        const reply = lang === 'ru' ? 'Мы получили ваше сообщение.' : 'We have your message.';
        await team.sendText(text!.case!, reply);
        await page.waitForSelector(`.message.theirs >> text=${reply}`, { timeout: 30_000 });
        await page.screenshot({
          path: new URL(`chat-${lang}.png`, SCREENS_DIR).pathname,
          fullPage: true,
        });
        // The way back exists: the conversation is saved on the relay under the codename, and a
        // fresh process with the words alone opens it (what a returning contact's page will do).
        const parsed = readCodename(codename, [RUSSIAN_CODENAME_LIST, ENGLISH_CODENAME_LIST]);
        const keys = deriveCodenameKeys(p, parsed);
        const who = identityFromCodename(p, keys);
        const client = new PassageClient({
          url: `ws://127.0.0.1:${relay.port}/v1/ws`,
          transport: wsTransport(),
          primitives: p,
          identity: { signingKey: who.publicIdentity.signingKey, sign: (m) => who.sign(m) },
          onEnvelope: () => Promise.resolve({ kind: 'later', reason: 'test_reads_state_only' }),
        });
        try {
          await client.connect();
          await client.ready();
          const saved = await ContactStateStore.restore(
            {
              primitives: p,
              mailboxKey: keys.mailboxKey,
              mailbox: mailboxIdFromPublicKey(who.publicIdentity.signingKey, (d) => p.sha256(d)),
              port: client,
            },
            { signingKey: who.publicIdentity.signingKey },
          );
          const bodies = saved.conversation.transcript.flatMap((e) =>
            e.message.type === 'text' ? [e.message.body] : [],
          );
          expect(bodies).toContain(words);
        } finally {
          client.close();
        }
        const kept = await page.evaluate(async () => ({
          storage: localStorage.length + sessionStorage.length + document.cookie.length,
          idb: (await indexedDB.databases()).length,
          url: location.pathname + location.search + location.hash,
        }));
        expect(kept).toEqual({ storage: 0, idb: 0, url: '/' });
        expect(errors).toEqual([]);

        // Back in a fresh browser context with the codename alone: the whole conversation.
        const again = await browser.newContext({
          viewport: { width: 360, height: 740 },
          locale: lang === 'ru' ? 'ru-RU' : 'en-GB',
        });
        try {
          const back = await again.newPage();
          await back.goto(relay.url);
          await back.waitForSelector('main[data-screen="welcome"]');
          await back.click('button[data-action="resume"]');
          await back.waitForSelector('main[data-screen="resume"]');
          expect(await back.getAttribute('#codename-input', 'type')).toBe('password');
          expect(await back.getAttribute('#codename-input', 'autocomplete')).toBe('off');
          expect(await back.getAttribute('#codename-input', 'spellcheck')).toBe('false');
          await back.screenshot({ path: new URL(`resume-${lang}.png`, SCREENS_DIR).pathname });

          // A codename of real list words that was never used: the kind, non-committal message.
          const list = lang === 'ru' ? RUSSIAN_CODENAME_LIST : ENGLISH_CODENAME_LIST;
          await back.fill('#codename-input', generateCodename(p, { list }));
          await back.click('button[type="submit"]');
          await back.waitForSelector('#resume-error', { timeout: 30_000 });
          expect(await back.textContent('#resume-error')).toContain(
            lang === 'ru' ? 'Не удалось открыть разговор' : 'We could not open a conversation',
          );
          await back.screenshot({
            path: new URL(`resume-not-found-${lang}.png`, SCREENS_DIR).pathname,
          });

          // The words as a person might type them: other case, extra spaces.
          await back.fill('#codename-input', `  ${codename.toUpperCase().split(' ').join('  ')} `);
          await back.click('button[type="submit"]');
          await back.waitForSelector('main[data-screen="chat"]', { timeout: 30_000 });
          await back.waitForSelector(`.message.theirs >> text=${reply}`);
          await back.waitForSelector(`.message.mine >> text=${words}`);
          // The team's receipt came back with the conversation: delivered (or read), not "sent".
          expect(await back.textContent('.message.mine .state')).toMatch(
            lang === 'ru' ? /^(Доставлено|Прочитано)$/ : /^(Delivered|Read)$/,
          );
          await back.screenshot({ path: new URL(`resumed-${lang}.png`, SCREENS_DIR).pathname });
        } finally {
          await again.close();
        }
      } finally {
        await context.close();
      }
    },
    90_000,
  );
});
