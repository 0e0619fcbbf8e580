/**
 * `npm run bench:e2e`: conversations end to end, on Redis (issue "Conversations end to end" §4).
 * It starts a redis-server and a relay process, an organization of 3 coordinators with 2 devices
 * each (6 `TeamDevice`s in this process, on the verified roster of a signed profile), and a
 * load generator in a child process of its own that drives the contacts (`ContactConversation`).
 * Measured, for the libsodium and for the pure-JS backend (`--backend=` to run one):
 *
 * - `firstMessageMs` (median) / `firstMessageP99Ms`: a new contact, from its profile fetched and
 *   verified to its first message stored for all 6 devices (prekey fetches, 6 handshakes, the
 *   seal, 6 first-contact proofs of work at the lowest difficulty, 6 sends), over 100 contacts
 *   one after another; `powSolveMs` beside it: one solve at the relay's default difficulty
 *   (pure-JS SHA-256, median of 20);
 * - `e2eP50Ms` / `e2eP99Ms`: a contact's text from `sendText()` to decrypted on all 6 devices,
 *   200 conversations at 1 message/s each (1,200 envelopes/s of messages through the relay,
 *   plus the receipts the devices send back), after a warm-up;
 * - `drainMsgsPerSec`: one coordinator device offline while 2,000 messages queue for it, then
 *   back: decrypted and acked per second, from `start()` to the last one read;
 * - `resumeMs`: codename → Argon2id → connected and authenticated → state blob fetched and
 *   opened (a state with sessions to the 6 devices and 50 messages), median of 10.
 *
 * Send times travel inside the text (performance.timeOrigin + now, which both processes share
 * on one machine). Writes bench-results/e2e.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  ContactConversation,
  ContactStateStore,
  PassageClient,
  TeamDevice,
  inlinePowSolver,
  systemClock,
} from '@passage/shared/client/index';
import { CaseReplica } from '@passage/shared/client/conversation/case-replica';
import { newConversationId } from '@passage/shared/client/conversation/messages';
import { loadNobleBackend, sha256 as nobleSha256 } from '@passage/shared/crypto/noble';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import {
  deriveCodenameKeys,
  generateCodename,
  identityFromCodename,
} from '@passage/shared/crypto/codename';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { asEd25519PublicKey, asEd25519Seed } from '@passage/shared/crypto/keys';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { createPowChallenge, solvePow, POW_NONCE_BYTES } from '@passage/shared/pow/pow';
import { mailboxIdFromPublicKey } from '@passage/shared/protocol/mailbox';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { loadConfig } from '@passage/server/config';
import { signedProfile } from '@passage/testing/org-fixtures';
import { startRedis } from '@passage/testing/redis';
import { startRelay, stopAllRelays } from '@passage/testing/relay-process';
import { wsTransport } from '@passage/testing/ws-transport';
import type { Transport } from '@passage/shared/client/index';

type Backend = 'libsodium' | 'noble';

const FIRST_CONTACTS = 100;
const CONVERSATIONS = 200;
const STEADY_WARMUP_S = 5;
const STEADY_MEASURED_S = 20;
const DRAIN_MESSAGES = 2_000;
const RESUMES = 10;
const POW_SOLVES = 20;
const DEVICES = 6;
const PREFIX = 'e2e ';
/** How long any phase may take before the run gives up on it (and says so). */
const PHASE_LIMIT_MS = 180_000;

/** `--only=first,steady,drain,resume`: run only these phases (to profile one). */
const ONLY = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');

const TRACE = process.argv.includes('--trace');

const now = (): number => performance.timeOrigin + performance.now();

function loadBackend(name: Backend): Promise<Primitives> {
  return name === 'libsodium' ? loadSodiumBackend() : loadNobleBackend();
}

function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const round = (n: number, digits = 1): number => Number(n.toFixed(digits));

function say(line: string): void {
  process.stdout.write(line + '\n');
}

/** Error codes the relay answered, by code (--trace). */
const errorCodes = new Map<string, number>();

function tracingTransport(): Transport {
  const inner = wsTransport();
  if (!TRACE) return inner;
  return {
    open(url, protocol, handlers) {
      return inner.open(url, protocol, {
        ...handlers,
        onMessage(data) {
          if (typeof data === 'string' && data.includes('"t":"error"')) {
            const code = /"code":"([a-z_]+)"/.exec(data)?.[1] ?? '?';
            errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1);
          }
          handlers.onMessage(data);
        },
      });
    },
  };
}

function relayOptions(p: Primitives, wsUrl: string) {
  return {
    url: wsUrl,
    transport: tracingTransport(),
    timing: { backoffInitialMs: 100, backoffMaxMs: 1_000 },
    solvePow: inlinePowSolver({
      sha256: (d) => p.sha256(d),
      clock: systemClock(),
      randomBytes: (n) => p.random.bytes(n),
    }),
  };
}

function profileFetcher(httpUrl: string): () => Promise<Uint8Array> {
  return async () => {
    const res = await fetch(`${httpUrl}/v1/org/profile`);
    if (res.status !== 200) throw new Error(`profile: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
}

async function waitFor(
  what: string,
  done: () => boolean,
  limitMs = PHASE_LIMIT_MS,
): Promise<boolean> {
  const until = Date.now() + limitMs;
  while (!done()) {
    if (Date.now() > until) {
      say(`  (gave up waiting for ${what} after ${limitMs / 1000} s)`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The contacts' process.

type Command =
  | { readonly cmd: 'first'; readonly n: number }
  | { readonly cmd: 'connect'; readonly total: number }
  | { readonly cmd: 'steady'; readonly seconds: number }
  | { readonly cmd: 'burst'; readonly count: number }
  | { readonly cmd: 'resume'; readonly n: number }
  | { readonly cmd: 'exit' };

interface ContactsSetup {
  readonly backend: Backend;
  readonly httpUrl: string;
  readonly wsUrl: string;
  readonly organizationKey: string;
}

async function contactsProcess(setup: ContactsSetup): Promise<void> {
  const p = await loadBackend(setup.backend);
  const organizationKey = asEd25519PublicKey(fromBase64url(setup.organizationKey)!);
  const contacts: ContactConversation[] = [];
  const reply = (m: unknown) => process.send!(m);

  const newContact = (identity = DeviceIdentity.generate(p), store?: MemoryDeviceStore) =>
    traced(
      new ContactConversation({
        p,
        organizationKey,
        fetchProfile: profileFetcher(setup.httpUrl),
        identity,
        relay: relayOptions(p, setup.wsUrl),
        ...(store === undefined ? {} : { store }),
      }),
    );
  const traced = (c: ContactConversation): ContactConversation => {
    if (TRACE) {
      c.on('state', (st) => {
        if (st.state === 'waiting')
          process.stderr.write(`contact lost: ${JSON.stringify(st.lastLoss ?? null)}\n`);
      });
    }
    return c;
  };

  /** The first message of a new contact, once stored for every device. */
  const firstMessage = async (c: ContactConversation): Promise<number> => {
    await c.start();
    const t0 = now();
    const sent = await c.sendText(`${PREFIX}${now()}`);
    let stored = false;
    const off = c.on('message-state', (s) => {
      if (s.id === sent.id && s.state !== 'queued') stored = true;
    });
    if (c.delivery(sent.id)?.state === 'queued' || c.delivery(sent.id) === undefined) {
      await waitFor(
        'a first message stored',
        () => stored || c.delivery(sent.id)?.state !== 'queued',
      );
    }
    off();
    if (sent.envelopes.length !== DEVICES)
      throw new Error(`first message reached ${sent.envelopes.length} devices`);
    return now() - t0;
  };

  process.on('message', (raw: Command) => {
    void (async () => {
      switch (raw.cmd) {
        case 'first': {
          const times: number[] = [];
          for (let i = 0; i < raw.n; i++) {
            const c = newContact();
            contacts.push(c);
            times.push(await firstMessage(c));
          }
          reply({ firstMs: times });
          return;
        }
        case 'connect': {
          const more: Promise<number>[] = [];
          while (contacts.length + more.length < raw.total) {
            const c = newContact();
            contacts.push(c);
            more.push(firstMessage(c));
            if (more.length % 10 === 0) await Promise.all(more.slice(-10));
          }
          await Promise.all(more);
          reply({ connected: contacts.length });
          return;
        }
        case 'steady': {
          let sent = 0;
          const end = now() + raw.seconds * 1000;
          await Promise.all(
            contacts.map(async (c, i) => {
              // Spread the 200 senders over the second.
              await new Promise((r) => setTimeout(r, (i * 1000) / contacts.length));
              for (let next = now(); next < end; next += 1000) {
                const wait = next - now();
                if (wait > 0) await new Promise((r) => setTimeout(r, wait));
                await c.sendText(`${PREFIX}${now()}`);
                sent++;
              }
            }),
          );
          reply({ sent });
          return;
        }
        case 'burst': {
          let sent = 0;
          const per = Math.ceil(raw.count / contacts.length);
          await Promise.all(
            contacts.map(async (c) => {
              for (let k = 0; k < per && sent < raw.count; k++) {
                sent++;
                await c.sendText(`${PREFIX}${now()}`);
                // Paced so that the mailboxes' send rate is not the limit being measured.
                await new Promise((r) => setTimeout(r, 100));
              }
            }),
          );
          reply({ sent });
          return;
        }
        case 'resume': {
          reply({ resumeMs: await resumes(p, setup, newContact, raw.n) });
          return;
        }
        case 'exit':
          for (const c of contacts) c.close();
          process.exit(0);
      }
    })().catch((error: unknown) => {
      reply({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    });
  });
  reply({ ready: true });
}

/**
 * Saves one real contact's state (sessions to the 6 devices, 50 messages in its transcript),
 * then restores it `n` times as a returning contact does in a fresh page.
 */
async function resumes(
  p: Primitives,
  setup: ContactsSetup,
  newContact: (identity: DeviceIdentity, store: MemoryDeviceStore) => ContactConversation,
  n: number,
): Promise<number[]> {
  const codename = generateCodename(p);
  const keys = deriveCodenameKeys(p, codename);
  const identity = identityFromCodename(p, keys);
  const device = MemoryDeviceStore.createInitiatorOnly(p, identity);
  const c = newContact(identity, device);
  await c.start();
  for (let i = 0; i < 50; i++) await c.sendText(`${PREFIX}${now()} resume history ${i}`);
  await c.idle();
  c.close();
  const mailbox = mailboxIdFromPublicKey(identity.publicIdentity.signingKey, (d) => p.sha256(d));
  const open = async (who: DeviceIdentity) => {
    const client = new PassageClient({
      ...relayOptions(p, setup.wsUrl),
      primitives: p,
      identity: { signingKey: who.publicIdentity.signingKey, sign: (m) => who.sign(m) },
      onEnvelope: () => Promise.resolve({ kind: 'later' as const, reason: 'bench_state_only' }),
    });
    await client.connect();
    await client.ready();
    return client;
  };
  const first = await open(identity);
  const state = ContactStateStore.create(
    { primitives: p, mailboxKey: keys.mailboxKey, mailbox, port: first },
    device,
  );
  for (let i = 0; i < 50; i++) {
    state.addEntry({
      from: 'contact',
      message: {
        v: 1,
        type: 'text',
        id: newConversationId(p.random),
        ts: Date.now(),
        body: `message ${i} `.repeat(8),
      },
      receipt: 'none',
    });
  }
  await state.save();
  first.close();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    const k = deriveCodenameKeys(p, codename);
    const who = identityFromCodename(p, k);
    const client = await open(who);
    const restored = await ContactStateStore.restore(
      { primitives: p, mailboxKey: k.mailboxKey, mailbox, port: client },
      { signingKey: who.publicIdentity.signingKey },
    );
    times.push(now() - t0);
    if (restored.conversation.transcript.length < 50) throw new Error('the state came back short');
    client.close();
  }
  return times;
}

// ---------------------------------------------------------------------------------------------
// The team's process (this one).

interface Result {
  readonly backend: Backend;
  readonly firstMessageMs: number;
  readonly firstMessageP99Ms: number;
  readonly powSolveMs: number;
  readonly powDefaultBits: number;
  readonly e2eP50Ms: number;
  readonly e2eP99Ms: number;
  readonly e2eMessages: number;
  readonly e2eIncomplete: number;
  readonly drainMsgsPerSec: number;
  readonly resumeMs: number;
  readonly unreadable: number;
}

function ask<T>(child: ChildProcess, command: Command): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      child.off('message', onMessage);
      const r = m as { error?: string };
      if (typeof r.error === 'string') reject(new Error(`contacts: ${r.error}`));
      else resolve(m as T);
    };
    child.on('message', onMessage);
    child.send(command);
  });
}

function powSolveMedian(bits: number): number {
  const times: number[] = [];
  for (let i = 0; i < POW_SOLVES; i++) {
    const nowMs = Date.now();
    const challenge = createPowChallenge({
      nonce: randomBytes(POW_NONCE_BYTES),
      bits,
      to: randomBytes(32),
      nowMs,
      ttlMs: 600_000,
    });
    const t0 = performance.now();
    // The pure-JS SHA-256, as the page's worker solves (pow-worker.ts).
    solvePow(challenge, nobleSha256, { nowMs });
    times.push(performance.now() - t0);
  }
  return percentile(times, 0.5);
}

async function runBackend(backend: Backend): Promise<Result> {
  const p = await loadBackend(backend);
  say(`\n== ${backend} ==`);
  const redis = await startRedis();
  const orgSeed = asEd25519Seed(p.random.bytes(32));
  const orgKey = asEd25519PublicKey(p.ed25519KeyPairFromSeed(orgSeed).publicKey);
  const devices = Array.from({ length: DEVICES }, () => DeviceIdentity.generate(p));
  const relay = await startRelay(
    {
      REDIS_URL: redis.url,
      ORG_PUBLIC_KEY: toBase64url(orgKey),
      // The lowest difficulty that still makes every first contact solve (0 turns it off).
      POW_BITS: '1',
      // Every contact's message reaches every coordinator device: a team's mailboxes take the
      // whole organization's traffic, past the default per-mailbox rate (100/s).
      MAILBOX_SENDS_PER_SECOND: '5000',
      MAILBOX_SEND_BURST: '5000',
      // 100 new contacts in a minute or two, each fetching the 6 devices' bundles: past the
      // per-device fetch rate that slows a prekey drain (6/min, 16 at once), which would
      // make this a measure of the contacts' retry back-off.
      PREKEY_FETCHES_PER_MINUTE: '100000',
      PREKEY_FETCH_BURST: '100000',
      ...(process.env['E2E_RELAY_ENV'] === undefined
        ? {}
        : (JSON.parse(process.env['E2E_RELAY_ENV']) as Record<string, string>)),
      LOG_LEVEL: TRACE ? 'debug' : 'warn',
    },
    TRACE ? { readyLog: null, logFile: '/tmp/e2e-relay.log' } : { readyLog: null },
  );
  const nowS = Math.floor(Date.now() / 1000);
  const put = await fetch(`${relay.url}/v1/org/profile`, {
    method: 'PUT',
    body: Buffer.from(
      signedProfile(
        p,
        orgSeed,
        devices.map((d) => d.publicIdentity),
        nowS,
      ),
    ),
  });
  if (put.status !== 200) throw new Error(`profile PUT: HTTP ${put.status}`);
  const wsUrl = `ws://127.0.0.1:${relay.port}/v1/ws`;

  // The team: 6 devices, each counting which contact texts it decrypted.
  const stores = devices.map((d) => MemoryDeviceStore.create(p, d, nowS));
  const replicas = devices.map((d) => new CaseReplica(d.publicIdentity.id));
  const seenBy = new Map<string, number>();
  const latencies: number[] = [];
  let measuring = false;
  let unreadable = 0;
  const perDevice = new Array<number>(DEVICES).fill(0);
  const arrivals: number[] = [];
  const startDevice = async (i: number): Promise<TeamDevice> => {
    const t = new TeamDevice({
      p,
      organizationKey: orgKey,
      fetchProfile: profileFetcher(relay.url),
      store: stores[i]!,
      replica: replicas[i]!,
      relay: relayOptions(p, wsUrl),
    });
    t.on('unreadable', () => unreadable++);
    if (TRACE) {
      t.on('state', (st) => {
        if (st.state !== 'ready')
          say(`  team ${i}: ${st.state} ${JSON.stringify(st.lastLoss ?? null)}`);
      });
    }
    t.on('message', (m) => {
      if (m.message.type !== 'text' || !m.message.body.startsWith(PREFIX)) return;
      perDevice[i]!++;
      if (i === DEVICES - 1 && TRACE) arrivals.push(now());
      const count = (seenBy.get(m.message.id) ?? 0) + 1;
      if (count === DEVICES) {
        seenBy.delete(m.message.id);
        if (measuring)
          latencies.push(now() - Number.parseFloat(m.message.body.slice(PREFIX.length)));
      } else {
        seenBy.set(m.message.id, count);
      }
    });
    let published = false;
    t.prekeys.events.on('published', () => (published = true));
    await t.start();
    await waitFor('prekeys published', () => published);
    return t;
  };
  const team: TeamDevice[] = [];
  for (let i = 0; i < DEVICES; i++) team.push(await startDevice(i));

  const child = fork(fileURLToPath(import.meta.url), ['--role=contacts'], {
    env: {
      ...process.env,
      E2E_SETUP: JSON.stringify({
        backend,
        httpUrl: relay.url,
        wsUrl,
        organizationKey: toBase64url(orgKey),
      }),
    },
  });
  await new Promise<void>((resolve) => child.once('message', () => resolve()));

  const skip = (phase: string) => ONLY !== undefined && !ONLY.includes(phase);
  say(`first messages: ${FIRST_CONTACTS} new contacts, one after another…`);
  const { firstMs } = skip('first')
    ? { firstMs: [] }
    : await ask<{ firstMs: number[] }>(child, { cmd: 'first', n: FIRST_CONTACTS });
  const defaultBits = loadConfig({}).relay.powBits;
  const powSolveMs = powSolveMedian(defaultBits);

  say(`steady: ${CONVERSATIONS} conversations at 1 message/s…`);
  await ask(child, { cmd: 'connect', total: CONVERSATIONS });
  const before = latencies.length;
  let sent = 0;
  if (!skip('steady')) {
    await ask(child, { cmd: 'steady', seconds: STEADY_WARMUP_S });
    // What the warm-up sent is read before the measured run starts.
    await waitFor('the warm-up read by every device', () => seenBy.size === 0, 60_000);
    measuring = true;
    ({ sent } = await ask<{ sent: number }>(child, { cmd: 'steady', seconds: STEADY_MEASURED_S }));
    await waitFor(
      'the steady messages read by every device',
      () => latencies.length - before >= sent,
      60_000,
    );
    measuring = false;
  }

  if (skip('drain')) {
    child.send({ cmd: 'exit' });
    for (const t of team) t.close();
    await stopAllRelays();
    await redis.stop();
    return result({
      firstMs,
      powSolveMs,
      defaultBits,
      latencies: latencies.slice(before),
      sent,
      drain: NaN,
      resumeMs: [],
      unreadable,
    });
  }
  say(`drain: one device offline while ${DRAIN_MESSAGES} messages queue for it…`);
  const off = DEVICES - 1;
  team[off]!.close();
  const others = () => perDevice.filter((_, i) => i !== off);
  const base = others().map((n) => n);
  await ask(child, { cmd: 'burst', count: DRAIN_MESSAGES });
  await waitFor('the burst read by the online devices', () =>
    others().every((n, i) => n - base[i]! >= DRAIN_MESSAGES),
  );
  const drainedBefore = perDevice[off]!;
  const t0 = now();
  team[off] = await startDevice(off);
  const drained = await waitFor(
    'the drain',
    () => perDevice[off]! - drainedBefore >= DRAIN_MESSAGES,
  );
  const drainMs = now() - t0;
  if (TRACE) say(`  team relay errors: ${JSON.stringify(Object.fromEntries(errorCodes))}`);
  if (TRACE) {
    const buckets = new Map<number, number>();
    for (const a of arrivals)
      if (a >= t0)
        buckets.set(Math.floor((a - t0) / 250), (buckets.get(Math.floor((a - t0) / 250)) ?? 0) + 1);
    say(`  drain arrivals per 250 ms: ${[...buckets].map(([k, v]) => `${k}:${v}`).join(' ')}`);
  }
  const drainMsgsPerSec = drained ? DRAIN_MESSAGES / (drainMs / 1000) : NaN;

  say(`resume: ${RESUMES} returning contacts…`);
  const { resumeMs } = skip('resume')
    ? { resumeMs: [] }
    : await ask<{ resumeMs: number[] }>(child, { cmd: 'resume', n: RESUMES });

  child.send({ cmd: 'exit' });
  for (const t of team) t.close();
  await stopAllRelays();
  await redis.stop();
  return result({
    firstMs,
    powSolveMs,
    defaultBits,
    latencies: latencies.slice(before),
    sent,
    drain: drainMsgsPerSec,
    resumeMs,
    unreadable,
  });

  function result(r: {
    firstMs: readonly number[];
    powSolveMs: number;
    defaultBits: number;
    latencies: readonly number[];
    sent: number;
    drain: number;
    resumeMs: readonly number[];
    unreadable: number;
  }): Result {
    return {
      backend,
      firstMessageMs: round(percentile(r.firstMs, 0.5)),
      firstMessageP99Ms: round(percentile(r.firstMs, 0.99)),
      powSolveMs: round(r.powSolveMs),
      powDefaultBits: r.defaultBits,
      e2eP50Ms: round(percentile(r.latencies, 0.5)),
      e2eP99Ms: round(percentile(r.latencies, 0.99)),
      e2eMessages: r.latencies.length,
      e2eIncomplete: r.sent - r.latencies.length,
      drainMsgsPerSec: round(r.drain, 0),
      resumeMs: round(percentile(r.resumeMs, 0.5)),
      unreadable: r.unreadable,
    };
  }
}

async function main(): Promise<void> {
  const role = process.argv.find((a) => a.startsWith('--role='))?.slice(7);
  if (role === 'contacts') {
    await contactsProcess(JSON.parse(process.env['E2E_SETUP']!) as ContactsSetup);
    return;
  }
  const only = process.argv.find((a) => a.startsWith('--backend='))?.slice(10);
  const backends: Backend[] =
    only === undefined
      ? ['libsodium', 'noble']
      : only === 'libsodium' || only === 'noble'
        ? [only]
        : [];
  if (backends.length === 0) throw new Error('--backend takes libsodium or noble');
  const results: Result[] = [];
  for (const b of backends) results.push(await runBackend(b));
  say(
    '\nbackend    firstMs  firstP99  powSolve  e2eP50  e2eP99  e2e msgs (incomplete)  drain msg/s  resumeMs  unreadable',
  );
  for (const r of results) {
    say(
      `${r.backend.padEnd(10)} ${String(r.firstMessageMs).padStart(7)} ${String(r.firstMessageP99Ms).padStart(9)} ${String(r.powSolveMs).padStart(9)} ${String(r.e2eP50Ms).padStart(7)} ${String(r.e2eP99Ms).padStart(7)} ${String(r.e2eMessages).padStart(9)} (${r.e2eIncomplete})${' '.repeat(10)} ${String(r.drainMsgsPerSec).padStart(10)} ${String(r.resumeMs).padStart(9)} ${String(r.unreadable).padStart(10)}`,
    );
  }
  say(
    'targets (libsodium): firstMessageP99Ms ≤ 100, e2eP99Ms ≤ 25, drainMsgsPerSec ≥ 2000, resumeMs ≤ 400',
  );
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/e2e.json', JSON.stringify({ results }, null, 2) + '\n');
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
