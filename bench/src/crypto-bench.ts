/**
 * `npm run bench:crypto`: timings of the crypto core on both backends, each the median of many
 * runs after a warm-up. Prints a table and writes bench-results/crypto.json.
 *
 * - handshakeMs: initiator (verify the fetched bundle, PQXDH, first message sealed) + responder
 *   (open the envelope, PQXDH, first message decrypted): the whole first contact.
 * - encryptDecryptMs: a 1 KiB message in an established session, sealed envelope included
 *   (what a message really costs: ratchet + sealed sender on both sides).
 * - ratchetEncryptDecryptMs: the same without the sealed envelope (ratchet only), for reference.
 * - decryptMs: a legitimate in-order 1 KiB message through the whole receive path (envelope
 *   opened, sender looked up, session decrypts), encryption untimed.
 * - forgedRejectMs: the worst forgery an outsider can construct against a device, timed until it
 *   is rejected: the larger of forgedMessageMs (an envelope naming a peer held with the most
 *   sessions whose ratchet header has a fresh ratchet key and the most skips allowed on the old
 *   and the new chain) and forgedPrekeyMs (an initial message naming that peer and the
 *   receiver's current prekeys, rejected at its early tag after DH1). See `forgery` below.
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
import { SessionCipher } from '@passage/shared/crypto/session-cipher';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { decodePrekeyBundle, publicationOf } from '@passage/shared/crypto/bundle';
import type { PublicIdentity } from '@passage/shared/crypto/identity';
import type { VerifiedPrekeyBundle } from '@passage/shared/crypto/bundle';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { Ratchet } from '@passage/shared/crypto/ratchet';
import { generateX25519KeyPair } from '@passage/shared/crypto/keys';
import { MAX_ARCHIVED_SESSIONS } from '@passage/shared/crypto/limits';
import { MAX_SKIP, RATCHET_MESSAGE_VERSION } from '@passage/shared/crypto/ratchet';
import { EARLY_TAG_BYTES } from '@passage/shared/crypto/kdf';
import { encodePqxdhInitial } from '@passage/shared/crypto/x3dh';
import { MLKEM768_CIPHERTEXT_BYTES } from '@passage/shared/crypto/primitives';
import { sealEnvelope } from '@passage/shared/crypto/envelope';
import { concatBytes, u32, u8 } from '@passage/shared/crypto/encoding';

const NOW_SECONDS = 1_800_000_000;
const MESSAGE = new Uint8Array(1024).fill(0x61);

interface Result {
  readonly backend: Primitives['backend'];
  readonly handshakeMs: number;
  readonly encryptDecryptMs: number;
  readonly ratchetEncryptDecryptMs: number;
  readonly decryptMs: number;
  readonly forgedRejectMs: number;
  readonly forgedMessageMs: number;
  readonly forgedPrekeyMs: number;
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
  readonly sessions: SessionCipher;
  readonly prekeys: MemoryDeviceStore;
  readonly pub: PublicIdentity;
}

function device(p: Primitives): Device {
  const identity = DeviceIdentity.generate(p);
  const prekeys = MemoryDeviceStore.create(p, identity, NOW_SECONDS);
  return {
    sessions: new SessionCipher(p, prekeys),
    prekeys,
    pub: identity.publicIdentity,
  };
}

function publishedParts(d: Device) {
  const pub = publicationOf(d.prekeys, d.prekeys.addOneTimePrekeys(1));
  return { identity: pub.identity, signedPrekey: pub.signedPrekey, oneTime: pub.oneTime[0]! };
}

function bundle(p: Primitives, d: Device): VerifiedPrekeyBundle {
  return decodePrekeyBundle(p, publishedParts(d));
}

function connect(p: Primitives, a: Device, b: Device): void {
  a.sessions.startSession(bundle(p, b));
  b.sessions.decrypt(a.sessions.encryptFor(b.pub, MESSAGE));
  a.sessions.decrypt(b.sessions.encryptFor(a.pub, MESSAGE));
}

/**
 * A victim device holding a peer with the most sessions (each of which has received, so each
 * has an old receiving chain to walk; the victim has written to the peer, so all are kept), and
 * the two envelopes an outsider can seal to it naming that peer as the sender:
 * - `message`: a ratchet message with a fresh ratchet key and the most skips the receiver allows
 *   (pn and n at MAX_SKIP / 2 each: both chains, MAX_SKIP in all; rejected at the early tag);
 * - `prekey`: an initial message naming the victim's current prekeys with a fresh base key, a
 *   random KEM ciphertext and a random early tag: the forger cannot compute the tag (its key
 *   comes from DH1, which needs the named peer's identity secret), so the victim refuses it
 *   after DH1, before the other DHs and the KEM decapsulation. Everything before the tag check
 *   (the envelope, the sender lookup, the replay memory, the prekey lookup) still runs; no
 *   choice of fields makes the victim do more before it.
 */
function forgery(p: Primitives): { victim: Device; message: Uint8Array; prekey: Uint8Array } {
  const victim = device(p);
  const peer = device(p);
  for (let i = 0; i <= MAX_ARCHIVED_SESSIONS; i++) {
    peer.sessions.startSession(bundle(p, victim));
    victim.sessions.decrypt(peer.sessions.encryptFor(victim.pub, MESSAGE));
    // The victim answers: a peer it wrote to keeps all its archived sessions.
    victim.sessions.encryptFor(peer.pub, MESSAGE);
  }
  const ratchetMessage = (): Uint8Array =>
    concatBytes(
      u8(RATCHET_MESSAGE_VERSION),
      generateX25519KeyPair(p).publicKey,
      u32(1 + MAX_SKIP / 2),
      u32(MAX_SKIP / 2),
      p.random.bytes(EARLY_TAG_BYTES + 1024 + 16),
    );
  const message = sealEnvelope(p, victim.pub, {
    sender: peer.pub,
    initial: null,
    message: ratchetMessage(),
  });
  const initial = encodePqxdhInitial({
    initiator: peer.pub,
    ephemeral: generateX25519KeyPair(p).publicKey,
    signedPrekeyId: victim.prekeys.currentSignedPrekey!.id,
    kemPrekeyId: victim.prekeys.currentKemPrekey!.id,
    oneTimePrekeyId: null,
    kemCiphertext: p.random.bytes(MLKEM768_CIPHERTEXT_BYTES),
    tag: p.random.bytes(EARLY_TAG_BYTES),
  });
  const prekey = sealEnvelope(p, victim.pub, {
    sender: peer.pub,
    initial,
    message: ratchetMessage(),
  });
  return { victim, message, prekey };
}

function rejects(victim: Device, envelope: Uint8Array): void {
  try {
    victim.sessions.decrypt(envelope);
  } catch {
    return;
  }
  throw new Error('the forgery was accepted');
}

function benchBackend(p: Primitives, scale: number): Result {
  const runs = {
    handshake: Math.round(200 * scale),
    encryptDecrypt: Math.round(2000 * scale),
    decrypt: Math.round(2000 * scale),
    forged: Math.round(200 * scale),
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

  const decryptMs = measure(
    runs.decrypt,
    50,
    () => a.sessions.encryptFor(b.pub, MESSAGE),
    (envelope) => {
      b.sessions.decrypt(envelope);
    },
  );

  const forgedMessageMs = measure(
    runs.forged,
    5,
    () => forgery(p),
    (f) => rejects(f.victim, f.message),
  );
  const forgedPrekeyMs = measure(
    runs.forged,
    5,
    () => forgery(p),
    (f) => rejects(f.victim, f.prekey),
  );
  const forgedRejectMs = Math.max(forgedMessageMs, forgedPrekeyMs);

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
    decryptMs,
    forgedRejectMs,
    forgedMessageMs,
    forgedPrekeyMs,
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
    'backend      handshake  enc+dec 1K  ratchet-only  fan-out 10  codename     decrypt    forged  forged/decrypt',
    ...results.map(
      (r) =>
        `${r.backend.padEnd(10)} ${fmt(r.handshakeMs)} ${fmt(r.encryptDecryptMs)} ${fmt(r.ratchetEncryptDecryptMs)}   ${fmt(r.fanout10Ms)} ${fmt(r.codenameDeriveMs)} ${fmt(r.decryptMs)} ${fmt(r.forgedRejectMs)} ${fmt(r.forgedRejectMs / r.decryptMs)}`,
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
