/**
 * Attachments end to end, over a real relay process (first-contact proof-of-work at 1 bit, so a
 * reservation pays as a page's does), real WebSockets and the relay's real blob endpoints: a
 * contact strips a JPEG's EXIF GPS and sends it to the team, which fetches, verifies and reads
 * exactly the stripped bytes; a coordinator sends a file back; the contact's saved state records
 * both; and a profile's `maxAttachmentBytes` refuses a larger file before anything is uploaded.
 */
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import {
  AttachmentErrorCode,
  ContactConversation,
  TeamDevice,
  fetchBlobTransport,
  inlinePowSolver,
  largestAttachmentFile,
  systemClock,
  type AttachmentMessage,
  type BlobProgress,
  type BlobTransport,
  type ReceivedMessage,
} from '@passage/shared/client/index';
import { CaseReplica } from '@passage/shared/client/conversation/case-replica';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import {
  deriveCodenameKeys,
  generateCodename,
  identityFromCodename,
} from '@passage/shared/crypto/codename';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { stripMetadata } from '@passage/shared/media/strip';
import { organizationKey, type OrganizationKey } from '@passage/testing/crypto-fixtures';
import {
  CAMERA_SERIAL,
  GPS_LATITUDE_RATIONALS,
  containsBytes,
  jpegWithGps,
} from '@passage/testing/media-fixtures';
import { sampleProfileContent, signedProfile } from '@passage/testing/org-fixtures';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { until } from '@passage/testing/wait';
import { wsTransport } from '@passage/testing/ws-transport';

let p: Primitives;
let org: OrganizationKey;
let relay: RelayProcess;
const endpoints: { close(): void }[] = [];

beforeAll(async () => {
  p = await loadPrimitives({ prefer: 'libsodium', strict: true });
  org = organizationKey(p);
  relay = await startRelay({ POW_BITS: '1' });
}, 60_000);

afterEach(() => {
  for (const e of endpoints.splice(0)) e.close();
});

afterAll(stopAllRelays);

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

/** The real fetch transport to the relay, counting the uploads it made. */
function countingBlobs(): { blobs: BlobTransport; puts: () => number } {
  const real = fetchBlobTransport({ baseUrl: relay.url });
  let puts = 0;
  return {
    blobs: {
      put: (...args) => (puts++, real.put(...args)),
      get: (...args) => real.get(...args),
    },
    puts: () => puts,
  };
}

interface Setup {
  readonly team: TeamDevice;
  readonly teamRead: ReceivedMessage[];
  readonly teamPuts: () => number;
  readonly contact: ContactConversation;
  readonly contactRead: ReceivedMessage[];
  readonly contactPuts: () => number;
}

async function setup(maxAttachmentBytes?: number): Promise<Setup> {
  const device = DeviceIdentity.generate(p);
  const now = Math.floor(Date.now() / 1000);
  const content =
    maxAttachmentBytes === undefined
      ? sampleProfileContent()
      : { ...sampleProfileContent(), maxAttachmentBytes };
  const served = signedProfile(p, org.seed, [device.publicIdentity], now, { content });
  const teamBlobs = countingBlobs();
  const team = new TeamDevice({
    p,
    organizationKey: org.publicKey,
    fetchProfile: () => Promise.resolve(served),
    store: MemoryDeviceStore.create(p, device, now),
    replica: new CaseReplica(device.publicIdentity.id),
    relay: relayOptions(),
    blobs: teamBlobs.blobs,
  });
  endpoints.push(team);
  const teamRead: ReceivedMessage[] = [];
  team.on('message', (m) => teamRead.push(m));
  let published = false;
  team.prekeys.events.on('published', () => (published = true));
  await team.start();
  await until(() => published);

  const keys = deriveCodenameKeys(p, generateCodename(p));
  const contactBlobs = countingBlobs();
  const contact = new ContactConversation({
    p,
    organizationKey: org.publicKey,
    fetchProfile: () => Promise.resolve(served),
    identity: identityFromCodename(p, keys),
    relay: relayOptions(),
    state: { mailboxKey: keys.mailboxKey, mode: 'new' },
    blobs: contactBlobs.blobs,
  });
  endpoints.push(contact);
  const contactRead: ReceivedMessage[] = [];
  contact.on('message', (m) => contactRead.push(m));
  await contact.start();
  return {
    team,
    teamRead,
    teamPuts: teamBlobs.puts,
    contact,
    contactRead,
    contactPuts: contactBlobs.puts,
  };
}

const attachmentOf = (m: ReceivedMessage | undefined): AttachmentMessage => {
  if (m?.message.type !== 'attachment') throw new Error('not an attachment');
  return m.message;
};

const codeOf = async (promise: Promise<unknown>): Promise<string | undefined> => {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return 'no error';
};

it('sends a stripped JPEG from the contact; the team fetches, verifies and reads exactly those bytes', async () => {
  const s = await setup();
  const photo = jpegWithGps(50_000);
  const stripped = stripMetadata(photo, 'image/jpeg');
  if (!stripped.ok) throw new Error(stripped.code);
  expect(containsBytes(stripped.bytes, GPS_LATITUDE_RATIONALS)).toBe(false);

  const uploads: BlobProgress[] = [];
  const sent = await s.contact.sendAttachment(
    { bytes: stripped.bytes, name: 'photo.jpg', type: 'image/jpeg' },
    (e) => uploads.push(e),
  );
  expect(uploads.at(-1)).toMatchObject({
    bytes: sent.message.type === 'attachment' ? sent.message.size : -1,
  });
  await until(() => s.teamRead.length === 1);
  const received = attachmentOf(s.teamRead[0]);
  expect(received).toMatchObject({ fileName: 'photo.jpg', mediaType: 'image/jpeg' });
  expect(s.teamRead[0]!.origin).toEqual({ from: 'contact' });

  const downloads: BlobProgress[] = [];
  const bytes = await s.team.fetchAttachment(received, (e) => downloads.push(e));
  expect(bytes).toEqual(stripped.bytes);
  expect(containsBytes(bytes, GPS_LATITUDE_RATIONALS)).toBe(false);
  expect(containsBytes(bytes, new TextEncoder().encode(CAMERA_SERIAL))).toBe(false);
  expect(downloads.at(-1)).toEqual({ bytes: received.size, total: received.size });
  // What the relay holds is padded ciphertext: its size is a bucket, not the photo's.
  expect(received.size).toBeGreaterThan(stripped.bytes.length);

  // Sent the way a text is: delivered, in the saved transcript, off the saved outbox.
  await until(() => s.contact.delivery(sent.id)?.state === 'delivered');
  const saved = s.contact.savedState!.conversation;
  expect(saved.transcript.map((e) => [e.from, e.message.type])).toEqual([
    ['contact', 'attachment'],
  ]);
  await until(() => s.contact.savedState!.conversation.outbox.length === 0);
});

it('sends a file from the team to the contact, which fetches and reads it', async () => {
  const s = await setup();
  await s.contact.sendText('Can you send me the form?');
  await until(() => s.teamRead.length === 1);
  const caseId = s.contact.self.id;
  const form = p.random.bytes(123_457);
  await s.team.sendAttachment(caseId, { bytes: form, name: 'form.pdf', type: 'application/pdf' });
  await until(() => s.contactRead.length === 1);
  const received = attachmentOf(s.contactRead[0]);
  expect(received).toMatchObject({ fileName: 'form.pdf', mediaType: 'application/pdf' });
  expect(await s.contact.fetchAttachment(received)).toEqual(form);
  // The contact's saved transcript keeps it, key and all, to fetch again after a restore.
  await until(() =>
    s.contact.savedState!.conversation.transcript.some((e) => e.message.type === 'attachment'),
  );
  const entry = s.contact.savedState!.conversation.transcript.find(
    (e) => e.message.type === 'attachment',
  )!;
  expect(entry.message).toEqual(received);
});

it('refuses a file over the profile’s maxAttachmentBytes before uploading, and sends one at it', async () => {
  const limit = 20_000;
  const s = await setup(limit);
  expect(s.contact.maxAttachmentBytes).toBe(limit);
  const largest = largestAttachmentFile(limit);
  const over = p.random.bytes(largest + 1);
  expect(await codeOf(s.contact.sendAttachment({ bytes: over, name: 'big.bin', type: '' }))).toBe(
    AttachmentErrorCode.TOO_LARGE,
  );
  expect(s.contactPuts()).toBe(0);
  expect(s.contact.savedState?.conversation.transcript ?? []).toEqual([]);

  const at = p.random.bytes(largest);
  await s.contact.sendAttachment({ bytes: at, name: 'fits.bin', type: '' });
  expect(s.contactPuts()).toBe(1);
  await until(() => s.teamRead.length === 1);
  const received = attachmentOf(s.teamRead[0]);
  expect(received.mediaType).toBe('application/octet-stream');
  expect(received.size).toBeLessThanOrEqual(limit);
  expect(await s.team.fetchAttachment(received)).toEqual(at);
});

it('refuses an empty file, a path as a name, and a case it cannot write to, before uploading', async () => {
  const s = await setup();
  const file = { bytes: p.random.bytes(10), name: 'a.txt', type: 'text/plain' };
  expect(await codeOf(s.contact.sendAttachment({ ...file, bytes: new Uint8Array(0) }))).toBe(
    AttachmentErrorCode.EMPTY,
  );
  expect(await codeOf(s.contact.sendAttachment({ ...file, name: '../etc/passwd' }))).toBe(
    'msg_malformed',
  );
  expect(await codeOf(s.team.sendAttachment('ab'.repeat(32), file))).toBe('unknown_case');
  expect([s.contactPuts(), s.teamPuts()]).toEqual([0, 0]);
});

it('answers no_blob for an attachment whose blob the relay does not hold', async () => {
  const s = await setup();
  await s.contact.sendAttachment({ bytes: p.random.bytes(100), name: 'a.txt', type: 'text/plain' });
  await until(() => s.teamRead.length === 1);
  const real = attachmentOf(s.teamRead[0]);
  const missing = { ...real, blob: 'AAAAAAAAAAAAAAAAAAAAAA' };
  expect(await codeOf(s.team.fetchAttachment(missing))).toBe(AttachmentErrorCode.NO_BLOB);
  // Another message's digest: the blob is fetched but refused before it is decrypted.
  const wrongDigest = { ...real, digest: real.key };
  expect(await codeOf(s.team.fetchAttachment(wrongDigest))).toBe(
    AttachmentErrorCode.DIGEST_MISMATCH,
  );
  // A message announcing less than the blob: not read past the announced size.
  const shorter = { ...real, size: real.size - 1 };
  expect(await codeOf(s.team.fetchAttachment(shorter))).toBe(AttachmentErrorCode.SIZE_MISMATCH);
});
