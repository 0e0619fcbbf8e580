/**
 * The contact's state blob: sealing and opening, buckets, trimming, merging, and every way a
 * blob or its plaintext can be wrong (each with its own code). Malformed plaintexts are built
 * by a second encoder written from the format in contact-state.ts's comment, sealed under the
 * right key, so that each reaches the check it is about.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from '../crypto/backend.js';
import { decodePrekeyBundle, publicationOf, type VerifiedPrekeyBundle } from '../crypto/bundle.js';
import { concatBytes, labelPrefix, u16, u32, u8 } from '../crypto/encoding.js';
import { DeviceIdentity } from '../crypto/identity.js';
import { MemoryDeviceStore, type StoredDevice } from '../crypto/memory-store.js';
import { pad } from '../crypto/padding.js';
import type { Primitives } from '../crypto/primitives.js';
import { SessionCipher } from '../crypto/session-cipher.js';
import { SessionRecord } from '../crypto/session-record.js';
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import { mailboxIdFromPublicKey } from '../protocol/mailbox.js';
import { MAX_STATE_BLOB_BYTES } from '../protocol/limits.js';
import { utf8Encode } from '../org/utf8.js';
import {
  CONTACT_STATE_BLOB_BYTES,
  CONTACT_STATE_OVERHEAD_BYTES,
  ContactStateErrorCode as E,
  MAX_STATE_OUTBOX,
  MAX_TRANSCRIPT_ENTRIES,
  contactStateKeys,
  encodeContactState,
  insertEntry,
  mergeConversations,
  openContactState,
  sealContactState,
  type ContactState,
  type ContactStateKeys,
  type TranscriptEntry,
} from './contact-state.js';
import { encodeConversationMessage, type ConversationMessage } from './conversation/messages.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadPrimitives({ prefer: 'libsodium', strict: true });
});

const NOW = 1_800_000_000;
const TS = 1_750_000_000_000;
const idOf = (n: number) => toBase64url(new Uint8Array(16).fill(n));

interface Team {
  readonly cipher: SessionCipher;
  bundle(): VerifiedPrekeyBundle;
}

function teamDevice(): Team {
  const id = DeviceIdentity.generate(p);
  const store = MemoryDeviceStore.create(p, id, NOW);
  return {
    cipher: new SessionCipher(p, store),
    bundle() {
      const pub = publicationOf(store, store.addOneTimePrekeys(1));
      return decodePrekeyBundle(p, { ...pub, oneTime: pub.oneTime[0]! });
    },
  };
}

interface Contact {
  readonly identity: DeviceIdentity;
  readonly store: MemoryDeviceStore;
  readonly cipher: SessionCipher;
  readonly keys: ContactStateKeys;
  readonly mailbox: string;
}

function contact(): Contact {
  const identity = DeviceIdentity.generate(p);
  const store = MemoryDeviceStore.createInitiatorOnly(p, identity);
  const mailbox = mailboxIdFromPublicKey(identity.publicIdentity.signingKey, (d) => p.sha256(d));
  return {
    identity,
    store,
    cipher: new SessionCipher(p, store),
    keys: contactStateKeys(p, p.random.bytes(32), mailbox),
    mailbox,
  };
}

const text = (
  n: number,
  body = `message ${n}`,
  ts = TS + n,
): ConversationMessage & { type: 'text' } => ({
  v: 1,
  type: 'text',
  id: idOf(n),
  ts,
  body,
});

const own = (n: number, body?: string): TranscriptEntry => ({
  from: 'contact',
  message: text(n, body),
  receipt: 'none',
});

function stateOf(c: Contact, extra: Partial<ContactState> = {}): ContactState {
  return {
    profileVersion: 3,
    trimmed: 0,
    intake: {
      v: 1,
      type: 'intake',
      id: idOf(255),
      ts: TS,
      profileVersion: 3,
      answers: [{ field: 'safe_now', choices: ['no'] }],
    },
    transcript: [own(1), own(2)],
    outbox: [idOf(2)],
    device: c.store.export(),
    ...extra,
  };
}

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

/** A contact with a session to one team device, which has answered once. */
function conversing(): { c: Contact; team: Team } {
  const c = contact();
  const team = teamDevice();
  c.cipher.startSession(team.bundle());
  const first = c.cipher.encryptFor(team.cipher.identity.publicIdentity, utf8Encode('hello'));
  team.cipher.decrypt(first);
  c.cipher.decrypt(team.cipher.encryptFor(c.identity.publicIdentity, utf8Encode('hi')));
  return { c, team };
}

// A second encoder, from the format in the module comment.
const chunk = (b: Uint8Array) => [u32(b.length), b];
function rawPlaintext(
  device: StoredDevice,
  o: {
    version?: number;
    intake?: Uint8Array | null;
    intakeFlag?: number;
    entries?: Uint8Array[];
    entryCount?: number;
    outbox?: Uint8Array[];
    trailing?: Uint8Array;
    identity?: Uint8Array;
    sessions?: Uint8Array[];
  } = {},
): Uint8Array {
  const intake = o.intake ?? null;
  const entries = o.entries ?? [];
  const outbox = o.outbox ?? [];
  const sessions = o.sessions ?? device.sessions;
  return concatBytes(
    u8(o.version ?? 1),
    u32(1),
    u32(0),
    ...chunk(o.identity ?? device.identity),
    u8(0),
    u8(0),
    u16(0),
    u32(0),
    u8(0),
    u16(sessions.length),
    ...sessions.flatMap(chunk),
    ...(intake === null ? [u8(o.intakeFlag ?? 0)] : [u8(o.intakeFlag ?? 1), ...chunk(intake)]),
    u16(o.entryCount ?? entries.length),
    ...entries,
    u8(outbox.length),
    ...outbox,
    o.trailing ?? new Uint8Array(0),
  );
}

const rawEntry = (m: ConversationMessage, from?: Uint8Array, receipt = 0, bytes?: Uint8Array) =>
  concatBytes(
    ...(from === undefined ? [u8(0)] : [u8(1), from]),
    u8(receipt),
    ...chunk(bytes ?? encodeConversationMessage(m)),
  );

const PLAINTEXT_BUCKETS = CONTACT_STATE_BLOB_BYTES.map((b) => b - CONTACT_STATE_OVERHEAD_BYTES);

/** Seals padded plaintext the way the module does (the AD from the documented format). */
function sealRaw(keys: ContactStateKeys, padded: Uint8Array): Uint8Array {
  const nonce = p.random.bytes(24);
  const ad = concatBytes(labelPrefix('passage/v1/contact-state/ad'), u8(1), keys.mailbox);
  return concatBytes(u8(1), nonce, p.xchacha20poly1305Seal(keys.key, nonce, padded, ad));
}
const sealPlain = (keys: ContactStateKeys, plaintext: Uint8Array) =>
  sealRaw(keys, pad(plaintext, PLAINTEXT_BUCKETS));

const expected = (c: Contact) => ({ identity: c.identity.publicIdentity.signingKey });

describe('sealing and opening', () => {
  it('gives back the conversation and a device that reads what was sent after the save', () => {
    const { c, team } = conversing();
    const state = stateOf(c);
    const { blob, saved } = sealContactState(p, c.keys, state);
    expect(saved.transcript).toEqual(state.transcript);
    const opened = openContactState(p, c.keys, blob, expected(c));
    expect(opened.state.transcript).toEqual(state.transcript);
    expect(opened.state.intake).toEqual(state.intake);
    expect(opened.state.outbox).toEqual([idOf(2)]);
    expect(opened.state.profileVersion).toBe(3);
    // Queued meanwhile: the restored copy reads it.
    const later = team.cipher.encryptFor(c.identity.publicIdentity, utf8Encode('still there?'));
    const restored = new SessionCipher(p, opened.device);
    expect(new TextDecoder().decode(restored.decrypt(later).plaintext)).toBe('still there?');
  });

  it('makes blobs of exactly the bucket sizes, the smallest that holds the state', () => {
    const c = contact();
    const small = sealContactState(p, c.keys, stateOf(c)).blob;
    expect(small.length).toBe(4_096);
    const long = Array.from({ length: 40 }, (_, i) => own(i + 1, 'x'.repeat(400)));
    const big = sealContactState(p, c.keys, stateOf(c, { transcript: long, outbox: [] })).blob;
    expect(big.length).toBe(32_768);
    expect(CONTACT_STATE_BLOB_BYTES.at(-1)).toBe(MAX_STATE_BLOB_BYTES);
  });

  it('saves no session able to send, current or archived', () => {
    const { c, team } = conversing();
    // A second handshake archives the first session.
    c.cipher.startSession(team.bundle());
    expect(c.cipher.sessionsWith(team.cipher.identity.publicIdentity)).toHaveLength(2);
    const opened = openContactState(p, c.keys, sealContactState(p, c.keys, stateOf(c)).blob);
    const record = opened.device.loadSession(team.cipher.identity.publicIdentity.address)!;
    expect(record.sessions).toHaveLength(2);
    expect(record.sessions.map((s) => s.canSend)).toEqual([false, false]);
    expect(record.sessions.map((s) => s.isPending)).toEqual([false, false]);
  });

  it('draws a fresh nonce for every seal', () => {
    const c = contact();
    const a = sealContactState(p, c.keys, stateOf(c)).blob;
    const b = sealContactState(p, c.keys, stateOf(c)).blob;
    expect(toBase64url(a.subarray(1, 25))).not.toBe(toBase64url(b.subarray(1, 25)));
  });

  it('trims the oldest entries not in the outbox to fit the largest blob, and counts them', () => {
    const c = contact();
    const long = Array.from({ length: 200 }, (_, i) => own(i + 1, 'я'.repeat(300)));
    const state = stateOf(c, { transcript: long, outbox: [idOf(1)], trimmed: 5 });
    const { blob, saved } = sealContactState(p, c.keys, state);
    expect(blob.length).toBe(MAX_STATE_BLOB_BYTES);
    const dropped = 200 - saved.transcript.length;
    expect(dropped).toBeGreaterThan(0);
    expect(saved.trimmed).toBe(5 + dropped);
    // The pinned entry stays; what went are the oldest of the others.
    expect(saved.transcript[0]!.message.id).toBe(idOf(1));
    expect(saved.transcript[1]!.message.id).toBe(idOf(2 + dropped));
    expect(openContactState(p, c.keys, blob).state.transcript).toEqual(saved.transcript);
  });

  it('keeps attachment references (longest names) within the largest blob, trimming the oldest', () => {
    const c = contact();
    const attachment = (n: number): TranscriptEntry => ({
      from: 'contact',
      receipt: 'none',
      message: {
        v: 1,
        type: 'attachment',
        id: idOf(n),
        ts: TS + n,
        blob: toBase64url(new Uint8Array(16).fill(n)),
        key: toBase64url(new Uint8Array(32).fill(n)),
        digest: toBase64url(new Uint8Array(32).fill(255 - n)),
        size: MAX_STATE_BLOB_BYTES * 128,
        mediaType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
        fileName: `${'ф'.repeat(250)}.docx`,
      },
    });
    const many = Array.from({ length: 200 }, (_, i) => attachment(i + 1));
    const state = stateOf(c, { transcript: many, outbox: [idOf(200)] });
    const { blob, saved } = sealContactState(p, c.keys, state);
    expect(blob.length).toBe(MAX_STATE_BLOB_BYTES);
    expect(saved.transcript.length).toBeLessThan(200);
    expect(saved.trimmed).toBe(200 - saved.transcript.length);
    expect(saved.transcript.at(-1)!.message.id).toBe(idOf(200));
    expect(openContactState(p, c.keys, blob).state.transcript).toEqual(saved.transcript);
  });

  it('keeps MAX_TRANSCRIPT_ENTRIES entries and MAX_STATE_OUTBOX outbox ids', () => {
    const c = contact();
    const many = Array.from({ length: MAX_TRANSCRIPT_ENTRIES }, (_, i) => own(i + 1, '.')).map(
      (e, i) => ({ ...e, message: { ...e.message, id: toBase64url(u32Id(i)) } }),
    );
    const outbox = many.slice(0, MAX_STATE_OUTBOX).map((e) => e.message.id);
    const state = stateOf(c, { transcript: many, outbox });
    const { saved } = sealContactState(p, c.keys, state);
    expect(saved.outbox).toHaveLength(MAX_STATE_OUTBOX);
    expect(saved.transcript.length + saved.trimmed).toBe(MAX_TRANSCRIPT_ENTRIES);
  });
});

function u32Id(i: number): Uint8Array {
  const b = new Uint8Array(16);
  b.set(u32(i), 12);
  return b;
}

describe('refusing a state it will not save', () => {
  it('refuses MAX_TRANSCRIPT_ENTRIES + 1 entries and MAX_STATE_OUTBOX + 1 outbox ids', () => {
    const c = contact();
    const many = Array.from({ length: MAX_TRANSCRIPT_ENTRIES + 1 }, (_, i) => ({
      ...own(1),
      message: { ...text(1), id: toBase64url(u32Id(i)), ts: TS + i },
    }));
    expect(codeOf(() => encodeContactState(stateOf(c, { transcript: many, outbox: [] })))).toBe(
      E.MALFORMED,
    );
    const outbox = many.slice(0, MAX_STATE_OUTBOX + 1).map((e) => e.message.id);
    const some = many.slice(0, MAX_STATE_OUTBOX + 1);
    expect(codeOf(() => encodeContactState(stateOf(c, { transcript: some, outbox })))).toBe(
      E.MALFORMED,
    );
  });

  it('refuses with state_too_large when the outbox alone does not fit', () => {
    const c = contact();
    const big = Array.from({ length: 12 }, (_, i) => own(i + 1, 'ж'.repeat(9_000)));
    const state = stateOf(c, { transcript: big, outbox: big.map((e) => e.message.id) });
    expect(codeOf(() => sealContactState(p, c.keys, state))).toBe(E.TOO_LARGE);
  });

  it('refuses an outbox id that names no message of the contact', () => {
    const c = contact();
    expect(codeOf(() => encodeContactState(stateOf(c, { outbox: [idOf(99)] })))).toBe(E.MALFORMED);
  });
});

describe('opening a blob that is not one', () => {
  let c: Contact;
  let blob: Uint8Array;
  beforeAll(() => {
    c = conversing().c;
    blob = sealContactState(p, c.keys, stateOf(c)).blob;
  });
  const open = (b: Uint8Array, keys = c.keys) => codeOf(() => openContactState(p, keys, b));

  it.each([
    ['an empty blob', () => new Uint8Array(0), E.TRUNCATED],
    ['one byte', () => u8(1), E.TRUNCATED],
    ['one byte short of the smallest size', () => blob.slice(0, 4_095), E.TRUNCATED],
    [
      'one byte past the relay bound',
      () => concatBytes(u8(1), new Uint8Array(MAX_STATE_BLOB_BYTES)),
      E.TOO_LONG,
    ],
    ['a size between buckets', () => concatBytes(blob, u8(0)), E.BAD_LENGTH],
    ['version 0', () => concatBytes(u8(0), blob.subarray(1)), E.UNSUPPORTED_VERSION],
    ['version 2', () => concatBytes(u8(2), blob.subarray(1)), E.UNSUPPORTED_VERSION],
    ['a flipped nonce bit', () => flip(blob, 5), E.DECRYPT_FAILED],
    ['a flipped ciphertext bit', () => flip(blob, 1_000), E.DECRYPT_FAILED],
    ['a flipped tag bit', () => flip(blob, blob.length - 1), E.DECRYPT_FAILED],
    ['the first byte of the ciphertext flipped', () => flip(blob, 25), E.DECRYPT_FAILED],
  ])('refuses %s', (_, make, code) => {
    expect(open(make())).toBe(code);
  });

  it('refuses a blob under another codename (key) with the same code as any tampering', () => {
    const other = contactStateKeys(p, p.random.bytes(32), c.mailbox);
    expect(open(blob, other)).toBe(E.DECRYPT_FAILED);
  });

  it("refuses another mailbox's blob (the mailbox is the AD)", () => {
    const otherMailbox = toBase64url(p.random.bytes(32));
    const keys = { ...c.keys, mailbox: fromBase64url(otherMailbox)! };
    expect(open(blob, keys)).toBe(E.DECRYPT_FAILED);
  });

  it('refuses a blob cut down to a smaller bucket size', () => {
    const bigger = sealContactState(
      p,
      c.keys,
      stateOf(c, { transcript: [own(1, 'x'.repeat(5_000))], outbox: [] }),
    ).blob;
    expect(bigger.length).toBe(8_192);
    expect(open(bigger.slice(0, 4_096))).toBe(E.DECRYPT_FAILED);
  });

  it.each([
    ['no padding marker', () => new Uint8Array(PLAINTEXT_BUCKETS[0]!)],
    [
      'a byte after the marker',
      () => {
        const b = pad(u8(1), PLAINTEXT_BUCKETS);
        b[b.length - 1] = 1;
        return b;
      },
    ],
    [
      'a larger bucket than the data needs',
      () => {
        const b = new Uint8Array(PLAINTEXT_BUCKETS[1]!);
        b[10] = 0x80;
        return b;
      },
    ],
  ])('refuses authenticated plaintext with %s (state_bad_padding)', (_, make) => {
    expect(open(sealRaw(c.keys, make()))).toBe(E.BAD_PADDING);
  });

  it('opens the second encoder’s plaintext of a valid state (the format is as documented)', () => {
    const plain = rawPlaintext(c.store.export(), {
      entries: [rawEntry(text(1))],
      outbox: [fromBase64url(idOf(1))!],
    });
    const opened = openContactState(p, c.keys, sealPlain(c.keys, plain), expected(c));
    expect(opened.state.transcript.map((e) => e.message.id)).toEqual([idOf(1)]);
  });

  const teamId = new Uint8Array(32).fill(0xd1);
  const teamText = { ...text(3), case: 'aa'.repeat(32) } as ConversationMessage;
  it.each<[string, () => Parameters<typeof rawPlaintext>[1]]>([
    ['a trailing byte', () => ({ trailing: u8(0) })],
    ['plaintext version 2', () => ({ version: 2 })],
    ['an intake flag of 2', () => ({ intakeFlag: 2 })],
    ['a text in the intake slot', () => ({ intake: encodeConversationMessage(text(1)) })],
    ['an entry count past what follows', () => ({ entries: [rawEntry(text(1))], entryCount: 2 })],
    [
      'MAX_TRANSCRIPT_ENTRIES + 1 entries announced',
      () => ({ entryCount: MAX_TRANSCRIPT_ENTRIES + 1 }),
    ],
    ['the same entry twice', () => ({ entries: [rawEntry(text(1)), rawEntry(text(1))] })],
    ['entries out of order', () => ({ entries: [rawEntry(text(2)), rawEntry(text(1))] })],
    ['a receipt byte of 3', () => ({ entries: [rawEntry(text(1), undefined, 3)] })],
    ['a from flag of 2', () => ({ entries: [concatBytes(u8(2), rawEntry(text(1)).subarray(1))] })],
    ['a contact entry that names a case', () => ({ entries: [rawEntry(teamText)] })],
    ['a team entry without its case', () => ({ entries: [rawEntry(text(1), teamId)] })],
    [
      'a team-only message (an internal note) in the transcript',
      () => ({
        entries: [
          rawEntry(
            {
              v: 1,
              type: 'case_event',
              id: idOf(4),
              ts: TS,
              case: 'aa'.repeat(32),
              hlc: { wallMs: TS, counter: 0, device: 'd1'.repeat(32) },
              op: { kind: 'note', text: 'internal' },
            },
            teamId,
          ),
        ],
      }),
    ],
    [
      'a message that is not canonical JSON',
      () => ({
        entries: [
          rawEntry(
            text(1),
            undefined,
            0,
            utf8Encode(`{"v":1, "type":"text","id":"${idOf(1)}","ts":1,"body":"x"}`),
          ),
        ],
      }),
    ],
    ['an outbox id of no message', () => ({ outbox: [fromBase64url(idOf(9))!] })],
    ['a garbage session record', () => ({ sessions: [new Uint8Array(40).fill(1)] })],
    [
      'another identity than the codename’s',
      () => ({ identity: DeviceIdentity.generate(p).encodeSecret() }),
    ],
  ])('refuses authenticated, padded plaintext with %s (state_malformed)', (_, options) => {
    const plain = rawPlaintext(c.store.export(), options());
    expect(codeOf(() => openContactState(p, c.keys, sealPlain(c.keys, plain), expected(c)))).toBe(
      E.MALFORMED,
    );
  });

  it('strips on opening the sending chain of a record another encoder saved with one', () => {
    // Not an error: the chain is removed on opening. The test pins that it is.
    const { c: d } = conversing();
    const plain = rawPlaintext(d.store.export());
    expect(
      d.store.export().sessions.map((b) => SessionRecord.decode(p, b).current.canSend),
    ).toEqual([true]);
    const opened = openContactState(p, d.keys, sealPlain(d.keys, plain), expected(d));
    const record = SessionRecord.decode(p, opened.state.device.sessions[0]!);
    expect(record.current.canSend).toBe(false);
    expect(
      [...opened.device.sessionAddresses()].map(
        (a) => opened.device.loadSession(a)!.current.canSend,
      ),
    ).toEqual([false]);
  });
});

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  out[index]! ^= 1;
  return out;
}

describe('merging two copies', () => {
  const team = 'd1'.repeat(32);
  const reply = (n: number): TranscriptEntry => ({
    from: team,
    message: { ...text(n), case: 'aa'.repeat(32) },
    receipt: 'none',
  });

  it('takes the union of the transcripts in order, the further receipt, both outboxes', () => {
    const ours = {
      profileVersion: 2,
      trimmed: 1,
      intake: null,
      transcript: [own(1), { ...own(3), receipt: 'delivered' as const }],
      outbox: [idOf(3)],
    };
    const theirs = {
      profileVersion: 4,
      trimmed: 0,
      intake: null,
      transcript: [own(1), reply(2), { ...own(3), receipt: 'read' as const }, own(4)],
      outbox: [idOf(4)],
    };
    const merged = mergeConversations(ours, theirs);
    expect(merged.transcript.map((e) => e.message.id)).toEqual([1, 2, 3, 4].map(idOf));
    expect(merged.transcript[2]!.receipt).toBe('read');
    expect(merged.outbox).toEqual([idOf(3), idOf(4)]);
    expect(merged.profileVersion).toBe(4);
    expect(merged.trimmed).toBe(1);
    // The same sets either way round.
    const back = mergeConversations(theirs, ours);
    expect(back.transcript.map((e) => e.message.id)).toEqual([1, 2, 3, 4].map(idOf));
  });

  it('cuts the union to MAX_TRANSCRIPT_ENTRIES, oldest unpinned first, and counts the cut', () => {
    const a = Array.from({ length: MAX_TRANSCRIPT_ENTRIES }, (_, i) => ({
      ...own(1),
      message: { ...text(1), id: toBase64url(u32Id(i)), ts: TS + 2 * i },
    }));
    const b = Array.from({ length: 10 }, (_, i) => ({
      ...own(1),
      message: { ...text(1), id: toBase64url(u32Id(100_000 + i)), ts: TS + 2 * i + 1 },
    }));
    const c = { profileVersion: 0, trimmed: 0, intake: null, outbox: [] };
    const merged = mergeConversations({ ...c, transcript: a }, { ...c, transcript: b });
    expect(merged.transcript).toHaveLength(MAX_TRANSCRIPT_ENTRIES);
    expect(merged.trimmed).toBe(10);
  });

  it('inserts in transcript order and ignores an id held already', () => {
    let t: readonly TranscriptEntry[] = [];
    for (const n of [3, 1, 2, 2]) t = insertEntry(t, own(n));
    expect(t.map((e) => e.message.id)).toEqual([1, 2, 3].map(idOf));
  });
});
