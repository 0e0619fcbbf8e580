/**
 * The operations on the organization's state: invites are spent once, every roster change
 * signs the next serial, and a removed device is in no roster signed after its removal.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { FIXED_NOW_SECONDS as NOW } from '@passage/testing/crypto-fixtures';
import {
  createEnrolmentEnvelope,
  createEnrolmentRequest,
  decodeInvite,
  EnrolmentError,
} from '@passage/shared/crypto/enrolment';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { asEd25519PublicKey, asEd25519Seed } from '@passage/shared/crypto/keys';
import { verifyOrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { verifyRoster } from '@passage/shared/crypto/roster';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import { fromBase64url } from '@passage/shared/protocol/base64url';
import { sampleProfileContent } from '@passage/testing/org-fixtures';
import { CliError, CliErrorCode } from './errors.js';
import type { OrgSecrets } from './keyfile.js';
import {
  approveEnrolment,
  createInvite,
  initialState,
  publishProfile,
  receiveEnrolment,
  receiveEnrolmentEnvelope,
  removeMember,
} from './organization.js';
import { MAX_KEPT_INVITES, MAX_PENDING_ENROLMENTS, type OrgState } from './state.js';

const DAY = 86_400;
let p: Primitives;
let secrets: OrgSecrets;
beforeAll(async () => {
  p = await loadSodiumBackend();
  const seed = asEd25519Seed(p.random.bytes(32));
  secrets = {
    seed,
    publicKey: asEd25519PublicKey(p.ed25519KeyPairFromSeed(seed).publicKey),
    stateKey: p.random.bytes(32),
  };
});

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return error.code;
  }
}

/** Invites a device for `coordinator`, has it request enrolment, and approves it. */
function enrol(state: OrgState, coordinator: string, now = NOW) {
  const { state: invited, code } = createInvite(p, secrets, state, coordinator, DAY, now);
  const device = DeviceIdentity.generate(p);
  const request = createEnrolmentRequest(p, {
    invite: decodeInvite(p, code),
    device,
    label: `${coordinator}'s phone`,
    nowSeconds: now,
  });
  const received = receiveEnrolment(p, secrets, invited, request, now).state;
  const approved = approveEnrolment(
    p,
    secrets,
    received,
    device.publicIdentity.id.slice(0, 16),
    now,
    DAY,
  );
  return { state: approved.state, device, request, invited };
}

const rosterIds = (state: OrgState) =>
  verifyRoster(p, fromBase64url(state.roster!.bytes)!, {
    organizationKey: secrets.publicKey,
    nowSeconds: NOW,
  }).devices.map((d) => d.id);

describe('organization operations', () => {
  it('enrols devices with a new roster version each, the invite spent', () => {
    const a = enrol(initialState(p, 'Org'), 'anna');
    expect(a.state.roster!.serial).toBe(1);
    expect(a.state.invites[0]!.usedAtSeconds).toBe(NOW);
    const b = enrol(a.state, 'boris');
    expect(b.state.roster!.serial).toBe(2);
    expect(rosterIds(b.state)).toEqual([a.device.publicIdentity.id, b.device.publicIdentity.id]);
    expect(b.state.rosterHistory.map((h) => h.serial)).toEqual([1, 2]);
  });

  it('refuses a reused invite', () => {
    const a = enrol(initialState(p, 'Org'), 'anna');
    expect(codeOf(() => receiveEnrolment(p, secrets, a.state, a.request, NOW))).toBe(
      CliErrorCode.ENROLMENT_REFUSED,
    );
  });

  it('refuses a request after the invite expired', () => {
    const { state, code } = createInvite(p, secrets, initialState(p, 'Org'), 'anna', DAY, NOW);
    const request = createEnrolmentRequest(p, {
      invite: decodeInvite(p, code),
      device: DeviceIdentity.generate(p),
      label: '',
      nowSeconds: NOW,
    });
    expect(codeOf(() => receiveEnrolment(p, secrets, state, request, NOW + DAY))).toBe(
      CliErrorCode.ENROLMENT_REFUSED,
    );
  });

  it('removes a device: it is in no later roster, and the others stay', () => {
    const a = enrol(initialState(p, 'Org'), 'anna');
    const b = enrol(a.state, 'boris');
    const removed = removeMember(
      p,
      secrets,
      b.state,
      a.device.publicIdentity.id.slice(0, 12),
      NOW,
      DAY,
    );
    expect(removed.removed).toBe(1);
    expect(rosterIds(removed.state)).toEqual([b.device.publicIdentity.id]);
    const c = enrol(removed.state, 'chen');
    const published = publishProfile(p, secrets, c.state, undefined, NOW, DAY).state;
    for (const s of [c.state, published])
      expect(rosterIds(s)).not.toContain(a.device.publicIdentity.id);
    expect(
      published.rosterHistory
        .slice(-3)
        .every((h) => !h.devices.includes(a.device.publicIdentity.id)),
    ).toBe(true);
  });

  it('removes a whole coordinator: every device, pending request and open invite', () => {
    const a1 = enrol(initialState(p, 'Org'), 'anna');
    const a2 = enrol(a1.state, 'anna');
    const b = enrol(a2.state, 'boris');
    const { state: withInvite, code } = createInvite(p, secrets, b.state, 'anna', DAY, NOW);
    const removed = removeMember(p, secrets, withInvite, 'anna', NOW, DAY);
    expect(removed.removed).toBe(2);
    expect(rosterIds(removed.state)).toEqual([b.device.publicIdentity.id]);
    const late = createEnrolmentRequest(p, {
      invite: decodeInvite(p, code),
      device: DeviceIdentity.generate(p),
      label: '',
      nowSeconds: NOW,
    });
    expect(codeOf(() => receiveEnrolment(p, secrets, removed.state, late, NOW))).toBe(
      CliErrorCode.ENROLMENT_REFUSED,
    );
  });

  it('refuses to remove the last device (a roster cannot be empty)', () => {
    const a = enrol(initialState(p, 'Org'), 'anna');
    expect(codeOf(() => removeMember(p, secrets, a.state, 'anna', NOW, DAY))).toBe(
      CliErrorCode.ROSTER_EMPTY,
    );
  });

  it('refuses an unknown device or coordinator, and a prefix shorter than 8', () => {
    const a = enrol(initialState(p, 'Org'), 'anna');
    expect(codeOf(() => removeMember(p, secrets, a.state, 'nobody', NOW, DAY))).toBe(
      CliErrorCode.UNKNOWN_DEVICE,
    );
    expect(
      codeOf(() =>
        removeMember(p, secrets, a.state, a.device.publicIdentity.id.slice(0, 7), NOW, DAY),
      ),
    ).toBe(CliErrorCode.UNKNOWN_DEVICE);
    expect(codeOf(() => approveEnrolment(p, secrets, a.state, 'ffffffffffff', NOW, DAY))).toBe(
      CliErrorCode.UNKNOWN_DEVICE,
    );
  });

  it('publishes a profile the page verifies, with the next version and a fresh roster', () => {
    const a = enrol(initialState(p, 'Org'), 'anna');
    const first = publishProfile(p, secrets, a.state, sampleProfileContent(), NOW, 7 * DAY);
    const second = publishProfile(p, secrets, first.state, undefined, NOW + 10, 7 * DAY);
    const v1 = verifyOrgProfile(p, first.profile, {
      organizationKey: secrets.publicKey,
      nowSeconds: NOW,
    });
    const v2 = verifyOrgProfile(p, second.profile, {
      organizationKey: secrets.publicKey,
      nowSeconds: NOW + 10,
      lastAccepted: v1,
    });
    expect([v1.version, v2.version]).toEqual([1, 2]);
    expect(v2.roster.serial).toBeGreaterThan(v1.roster.serial);
    expect(v2.content).toEqual(sampleProfileContent());
  });

  it('refuses invalid profile settings, naming the rule', () => {
    const a = enrol(initialState(p, 'Org'), 'anna');
    let message = '';
    try {
      publishProfile(
        p,
        secrets,
        a.state,
        { ...sampleProfileContent(), retentionDays: 0 },
        NOW,
        DAY,
      );
    } catch (error) {
      expect((error as CliError).code).toBe(CliErrorCode.PROFILE_INVALID);
      message = (error as CliError).message;
    }
    expect(message).toContain('retentionDays: schema');
  });

  it('keeps at most MAX_KEPT_INVITES invites, forgetting those long expired', () => {
    let state = initialState(p, 'Org');
    for (let i = 0; i < MAX_KEPT_INVITES; i++)
      state = createInvite(p, secrets, state, 'x', DAY, NOW).state;
    expect(codeOf(() => createInvite(p, secrets, state, 'x', DAY, NOW))).toBe(
      CliErrorCode.LIMIT_REACHED,
    );
    const later = NOW + DAY + 7 * DAY;
    expect(createInvite(p, secrets, state, 'x', DAY, later).state.invites).toHaveLength(1);
  });
});

/** The EnrolmentError code inside a refusal (`enrolment_refused`), or the CliError's code. */
function refusalOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return error.cause instanceof EnrolmentError ? error.cause.code : error.code;
  }
}

describe('enrolment envelopes: repeats and refusals', () => {
  /** An invite valid for a day from NOW, and a device's envelope for it. */
  function sent(state: OrgState, coordinator = 'anna', over: { secret?: Uint8Array } = {}) {
    const invited = createInvite(p, secrets, state, coordinator, DAY, NOW);
    const invite = decodeInvite(p, invited.code);
    const device = DeviceIdentity.generate(p);
    const { envelope } = createEnrolmentEnvelope(p, {
      invite: over.secret === undefined ? invite : { ...invite, secret: over.secret },
      device,
      label: 'phone',
      nowSeconds: NOW,
    });
    return { state: invited.state, device, envelope };
  }

  it('takes a redelivered request of a pending device as a repeat after its invite expired (was refused as invite_expired)', () => {
    const a = sent(initialState(p, 'Org'));
    const received = receiveEnrolmentEnvelope(p, secrets, a.state, a.envelope, NOW);
    expect(received.outcome.kind).toBe('received');
    const again = receiveEnrolmentEnvelope(p, secrets, received.state, a.envelope, NOW + DAY);
    expect(again.outcome).toEqual({ kind: 'repeat' });
    expect(again.state).toBe(received.state);
  });

  it('takes a redelivered request of an approved device as a repeat after its invite expired', () => {
    const a = sent(initialState(p, 'Org'));
    const received = receiveEnrolmentEnvelope(p, secrets, a.state, a.envelope, NOW).state;
    const id = a.device.publicIdentity.id.slice(0, 16);
    const approved = approveEnrolment(p, secrets, received, id, NOW, DAY).state;
    expect(
      receiveEnrolmentEnvelope(p, secrets, approved, a.envelope, NOW + 2 * DAY).outcome,
    ).toEqual({ kind: 'repeat' });
  });

  it('takes a repeat of a pending device as a repeat while the pending list is full (was limit_reached)', () => {
    let state = initialState(p, 'Org');
    const first = sent(state);
    state = receiveEnrolmentEnvelope(p, secrets, first.state, first.envelope, NOW).state;
    for (let i = 1; i < MAX_PENDING_ENROLMENTS; i++) {
      const other = sent(state, `c${i}`);
      state = receiveEnrolmentEnvelope(p, secrets, other.state, other.envelope, NOW).state;
    }
    expect(state.enrolments).toHaveLength(MAX_PENDING_ENROLMENTS);
    expect(receiveEnrolmentEnvelope(p, secrets, state, first.envelope, NOW).outcome).toEqual({
      kind: 'repeat',
    });
  });

  it('refuses a request of an unknown device after its invite expired (invite_expired)', () => {
    const a = sent(initialState(p, 'Org'));
    expect(
      refusalOf(() => receiveEnrolmentEnvelope(p, secrets, a.state, a.envelope, NOW + DAY)),
    ).toBe('invite_expired');
  });

  it('refuses the redelivered request of a removed enrolment after its invite expired', () => {
    const a = sent(initialState(p, 'Org'));
    const received = receiveEnrolmentEnvelope(p, secrets, a.state, a.envelope, NOW).state;
    const removed = removeMember(
      p,
      secrets,
      received,
      a.device.publicIdentity.id.slice(0, 16),
      NOW,
      DAY,
    ).state;
    expect(refusalOf(() => receiveEnrolmentEnvelope(p, secrets, removed, a.envelope, NOW))).toBe(
      'invite_used',
    );
    expect(
      refusalOf(() => receiveEnrolmentEnvelope(p, secrets, removed, a.envelope, NOW + DAY)),
    ).toBe('invite_expired');
  });

  it("refuses a known device's request without the invite secret (enrolment_bad_mac), never a repeat", () => {
    const a = sent(initialState(p, 'Org'));
    const received = receiveEnrolmentEnvelope(p, secrets, a.state, a.envelope, NOW).state;
    // The same device seals a request made with a wrong secret for a second, open invite.
    const invited = createInvite(p, secrets, received, 'anna', DAY, NOW);
    const forged = createEnrolmentEnvelope(p, {
      invite: { ...decodeInvite(p, invited.code), secret: p.random.bytes(32) },
      device: a.device,
      label: 'phone',
      nowSeconds: NOW,
    });
    for (const now of [NOW, NOW + DAY]) {
      expect(
        refusalOf(() => receiveEnrolmentEnvelope(p, secrets, invited.state, forged.envelope, now)),
      ).toBe('enrolment_bad_mac');
    }
  });
});
