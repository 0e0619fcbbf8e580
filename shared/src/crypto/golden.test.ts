/**
 * Golden transcripts: a whole exchange (identities, prekey publication, handshake, messages both
 * ways, a roster, a codename and its keys, a safety number) replayed from a fixed seed on both
 * backends. Every byte must equal the committed fixture, so a change of any wire format, label
 * or derivation is deliberate: regenerate with PASSAGE_UPDATE_GOLDEN=1 and review the diff.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from './backend.js';
import { deriveCodenameKeys, generateCodename, identityFromCodename } from './codename.js';
import { toHex } from './encoding.js';
import { MemoryDeviceStore } from './memory-store.js';
import { SessionCipher } from './session-cipher.js';
import { DeviceIdentity } from './identity.js';
import { decodePrekeyBundle, publicationOf } from './bundle.js';
import { asEd25519Seed } from './keys.js';
import type { Primitives } from './primitives.js';
import { dangerousTestOnlySeededRandom, withRandom } from './random.js';
import { signRoster } from './roster.js';
import { safetyNumber } from './safety-number.js';

const FIXTURE = new URL('./__golden__/transcript-v3.json', import.meta.url);
const NOW = 1_800_000_000;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Runs the scripted exchange; returns name → hex (small values) or SHA-256 hex (large ones). */
function transcript(base: Primitives): Record<string, string> {
  const p = withRandom(base, dangerousTestOnlySeededRandom(text('passage golden transcript v1')));
  const out: Record<string, string> = {};
  const put = (name: string, bytes: Uint8Array): void => {
    out[name] =
      bytes.length <= 160 ? toHex(bytes) : `sha256:${bytes.length}:${toHex(p.sha256(bytes))}`;
  };

  const codename = generateCodename(p);
  out['codename'] = codename;
  const keys = deriveCodenameKeys(p, codename, { version: 1, iterations: 1, memoryKiB: 64 });
  put('codename.signingSeed', keys.signingSeed);
  put('codename.mailboxKey', keys.mailboxKey);
  const contact = identityFromCodename(p, keys);
  put('contact.identity', contact.publicIdentity.encode());

  const coordinator = DeviceIdentity.generate(p);
  put('coordinator.identity', coordinator.publicIdentity.encode());
  const prekeys = MemoryDeviceStore.create(p, coordinator, NOW);
  const publication = publicationOf(prekeys, prekeys.addOneTimePrekeys(2));
  put('publication.signedPrekey', publication.signedPrekey);
  put('publication.oneTime0', publication.oneTime[0]!.key);

  const orgSeed = asEd25519Seed(p.random.bytes(32));
  put(
    'roster',
    signRoster(p, orgSeed, {
      serial: 1,
      issuedAtSeconds: NOW,
      expiresAtSeconds: NOW + 86_400,
      devices: [coordinator.publicIdentity],
    }),
  );

  const contactSessions = new SessionCipher(p, MemoryDeviceStore.createInitiatorOnly(p, contact));
  const coordinatorSessions = new SessionCipher(p, prekeys);
  contactSessions.startSession(
    decodePrekeyBundle(p, { ...publication, oneTime: publication.oneTime[0]! }),
  );
  const envelopes = [
    contactSessions.encryptFor(coordinator.publicIdentity, text('I need help.')),
    contactSessions.encryptFor(coordinator.publicIdentity, text('Are you there?')),
  ];
  envelopes.forEach((e) => coordinatorSessions.decrypt(e));
  envelopes.push(
    coordinatorSessions.encryptFor(
      contact.publicIdentity,
      text('We are here. You are safe to write.'),
    ),
  );
  contactSessions.decrypt(envelopes[2]!);
  envelopes.push(contactSessions.encryptFor(coordinator.publicIdentity, text('Thank you.')));
  coordinatorSessions.decrypt(envelopes[3]!);
  envelopes.forEach((e, i) => put(`envelope.${i}`, e));
  put('session.coordinator', coordinatorSessions.session(contact.publicIdentity)!.encode());
  put('sessionRecord.coordinator', prekeys.loadSession(contact.publicIdentity.address)!.encode());

  out['safetyNumber'] = safetyNumber(
    p,
    contact.publicIdentity.signingKey,
    coordinator.publicIdentity.signingKey,
  );
  return out;
}

let backends: Primitives[];
beforeAll(async () => {
  backends = [
    await loadPrimitives({ prefer: 'libsodium', strict: true }),
    await loadPrimitives({ prefer: 'noble' }),
  ];
});

describe('golden transcript', () => {
  it('is byte-identical on both backends', () => {
    expect(transcript(backends[1]!)).toEqual(transcript(backends[0]!));
  });

  it('matches the committed fixture', () => {
    const actual = transcript(backends[0]!);
    if (process.env['PASSAGE_UPDATE_GOLDEN'] === '1') {
      writeFileSync(FIXTURE, JSON.stringify(actual, null, 2) + '\n');
    }
    const expected = JSON.parse(readFileSync(FIXTURE, 'utf8')) as unknown;
    expect(actual).toEqual(expected);
  });
});
