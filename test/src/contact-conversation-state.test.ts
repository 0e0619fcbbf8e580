/**
 * `ContactConversation` with its state on the relay (`ContactOptions.state`), against a relay
 * process on a real redis-server, real WebSockets and `TeamDevice`s: a contact sends, is
 * closed, and a fresh conversation restored from the codename reads what the team queued
 * meanwhile and goes on; two restores of one saved state both send, and the team reads every
 * message (none unreadable, no (key, nonce) sealed twice); a save that fails sends nothing; a
 * save cut off by a lost socket is asked again and its message goes once; a wrong codename and
 * a rolled-back profile are refused before anything is sent.
 */
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import {
  ContactConversation,
  ContactStateErrorCode,
  TeamDevice,
  inlinePowSolver,
  systemClock,
  type ReceivedMessage,
} from '@passage/shared/client/index';
import { CaseReplica } from '@passage/shared/client/conversation/case-replica';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import {
  ENGLISH_CODENAME_LIST,
  deriveCodenameKeys,
  generateCodename,
  identityFromCodename,
} from '@passage/shared/crypto/codename';
import { toHex } from '@passage/shared/crypto/encoding';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { organizationKey, type OrganizationKey } from '@passage/testing/crypto-fixtures';
import { signedProfile } from '@passage/testing/org-fixtures';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { startTcpProxy } from '@passage/testing/tcp-proxy';
import { until } from '@passage/testing/wait';
import { wsTransport } from '@passage/testing/ws-transport';

let p: Primitives;
/** The contacts' primitives: the real backend, recording every XChaCha20-Poly1305 seal. */
let recording: Primitives;
let seals: string[] = [];
let org: OrganizationKey;
let redis: RedisServer;
let relay: RelayProcess;
const endpoints: { close(): void }[] = [];

beforeAll(async () => {
  p = await loadPrimitives({ prefer: 'libsodium', strict: true });
  recording = Object.assign(Object.create(p) as Primitives, {
    xchacha20poly1305Seal(k: Uint8Array, n: Uint8Array, pt: Uint8Array, ad: Uint8Array) {
      seals.push(`${toHex(k)}:${toHex(n)}`);
      return p.xchacha20poly1305Seal(k, n, pt, ad);
    },
  });
  org = organizationKey(p);
  redis = await startRedis();
  relay = await startRelay({ REDIS_URL: redis.url });
}, 60_000);

afterEach(() => {
  for (const e of endpoints.splice(0)) e.close();
});

afterAll(async () => {
  await stopAllRelays();
  await redis.stop();
});

const relayOptions = () => ({
  url: relay.wsUrl,
  transport: wsTransport(),
  timing: { backoffInitialMs: 50, backoffMaxMs: 500, heartbeatIntervalMs: 2_000 },
  solvePow: inlinePowSolver({
    sha256: (d) => p.sha256(d),
    clock: systemClock(),
    randomBytes: (n) => p.random.bytes(n),
  }),
});

interface Team {
  readonly devices: { t: TeamDevice; read: ReceivedMessage[]; unreadable: string[] }[];
  /** The profile served (a test may serve another version). */
  served: Uint8Array;
}

async function team(count: number, version = 1): Promise<Team> {
  const ids = Array.from({ length: count }, () => DeviceIdentity.generate(p));
  const now = Math.floor(Date.now() / 1000);
  const out: Team = {
    devices: [],
    served: signedProfile(
      p,
      org.seed,
      ids.map((d) => d.publicIdentity),
      now,
      { version },
    ),
  };
  for (const device of ids) {
    const t = new TeamDevice({
      p,
      organizationKey: org.publicKey,
      fetchProfile: () => Promise.resolve(out.served),
      store: MemoryDeviceStore.create(p, device, now),
      replica: new CaseReplica(device.publicIdentity.id),
      relay: relayOptions(),
    });
    endpoints.push(t);
    const read: ReceivedMessage[] = [];
    const unreadable: string[] = [];
    // What the contact sent (a colleague's reply is copied to the team too).
    t.on('message', (m) => {
      if (m.origin.from === 'contact') read.push(m);
    });
    t.on('unreadable', (u) => unreadable.push(u.reason));
    let published = false;
    t.prekeys.events.on('published', () => (published = true));
    await t.start();
    await until(() => published);
    out.devices.push({ t, read, unreadable });
  }
  return out;
}

/** A contact's page from its codename, as in a fresh process. */
function contact(
  t: Team,
  codename: string,
  mode: 'new' | 'restore',
  relay: ReturnType<typeof relayOptions> = relayOptions(),
): { c: ContactConversation; replies: string[]; unreadable: string[] } {
  const keys = deriveCodenameKeys(recording, codename);
  const c = new ContactConversation({
    p: recording,
    organizationKey: org.publicKey,
    fetchProfile: () => Promise.resolve(t.served),
    identity: identityFromCodename(recording, keys),
    relay,
    state: { mailboxKey: keys.mailboxKey, mode },
  });
  endpoints.push(c);
  const replies: string[] = [];
  const unreadable: string[] = [];
  c.on('message', (m) => {
    if (m.message.type === 'text') replies.push(m.message.body);
  });
  c.on('unreadable', (u) => unreadable.push(u.reason));
  return { c, replies, unreadable };
}

const bodies = (t: Team['devices'][number]) =>
  t.read.map((m) => (m.message.type === 'text' ? m.message.body : m.message.type));

const transcriptOf = (c: ContactConversation) =>
  c.savedState!.conversation.transcript.map((e) =>
    e.message.type === 'text' ? e.message.body : e.message.type,
  );

const codeOf = async (promise: Promise<unknown>): Promise<string | undefined> => {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

it('restores from the codename in a fresh conversation, reads what was queued meanwhile, and goes on', async () => {
  const t = await team(2);
  const codename = 'abacus abdomen abdominal abide abiding ability ablaze';
  const first = contact(t, codename, 'new');
  await first.c.start();
  await first.c.sendText('I need help.');
  await until(() => t.devices.every((d) => d.read.length === 1));
  const caseId = first.c.self.id;
  await t.devices[0]!.t.sendText(caseId, 'We are here.');
  await until(() => first.replies.length === 1);
  await first.c.idle();
  // Stored for every device: the saved outbox is empty again.
  await until(() => first.c.savedState!.conversation.outbox.length === 0);
  first.c.close();

  // Queued while the contact is away.
  await t.devices[0]!.t.sendText(caseId, 'Are you safe?');
  await t.devices[1]!.t.sendText(caseId, 'A second coordinator here.');

  const back = contact(t, codename, 'restore');
  await back.c.start();
  await until(() => back.replies.length === 2);
  expect(back.replies.sort()).toEqual(['A second coordinator here.', 'Are you safe?']);
  expect(transcriptOf(back.c).slice(0, 2)).toEqual(['I need help.', 'We are here.']);
  expect(transcriptOf(back.c).slice(2).sort()).toEqual([
    'A second coordinator here.',
    'Are you safe?',
  ]);
  // The profile version was kept in the state.
  expect(back.c.savedState!.conversation.profileVersion).toBe(1);
  expect(t.devices.every((d) => back.c.savedState!.needsFreshSession(d.t.self))).toBe(true);
  await back.c.sendText('I am safe for now.');
  await until(() => t.devices.every((d) => d.read.length === 2));
  expect(t.devices.map(bodies)).toEqual([
    ['I need help.', 'I am safe for now.'],
    ['I need help.', 'I am safe for now.'],
  ]);
  expect(t.devices.flatMap((d) => d.unreadable)).toEqual([]);
  expect(t.devices.some((d) => back.c.savedState!.needsFreshSession(d.t.self))).toBe(false);
  // The team answers on the fresh session, and the restored contact reads it.
  await t.devices[1]!.t.sendText(caseId, 'Good.');
  await until(() => back.replies.length === 3);
  expect(back.unreadable).toEqual([]);
  // What the contact read was either saved before it was acked or, if that save had not
  // finished (a slow relay), is still queued and comes again: a third copy has it all.
  await back.c.idle();
  back.c.close();
  const third = contact(t, codename, 'restore');
  await third.c.start();
  await until(() => transcriptOf(third.c).includes('Good.'));
  expect(transcriptOf(third.c)).toContain('I am safe for now.');
  expect(transcriptOf(third.c).filter((b) => b === 'Good.')).toHaveLength(1);
}, 90_000);

it('two restores of one saved state both send: the team reads every message, none unreadable, no key sealed under twice', async () => {
  const t = await team(2);
  const codename = 'yahoo yam yanking yapping yard yarn yeah';
  seals = [];
  const first = contact(t, codename, 'new');
  await first.c.start();
  await first.c.sendText('m1');
  await until(() => t.devices.every((d) => d.read.length === 1));
  await t.devices[0]!.t.sendText(first.c.self.id, 'hello from the team');
  await until(() => first.replies.length === 1);
  await first.c.idle();
  first.c.close();

  // A reply queued meanwhile: the tab that reads it gets a sending chain on a restored session
  // (a ratchet step), which the other tab's copy cannot know of.
  await t.devices[1]!.t.sendText(first.c.self.id, 'queued for the tabs');
  // Two tabs open the same saved state before either writes.
  const tab1 = contact(t, codename, 'restore');
  const tab2 = contact(t, codename, 'restore');
  await tab1.c.start();
  await tab2.c.start();
  await until(() => tab1.replies.length + tab2.replies.length === 1);
  await tab1.c.sendText('m2 from tab 1');
  await tab1.c.sendText('m3 from tab 1');
  await tab2.c.sendText('m4 from tab 2');
  await tab1.c.sendText('m5 from tab 1');
  await tab2.c.sendText('m6 from tab 2');
  await until(() => t.devices.every((d) => d.read.length === 6));
  for (const d of t.devices) {
    expect(bodies(d).sort()).toEqual(
      [
        'm1',
        'm2 from tab 1',
        'm3 from tab 1',
        'm4 from tab 2',
        'm5 from tab 1',
        'm6 from tab 2',
      ].sort(),
    );
    expect(d.unreadable).toEqual([]);
  }
  expect(new Set(seals).size).toBe(seals.length);
  // The saves merged both tabs' transcripts.
  await tab1.c.idle();
  await tab2.c.idle();
  const later = contact(t, codename, 'restore');
  await later.c.start();
  expect(transcriptOf(later.c)).toEqual(
    expect.arrayContaining(['m1', 'hello from the team', 'm4 from tab 2', 'm6 from tab 2']),
  );
}, 90_000);

it('sends nothing when the save before the send fails (the conversation was deleted meanwhile)', async () => {
  const t = await team(1);
  const codename = 'zebra zero zesty zigzagged zipfile zipping zippy';
  const tab = contact(t, codename, 'new');
  await tab.c.start();
  await tab.c.sendText('before the delete');
  await until(() => t.devices[0]!.read.length === 1);
  const other = contact(t, codename, 'restore');
  await other.c.start();
  await other.c.deleteConversation();
  expect(other.c.status.client.connection.state).toBe('closed');

  const sent: unknown[] = [];
  tab.c.on('sent', (s) => sent.push(s));
  const outboxBefore = tab.c.status.client.outbox;
  expect(await codeOf(tab.c.sendText('after the delete'))).toBe(ContactStateErrorCode.DELETED);
  expect(sent).toEqual([]);
  expect(tab.c.status.client.outbox).toEqual(outboxBefore);
  expect(transcriptOf(tab.c)).toEqual(['before the delete']);
  // Nothing reached the team, and the codename now finds nothing.
  await t.devices[0]!.t.idle();
  expect(bodies(t.devices[0]!)).toEqual(['before the delete']);
  const gone = contact(t, codename, 'restore');
  expect(await codeOf(gone.c.start())).toBe(ContactStateErrorCode.NOT_FOUND);
}, 90_000);

it('sends once when the socket is cut while the save before the send is on its way (the send failed and its message was lost)', async () => {
  const t = await team(1);
  const proxy = await startTcpProxy(relay.port);
  try {
    const tab = contact(t, generateCodename(p, { list: ENGLISH_CODENAME_LIST }), 'new', {
      ...relayOptions(),
      url: `ws://127.0.0.1:${proxy.port}/v1/ws`,
      // No heartbeat in the way: the next bytes the contact writes are the save's.
      timing: { backoffInitialMs: 50, backoffMaxMs: 500, heartbeatIntervalMs: 60_000 },
    });
    await tab.c.start();
    const first = await tab.c.sendText('first');
    await until(() => tab.c.delivery(first.id)?.state === 'delivered');
    await tab.c.idle();
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Dropped before the relay had the put, then passed on with the answer lost.
    for (const forward of [false, true]) {
      const cut = proxy.cutAtClientChunk(1, forward);
      const sent = await tab.c.sendText(`cut ${forward ? 'after' : 'before'} the relay had it`);
      expect(await cut).toBeGreaterThan(0);
      await until(() => tab.c.delivery(sent.id)?.state === 'delivered');
      await tab.c.idle();
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await t.devices[0]!.t.idle();
    expect(bodies(t.devices[0]!)).toEqual([
      'first',
      'cut before the relay had it',
      'cut after the relay had it',
    ]);
    expect(transcriptOf(tab.c)).toEqual([
      'first',
      'cut before the relay had it',
      'cut after the relay had it',
    ]);
    expect(t.devices[0]!.unreadable).toEqual([]);
  } finally {
    await proxy.close();
  }
}, 90_000);

it('refuses a wrong codename as one that never saved, and a profile older than the saved one, before sending', async () => {
  const t = await team(1, 2);
  const codename = 'unbent unbiased unbitten unblended unblessed unblock unbolted';
  const first = contact(t, codename, 'new');
  await first.c.start();
  await first.c.sendText('on version 2');
  await first.c.idle();
  first.c.close();
  const wrong = contact(
    t,
    'unbent unbiased unbitten unblended unblessed unblock unbiased',
    'restore',
  );
  expect(await codeOf(wrong.c.start())).toBe(ContactStateErrorCode.NOT_FOUND);
  // The relay now serves version 1, validly signed: a rollback below what the state saw.
  t.served = signedProfile(p, org.seed, [t.devices[0]!.t.self], Math.floor(Date.now() / 1000), {
    version: 1,
  });
  const back = contact(t, codename, 'restore');
  expect(await codeOf(back.c.start())).toBe('profile_rollback');
  expect(await codeOf(back.c.sendText('never sent'))).toBeDefined();
  expect(bodies(t.devices[0]!)).toEqual(['on version 2']);
}, 90_000);
