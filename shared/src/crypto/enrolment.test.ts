/**
 * Invite codes and enrolment requests: the device's request, the admin tool's verification, and
 * every refusal in the order the verifier checks.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  FIXED_NOW_SECONDS as NOW,
  organizationKey,
  type OrganizationKey,
} from '@passage/testing/crypto-fixtures';
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import { DeviceIdentity } from './identity.js';
import { mailboxIdFromPublicKey } from '../protocol/mailbox.js';
import { ENVELOPE_SIZES_BYTES, sealEnvelope } from './envelope.js';
import {
  createEnrolmentEnvelope,
  createEnrolmentRequest,
  decodeInvite,
  enrolmentMailboxId,
  openEnrolmentEnvelope,
  EnrolmentError,
  EnrolmentErrorCode,
  encodeInvite,
  INVITE_BYTES,
  INVITE_TEXT_PREFIX,
  inviteIdHex,
  MAX_DEVICE_LABEL_BYTES,
  MAX_ENROLMENT_REQUEST_BYTES,
  newInvite,
  verifyEnrolmentRequest,
  type EnrolmentCheck,
  type Invite,
  type IssuedInvite,
} from './enrolment.js';
import type { Primitives } from './primitives.js';
import { loadSodiumBackend } from './sodium.js';

let p: Primitives;
let org: OrganizationKey;
let mailbox: DeviceIdentity;
let device: DeviceIdentity;
let invite: Invite;
beforeAll(async () => {
  p = await loadSodiumBackend();
  org = organizationKey(p);
  mailbox = DeviceIdentity.generate(p);
  device = DeviceIdentity.generate(p);
  invite = newInvite(p, org.publicKey, mailbox.publicIdentity, NOW + 3600);
});

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof EnrolmentError)) throw error;
    return error.code;
  }
}

const request = (over: Partial<{ device: DeviceIdentity; label: string; invite: Invite }> = {}) =>
  createEnrolmentRequest(p, {
    invite: over.invite ?? invite,
    device: over.device ?? device,
    label: over.label ?? "Anna's laptop",
    nowSeconds: NOW,
  });

function issued(over: Partial<IssuedInvite> = {}): IssuedInvite {
  return {
    secret: invite.secret,
    expiresAtSeconds: invite.expiresAtSeconds,
    usedAtSeconds: null,
    ...over,
  };
}

const checkWith = (
  over: Partial<EnrolmentCheck> = {},
  kept: IssuedInvite = issued(),
): EnrolmentCheck => ({
  organizationKey: org.publicKey,
  nowSeconds: NOW,
  findInvite: (id) => (id === inviteIdHex(invite.id) ? kept : undefined),
  isKnownDevice: () => false,
  ...over,
});

describe('invite codes', () => {
  it('round-trips an invite through its text form', () => {
    const text = encodeInvite(invite);
    expect(text.startsWith(INVITE_TEXT_PREFIX)).toBe(true);
    const back = decodeInvite(p, `  ${text}\n`);
    expect(back.id).toEqual(invite.id);
    expect(back.secret).toEqual(invite.secret);
    expect(back.expiresAtSeconds).toBe(invite.expiresAtSeconds);
    expect(back.organizationKey).toEqual(org.publicKey);
    expect(back.mailbox.equals(mailbox.publicIdentity)).toBe(true);
  });

  it('draws a fresh id and secret for every invite', () => {
    const again = newInvite(p, org.publicKey, mailbox.publicIdentity, NOW + 3600);
    expect(again.id).not.toEqual(invite.id);
    expect(again.secret).not.toEqual(invite.secret);
  });

  it('refuses a code without the prefix, or not base64url', () => {
    const body = encodeInvite(invite).slice(INVITE_TEXT_PREFIX.length);
    expect(codeOf(() => decodeInvite(p, body))).toBe(EnrolmentErrorCode.INVITE_MALFORMED);
    expect(codeOf(() => decodeInvite(p, INVITE_TEXT_PREFIX + body + '='))).toBe(
      EnrolmentErrorCode.INVITE_MALFORMED,
    );
    expect(codeOf(() => decodeInvite(p, INVITE_TEXT_PREFIX))).toBe(
      EnrolmentErrorCode.INVITE_MALFORMED,
    );
  });

  it('refuses a code one byte short or one byte long', () => {
    const bytes = fromBase64url(encodeInvite(invite).slice(INVITE_TEXT_PREFIX.length))!;
    expect(bytes.length).toBe(INVITE_BYTES);
    for (const b of [bytes.subarray(0, INVITE_BYTES - 1), new Uint8Array([...bytes, 0])]) {
      expect(codeOf(() => decodeInvite(p, INVITE_TEXT_PREFIX + toBase64url(b)))).toBe(
        EnrolmentErrorCode.INVITE_MALFORMED,
      );
    }
  });

  it('refuses an unknown version', () => {
    const bytes = fromBase64url(encodeInvite(invite).slice(INVITE_TEXT_PREFIX.length))!;
    bytes[0] = 2;
    expect(codeOf(() => decodeInvite(p, INVITE_TEXT_PREFIX + toBase64url(bytes)))).toBe(
      EnrolmentErrorCode.INVITE_UNSUPPORTED_VERSION,
    );
  });

  it('refuses a code whose mailbox identity is not self-signed', () => {
    const bytes = fromBase64url(encodeInvite(invite).slice(INVITE_TEXT_PREFIX.length))!;
    bytes[bytes.length - 1]! ^= 1;
    expect(codeOf(() => decodeInvite(p, INVITE_TEXT_PREFIX + toBase64url(bytes)))).toBe(
      EnrolmentErrorCode.INVITE_MALFORMED,
    );
  });

  it('refuses a code whose organization key is not a valid point', () => {
    const bytes = fromBase64url(encodeInvite(invite).slice(INVITE_TEXT_PREFIX.length))!;
    bytes.fill(0, 53, 85);
    bytes[53] = 1; // the identity point, of small order
    expect(codeOf(() => decodeInvite(p, INVITE_TEXT_PREFIX + toBase64url(bytes)))).toBe(
      EnrolmentErrorCode.INVITE_MALFORMED,
    );
  });
});

describe('enrolment requests: accepted', () => {
  it('verifies a request made with the invite and gives the device and its label', () => {
    const verified = verifyEnrolmentRequest(p, request(), checkWith());
    expect(verified.inviteId).toBe(inviteIdHex(invite.id));
    expect(verified.identity.equals(device.publicIdentity)).toBe(true);
    expect(verified.label).toBe("Anna's laptop");
    expect(verified.createdAtSeconds).toBe(NOW);
  });

  it('accepts an empty label and one of MAX_DEVICE_LABEL_BYTES', () => {
    expect(verifyEnrolmentRequest(p, request({ label: '' }), checkWith()).label).toBe('');
    const long = 'é'.repeat(MAX_DEVICE_LABEL_BYTES / 2);
    const bytes = request({ label: long });
    expect(bytes.length).toBe(MAX_ENROLMENT_REQUEST_BYTES);
    expect(verifyEnrolmentRequest(p, bytes, checkWith()).label).toBe(long);
  });

  it('accepts until the second before the invite expires', () => {
    expect(
      verifyEnrolmentRequest(p, request(), checkWith({ nowSeconds: invite.expiresAtSeconds - 1 }))
        .label,
    ).toBe("Anna's laptop");
  });
});

describe('enrolment requests: refused', () => {
  it('refuses a label one byte past MAX_DEVICE_LABEL_BYTES, or with control characters', () => {
    expect(() => request({ label: 'a'.repeat(MAX_DEVICE_LABEL_BYTES + 1) })).toThrow(RangeError);
    expect(() => request({ label: 'a\u202eb' })).toThrow(RangeError);
  });

  it('refuses an invite the tool never made', () => {
    const stranger = newInvite(p, org.publicKey, mailbox.publicIdentity, NOW + 3600);
    expect(
      codeOf(() => verifyEnrolmentRequest(p, request({ invite: stranger }), checkWith())),
    ).toBe(EnrolmentErrorCode.INVITE_UNKNOWN);
  });

  it('refuses a request made without the secret (a guessed or stolen invite id)', () => {
    const guessed = { ...invite, secret: p.random.bytes(32) };
    expect(codeOf(() => verifyEnrolmentRequest(p, request({ invite: guessed }), checkWith()))).toBe(
      EnrolmentErrorCode.BAD_MAC,
    );
  });

  it('refuses a request made for another organization', () => {
    const elsewhere = { ...invite, organizationKey: organizationKey(p).publicKey };
    expect(
      codeOf(() => verifyEnrolmentRequest(p, request({ invite: elsewhere }), checkWith())),
    ).toBe(EnrolmentErrorCode.BAD_MAC);
  });

  it('refuses every flipped bit of the MAC-covered part as a bad MAC, and of the signature as a bad signature', () => {
    const bytes = request();
    for (let i = 1; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i]! ^= 1 << (i % 8);
      const code = codeOf(() => verifyEnrolmentRequest(p, bad, checkWith()));
      if (i <= 16) expect([EnrolmentErrorCode.INVITE_UNKNOWN]).toContain(code);
      else if (i < bytes.length - 64) {
        expect([EnrolmentErrorCode.BAD_MAC, EnrolmentErrorCode.REQUEST_MALFORMED]).toContain(code);
      } else expect(code).toBe(EnrolmentErrorCode.BAD_SIGNATURE);
    }
  });

  it('refuses an invite holder enrolling an identity whose key it does not hold', () => {
    // The holder of the secret can make the MAC over anyone's public identity, but can only
    // sign with its own key: the victim's identity and a correct MAC, then the holder's
    // signature (taken from its own request, so not over these bytes and not by this key).
    const victim = DeviceIdentity.generate(p);
    const bytes = request({ device: victim });
    const forged = request();
    const spliced = new Uint8Array([
      ...bytes.subarray(0, bytes.length - 64),
      ...forged.subarray(forged.length - 64),
    ]);
    expect(codeOf(() => verifyEnrolmentRequest(p, spliced, checkWith()))).toBe(
      EnrolmentErrorCode.BAD_SIGNATURE,
    );
  });

  it('refuses an expired invite at its expiry second', () => {
    expect(
      codeOf(() =>
        verifyEnrolmentRequest(p, request(), checkWith({ nowSeconds: invite.expiresAtSeconds })),
      ),
    ).toBe(EnrolmentErrorCode.INVITE_EXPIRED);
  });

  it('refuses a used invite', () => {
    expect(
      codeOf(() =>
        verifyEnrolmentRequest(p, request(), checkWith({}, issued({ usedAtSeconds: NOW - 5 }))),
      ),
    ).toBe(EnrolmentErrorCode.INVITE_USED);
  });

  it('refuses a device that is enrolled or pending already', () => {
    expect(
      codeOf(() =>
        verifyEnrolmentRequest(
          p,
          request(),
          checkWith({ isKnownDevice: (id) => id === device.publicIdentity.id }),
        ),
      ),
    ).toBe(EnrolmentErrorCode.DEVICE_KNOWN);
  });

  it('tells a sender without the secret nothing of the invite: expired and used look unknown-secret', () => {
    const guessed = { ...invite, secret: p.random.bytes(32) };
    const expired = checkWith(
      { nowSeconds: invite.expiresAtSeconds + 10 },
      issued({ usedAtSeconds: NOW }),
    );
    expect(codeOf(() => verifyEnrolmentRequest(p, request({ invite: guessed }), expired))).toBe(
      EnrolmentErrorCode.BAD_MAC,
    );
  });

  it('refuses an unknown version, an empty request and one past the size bound', () => {
    const bytes = request();
    const v2 = bytes.slice();
    v2[0] = 2;
    expect(codeOf(() => verifyEnrolmentRequest(p, v2, checkWith()))).toBe(
      EnrolmentErrorCode.REQUEST_UNSUPPORTED_VERSION,
    );
    expect(codeOf(() => verifyEnrolmentRequest(p, new Uint8Array(0), checkWith()))).toBe(
      EnrolmentErrorCode.REQUEST_MALFORMED,
    );
    const long = request({ label: 'é'.repeat(MAX_DEVICE_LABEL_BYTES / 2) });
    expect(codeOf(() => verifyEnrolmentRequest(p, new Uint8Array([...long, 0]), checkWith()))).toBe(
      EnrolmentErrorCode.REQUEST_MALFORMED,
    );
  });

  it('refuses every truncation and trailing bytes as malformed (never a crash)', () => {
    const bytes = request();
    for (let n = 1; n < bytes.length; n++) {
      expect(codeOf(() => verifyEnrolmentRequest(p, bytes.subarray(0, n), checkWith()))).toBe(
        EnrolmentErrorCode.REQUEST_MALFORMED,
      );
    }
    expect(
      codeOf(() => verifyEnrolmentRequest(p, new Uint8Array([...bytes, 0]), checkWith())),
    ).toBe(EnrolmentErrorCode.REQUEST_MALFORMED);
  });

  it('refuses a label that is not UTF-8 or holds a control character, MAC or not', () => {
    const bytes = request({ label: 'ab' });
    const labelAt = 1 + 16 + 129 + 4 + 1;
    const bad = bytes.slice();
    bad[labelAt] = 0xff;
    expect(codeOf(() => verifyEnrolmentRequest(p, bad, checkWith()))).toBe(
      EnrolmentErrorCode.REQUEST_MALFORMED,
    );
    bad[labelAt] = 0x07;
    expect(codeOf(() => verifyEnrolmentRequest(p, bad, checkWith()))).toBe(
      EnrolmentErrorCode.REQUEST_MALFORMED,
    );
  });

  it('never throws anything but an EnrolmentError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: MAX_ENROLMENT_REQUEST_BYTES + 2 }), (bytes) => {
        expect(() => verifyEnrolmentRequest(p, bytes, checkWith())).toThrow(EnrolmentError);
      }),
      { numRuns: 300 },
    );
  });
});

describe('enrolment envelopes', () => {
  const sealed = (over: Partial<{ device: DeviceIdentity; invite: Invite }> = {}) =>
    createEnrolmentEnvelope(p, {
      invite: over.invite ?? invite,
      device: over.device ?? device,
      label: "Anna's laptop",
      nowSeconds: NOW,
    });

  it('seals the request to the mailbox of the invite, as the smallest envelope size', () => {
    const { envelope, to } = sealed();
    expect(envelope.length).toBe(ENVELOPE_SIZES_BYTES[0]);
    expect(to).toBe(mailboxIdFromPublicKey(mailbox.publicIdentity.signingKey, (d) => p.sha256(d)));
    expect(enrolmentMailboxId(p, invite)).toBe(to);
    const opened = openEnrolmentEnvelope(p, mailbox, envelope);
    expect(opened.sender.equals(device.publicIdentity)).toBe(true);
    const verified = verifyEnrolmentRequest(p, opened.request, checkWith());
    expect(verified.identity.equals(device.publicIdentity)).toBe(true);
  });

  it('gives a different envelope every time (a fresh ephemeral key)', () => {
    expect(sealed().envelope).not.toEqual(sealed().envelope);
  });

  it('refuses garbage: random bytes of an envelope size, and of no envelope size', () => {
    for (const n of [0, 1, 100, ENVELOPE_SIZES_BYTES[0]!, ENVELOPE_SIZES_BYTES[0]! + 1]) {
      const garbage = p.random.bytes(n);
      if (n > 0) garbage[0] = 1;
      expect(codeOf(() => openEnrolmentEnvelope(p, mailbox, garbage))).toBe(
        EnrolmentErrorCode.ENVELOPE_UNREADABLE,
      );
    }
  });

  it('refuses an envelope sealed to another mailbox', () => {
    const other = newInvite(p, org.publicKey, DeviceIdentity.generate(p).publicIdentity, NOW + 60);
    expect(
      codeOf(() => openEnrolmentEnvelope(p, mailbox, sealed({ invite: other }).envelope)),
    ).toBe(EnrolmentErrorCode.ENVELOPE_UNREADABLE);
  });

  it('refuses an envelope with one bit flipped', () => {
    const { envelope } = sealed();
    for (const at of [1, 40, envelope.length - 1]) {
      const bad = envelope.slice();
      bad[at]! ^= 1;
      expect(codeOf(() => openEnrolmentEnvelope(p, mailbox, bad))).toBe(
        EnrolmentErrorCode.ENVELOPE_UNREADABLE,
      );
    }
  });

  it('refuses an envelope whose sender is not the identity the request names', () => {
    const stranger = DeviceIdentity.generate(p);
    const envelope = sealEnvelope(p, mailbox.publicIdentity, {
      sender: stranger.publicIdentity,
      initial: null,
      message: request(),
    });
    expect(codeOf(() => openEnrolmentEnvelope(p, mailbox, envelope))).toBe(
      EnrolmentErrorCode.ENVELOPE_UNREADABLE,
    );
  });

  it('refuses an envelope that holds no request (an empty message, a long one)', () => {
    for (const message of [new Uint8Array(0), new Uint8Array(MAX_ENROLMENT_REQUEST_BYTES + 1)]) {
      const envelope = sealEnvelope(p, mailbox.publicIdentity, {
        sender: device.publicIdentity,
        initial: null,
        message,
      });
      expect(codeOf(() => openEnrolmentEnvelope(p, mailbox, envelope))).toBe(
        EnrolmentErrorCode.ENVELOPE_UNREADABLE,
      );
    }
  });

  it('passes a sealed request with a changed byte on to the verifier, which refuses it', () => {
    const bytes = request();
    bytes[bytes.length - 70]! ^= 1; // inside the MAC
    const envelope = sealEnvelope(p, mailbox.publicIdentity, {
      sender: device.publicIdentity,
      initial: null,
      message: bytes,
    });
    const opened = openEnrolmentEnvelope(p, mailbox, envelope);
    expect(codeOf(() => verifyEnrolmentRequest(p, opened.request, checkWith()))).toBe(
      EnrolmentErrorCode.BAD_MAC,
    );
  });
});
