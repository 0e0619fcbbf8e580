/**
 * The contact page's flow in real Chromium against a real relay, with the organization's team
 * device run by the client core in Node: intake → first message → the codename shown once →
 * the conversation, where the coordinator's reply arrives. The bytes the team device decrypts
 * are the intake answers and the words the person typed; nothing is kept by the page.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, readFileSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import {
  ContactStateStore,
  PassageClient,
  fetchBlobTransport,
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
import { QWERTY_TO_JCUKEN, RUSSIAN_CODENAME_LIST } from '@passage/shared/crypto/codename-ru';
import { mailboxIdFromPublicKey } from '@passage/shared/protocol/mailbox';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { organizationKey } from '@passage/testing/crypto-fixtures';
import { sampleProfileContent, signedProfile } from '@passage/testing/org-fixtures';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { until } from '@passage/testing/wait';
import { wsTransport } from '@passage/testing/ws-transport';
import {
  CAMERA_SERIAL,
  containsBytes,
  GPS_LATITUDE_RATIONALS,
  jpegWithGps,
} from '@passage/testing/media-fixtures';
import { stripMetadata } from '@passage/shared/media/strip';
import { noHorizontalScroll, SCREENS_DIR, seriousAxeViolations, shoot } from './page-checks.js';

const EXIT_URL = 'https://www.google.com/';
/** The Latin-layout key of each ЙЦУКЕН letter: a Russian word typed with the wrong layout. */
const LATIN_KEY = new Map(Object.entries(QWERTY_TO_JCUKEN).map(([latin, ru]) => [ru, latin]));
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
    blobs: fetchBlobTransport({ baseUrl: relay.url }),
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

        // Written down? Typed back: three words at random positions.
        await page.click('.codename ~ button.primary');
        await page.waitForSelector('main[data-screen="confirm"]');
        const all = codename.split(' ');
        const asked = async () =>
          (await page.getAttribute('form[data-positions]', 'data-positions'))!
            .split(',')
            .map(Number);
        const first = await asked();
        expect(first).toHaveLength(3);
        await page.fill(
          '#confirm-input',
          all
            .filter((_, i) => !first.includes(i))
            .slice(0, 3)
            .join(' '),
        );
        await page.click('form[data-positions] button[type="submit"]');
        await page.waitForSelector('#confirm-error');
        expect(await page.textContent('#confirm-error')).toContain(
          lang === 'ru' ? 'Это не слова номер' : 'These are not the words number',
        );
        await shoot(page, `confirm-error-${lang}`);
        expect(await seriousAxeViolations(page)).toEqual([]);
        // The words can be seen again until they are confirmed.
        await page.click('form[data-positions] button.secondary');
        await page.waitForSelector('main[data-screen="codename"]');
        expect((await page.locator('.codename li').allTextContents()).join(' ')).toBe(codename);
        await page.click('.codename ~ button.primary');
        await page.waitForSelector('main[data-screen="confirm"]');
        await shoot(page, `confirm-${lang}`);
        expect(await seriousAxeViolations(page)).toEqual([]);
        const positions = await asked();
        // Russian words typed with the keyboard left in the Latin layout are accepted.
        const typedBack = positions.map((i) =>
          lang === 'ru' ? [...all[i]!].map((c) => LATIN_KEY.get(c) ?? c).join('') : all[i]!,
        );
        await page.fill('#confirm-input', typedBack.join(' '));
        await page.click('form[data-positions] button[type="submit"]');
        await page.waitForSelector('main[data-screen="chat"]');
        // Shown once: no screen holds the words any more.
        expect(await page.locator('.codename li').count()).toBe(0);
        const reply = lang === 'ru' ? 'Мы получили ваше сообщение.' : 'We have your message.';
        await team.sendText(text!.case!, reply);
        await page.waitForSelector(`.message.theirs >> text=${reply}`, { timeout: 30_000 });
        // The status the coordinators share reaches the page.
        await team.sendNotice(text!.case!, 'in_progress');
        await page.waitForSelector('.case-status[data-status="in_progress"]', { timeout: 30_000 });
        expect(await page.textContent('.case-status')).toContain(
          lang === 'ru' ? 'работают' : 'working on it',
        );
        await shoot(page, `chat-${lang}`);
        expect(await seriousAxeViolations(page)).toEqual([]);
        expect(await noHorizontalScroll(page)).toBe(true);

        // A photo with its place in it: cleaned in the page, and the coordinator decrypts the
        // cleaned bytes, with no GPS and no camera serial left.
        const photo = jpegWithGps();
        await page.setInputFiles('#file-input', {
          name: 'IMG_0001.jpg',
          mimeType: 'image/jpeg',
          buffer: Buffer.from(photo),
        });
        await page.waitForSelector('.file-check-cleaned');
        await shoot(page, `file-cleaned-${lang}`);
        expect(await seriousAxeViolations(page)).toEqual([]);
        await page.click('.file-check-cleaned button.primary');
        await until(() => received.some((m) => m.message.type === 'attachment'), 30_000);
        const sentFile = received.find((m) => m.message.type === 'attachment')!;
        if (sentFile.message.type !== 'attachment') throw new Error('unreachable');
        expect(sentFile.message.fileName).toBe('IMG_0001.jpg');
        const got = await team.fetchAttachment(sentFile.message);
        const cleaned = stripMetadata(photo);
        expect(cleaned.ok).toBe(true);
        expect(Buffer.from(got).equals(Buffer.from(cleaned.ok ? cleaned.bytes : []))).toBe(true);
        expect(containsBytes(got, GPS_LATITUDE_RATIONALS)).toBe(false);
        expect(containsBytes(got, new TextEncoder().encode(CAMERA_SERIAL))).toBe(false);
        await page.waitForSelector('.message.mine .file-save', { timeout: 30_000 });

        // A type that cannot be cleaned: said so before anything is sent; cancelled, nothing sent.
        await page.setInputFiles('#file-input', {
          name: 'passport.pdf',
          mimeType: 'application/pdf',
          buffer: Buffer.from('%PDF-1.4 /Author (Ivan Petrov)'),
        });
        await page.waitForSelector('.file-check-unchecked');
        expect(await page.textContent('.file-check-unchecked')).toContain('passport.pdf');
        await shoot(page, `file-unchecked-${lang}`);
        expect(await seriousAxeViolations(page)).toEqual([]);
        await page.click('.file-check-unchecked button.file-cancel');
        await page.waitForSelector('.file-check', { state: 'detached' });

        // A file from the coordinators: saved by the person, the bytes as sent.
        const fromTeam = Buffer.from('Адрес: улица Мира, 1');
        await team.sendAttachment(text!.case!, {
          bytes: new Uint8Array(fromTeam),
          name: 'address.txt',
          type: 'text/plain',
        });
        await page.waitForSelector('.message.theirs .file-save', { timeout: 30_000 });
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.click('.message.theirs .file-save'),
        ]);
        expect(download.suggestedFilename()).toBe('address.txt');
        const savedPath = await download.path();
        expect(readFileSync(savedPath).equals(fromTeam)).toBe(true);
        await shoot(page, `chat-files-${lang}`);
        expect(await seriousAxeViolations(page)).toEqual([]);
        expect(await noHorizontalScroll(page)).toBe(true);
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
        await again.route(`${EXIT_URL}**`, (route) =>
          route.fulfill({ status: 200, contentType: 'text/html', body: '<title>neutral</title>' }),
        );
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
          // The status shared before was saved with the conversation.
          await back.waitForSelector('.case-status[data-status="in_progress"]');
          await shoot(back, `resumed-${lang}`);

          // "Delete my conversation": asked once more, then deleted, and the page leaves.
          await back.click('.delete button');
          await back.waitForSelector('.delete.asking');
          await shoot(back, `delete-${lang}`);
          expect(await seriousAxeViolations(back)).toEqual([]);
          await back.click('.delete.asking button.secondary');
          await back.waitForSelector('.delete:not(.asking)');
          await back.click('.delete button');
          const before = await back.evaluate(() => history.length);
          await back.click('.delete.asking button.primary');
          await back.waitForURL(`${EXIT_URL}**`, { timeout: 30_000 });
          expect(await back.evaluate(() => history.length)).toBe(before);
        } finally {
          await again.close();
        }
        // Nothing is left under the codename: a fresh restore finds no conversation.
        const gone = new PassageClient({
          url: `ws://127.0.0.1:${relay.port}/v1/ws`,
          transport: wsTransport(),
          primitives: p,
          identity: { signingKey: who.publicIdentity.signingKey, sign: (m) => who.sign(m) },
          onEnvelope: () => Promise.resolve({ kind: 'later', reason: 'test_reads_state_only' }),
        });
        try {
          await gone.connect();
          await gone.ready();
          expect(await gone.getState()).toEqual({ blob: null, generation: 0 });
        } finally {
          gone.close();
        }
      } finally {
        await context.close();
      }
    },
    90_000,
  );
});

describe('the contact page under an onion host name', () => {
  it('works end to end when reached as http://….onion (an insecure context in Chromium)', async () => {
    received.length = 0;
    const onion = `${'passage2'.repeat(7)}.onion`;
    // Tor would carry the connection; here the name resolves to the relay on this machine.
    const viaTor = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${onion} 127.0.0.1`],
    });
    try {
      const context = await viaTor.newContext({ viewport: { width: 360, height: 740 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      const url = `http://${onion}:${relay.port}/`;
      await page.goto(url);
      await page.waitForSelector('main[data-screen="welcome"]');
      expect(await page.evaluate(() => window.isSecureContext)).toBe(false);
      await page.click('button[data-action="start"]');
      await page.check('input[name="q-safe_now"][value="yes"]');
      await page.check('input[name="q-needs"][value="legal"]');
      await page.click('button[type="submit"]');
      await page.waitForSelector('main[data-screen="message"]');
      await page.fill('#first-message', 'Written over Tor.');
      await page.click('button[type="submit"]');
      await page.waitForSelector('main[data-screen="codename"]', { timeout: 30_000 });
      await until(
        () =>
          received.some((m) => m.message.type === 'text' && m.message.body === 'Written over Tor.'),
        30_000,
      );
      expect(page.url()).toBe(url);
      // Chromium says it ignores Cross-Origin-Opener-Policy on a plain-HTTP origin; Tor Browser,
      // which counts .onion as trustworthy, applies it. Nothing else may be logged.
      expect(errors.filter((e) => !e.startsWith('The Cross-Origin-Opener-Policy header'))).toEqual(
        [],
      );
    } finally {
      await viaTor.close();
    }
  }, 90_000);
});
