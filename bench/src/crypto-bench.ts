/**
 * `npm run bench:crypto`: timings of the crypto core on both backends, each the median of many
 * runs after a warm-up. Prints a table and writes bench-results/crypto.json.
 *
 * - handshakeMs: initiator (verify the fetched bundle, PQXDH, first message sealed) + responder
 *   (open the envelope, PQXDH, first message decrypted): the whole first contact.
 * - encryptDecryptMs: a 1 KiB message in an established session, sealed envelope included
 *   (what a message really costs: ratchet + sealed sender on both sides).
 * - ratchetEncryptDecryptMs: the same without the sealed envelope (ratchet only), for reference.
 * - fanout10Ms: one 1 KiB message encrypted for 10 devices with established sessions.
 * - codenameDeriveMs: codename → keys at the default Argon2id parameters (t = 3, 32 MiB).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import {
  CODENAME_KDF_PARAMS_V1,
  deriveCodenameKeys,
  generateCodename,
} from '@passage/shared/crypto/codename';
import { DeviceSessions } from '@passage/shared/crypto/fanout';
import { DeviceIdentity, DevicePrekeys, decodePrekeyBundle } from '@passage/shared/crypto/identity';
import type { PrekeyBundle, PublicIdentity } from '@passage/shared/crypto/identity';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { Ratchet } from '@passage/shared/crypto/ratchet';
import { generateX25519KeyPair } from '@passage/shared/crypto/keys';

const NOW_SECONDS = 1_800_000_000;
const MESSAGE = new Uint8Array(1024).fill(0x61);

interface Result {
  readonly backend: Primitives['backend'];
  readonly handshakeMs: number;
  readonly encryptDecryptMs: number;
  readonly ratchetEncryptDecryptMs: number;
  readonly fanout10Ms: number;
  readonly codenameDeriveMs: number;
  readonly runs: Readonly<Record<string, number>>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median wall time of `run`, after `warmup` untimed calls. `setup` runs untimed before each. */
function measure<T>(runs: number, warmup: number, setup: () => T, run: (input: T) => void): number {
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const input = setup();
    const start = performance.now();
    run(input);
    const elapsed = performance.now() - start;
    if (i >= warmup) times.push(elapsed);
  }
  return median(times);
}

interface Device {
  readonly sessions: DeviceSessions;
  readonly prekeys: DevicePrekeys;
  readonly pub: PublicIdentity;
}

function device(p: Primitives): Device {
  const identity = DeviceIdentity.generate(p);
  const prekeys = DevicePrekeys.create(p, identity, NOW_SECONDS);
  return {
    sessions: new DeviceSessions(p, identity, prekeys),
    prekeys,
    pub: identity.publicIdentity,
  };
}

function publishedParts(d: Device) {
  const pub = d.prekeys.publication(d.prekeys.addOneTimePrekeys(1));
  return { identity: pub.identity, signedPrekey: pub.signedPrekey, oneTime: pub.oneTime[0]! };
}

function bundle(p: Primitives, d: Device): PrekeyBundle {
  return decodePrekeyBundle(p, publishedParts(d));
}

function connect(p: Primitives, a: Device, b: Device): void {
  a.sessions.startSession(bundle(p, b));
  b.sessions.decrypt(a.sessions.encryptFor(b.pub, MESSAGE));
  a.sessions.decrypt(b.sessions.encryptFor(a.pub, MESSAGE));
}

function benchBackend(p: Primitives, scale: number): Result {
  const runs = {
    handshake: Math.round(200 * scale),
    encryptDecrypt: Math.round(2000 * scale),
    fanout10: Math.round(200 * scale),
    codenameDerive: Math.max(5, Math.round(15 * scale)),
  };

  const responder = device(p);
  const handshakeMs = measure(
    runs.handshake,
    10,
    () => ({ initiator: device(p), parts: publishedParts(responder) }),
    ({ initiator, parts }) => {
      initiator.sessions.startSession(decodePrekeyBundle(p, parts));
      responder.sessions.decrypt(initiator.sessions.encryptFor(responder.pub, MESSAGE));
    },
  );

  const a = device(p);
  const b = device(p);
  connect(p, a, b);
  const encryptDecryptMs = measure(
    runs.encryptDecrypt,
    50,
    () => undefined,
    () => {
      b.sessions.decrypt(a.sessions.encryptFor(b.pub, MESSAGE));
    },
  );

  const sk = p.random.bytes(32);
  const bobKey = generateX25519KeyPair(p);
  const alice = Ratchet.initiator(p, sk, bobKey.publicKey);
  const bob = Ratchet.responder(p, sk, bobKey);
  const ad = new Uint8Array(32);
  const ratchetEncryptDecryptMs = measure(
    runs.encryptDecrypt,
    50,
    () => undefined,
    () => {
      bob.decrypt(alice.encrypt(MESSAGE, ad), ad);
    },
  );

  const sender = device(p);
  const recipients = Array.from({ length: 10 }, () => device(p));
  for (const r of recipients) connect(p, sender, r);
  const recipientIds = recipients.map((r) => r.pub);
  const fanout10Ms = measure(
    runs.fanout10,
    10,
    () => undefined,
    () => {
      sender.sessions.fanOut(recipientIds, MESSAGE);
    },
  );

  const codename = generateCodename(p);
  const codenameDeriveMs = measure(
    runs.codenameDerive,
    1,
    () => undefined,
    () => {
      deriveCodenameKeys(p, codename, CODENAME_KDF_PARAMS_V1);
    },
  );

  return {
    backend: p.backend,
    handshakeMs,
    encryptDecryptMs,
    ratchetEncryptDecryptMs,
    fanout10Ms,
    codenameDeriveMs,
    runs,
  };
}

const TARGETS = { handshakeMs: 5, encryptDecryptMs: 0.2, fanout10Ms: 3 } as const;

async function main(): Promise<void> {
  const sodium = await loadPrimitives({ prefer: 'libsodium', strict: true });
  const noble = await loadPrimitives({ prefer: 'noble' });
  // noble is one to two orders of magnitude slower; fewer runs keep the benchmark short.
  const results = [benchBackend(sodium, 1), benchBackend(noble, 0.25)];

  const fmt = (x: number): string => x.toFixed(3).padStart(10);
  const lines = [
    'backend      handshake  enc+dec 1K  ratchet-only  fan-out 10  codename',
    ...results.map(
      (r) =>
        `${r.backend.padEnd(10)} ${fmt(r.handshakeMs)} ${fmt(r.encryptDecryptMs)} ${fmt(r.ratchetEncryptDecryptMs)}   ${fmt(r.fanout10Ms)} ${fmt(r.codenameDeriveMs)}`,
    ),
    `targets    ${fmt(TARGETS.handshakeMs)} ${fmt(TARGETS.encryptDecryptMs)}                ${fmt(TARGETS.fanout10Ms)}   (libsodium, ms, medians)`,
  ];
  process.stdout.write(lines.join('\n') + '\n');

  const out = new URL('../../bench-results/', import.meta.url);
  mkdirSync(out, { recursive: true });
  writeFileSync(
    new URL('crypto.json', out),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        unit: 'ms (median)',
        message: '1 KiB',
        targets: { backend: 'libsodium', ...TARGETS },
        results,
      },
      null,
      2,
    ) + '\n',
  );
}

await main();
