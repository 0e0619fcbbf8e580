/**
 * The contact page under faults, in real Chromium against real relay processes (with Redis as
 * the store, so that queues outlive the relay), with the organization's team device run by the
 * client core in Node:
 *
 * - the relay killed and started again on its port mid-conversation: the page says in words that
 *   it is reconnecting, what the person wrote meanwhile leaves afterwards, and on both sides
 *   every message is there exactly once, in order;
 * - the page's socket cut (a TCP proxy between the browser and the relay) while a message is on
 *   its way, before and after the relay had it: the same;
 * - a malicious team device sending malformed content: shown as text or not at all, nothing
 *   broken, the page keeps working, and the client core counts what it dropped;
 * - the whole first visit by keyboard alone, with a visible focus on every step, touch targets
 *   of at least 44 × 44 px, and no horizontal scrolling at 360 px with the text at 200 %.
 *
 * Screenshots go to test-artifacts/screens/.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type ElementHandle,
  type Page,
} from 'playwright-core';
import {
  ContactConversation,
  TeamDevice,
  inlinePowSolver,
  systemClock,
  type ReceivedMessage,
} from '@passage/shared/client/index';
import { CaseReplica } from '@passage/shared/client/conversation/case-replica';
import { MAX_TEXT_CHARS } from '@passage/shared/client/conversation/limits';
import type { PublicIdentity } from '@passage/shared/crypto/identity';
import { mailboxOf } from '@passage/shared/client/sessions';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { organizationKey } from '@passage/testing/crypto-fixtures';
import { sampleProfileContent, signedProfile } from '@passage/testing/org-fixtures';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { startTcpProxy, type TcpProxy } from '@passage/testing/tcp-proxy';
import { until } from '@passage/testing/wait';
import { wsTransport } from '@passage/testing/ws-transport';
import { noHorizontalScroll, SCREENS_DIR, seriousAxeViolations, shoot } from './page-checks.js';

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
/** How long a page may take to reach a state after a fault (its backoff, Argon2id, PoW), in ms. */
const SETTLE_MS = 45_000;
/** The smallest touch target accepted, in CSS px (WCAG 2.5.5). */
const MIN_TARGET_PX = 44;

/**
 * A team device that can send what an honest one never would: any plaintext sealed over its
 * session with a contact, and any bytes as an envelope.
 */
class MaliciousTeamDevice extends TeamDevice {
  readonly #contacts = new Map<string, PublicIdentity>();

  protected override onContact(contact: PublicIdentity): void {
    super.onContact(contact);
    this.#contacts.set(contact.id, contact);
  }

  /** Seals `plaintext` (not checked) for the case's contact alone, and queues it. */
  sendPlaintext(caseId: string, plaintext: Uint8Array): Promise<void> {
    return this.serial(async () => {
      const contact = this.#contacts.get(caseId);
      if (contact === undefined) throw new Error('no such case');
      const sealed = await this.sessions.seal([contact], plaintext);
      for (const s of sealed.sealed) await this.client.send(s.mailbox, s.envelope);
    });
  }

  /** Queues `bytes` as an envelope for the case's contact. */
  sendEnvelope(caseId: string, bytes: Uint8Array): Promise<string> {
    const contact = this.#contacts.get(caseId);
    if (contact === undefined) throw new Error('no such case');
    return this.client.send(mailboxOf(this.p, contact), bytes);
  }
}

let p: Primitives;
let org: ReturnType<typeof organizationKey>;
let deviceIdentity: DeviceIdentity;
let redis: RedisServer;
let relay: RelayProcess;
let relayEnv: Record<string, string>;
let team: MaliciousTeamDevice;
let browser: Browser;
/** Every message the team device accepted, in the order it accepted them. */
const received: ReceivedMessage[] = [];

beforeAll(async () => {
  mkdirSync(SCREENS_DIR, { recursive: true });
  p = await loadSodiumBackend();
  org = organizationKey(p);
  redis = await startRedis();
  relayEnv = {
    ORG_PUBLIC_KEY: toBase64url(org.publicKey),
    POW_BITS: '1',
    REDIS_URL: redis.url,
  };
  relay = await startRelay(relayEnv);
  deviceIdentity = DeviceIdentity.generate(p);
  const now = Math.floor(Date.now() / 1000);
  const put = await fetch(`${relay.url}/v1/org/profile`, {
    method: 'PUT',
    body: Buffer.from(
      signedProfile(p, org.seed, [deviceIdentity.publicIdentity], now, {
        content: sampleProfileContent(),
      }),
    ),
  });
  expect(put.status).toBe(200);
  const port = relay.port;
  team = new MaliciousTeamDevice({
    p,
    organizationKey: org.publicKey,
    fetchProfile: async () =>
      new Uint8Array(await (await fetch(`http://127.0.0.1:${port}/v1/org/profile`)).arrayBuffer()),
    store: MemoryDeviceStore.create(p, deviceIdentity, now),
    replica: new CaseReplica(deviceIdentity.publicIdentity.id),
    relay: {
      url: `ws://127.0.0.1:${port}/v1/ws`,
      transport: wsTransport(),
      timing: { backoffInitialMs: 50, backoffMaxMs: 500 },
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
  await redis?.stop('SIGKILL');
});

interface Opened {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console errors, page errors and CSP violations seen so far. */
  readonly problems: string[];
}

async function openPage(url: string, lang: 'ru' | 'en'): Promise<Opened> {
  const context = await browser.newContext({
    viewport: { width: 360, height: 740 },
    deviceScaleFactor: 1,
    locale: lang === 'ru' ? 'ru-RU' : 'en-GB',
    hasTouch: true,
  });
  await context.route(`${EXIT_URL}**`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: '<title>neutral</title>' }),
  );
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.exposeFunction('__reportViolation', (v: string) => problems.push(`csp: ${v}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      void (window as unknown as { __reportViolation(v: string): Promise<void> }).__reportViolation(
        `${e.violatedDirective} ${e.blockedURI}`,
      );
    });
  });
  await page.goto(url);
  await page.waitForSelector('main[data-screen="welcome"]', { timeout: 30_000 });
  return { context, page, problems };
}

/** Intake, first message, codename typed back: the page in its conversation. Returns the case. */
async function reachChat(page: Page, first: string): Promise<string> {
  await page.click('button[data-action="start"]');
  await page.check('input[name="q-safe_now"][value="yes"]');
  await page.click('button[type="submit"]');
  await page.waitForSelector('main[data-screen="message"]');
  await page.fill('#first-message', first);
  await page.click('button[type="submit"]');
  await page.waitForSelector('main[data-screen="codename"]', { timeout: SETTLE_MS });
  const words = await page.locator('.codename li').allTextContents();
  await page.click('.codename ~ button.primary');
  await page.waitForSelector('main[data-screen="confirm"]');
  const positions = (await page.getAttribute('form[data-positions]', 'data-positions'))!
    .split(',')
    .map(Number);
  await page.fill('#confirm-input', positions.map((i) => words[i]!).join(' '));
  await page.click('form[data-positions] button[type="submit"]');
  await page.waitForSelector('main[data-screen="chat"]');
  await until(() => textsFrom(undefined).includes(first), SETTLE_MS);
  return received.find((m) => m.message.type === 'text' && m.message.body === first)!.case!;
}

/** The texts the team device accepted (of one case, or of all), in order. */
function textsFrom(caseId: string | undefined): string[] {
  return received.flatMap((m) =>
    m.message.type === 'text' && m.origin.from === 'contact' && (caseId ?? m.case) === m.case
      ? [m.message.body]
      : [],
  );
}

/** Types a message into the chat and sends it (by the Send button). */
async function sendFromPage(page: Page, text: string): Promise<void> {
  await page.fill('#chat-input', text);
  await page.click('main[data-screen="chat"] form button[type="submit"]');
  // The box is emptied at once: whatever happens next, the words must be shown below.
  await page.waitForSelector(`.message.mine .body >> text=${text}`, { timeout: 5_000 });
}

/** What the page shows: its own messages with their state, and the team's. */
async function shown(page: Page): Promise<{ mine: [string, string][]; theirs: string[] }> {
  return page.evaluate(() => {
    const mine: [string, string][] = [];
    const theirs: string[] = [];
    for (const li of document.querySelectorAll('.messages > li')) {
      const body = li.querySelector('.body')?.textContent ?? '';
      if (li.classList.contains('mine')) {
        mine.push([body, li.querySelector('.state')?.textContent ?? '']);
      } else theirs.push(body);
    }
    return { mine, theirs };
  });
}

const DELIVERED = { ru: /^(Доставлено|Прочитано)$/, en: /^(Delivered|Read)$/ };

/** Waits until every own message on the page says delivered (or read). */
async function allDelivered(page: Page, lang: 'ru' | 'en'): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const { mine } = await shown(page);
    if (mine.length > 0 && mine.every(([, state]) => DELIVERED[lang].test(state))) return;
    if (Date.now() > deadline) throw new Error(`not all delivered: ${JSON.stringify(mine)}`);
    await page.waitForTimeout(200);
  }
}

describe('the contact page over a flaky network', () => {
  it('loses and doubles nothing when the relay is killed and started again mid-conversation', async () => {
    received.length = 0;
    const { context, page, problems } = await openPage(relay.url, 'ru');
    try {
      const caseId = await reachChat(page, 'Первое сообщение');
      await sendFromPage(page, 'До перезапуска');
      await team.sendText(caseId, 'Ответ 1');
      await page.waitForSelector('.message.theirs >> text=Ответ 1', { timeout: SETTLE_MS });
      await allDelivered(page, 'ru');

      // The relay dies (no goodbye: SIGKILL). The page says so, in words.
      await relay.stop('SIGKILL');
      await page.waitForSelector('.link.link-reconnecting', { timeout: SETTLE_MS });
      expect(await page.textContent('.link')).toBe('Связь потеряна — переподключаемся…');
      // Written while it is down: shown at once, and waiting to be sent.
      await sendFromPage(page, 'Пока нет связи 1');
      await sendFromPage(page, 'Пока нет связи 2');
      await team.sendText(caseId, 'Ответ 2').catch(() => undefined);
      const waiting = (await shown(page)).mine.slice(-2);
      expect(waiting.map(([, s]) => s)).toEqual(['Ждёт отправки', 'Ждёт отправки']);
      await shoot(page, 'reconnecting-ru');
      await page.click('button.language[lang="en"]');
      expect(await page.textContent('.link')).toBe('Connection lost — reconnecting…');
      await shoot(page, 'reconnecting-en');
      expect(await noHorizontalScroll(page)).toBe(true);
      await page.click('button.language[lang="ru"]');

      // Back on the same port, over the same Redis.
      relay = await startRelay(relayEnv, { port: relay.port });
      await page.waitForSelector('.link.link-ready', { timeout: SETTLE_MS });
      await sendFromPage(page, 'После перезапуска');
      await team.sendText(caseId, 'Ответ 3');

      const sent = [
        'Первое сообщение',
        'До перезапуска',
        'Пока нет связи 1',
        'Пока нет связи 2',
        'После перезапуска',
      ];
      await until(() => textsFrom(caseId).length >= sent.length, SETTLE_MS);
      await page.waitForSelector('.message.theirs >> text=Ответ 3', { timeout: SETTLE_MS });
      await page.waitForSelector('.message.theirs >> text=Ответ 2', { timeout: SETTLE_MS });
      await allDelivered(page, 'ru');
      await team.idle();
      // Each exactly once, in order, on both sides.
      expect(textsFrom(caseId)).toEqual(sent);
      const after = await shown(page);
      expect(after.mine.map(([body]) => body)).toEqual(sent);
      expect([...after.theirs].sort()).toEqual(['Ответ 1', 'Ответ 2', 'Ответ 3']);
      expect(after.theirs.indexOf('Ответ 1')).toBe(0);
      await shoot(page, 'reconnected-ru');
      expect(problems.filter((x) => !x.includes('WebSocket'))).toEqual([]);
    } finally {
      await context.close();
    }
  }, 180_000);

  it.each([
    ['before the relay had it', 1, false],
    ['after the relay had the saved conversation', 1, true],
    ['after the relay had the envelope', 2, true],
  ] as const)(
    'loses and doubles nothing when the page’s socket is cut mid-send, %s',
    async (_when, chunk, forward) => {
      received.length = 0;
      const proxy: TcpProxy = await startTcpProxy(relay.port);
      const { context, page, problems } = await openPage(`http://127.0.0.1:${proxy.port}/`, 'en');
      try {
        const caseId = await reachChat(page, 'First message');
        await allDelivered(page, 'en');
        await team.sendText(caseId, 'Reply 1');
        await page.waitForSelector('.message.theirs >> text=Reply 1', { timeout: SETTLE_MS });
        await team.idle();
        // Quiet: the read receipt for the reply has gone, nothing else is on its way.
        await page.waitForTimeout(1_500);

        const cut = proxy.cutAtClientChunk(chunk, forward);
        await sendFromPage(page, 'Sent as the network dropped');
        const bytes = await Promise.race([cut, page.waitForTimeout(10_000).then(() => -1)]);
        expect(bytes).toBeGreaterThan(0);
        await sendFromPage(page, 'Sent right after');
        await team.sendText(caseId, 'Reply 2');

        const sent = ['First message', 'Sent as the network dropped', 'Sent right after'];
        await until(() => textsFrom(caseId).length >= sent.length, SETTLE_MS).catch(() => {
          throw new Error(`the team has ${JSON.stringify(textsFrom(caseId))}`);
        });
        await page.waitForSelector('.message.theirs >> text=Reply 2', { timeout: SETTLE_MS });
        await allDelivered(page, 'en');
        await team.idle();
        expect(textsFrom(caseId)).toEqual(sent);
        const after = await shown(page);
        expect(after.mine.map(([body]) => body)).toEqual(sent);
        expect(after.theirs).toEqual(['Reply 1', 'Reply 2']);
        expect(problems.filter((x) => !x.includes('WebSocket'))).toEqual([]);
      } finally {
        await context.close();
        await proxy.close();
      }
    },
    120_000,
  );
});

describe('the contact page and a malicious team device', () => {
  it('shows malformed content as text or not at all, keeps working, and counts the drops', async () => {
    received.length = 0;
    const { context, page, problems } = await openPage(relay.url, 'en');
    // A contact run by the client core in Node beside the page: its counters are read here.
    const who = DeviceIdentity.generate(p);
    const node = new ContactConversation({
      p,
      organizationKey: org.publicKey,
      identity: who,
      fetchProfile: async () =>
        new Uint8Array(await (await fetch(`${relay.url}/v1/org/profile`)).arrayBuffer()),
      relay: {
        url: relay.wsUrl,
        transport: wsTransport(),
        solvePow: inlinePowSolver({
          sha256: (d) => p.sha256(d),
          clock: systemClock(),
          randomBytes: (n) => p.random.bytes(n),
        }),
      },
    });
    const nodeTexts: string[] = [];
    const unreadable: string[] = [];
    node.on('message', (m) => {
      if (m.message.type === 'text') nodeTexts.push(m.message.body);
    });
    node.on('unreadable', (e) => unreadable.push(e.reason));
    try {
      const pageCase = await reachChat(page, 'Hello from the page');
      await node.start();
      await node.sendText('Hello from Node');
      await until(() => textsFrom(undefined).includes('Hello from Node'), SETTLE_MS);
      const nodeCase = received.find(
        (m) => m.message.type === 'text' && m.message.body === 'Hello from Node',
      )!.case!;

      const html =
        '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>';
      const bidi = 'file \u202Egnp.exe\u202C and \u2067isolated\u2069 end';
      const longWord = 'Щ'.repeat(MAX_TEXT_CHARS);
      const id = () => toBase64url(p.random.bytes(16));
      const canonical = (o: Record<string, unknown>) =>
        new TextEncoder().encode(
          JSON.stringify(
            Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))),
          ),
        );
      const malformed = (caseId: string) => [
        // Over the limit by one character.
        canonical({
          v: 1,
          id: id(),
          ts: Date.now(),
          type: 'text',
          case: caseId,
          body: 'x'.repeat(MAX_TEXT_CHARS + 1),
        }),
        // Control characters (a bell, an escape sequence, a NUL).
        canonical({
          v: 1,
          id: id(),
          ts: Date.now(),
          type: 'text',
          case: caseId,
          body: 'hi\u0007\u001b[31m\u0000',
        }),
        // A type no version of the protocol has.
        canonical({ v: 1, id: id(), ts: Date.now(), type: 'html', case: caseId, body: html }),
        // Not JSON at all.
        new TextEncoder().encode('<script>alert(1)</script>'),
      ];
      for (const caseId of [pageCase, nodeCase]) {
        await team.sendText(caseId, html);
        await team.sendText(caseId, bidi);
        await team.sendText(caseId, longWord);
        for (const bytes of malformed(caseId)) await team.sendPlaintext(caseId, bytes);
        // An envelope that is not one (random bytes of a plausible size).
        await team.sendEnvelope(caseId, p.random.bytes(1_024));
        await team.sendText(caseId, 'A normal reply after all that');
      }

      // The page: what was well-formed is shown as text, the rest not at all, and it goes on.
      await page.waitForSelector('.message.theirs >> text=A normal reply after all that', {
        timeout: SETTLE_MS,
      });
      const dom = await page.evaluate(() => ({
        theirs: [...document.querySelectorAll('.message.theirs .body')].map((b) => ({
          text: b.textContent,
          children: b.children.length,
          dir: b.getAttribute('dir'),
        })),
        injected: document.querySelectorAll('.messages img, .messages script, .messages b').length,
        pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
        linkText: document.querySelector('.link')?.textContent,
      }));
      expect(dom.theirs.map((b) => b.text)).toEqual([
        html,
        bidi,
        longWord,
        'A normal reply after all that',
      ]);
      expect(dom.theirs.every((b) => b.children === 0)).toBe(true);
      // Bidirectional controls stay inside their message (isolated, direction from the text).
      expect(dom.theirs.every((b) => b.dir === 'auto')).toBe(true);
      expect(dom.injected).toBe(0);
      expect(dom.pwned).toBeNull();
      expect(dom.linkText).toBe('Connected');
      expect(await noHorizontalScroll(page)).toBe(true);
      await shoot(page, 'malicious-peer-en');
      expect(await seriousAxeViolations(page)).toEqual([]);
      // Still working: the person writes, the team gets it, the reply shows.
      await sendFromPage(page, 'Still here');
      await until(() => textsFrom(pageCase).includes('Still here'), SETTLE_MS);
      await allDelivered(page, 'en');
      expect(problems.filter((x) => !x.includes('WebSocket'))).toEqual([]);

      // The client core: the same content, counted by what it did with it.
      await until(() => nodeTexts.includes('A normal reply after all that'), SETTLE_MS);
      await node.idle();
      expect(nodeTexts).toEqual([html, bidi, longWord, 'A normal reply after all that']);
      expect(node.status.drops).toEqual({ msg_malformed: 2, msg_unknown_type: 1, msg_not_json: 1 });
      expect(unreadable).toHaveLength(5);
      expect(
        unreadable.filter(
          (r) => !['msg_malformed', 'msg_unknown_type', 'msg_not_json'].includes(r),
        ),
      ).toHaveLength(1);
      // The inbox's counters (what a health view shows) agree: five acked without being shown.
      const counted = Object.values(node.status.client.inbox?.unreadable ?? {});
      expect(counted.reduce((a, b) => a + b, 0)).toBe(5);
    } finally {
      node.close();
      await context.close();
    }
  }, 180_000);
});

// --- keyboard, focus, targets, text size -------------------------------------------------------

interface Focused {
  readonly handle: ElementHandle<Element>;
  readonly style: string;
}

/** The outline and shadow of an element: what a focus indicator changes. */
function ringOf(handle: ElementHandle<Element>): Promise<string> {
  return handle.evaluate((el) => {
    const s = getComputedStyle(el);
    return `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor} | ${s.boxShadow}`;
  });
}

/**
 * Presses `key` and checks the element that has the focus then: it is in view, not hidden
 * under the sticky quick-exit bar, and has a focus indicator (an outline or a shadow that it
 * loses when the focus moves on, checked at the next step).
 */
async function press(page: Page, key: string, last: { value: Focused | null }): Promise<string> {
  await page.keyboard.press(key);
  const handle = (
    await page.evaluateHandle(() => document.activeElement ?? document.body)
  ).asElement() as ElementHandle<Element> | null;
  if (handle === null) throw new Error(`nothing focused after ${key}`);
  const info = await handle.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const target = el.closest('label') ?? el;
    const x = Math.min(Math.max(r.left + r.width / 2, 0), window.innerWidth - 1);
    const y = Math.min(Math.max(r.top + r.height / 2, 0), window.innerHeight - 1);
    const top = document.elementFromPoint(x, y);
    return {
      what: `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}.${el.className} ${(el.textContent ?? '').trim().slice(0, 30)}`,
      body: el === document.body,
      inView:
        r.bottom > 0 && r.top < window.innerHeight && r.right > 0 && r.left < window.innerWidth,
      covered: top !== null && top !== el && !el.contains(top) && !target.contains(top),
    };
  });
  if (info.body) return 'body';
  expect({ what: info.what, inView: info.inView, covered: info.covered }).toEqual({
    what: info.what,
    inView: true,
    covered: false,
  });
  const style = await ringOf(handle);
  expect({
    what: info.what,
    ring: /none 0px|^none/.test(style) && style.endsWith('| none'),
  }).toEqual({
    what: info.what,
    ring: false,
  });
  const before = last.value;
  if (before !== null && !(await before.handle.evaluate((el) => el === document.activeElement))) {
    const connected = await before.handle.evaluate((el) => el.isConnected);
    if (connected) {
      // The indicator goes with the focus: it was the focus's, not the element's own look.
      expect(await ringOf(before.handle)).not.toBe(before.style);
    }
  }
  last.value = { handle, style };
  return info.what;
}

/** Tabs (up to `max` times) until the focused element matches `selector`. */
async function tabTo(
  page: Page,
  selector: string,
  last: { value: Focused | null },
  key = 'Tab',
  max = 30,
): Promise<void> {
  const seen: string[] = [];
  for (let i = 0; i < max; i++) {
    seen.push(await press(page, key, last));
    if (await page.evaluate((s) => document.activeElement?.matches(s) === true, selector)) return;
  }
  throw new Error(`${selector} not reached by ${key}: ${seen.join(' → ')}`);
}

/** Every control on the screen smaller than 44 × 44 px (a box or radio counts with its label). */
function smallTargets(page: Page): Promise<string[]> {
  return page.evaluate((min) => {
    const out: string[] = [];
    for (const el of document.querySelectorAll<HTMLElement>(
      'button, input, textarea, select, a[href], summary',
    )) {
      // A radio or checkbox is hit through its label; so is an input hidden behind the label
      // that stands for it (the file picker's "Choose a file", in the page's language).
      const hiddenBehindLabel =
        el instanceof HTMLInputElement &&
        getComputedStyle(el).opacity === '0' &&
        el.labels !== null &&
        el.labels.length > 0;
      const box =
        el instanceof HTMLInputElement && (el.type === 'radio' || el.type === 'checkbox')
          ? (el.closest('label') ?? el)
          : hiddenBehindLabel
            ? el.labels[el.labels.length - 1]!
            : el;
      const r = box.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.width < min || r.height < min) {
        out.push(
          `${el.tagName.toLowerCase()}.${el.className} ${Math.round(r.width)}×${Math.round(r.height)}`,
        );
      }
    }
    return out;
  }, MIN_TARGET_PX);
}

/**
 * The system's text size, as Chromium's default font size (set over CDP, which the page's CSP
 * does not govern). Set again before each check: Chromium drops it along the way (a full-page
 * screenshot resets the emulation), so each screen asserts it took.
 */
type TextSize = (textSize: number) => Promise<void>;

function textSizer(context: BrowserContext, page: Page): TextSize {
  let cdp: Awaited<ReturnType<BrowserContext['newCDPSession']>> | undefined;
  return async (textSize) => {
    cdp ??= await context.newCDPSession(page);
    await cdp.send('Page.setFontSizes', {
      fontSizes: { standard: (16 * textSize) / 100, fixed: (13 * textSize) / 100 },
    });
    const rootPx = await page.evaluate(() =>
      parseFloat(getComputedStyle(document.documentElement).fontSize),
    );
    // 112.5 % of the default: 18 px, or 36 px at 200 %.
    expect(rootPx).toBe((18 * textSize) / 100);
  };
}

/** The checks every screen passes: targets, no horizontal scrolling, a screenshot. */
async function checkScreen(
  page: Page,
  name: string,
  setTextSize: TextSize,
  textSize: number,
): Promise<void> {
  await setTextSize(textSize);
  expect({ name, small: await smallTargets(page) }).toEqual({ name, small: [] });
  expect({ name, fits: await noHorizontalScroll(page) }).toEqual({ name, fits: true });
  if (textSize === 100) {
    await shoot(page, name);
    return;
  }
  // page-checks' full-page shot would render at the default size: the whole page is shot
  // through a viewport as tall as the page instead, the text size set again for it.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: new URL(`${name}.png`, SCREENS_DIR).pathname });
  const viewport = page.viewportSize()!;
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: viewport.width, height });
  await setTextSize(textSize);
  await page.screenshot({ path: new URL(`${name}-full.png`, SCREENS_DIR).pathname });
  await page.setViewportSize(viewport);
  await setTextSize(textSize);
}

describe('the contact page by keyboard alone', () => {
  it.each([
    ['ru', 100],
    ['ru', 200],
    ['en', 200],
  ] as const)(
    '(%s, text at %i %%) welcome to a sent first message: visible focus, 44 px targets, 360 px',
    async (lang, textSize) => {
      received.length = 0;
      const { context, page, problems } = await openPage(relay.url, lang);
      try {
        const setTextSize = textSizer(context, page);
        const tag = `kb-${lang}-${textSize}`;
        const last = { value: null as Focused | null };

        await checkScreen(page, `${tag}-welcome`, setTextSize, textSize);
        // The way back in, and back out of it.
        await tabTo(page, 'button[data-action="resume"]', last);
        await press(page, 'Enter', last);
        await page.waitForSelector('main[data-screen="resume"]');
        await checkScreen(page, `${tag}-resume`, setTextSize, textSize);
        await tabTo(page, '#codename-input', last);
        await tabTo(page, 'main button.secondary', last);
        await press(page, 'Enter', last);
        await page.waitForSelector('main[data-screen="welcome"]');
        // The fingerprint check opens by keyboard too.
        await tabTo(page, 'details.check summary', last);
        await press(page, 'Enter', last);
        expect(await page.getAttribute('details.check', 'open')).not.toBeNull();
        await tabTo(page, 'button[data-action="start"]', last, 'Shift+Tab');
        await press(page, 'Enter', last);
        await page.waitForSelector('main[data-screen="intake"]');
        await checkScreen(page, `${tag}-intake`, setTextSize, textSize);
        await tabTo(page, 'input[name="q-safe_now"]', last);
        await press(page, 'Space', last);
        expect(await page.isChecked('input[name="q-safe_now"][value="yes"]')).toBe(true);
        await tabTo(page, 'input[name="q-needs"]', last);
        await press(page, 'Space', last);
        await tabTo(page, 'main button[type="submit"]', last);
        await press(page, 'Enter', last);
        await page.waitForSelector('main[data-screen="message"]');
        await checkScreen(page, `${tag}-message`, setTextSize, textSize);
        const words = lang === 'ru' ? 'Мне нужна помощь' : 'I need help';
        await tabTo(page, '#first-message', last);
        await page.keyboard.type(words);
        await tabTo(page, 'main button[type="submit"]', last);
        await press(page, 'Enter', last);
        await page.waitForSelector('main[data-screen="codename"]', { timeout: SETTLE_MS });
        await checkScreen(page, `${tag}-codename`, setTextSize, textSize);
        const codename = await page.locator('.codename li').allTextContents();
        await tabTo(page, 'main button.primary', last);
        await press(page, 'Enter', last);
        await page.waitForSelector('main[data-screen="confirm"]');
        await checkScreen(page, `${tag}-confirm`, setTextSize, textSize);
        const positions = (await page.getAttribute('form[data-positions]', 'data-positions'))!
          .split(',')
          .map(Number);
        await tabTo(page, '#confirm-input', last);
        await page.keyboard.type(positions.map((i) => codename[i]!).join(' '));
        await press(page, 'Enter', last);
        await page.waitForSelector('main[data-screen="chat"]');
        await until(() => textsFrom(undefined).includes(words), SETTLE_MS);
        await allDelivered(page, lang);
        // The chat by keyboard: a second message, sent with the Send button.
        await tabTo(page, '#chat-input', last);
        await page.keyboard.type(lang === 'ru' ? 'Второе' : 'Second');
        await tabTo(page, 'main form button[type="submit"]', last);
        await press(page, 'Enter', last);
        await until(
          () => textsFrom(undefined).includes(lang === 'ru' ? 'Второе' : 'Second'),
          SETTLE_MS,
        );
        await checkScreen(page, `${tag}-chat`, setTextSize, textSize);
        // "Delete my conversation" asks once more; cancelled by keyboard.
        await tabTo(page, '.delete button', last);
        await press(page, 'Enter', last);
        await page.waitForSelector('.delete.asking');
        await checkScreen(page, `${tag}-delete`, setTextSize, textSize);
        await tabTo(page, '.delete.asking button.secondary', last);
        await press(page, 'Space', last);
        await page.waitForSelector('.delete:not(.asking)');
        // And back up the page with Shift+Tab to the quick exit, each step visible.
        await tabTo(page, 'button.exit', last, 'Shift+Tab', 40);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    120_000,
  );
});
