/**
 * A whole conversation with real parts: the `passage` CLI as a child process sets the
 * organization up (init → invites → enrolment requests imported → approvals → publish), two
 * relay processes share one redis-server (first-contact proof-of-work at 1 bit), the team's
 * three devices run `TeamDevice` on one relay and the contact runs `ContactConversation` on the
 * other, over real WebSockets. What reaches each mailbox is recorded at the transport (every
 * `deliver` frame's id), so that "the contact never gets a team-only message" is checked on the
 * envelopes themselves, not on what the contact's code chose to show.
 *
 * Then the refusals (a profile signed by another key, an expired one, a rolled-back one, one
 * with a device slipped into its roster: each an `OrgError`, nothing connected, nothing sent),
 * and a revocation (`org remove` + publish: the removed device's mailbox gets no new envelope,
 * the others go on, and what it still sends is not read).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import {
  ContactConversation,
  TeamDevice,
  inlinePowSolver,
  systemClock,
  type Clock,
  type ReceivedMessage,
  type SentMessage,
  type Transport,
} from '@passage/shared/client/index';
import { CaseReplica } from '@passage/shared/client/conversation/case-replica';
import { presentTags } from '@passage/shared/client/conversation/case-state';
import { createEnrolmentRequest, decodeInvite } from '@passage/shared/crypto/enrolment';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { asEd25519PublicKey, type Ed25519PublicKey } from '@passage/shared/crypto/keys';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import { signOrgProfile, type OrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import { OrgError } from '@passage/shared/org/errors';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { sampleProfileContent } from '@passage/testing/org-fixtures';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { runCli, type CliRun } from '@passage/testing/cli-process';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { until } from '@passage/testing/wait';
import { wsTransport } from '@passage/testing/ws-transport';

jest.setTimeout(240_000);

const PASSPHRASE = 'an organization passphrase';

let p: Primitives;
let root: string;
let dir: string;
let redis: RedisServer;
let relayA: RelayProcess;
let relayB: RelayProcess;
let orgKey: Ed25519PublicKey;

function cli(args: readonly string[]): Promise<CliRun> {
  return runCli([...args, '--dir', dir], { PASSAGE_PASSPHRASE: PASSPHRASE });
}

async function ok(args: readonly string[]): Promise<string> {
  const r = await cli(args);
  expect({ args, status: r.status }).toEqual({ args, status: 0 });
  return r.stdout;
}

/** An invite, an enrolment request made as the device makes it, imported and approved. */
async function enrol(coordinator: string, label: string): Promise<DeviceIdentity> {
  const invite = await ok(['org', 'invite', '--coordinator', coordinator]);
  const code = invite.split('\n').find((l) => l.startsWith('passage-invite:'))!;
  const device = DeviceIdentity.generate(p);
  const request = createEnrolmentRequest(p, {
    invite: decodeInvite(p, code),
    device,
    label,
    nowSeconds: Math.floor(Date.now() / 1000),
  });
  const file = join(root, `${label}.request`);
  writeFileSync(file, toBase64url(request));
  await ok(['org', 'enrolments', '--import', file]);
  await ok(['org', 'approve', device.publicIdentity.id.slice(0, 16)]);
  return device;
}

async function publish(): Promise<void> {
  const settings = join(root, 'profile.json');
  writeFileSync(settings, JSON.stringify(sampleProfileContent()));
  await ok(['org', 'publish', '--profile', settings, '--relay', relayA.url]);
}

/** What a page does: GET /v1/org/profile (unverified bytes; the client verifies them). */
function fetchFrom(relay: RelayProcess): () => Promise<Uint8Array> {
  return async () => {
    const res = await fetch(`${relay.url}/v1/org/profile`);
    if (res.status !== 200) throw new Error(`profile: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
}

/** The `ws` transport, recording the id of every envelope the relay delivers to this device. */
function recordingTransport(delivered: string[]): Transport {
  const inner = wsTransport();
  return {
    open(url, protocol, handlers) {
      return inner.open(url, protocol, {
        ...handlers,
        onMessage(data) {
          if (typeof data === 'string') {
            const frame = JSON.parse(data) as { t?: string; id?: string };
            if (frame.t === 'deliver' && frame.id !== undefined) delivered.push(frame.id);
          }
          handlers.onMessage(data);
        },
      });
    },
  };
}

function relayOptions(relay: RelayProcess, delivered: string[]) {
  return {
    url: `ws://127.0.0.1:${relay.port}/v1/ws`,
    transport: recordingTransport(delivered),
    timing: { backoffInitialMs: 50, backoffMaxMs: 500 },
    solvePow: inlinePowSolver({
      sha256: (d) => p.sha256(d),
      clock: systemClock(),
      randomBytes: (n) => p.random.bytes(n),
    }),
  };
}

/** A device under test and everything it saw. */
interface Seen {
  readonly delivered: string[];
  readonly messages: ReceivedMessage[];
  readonly receipts: { kind: string; ids: readonly string[]; sender: string }[];
  readonly cases: string[];
  readonly sent: SentMessage[];
  readonly unreadable: string[];
}

function watch(endpoint: TeamDevice | ContactConversation, delivered: string[]): Seen {
  const seen: Seen = {
    delivered,
    messages: [],
    receipts: [],
    cases: [],
    sent: [],
    unreadable: [],
  };
  endpoint.on('message', (m) => seen.messages.push(m));
  endpoint.on('receipt', (r) => seen.receipts.push(r));
  endpoint.on('case', (c) => seen.cases.push(c.case));
  endpoint.on('sent', (s) => seen.sent.push(s));
  endpoint.on('unreadable', (u) => seen.unreadable.push(u.reason));
  return seen;
}

const endpoints: { close(): void }[] = [];

async function teamDevice(
  device: DeviceIdentity,
  relay: RelayProcess,
): Promise<{ t: TeamDevice; seen: Seen }> {
  const delivered: string[] = [];
  const t = new TeamDevice({
    p,
    organizationKey: orgKey,
    fetchProfile: fetchFrom(relay),
    store: MemoryDeviceStore.create(p, device, Math.floor(Date.now() / 1000)),
    replica: new CaseReplica(device.publicIdentity.id),
    relay: relayOptions(relay, delivered),
  });
  endpoints.push(t);
  const seen = watch(t, delivered);
  let published = false;
  t.prekeys.events.on('published', () => (published = true));
  await t.start();
  await until(() => published);
  return { t, seen };
}

function contact(
  options: {
    fetchProfile?: () => Promise<Uint8Array>;
    clock?: Clock;
    lastAcceptedProfile?: OrgProfile;
  } = {},
): { c: ContactConversation; seen: Seen } {
  const delivered: string[] = [];
  const c = new ContactConversation({
    p,
    organizationKey: orgKey,
    fetchProfile: options.fetchProfile ?? fetchFrom(relayB),
    identity: DeviceIdentity.generate(p),
    relay: relayOptions(relayB, delivered),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.lastAcceptedProfile === undefined
      ? {}
      : { lastAcceptedProfile: options.lastAcceptedProfile }),
  });
  endpoints.push(c);
  return { c, seen: watch(c, delivered) };
}

/** The envelope ids a set of sent messages addressed to `mailbox`. */
function envelopesTo(sent: readonly SentMessage[], mailbox: string): Set<string> {
  return new Set(
    sent.flatMap((s) => s.envelopes.filter((e) => e.mailbox === mailbox).map((e) => e.envelopeId)),
  );
}

let anna: DeviceIdentity;
let borisPhone: DeviceIdentity;
let borisLaptop: DeviceIdentity;
/** Anna's phone and Boris's phone on relay A, Boris's laptop on relay B (with the contacts). */
let team: { t: TeamDevice; seen: Seen }[];

beforeAll(async () => {
  p = await loadSodiumBackend();
  root = mkdtempSync(join(tmpdir(), 'passage-story-'));
  dir = join(root, 'org');
  const init = await ok(['org', 'init', '--name', 'Rainbow Shelter']);
  const key = /ORG_PUBLIC_KEY=([A-Za-z0-9_-]{43})/.exec(init)![1]!;
  orgKey = asEd25519PublicKey(fromBase64url(key)!);
  redis = await startRedis();
  const env = { REDIS_URL: redis.url, ORG_PUBLIC_KEY: key, POW_BITS: '1' };
  [relayA, relayB] = await Promise.all([startRelay(env), startRelay(env)]);
  anna = await enrol('anna', 'anna-phone');
  borisPhone = await enrol('boris', 'boris-phone');
  borisLaptop = await enrol('boris', 'boris-laptop');
  await publish();
  team = [
    await teamDevice(anna, relayA),
    await teamDevice(borisPhone, relayA),
    await teamDevice(borisLaptop, relayB),
  ];
});

afterAll(async () => {
  for (const e of endpoints.splice(0)) e.close();
  await stopAllRelays();
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('a conversation between a contact and a team of three devices', () => {
  let contactSide: { c: ContactConversation; seen: Seen };

  it('the contact verifies the profile, answers the intake and writes; all three devices read both', async () => {
    contactSide = contact();
    const { c } = contactSide;
    const profile = await c.start();
    expect(profile.version).toBe(1);
    expect(profile.roster.devices).toHaveLength(3);

    const intake = await c.sendIntake([
      { field: 'safe_now', choices: ['no'] },
      { field: 'needs', choices: ['shelter'] },
      { field: 'danger', text: 'They took my phone.' },
    ]);
    const text = await c.sendText('Мне нужна помощь.');
    // Exactly the roster's devices, one envelope each.
    for (const sent of [intake, text]) {
      expect(sent.envelopes.map((e) => e.device).sort()).toEqual(
        [anna, borisPhone, borisLaptop].map((d) => d.publicIdentity.id).sort(),
      );
      expect(sent.unreachable).toEqual([]);
    }
    for (const { seen } of team) {
      await until(() => seen.messages.length >= 2);
      const [first, second] = seen.messages;
      expect(first!.message).toMatchObject({ type: 'intake', id: intake.id });
      expect(first!.intake).toEqual({ urgency: 16, issues: [] });
      expect(second!.message).toMatchObject({ type: 'text', body: 'Мне нужна помощь.' });
      expect(second!.case).toBe(c.self.id);
      expect(second!.origin).toEqual({ from: 'contact' });
    }
    // Every device's delivered receipt comes back: the contact's messages are delivered.
    await until(() => c.delivery(text.id)?.deliveredTo.length === 3);
    expect(c.delivery(text.id)?.state).toBe('delivered');
  });

  it("one coordinator replies: the contact reads it and the team's other devices hold the same copy", async () => {
    const [a, b1, b2] = team;
    const { c, seen } = contactSide;
    const reply = await a!.t.sendText(c.self.id, 'We are here. Are you somewhere safe?');
    expect(reply.envelopes.map((e) => e.mailbox).sort()).toEqual(
      [c.mailbox, b1!.t.mailbox, b2!.t.mailbox].sort(),
    );
    await until(() => seen.messages.some((m) => m.message.id === reply.id));
    const shown = seen.messages.find((m) => m.message.id === reply.id)!;
    expect(shown.origin).toEqual({ from: 'team', device: anna.publicIdentity.id });
    for (const other of [b1!, b2!]) {
      await until(() => other.seen.messages.some((m) => m.message.id === reply.id));
      const copy = other.seen.messages.find((m) => m.message.id === reply.id)!;
      expect(copy.origin).toEqual({ from: 'team', device: anna.publicIdentity.id });
      expect(copy.case).toBe(c.self.id);
    }
    // The contact's delivered receipt reaches the writer: its envelope to the contact moved.
    await until(() => a!.t.delivery(reply.id)?.state === 'delivered');
  });

  it('read receipts flow both ways and drive the message states', async () => {
    const [a] = team;
    const { c, seen } = contactSide;
    const reply = a!.seen.sent.find((s) => s.message.type === 'text')!;
    await c.markRead([reply.id]);
    await until(() => a!.t.delivery(reply.id)?.state === 'read');
    expect(a!.t.delivery(reply.id)?.readBy).toEqual([c.self.id]);

    const text = c.delivery(contactSide.seen.sent[1]!.id)!;
    await a!.t.markRead(c.self.id, [text.id]);
    await until(() => c.delivery(text.id)?.state === 'read');
    expect(c.delivery(text.id)?.readBy).toEqual([anna.publicIdentity.id]);
    expect(seen.receipts.some((r) => r.kind === 'read' && r.ids.includes(text.id))).toBe(true);
    // The colleagues see that Anna read it (the case list's unread state).
    for (const other of team.slice(1)) {
      await until(() =>
        other.seen.receipts.some((r) => r.kind === 'read' && r.ids.includes(text.id)),
      );
    }
  });

  it('a triage change and an internal note reach every team device and no envelope of them reaches the contact', async () => {
    const [a, b1, b2] = team;
    const { c, seen } = contactSide;
    const caseId = c.self.id;
    const status = await a!.t.caseEvent(caseId, { kind: 'status', status: 'screening' });
    const tag = await b1!.t.caseEvent(caseId, { kind: 'tag', tag: 'housing', present: true });
    const note = await b2!.t.note(caseId, 'Knows someone in Tbilisi; call after 18:00.');
    for (const { t } of team) {
      await until(
        () =>
          t.caseState(caseId).notes.length === 1 && presentTags(t.caseState(caseId)).length === 1,
      );
      expect(t.caseState(caseId).status.value).toBe('screening');
    }
    // Every team-only message was sealed for the two other team devices and nobody else.
    for (const sent of [status, tag, note]) {
      expect(sent.envelopes).toHaveLength(2);
      expect(sent.envelopes.map((e) => e.mailbox)).not.toContain(c.mailbox);
    }
    // At the wire: nothing the team sealed for the contact's mailbox is a team-only type, and
    // every envelope the contact's mailbox delivered is one of those.
    await Promise.all([c.idle(), ...team.map((d) => d.t.idle())]);
    const allSent = team.flatMap((d) => d.seen.sent);
    const toContact = envelopesTo(allSent, c.mailbox);
    const teamOnly = new Set(
      allSent
        .filter((s) => s.message.type === 'case_event')
        .flatMap((s) => s.envelopes.map((e) => e.envelopeId)),
    );
    expect(teamOnly.size).toBe(6);
    for (const id of seen.delivered) {
      expect(toContact.has(id)).toBe(true);
      expect(teamOnly.has(id)).toBe(false);
    }
    expect(
      allSent
        .filter((s) => s.envelopes.some((e) => e.mailbox === c.mailbox))
        .map((s) => s.message.type)
        .filter((type) => type === 'case_event'),
    ).toEqual([]);
    expect(seen.cases).toEqual([]);
    expect(c.status.drops).toEqual({});
    // Nothing dropped anywhere in the story.
    for (const d of team) expect(d.t.status.drops).toEqual({});
    expect(seen.unreadable).toEqual([]);
  });
});

describe('a contact refuses an impostor profile, and sends nothing', () => {
  /** Starting must fail with `code`; the client never connected. */
  async function refused(c: ContactConversation, code: string): Promise<void> {
    const error = await c.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OrgError);
    expect((error as OrgError).code).toBe(code);
    expect(c.status.client.connection.state).toBe('idle');
    expect(c.status.client.outbox).toMatchObject({ queued: 0, sent: 0 });
    await expect(c.sendText('hello?')).rejects.toMatchObject({ code: 'no_profile' });
  }

  it('signed by another key', async () => {
    const genuine = await fetchFrom(relayB)();
    const otherSeed = p.random.bytes(32) as Parameters<typeof signOrgProfile>[1];
    const { c } = contact({
      fetchProfile: () =>
        Promise.resolve(
          signOrgProfile(p, otherSeed, {
            version: 99,
            issuedAtSeconds: Math.floor(Date.now() / 1000),
            expiresAtSeconds: Math.floor(Date.now() / 1000) + 3600,
            roster: rosterOf(genuine),
            content: sampleProfileContent(),
          }),
        ),
    });
    await refused(c, 'profile_wrong_key');
  });

  it('expired (a clock past its expiry)', async () => {
    const real = systemClock();
    const later: Clock = { ...real, now: () => real.now() + 400 * 24 * 3600 * 1000 };
    const { c } = contact({ clock: later });
    await refused(c, 'profile_expired');
  });

  it('with a device slipped into its roster by whoever serves it', async () => {
    const genuine = await fetchFrom(relayB)();
    const { c } = contact({
      fetchProfile: () => Promise.resolve(withInjectedDevice(genuine, DeviceIdentity.generate(p))),
    });
    await refused(c, 'profile_bad_signature');
  });
});

describe('revocation', () => {
  it("after org remove + publish, the removed device's mailbox gets no new envelope; the others go on and do not read it", async () => {
    const [a, b1, b2] = team as [(typeof team)[0], (typeof team)[0], (typeof team)[0]];
    const { c, seen } = contact();
    const v1 = await c.start();
    const first = await c.sendText('first');
    for (const d of team) await until(() => d.seen.messages.some((m) => m.message.id === first.id));
    await Promise.all([c.idle(), ...team.map((d) => d.t.idle())]);
    const v1Bytes = v1.bytes;

    await ok(['org', 'remove', borisLaptop.publicIdentity.id.slice(0, 16)]);
    await publish();
    for (const e of [c, a.t, b1.t]) await e.refreshProfile();
    expect(c.profile?.roster.devices.map((d) => d.id)).not.toContain(borisLaptop.publicIdentity.id);
    const b2Before = b2.seen.delivered.length;

    const second = await c.sendText('second');
    expect(second.envelopes.map((e) => e.mailbox)).not.toContain(b2.t.mailbox);
    const reply = await a.t.sendText(c.self.id, 'Got it.');
    expect(reply.envelopes.map((e) => e.mailbox)).not.toContain(b2.t.mailbox);
    const noteSent = await b1.t.note(c.self.id, 'Boris moved to the new laptop.');
    expect(noteSent.envelopes.map((e) => e.mailbox)).toEqual([a.t.mailbox]);
    await until(() => b1.seen.messages.some((m) => m.message.id === reply.id));
    await until(() => seen.messages.some((m) => m.message.id === reply.id));
    await until(() => a.t.caseState(c.self.id).notes.length === 1);
    await Promise.all([a.t.idle(), b1.t.idle(), c.idle()]);
    expect(b2.seen.delivered.length).toBe(b2Before);

    // The removed device, still holding the old roster, writes on: nobody reads it.
    const unreadBefore = [a.seen.unreadable.length, b1.seen.unreadable.length];
    const stale = await b2.t.note(c.self.id, 'I was removed but still write.');
    expect(stale.envelopes.map((e) => e.mailbox).sort()).toEqual(
      [a.t.mailbox, b1.t.mailbox].sort(),
    );
    await until(
      () =>
        a.seen.unreadable.length === unreadBefore[0]! + 1 &&
        b1.seen.unreadable.length === unreadBefore[1]! + 1,
    );
    expect([a.seen.unreadable.at(-1), b1.seen.unreadable.at(-1)]).toEqual([
      'no_session',
      'no_session',
    ]);
    expect(a.t.caseState(c.self.id).notes).toHaveLength(1);
    // Once it fetches the profile, it knows it is out and sends nothing more.
    await b2.t.refreshProfile();
    await expect(b2.t.note(c.self.id, 'again')).rejects.toMatchObject({ code: 'not_in_roster' });

    // A relay that serves the older profile again is refused by a contact that saw the newer.
    const { c: later } = contact({
      fetchProfile: () => Promise.resolve(v1Bytes),
      lastAcceptedProfile: c.profile!,
    });
    const rollback = await later.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect((rollback as OrgError).code).toBe('profile_rollback');
    expect(later.status.client.connection.state).toBe('idle');
  });
});

// --- profile surgery (what a hostile relay could serve) ------------------------------------

const PROFILE_HEADER_BYTES = 1 + 32 + 4 + 4 + 4;

/** The signed roster inside a profile. */
function rosterOf(profile: Uint8Array): Uint8Array {
  const length = (profile[PROFILE_HEADER_BYTES]! << 8) | profile[PROFILE_HEADER_BYTES + 1]!;
  return profile.slice(PROFILE_HEADER_BYTES + 2, PROFILE_HEADER_BYTES + 2 + length);
}

/**
 * The profile with one more device in its roster: the roster's count and the profile's roster
 * length bumped, every signature left as it was (nobody but the organization can make new ones).
 */
function withInjectedDevice(profile: Uint8Array, extra: DeviceIdentity): Uint8Array {
  const roster = rosterOf(profile);
  const countAt = 1 + 32 + 4 + 4 + 4;
  const count = (roster[countAt]! << 8) | roster[countAt + 1]!;
  const devices = roster.slice(countAt + 2, roster.length - 64);
  const forged = new Uint8Array([
    ...roster.slice(0, countAt),
    (count + 1) >> 8,
    (count + 1) & 0xff,
    ...devices,
    ...extra.publicIdentity.encode(),
    ...roster.slice(roster.length - 64),
  ]);
  const before = profile.slice(0, PROFILE_HEADER_BYTES);
  const after = profile.slice(PROFILE_HEADER_BYTES + 2 + roster.length);
  return new Uint8Array([...before, forged.length >> 8, forged.length & 0xff, ...forged, ...after]);
}
