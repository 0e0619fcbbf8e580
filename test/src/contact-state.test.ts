/**
 * The returning contact against the real relay (a relay process on a real redis-server, real
 * WebSockets, real sessions with two coordinator devices): a contact saves, a fresh client with
 * the codename restores and reads what was queued meanwhile and goes on; a wrong codename; a
 * deleted conversation; a stale restore (two tabs with one codename) that never uses a message
 * key twice; and the proof-of-work that creating a state costs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import { decodePrekeyBundle, publicationOf } from '@passage/shared/crypto/bundle';
import { fanOut } from '@passage/shared/crypto/fanout';
import { deriveCodenameKeys, identityFromCodename } from '@passage/shared/crypto/codename';
import { toHex } from '@passage/shared/crypto/encoding';
import { DeviceIdentity, type PublicIdentity } from '@passage/shared/crypto/identity';
import { MAX_ARCHIVED_SESSIONS } from '@passage/shared/crypto/limits';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { SessionCipher } from '@passage/shared/crypto/session-cipher';
import { ContactStateError, ContactStateErrorCode } from '@passage/shared/client/contact-state';
import { ContactStateStore } from '@passage/shared/client/contact-state-store';
import {
  decodeConversationMessage,
  encodeConversationMessage,
  newConversationId,
  type TextMessage,
} from '@passage/shared/client/conversation/messages';
import { PassageClient, inlinePowSolver, systemClock } from '@passage/shared/client/index';
import { mailboxIdFromPublicKey } from '@passage/shared/protocol/mailbox';
import { startInProcessRelay } from '@passage/testing/in-process';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { until } from '@passage/testing/wait';
import { wsTransport } from '@passage/testing/ws-transport';

const NOW_SECONDS = Math.floor(Date.now() / 1000);
const CODENAME = 'abacus abdomen abdominal abide abiding ability ablaze';
const OTHER_CODENAME = 'abacus abdomen abdominal abide abiding ability able';

let p: Primitives;
/** Every (key, nonce) an XChaCha20-Poly1305 seal of a contact's copy used, as hex. */
let seals: string[] = [];
/** The contact's primitives: the real backend, recording every seal. */
let recording: Primitives;
const clients: PassageClient[] = [];

beforeAll(async () => {
  p = await loadPrimitives({ prefer: 'libsodium', strict: true });
  recording = Object.assign(Object.create(p) as Primitives, {
    xchacha20poly1305Seal(k: Uint8Array, n: Uint8Array, pt: Uint8Array, ad: Uint8Array) {
      seals.push(`${toHex(k)}:${toHex(n)}`);
      return p.xchacha20poly1305Seal(k, n, pt, ad);
    },
  });
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

const mailboxOf = (who: PublicIdentity) =>
  mailboxIdFromPublicKey(who.signingKey, (d) => p.sha256(d));
const timing = { backoffInitialMs: 50, backoffMaxMs: 500, heartbeatIntervalMs: 2_000 };
const solvePow = () =>
  inlinePowSolver({
    sha256: (d) => p.sha256(d),
    clock: systemClock(),
    randomBytes: (n) => p.random.bytes(n),
  });

/** A coordinator device that reads and records every text it is sent. */
interface Coordinator {
  readonly pub: PublicIdentity;
  readonly cipher: SessionCipher;
  readonly client: PassageClient;
  /** Texts read, in order (id and body), and the reasons of unreadable envelopes. */
  readonly read: { id: string; body: string }[];
  readonly unreadable: string[];
  bundle(): ReturnType<typeof decodePrekeyBundle>;
}

async function coordinator(url: string): Promise<Coordinator> {
  const identity = DeviceIdentity.generate(p);
  const store = MemoryDeviceStore.create(p, identity, NOW_SECONDS);
  const cipher = new SessionCipher(p, store);
  const read: { id: string; body: string }[] = [];
  const unreadable: string[] = [];
  const client = new PassageClient({
    url,
    transport: wsTransport(),
    primitives: p,
    timing,
    identity: { signingKey: identity.publicIdentity.signingKey, sign: (m) => identity.sign(m) },
    onEnvelope: (bytes) => {
      try {
        const { plaintext } = cipher.decrypt(bytes);
        const decoded = decodeConversationMessage(plaintext);
        if (decoded.ok && decoded.message.type === 'text') {
          read.push({ id: decoded.message.id, body: decoded.message.body });
        }
        return { kind: 'accepted' };
      } catch (error) {
        const reason = (error as { code?: string }).code ?? 'unknown';
        unreadable.push(reason);
        return { kind: 'unreadable', reason };
      }
    },
  });
  clients.push(client);
  await client.connect();
  await client.ready();
  return {
    pub: identity.publicIdentity,
    cipher,
    client,
    read,
    unreadable,
    bundle() {
      const pub = publicationOf(store, store.addOneTimePrekeys(1));
      return decodePrekeyBundle(p, { ...pub, oneTime: pub.oneTime[0]! });
    },
  };
}

/**
 * A contact's page, following the rules of contact-state-store.ts: commit and save before an
 * envelope leaves; decrypt, commit, add and save before the ack; after a restore, a fresh
 * handshake with each coordinator device before the first send to it.
 */
interface ContactPage {
  readonly client: PassageClient;
  readonly pub: PublicIdentity;
  state(): ContactStateStore;
  send(body: string): Promise<string>;
  /** Replies read (bodies). */
  readonly replies: string[];
  /** The reasons of envelopes it could not read. */
  readonly unreadable: string[];
  /** Deliveries handed to it, read or not. */
  readonly delivered: { count: number };
}

async function openContact(
  url: string,
  team: readonly Coordinator[],
  codename: string,
  mode: 'new' | 'restore',
  reuse?: ContactStateStore,
  /** Never answer a delivery (it stays in flight, unacknowledged); count it in `delivered`. */
  hold = false,
): Promise<ContactPage> {
  // The codename's keys, as in a fresh process: Argon2id runs whatever happens next.
  const keys = deriveCodenameKeys(recording, codename);
  const identity = identityFromCodename(recording, keys);
  const pub = identity.publicIdentity;
  const mailbox = mailboxOf(pub);
  let store: ContactStateStore | undefined = reuse;
  let ready!: () => void;
  const restored = new Promise<void>((resolve) => (ready = resolve));
  const replies: string[] = [];
  const unreadable: string[] = [];
  const delivered = { count: 0 };
  const client = new PassageClient({
    url,
    transport: wsTransport(),
    primitives: p,
    timing,
    solvePow: solvePow(),
    identity: { signingKey: pub.signingKey, sign: (m) => identity.sign(m) },
    onEnvelope: async (bytes) => {
      delivered.count++;
      if (hold) await new Promise<never>(() => undefined);
      // Delivery starts at authentication; nothing is read before the state is back.
      await restored;
      const s = store!;
      try {
        const cipher = new SessionCipher(recording, s.device);
        const { plaintext, sender } = cipher.decrypt(bytes);
        const decoded = decodeConversationMessage(plaintext);
        if (decoded.ok && decoded.message.type === 'text') {
          s.addEntry({ from: sender.id, message: decoded.message, receipt: 'none' });
          replies.push(decoded.message.body);
        }
        await s.save();
        return { kind: 'accepted' };
      } catch (error) {
        const reason = (error as { code?: string }).code ?? 'unknown';
        unreadable.push(reason);
        return { kind: 'unreadable', reason };
      }
    },
  });
  clients.push(client);
  await client.connect();
  await client.ready();
  const options = { primitives: recording, mailboxKey: keys.mailboxKey, mailbox, port: client };
  store?.usePort(client);
  if (store === undefined) {
    store =
      mode === 'new'
        ? ContactStateStore.create(
            options,
            MemoryDeviceStore.createInitiatorOnly(recording, identity),
          )
        : await ContactStateStore.restore(options, { signingKey: pub.signingKey });
  }
  ready();
  const s = store;
  return {
    client,
    pub,
    replies,
    unreadable,
    delivered,
    state: () => s,
    async send(body) {
      const message: TextMessage = {
        v: 1,
        type: 'text',
        id: newConversationId(p.random),
        ts: Date.now(),
        body,
      };
      const fenced = team.filter((c) => s.needsFreshSession(c.pub));
      s.startFreshSessions(fenced.map((c) => c.bundle()));
      const byAddress = new Map(team.map((c) => [c.pub.address, c]));
      const { envelopes, transaction } = fanOut(
        recording,
        s.device,
        team.map((c) => c.pub),
        encodeConversationMessage(message),
        (d) => byAddress.get(d.address)!.bundle(),
      );
      s.device.commit(transaction);
      s.addEntry({ from: 'contact', message, receipt: 'none' });
      s.addToOutbox(message.id);
      await s.save(); // before any envelope leaves
      for (const e of envelopes) await client.send(mailboxOf(e.recipient), e.envelope);
      return message.id;
    },
  };
}

async function reply(c: Coordinator, to: PublicIdentity, body: string): Promise<void> {
  const message: TextMessage = {
    v: 1,
    type: 'text',
    id: newConversationId(p.random),
    ts: Date.now(),
    body,
    case: to.id,
  };
  await c.client.send(mailboxOf(to), c.cipher.encryptFor(to, encodeConversationMessage(message)));
}

const codeOf = async (promise: Promise<unknown>): Promise<string | undefined> => {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe('on a relay process with Redis', () => {
  let redis: RedisServer;
  let relay: RelayProcess;
  beforeAll(async () => {
    redis = await startRedis();
    relay = await startRelay({ REDIS_URL: redis.url });
  }, 60_000);
  afterAll(async () => {
    await stopAllRelays();
    await redis.stop();
  });

  it('restores with the codename in a fresh client, reads what was queued meanwhile, and goes on', async () => {
    const team = [await coordinator(relay.wsUrl), await coordinator(relay.wsUrl)];
    const first = await openContact(relay.wsUrl, team, CODENAME, 'new');
    await first.send('I need help.');
    await first.send('Please answer.');
    await until(() => team.every((c) => c.read.length === 2));
    await reply(team[0]!, first.pub, 'We are here.');
    await until(() => first.replies.length === 1);
    await first.client.idle();
    first.client.close();

    // Queued while no contact is connected.
    await reply(team[0]!, first.pub, 'Are you safe?');
    await reply(team[1]!, first.pub, 'A second coordinator here.');

    const back = await openContact(relay.wsUrl, team, CODENAME, 'restore');
    await until(() => back.replies.length === 2);
    expect(back.replies.sort()).toEqual(['A second coordinator here.', 'Are you safe?']);
    const bodies = () =>
      back
        .state()
        .conversation.transcript.map((e) => (e.message.type === 'text' ? e.message.body : ''));
    // The conversation saved before, and what was queued meanwhile.
    expect(bodies().slice(0, 3)).toEqual(['I need help.', 'Please answer.', 'We are here.']);
    expect(bodies().slice(3).sort()).toEqual(['A second coordinator here.', 'Are you safe?']);
    expect(back.state().needsFreshSession(team[0]!.pub)).toBe(true);
    await back.send('I am safe for now.');
    await until(() => team.every((c) => c.read.length === 3));
    expect(team.map((c) => c.read.map((r) => r.body))).toEqual([
      ['I need help.', 'Please answer.', 'I am safe for now.'],
      ['I need help.', 'Please answer.', 'I am safe for now.'],
    ]);
    expect(team.flatMap((c) => c.unreadable)).toEqual([]);
    // The last answer reached the restored contact through the fresh session too.
    await reply(team[1]!, back.pub, 'Good.');
    await until(() => back.replies.length === 3);
    const saved = await back.client.getState();
    expect(saved.blob?.length).toBe(4_096);
  }, 60_000);

  it('answers a wrong codename exactly as a codename that never saved: state_not_found', async () => {
    const team = [await coordinator(relay.wsUrl)];
    const saver = await openContact(relay.wsUrl, team, CODENAME, 'new');
    // This test's codename may have a state from the test before; either way one is held now.
    await saver
      .state()
      .save()
      .catch(() => undefined);
    saver.client.close();
    const errors: unknown[] = [];
    for (const codename of [OTHER_CODENAME, 'zoom zone zoologist zoology zoom zone zoom']) {
      try {
        await openContact(relay.wsUrl, team, codename, 'restore');
      } catch (error) {
        errors.push(error);
      }
    }
    expect(errors).toHaveLength(2);
    for (const e of errors) {
      expect(e).toBeInstanceOf(ContactStateError);
      expect(e).toMatchObject({ code: ContactStateErrorCode.NOT_FOUND });
    }
    expect((errors[0] as Error).message).toBe((errors[1] as Error).message);
  }, 60_000);

  it('deletes the conversation: the codename then finds nothing, and another tab cannot write it again', async () => {
    const codename = 'zebra zero zesty zigzagged zipfile zipping zippy';
    const team = [await coordinator(relay.wsUrl)];
    const tab = await openContact(relay.wsUrl, team, codename, 'new');
    await tab.send('delete me later');
    tab.client.close();
    const other = await openContact(relay.wsUrl, team, codename, 'restore');
    const otherStore = other.state();
    await other.state().delete();
    expect(await other.client.getState()).toEqual({ blob: null, generation: 0 });
    other.client.close();
    expect(await codeOf(openContact(relay.wsUrl, team, codename, 'restore'))).toBe(
      ContactStateErrorCode.NOT_FOUND,
    );
    // The first tab comes back with its copy and tries to save: refused, not resurrected.
    const again = await openContact(relay.wsUrl, team, codename, 'new', tab.state());
    expect(await codeOf(again.state().save())).toBe(ContactStateErrorCode.DELETED);
    expect(await again.client.getState()).toEqual({ blob: null, generation: 0 });
    expect(await codeOf(otherStore.save())).toBe(ContactStateErrorCode.DELETED);
  }, 60_000);

  it('deletes with the conversation what is queued for it: the next delivery is what came after', async () => {
    const codename = 'unbaked unbalance unbeaten unbend unbounded unblock unbiased';
    const team = [await coordinator(relay.wsUrl)];
    const tab = await openContact(relay.wsUrl, team, codename, 'new');
    await tab.send('hello');
    await until(() => team[0]!.read.length === 1);
    tab.client.close();
    await reply(team[0]!, tab.pub, 'queued before the delete');
    // The deleting tab is handed the queued reply and never acknowledges it.
    const deleting = await openContact(relay.wsUrl, team, codename, 'restore', undefined, true);
    await until(() => deleting.delivered.count === 1);
    await deleting.state().delete();
    deleting.client.close();
    await reply(team[0]!, tab.pub, 'sent after the delete');
    // A copy that can still read (tab 1's) connects: the queue starts after the delete.
    const again = await openContact(relay.wsUrl, team, codename, 'new', tab.state());
    await until(() => again.replies.length + again.unreadable.length > 0);
    expect(again.replies[0]).toBe('sent after the delete');
    expect(await codeOf(again.state().save())).toBe(ContactStateErrorCode.DELETED);
  }, 60_000);

  it('refuses a save asked for while the delete is on its way, even from a copy that never saved', async () => {
    const codename = 'unblended unblessed unbolted unbent unbend unbaked unbeaten';
    const team = [await coordinator(relay.wsUrl)];
    const saver = await openContact(relay.wsUrl, team, codename, 'new');
    await saver.send('saved once');
    // A second copy that never saved (generation 0): its put would create the state anew.
    const fresh = await openContact(relay.wsUrl, team, codename, 'new');
    expect(fresh.state().generation).toBe(0);
    const deleting = fresh.state().delete();
    const saving = fresh.state().save();
    await deleting;
    expect(await codeOf(saving)).toBe(ContactStateErrorCode.DELETED);
    expect(await fresh.client.getState()).toEqual({ blob: null, generation: 0 });
    // Saves asked for just before the delete (one waiting behind the other): the delete wins.
    const tab = saver.state();
    const first = tab.save();
    const second = tab.save();
    const gone = tab.delete();
    const codes = await Promise.all([codeOf(first), codeOf(second), codeOf(gone)]);
    expect(codes[1]).toBe(ContactStateErrorCode.DELETED);
    expect(codes[2]).toBeUndefined();
    expect(await saver.client.getState()).toEqual({ blob: null, generation: 0 });
  }, 60_000);

  it('never uses a message key twice after a stale restore (two tabs with one codename)', async () => {
    const codename = 'yahoo yam yanking yapping yard yarn yeah';
    const team = [await coordinator(relay.wsUrl), await coordinator(relay.wsUrl)];
    seals = [];
    const tab1 = await openContact(relay.wsUrl, team, codename, 'new');
    await tab1.send('m1');
    // Tab 2 opens the conversation now, then its connection goes (a phone put away).
    const tab2 = await openContact(relay.wsUrl, team, codename, 'restore');
    await tab2.client.idle();
    const stale = tab2.state();
    tab2.client.close();
    // Tab 1 goes on: its sending chains move past what tab 2's copy holds.
    await tab1.send('m2');
    await tab1.send('m3');
    await until(() => team.every((c) => c.read.length === 3));
    await tab1.client.idle();
    tab1.client.close();
    // Tab 2's copy is stale (it knows m1 only) and its restored sessions cannot send.
    expect(stale.conversation.transcript).toHaveLength(1);
    const restoredSessions = [...stale.device.sessionAddresses()].flatMap(
      (a) => stale.device.loadSession(a)!.sessions,
    );
    expect(restoredSessions.length).toBeGreaterThan(0);
    expect(restoredSessions.some((x) => x.canSend)).toBe(false);
    // Tab 2 comes back with its stale copy and sends.
    const tab2again = await openContact(relay.wsUrl, team, codename, 'new', stale);
    await tab2again.send('m4 from the other tab');
    await until(() => team.every((c) => c.read.length === 4));

    // No (key, nonce) was ever sealed under twice, by either copy.
    expect(new Set(seals).size).toBe(seals.length);
    // Decrypt side: every device read four different messages, none twice, none unreadable.
    for (const c of team) {
      expect(c.read.map((r) => r.body)).toEqual(['m1', 'm2', 'm3', 'm4 from the other tab']);
      expect(new Set(c.read.map((r) => r.id)).size).toBe(4);
      expect(c.unreadable).toEqual([]);
    }
    // The save after the conflict merged both copies' transcripts.
    const merged = tab2again
      .state()
      .conversation.transcript.map((e) => (e.message.type === 'text' ? e.message.body : ''));
    expect(merged).toEqual(['m1', 'm2', 'm3', 'm4 from the other tab']);
  }, 60_000);

  it('reads a reply on the other tab’s session after merging, with a full archive of its own', async () => {
    const codename = 'unbent unbiased unbitten unblended unblessed unblock unbolted';
    const team = [await coordinator(relay.wsUrl)];
    const c = team[0]!;
    const tab1 = await openContact(relay.wsUrl, team, codename, 'new');
    await tab1.send('m1');
    const tab2 = await openContact(relay.wsUrl, team, codename, 'restore');
    await tab2.client.idle();
    const stale = tab2.state();
    tab2.client.close();
    // Tab 1 comes back again and again: a fresh session per visit, until its archive is full.
    const s1 = tab1.state();
    for (let i = 0; i < MAX_ARCHIVED_SESSIONS + 1; i++) s1.startFreshSessions([c.bundle()]);
    expect(s1.device.loadSession(c.pub.address)!.archived).toHaveLength(MAX_ARCHIVED_SESSIONS);
    await s1.save();
    // Tab 2 sends on a fresh session of its own; its save merges tab 1's state and wins.
    const tab2again = await openContact(relay.wsUrl, team, codename, 'new', stale);
    await tab2again.send('m2 from the other tab');
    await until(() => c.read.length === 2);
    await tab2again.client.idle();
    tab2again.client.close();
    // Tab 1 saves: conflict, and the merge must keep tab 2's current session.
    await s1.save();
    // The coordinator answers on the session it last read from: tab 2's.
    await reply(c, tab1.pub, 'We read you.');
    await until(() => tab1.replies.length + tab1.unreadable.length === 1);
    expect(tab1.unreadable).toEqual([]);
    expect(tab1.replies).toEqual(['We read you.']);
  }, 60_000);

  it('(control) a raw copy of the device records, sending chains kept, does reuse a message key', () => {
    // What the blob would restore if it kept sending chains: the detector above must see it.
    seals = [];
    const team = DeviceIdentity.generate(p);
    const teamStore = MemoryDeviceStore.create(p, team, NOW_SECONDS);
    const me = MemoryDeviceStore.createInitiatorOnly(recording, DeviceIdentity.generate(p));
    const pub = publicationOf(teamStore, teamStore.addOneTimePrekeys(1));
    const bundle = decodePrekeyBundle(p, { ...pub, oneTime: pub.oneTime[0]! });
    const live = new SessionCipher(recording, me);
    live.startSession(bundle);
    live.encryptFor(team.publicIdentity, new Uint8Array([1]));
    const copy = new SessionCipher(recording, MemoryDeviceStore.restore(recording, me.export()));
    live.encryptFor(team.publicIdentity, new Uint8Array([2]));
    copy.encryptFor(team.publicIdentity, new Uint8Array([3]));
    expect(new Set(seals).size).toBeLessThan(seals.length);
  });
});

describe('creating a state costs a proof-of-work', () => {
  it('solves one on a connection that has not, then stores', async () => {
    const relay = await startInProcessRelay({ env: { POW_BITS: '1' } });
    try {
      const team = [await coordinator(relay.wsUrl)];
      const contact = await openContact(
        relay.wsUrl,
        team,
        'vacancy vacant vacate vacation vagabond vagrancy vaguely',
        'new',
      );
      const solved: number[] = [];
      contact.client.on('pow-progress', (e) => solved.push(e.bits));
      contact.state().addEntry({
        from: 'contact',
        message: {
          v: 1,
          type: 'text',
          id: newConversationId(p.random),
          ts: Date.now(),
          body: 'hi',
        },
        receipt: 'none',
      });
      await contact.state().save();
      expect(solved.length).toBeGreaterThan(0);
      expect(contact.state().generation).toBeGreaterThan(0);
      // Replacing it needs none.
      await contact.state().save();
    } finally {
      for (const c of clients.splice(0)) c.close();
      await relay.stop();
    }
  }, 60_000);
});
