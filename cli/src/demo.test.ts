/**
 * The demo organization as pure functions: when `npm start` makes one, what its profile says,
 * and the auto-approval of envelopes from its enrolment mailbox (and every refusal, which
 * leaves the demo as it was). The process around it is tested in test/src/demo-start.test.ts.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  createEnrolmentEnvelope,
  decodeInvite,
  EnrolmentErrorCode,
} from '@passage/shared/crypto/enrolment';
import { sealEnvelope } from '@passage/shared/crypto/envelope';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { verifyOrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import {
  autoApprove,
  createDemoOrganization,
  DEMO_DISPLAY_NAME,
  demoProfileContent,
  plainRelayReason,
  type DemoOrganization,
} from './demo.js';
import { CliError, CliErrorCode } from './errors.js';

const NOW = 1_800_000_000;
let p: Primitives;
let demo: DemoOrganization;
beforeAll(async () => {
  p = await loadSodiumBackend();
  demo = createDemoOrganization(p, NOW);
});

const verify = (bytes: Uint8Array, last: ReturnType<typeof verifyOrgProfile> | null = null) =>
  verifyOrgProfile(p, bytes, {
    organizationKey: demo.secrets.publicKey,
    nowSeconds: NOW,
    lastAccepted: last,
  });

function envelopeFor(code: string, device = DeviceIdentity.generate(p)) {
  return {
    device,
    ...createEnrolmentEnvelope(p, {
      invite: decodeInvite(p, code),
      device,
      label: 'phone',
      nowSeconds: NOW,
    }),
  };
}

function refusal(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    expect(error.code).toBe(CliErrorCode.ENROLMENT_REFUSED);
    return (error.cause as { code?: string }).code;
  }
}

describe('when npm start makes a demo', () => {
  it('makes one with nothing configured, and with blank settings', () => {
    expect(plainRelayReason({})).toBeUndefined();
    expect(plainRelayReason({ ORG_PUBLIC_KEY: ' ', REDIS_URL: '', PORT: '0' })).toBeUndefined();
    expect(plainRelayReason({ PASSAGE_DEMO: '1' })).toBeUndefined();
  });

  it('makes none when an organization is configured', () => {
    expect(plainRelayReason({ ORG_PUBLIC_KEY: 'x'.repeat(43) })).toContain('ORG_PUBLIC_KEY');
  });

  it('makes none with a shared store (REDIS_URL or REDIS_CLUSTER_NODES)', () => {
    expect(plainRelayReason({ REDIS_URL: 'redis://127.0.0.1:6379' })).toContain('REDIS_URL');
    expect(plainRelayReason({ REDIS_CLUSTER_NODES: 'a:1,b:2' })).toContain('shared store');
  });

  it('makes none with PASSAGE_DEMO=0', () => {
    expect(plainRelayReason({ PASSAGE_DEMO: '0' })).toBe('PASSAGE_DEMO=0');
  });
});

describe('the demo organization', () => {
  it('publishes a signed profile that says DEMO, in Russian and English, with every field kind', () => {
    const profile = verify(demo.profile);
    expect(profile.version).toBe(1);
    expect(profile.content.displayName).toBe(DEMO_DISPLAY_NAME);
    expect(profile.content.displayName).toMatch(/^DEMO/);
    expect(profile.content.disguise.title).toMatch(/^DEMO/);
    expect([...profile.content.languages].sort()).toEqual(['en', 'ru']);
    const kinds = profile.content.questionnaire.fields.map((f) => f.kind);
    for (const kind of ['text', 'single', 'multiple']) expect(kinds).toContain(kind);
    expect(profile.content.questionnaire.fields.some((f) => f.when.length > 0)).toBe(true);
    expect(profile.content.questionnaire.fields.some((f) => f.required)).toBe(true);
    expect(profile.roster.devices).toHaveLength(1);
    expect(profile.content).toEqual(demoProfileContent());
  });

  it('draws a new organization key every time', () => {
    expect(createDemoOrganization(p, NOW).secrets.publicKey).not.toEqual(demo.secrets.publicKey);
  });

  it('approves an enrolment by itself into a newer roster and profile, with a fresh invite', () => {
    const first = verify(demo.profile);
    const { device, envelope } = envelopeFor(demo.invite);
    const outcome = autoApprove(p, demo, envelope, NOW + 5);
    if (outcome.kind !== 'approved') throw new Error('not approved');
    expect(outcome.deviceId).toBe(device.publicIdentity.id);
    const next = verify(outcome.demo.profile, first);
    expect(next.version).toBe(2);
    expect(next.roster.serial).toBeGreaterThan(first.roster.serial);
    expect(next.roster.devices.map((d) => d.id)).toContain(device.publicIdentity.id);
    expect(outcome.demo.invite).not.toBe(demo.invite);
    expect(outcome.demo.state.enrolments).toEqual([]);
  });

  it('takes a repeat of an approved device as a repeat, changing nothing', () => {
    const sent = envelopeFor(demo.invite);
    const outcome = autoApprove(p, demo, sent.envelope, NOW + 5);
    if (outcome.kind !== 'approved') throw new Error('not approved');
    expect(autoApprove(p, outcome.demo, sent.envelope, NOW + 6)).toEqual({ kind: 'repeat' });
  });

  it('refuses a second device on the same invite (invite_used)', () => {
    const first = autoApprove(p, demo, envelopeFor(demo.invite).envelope, NOW + 5);
    if (first.kind !== 'approved') throw new Error('not approved');
    expect(
      refusal(() => autoApprove(p, first.demo, envelopeFor(demo.invite).envelope, NOW + 6)),
    ).toBe(EnrolmentErrorCode.INVITE_USED);
  });

  it('refuses garbage and an envelope for another mailbox (enrolment_envelope_unreadable)', () => {
    const garbage = p.random.bytes(2048);
    garbage[0] = 1;
    expect(refusal(() => autoApprove(p, demo, garbage, NOW))).toBe(
      EnrolmentErrorCode.ENVELOPE_UNREADABLE,
    );
    const elsewhere = createDemoOrganization(p, NOW);
    expect(refusal(() => autoApprove(p, demo, envelopeFor(elsewhere.invite).envelope, NOW))).toBe(
      EnrolmentErrorCode.ENVELOPE_UNREADABLE,
    );
  });

  it('refuses a request without the invite secret (enrolment_bad_mac)', () => {
    const invite = { ...decodeInvite(p, demo.invite), secret: p.random.bytes(32) };
    const device = DeviceIdentity.generate(p);
    const { envelope } = createEnrolmentEnvelope(p, {
      invite,
      device,
      label: '',
      nowSeconds: NOW,
    });
    expect(refusal(() => autoApprove(p, demo, envelope, NOW))).toBe(EnrolmentErrorCode.BAD_MAC);
  });

  it('refuses a request after its invite expired (invite_expired)', () => {
    const late = decodeInvite(p, demo.invite).expiresAtSeconds;
    expect(refusal(() => autoApprove(p, demo, envelopeFor(demo.invite).envelope, late))).toBe(
      EnrolmentErrorCode.INVITE_EXPIRED,
    );
  });

  it('refuses an envelope that holds no request (enrolment_envelope_unreadable)', () => {
    const device = DeviceIdentity.generate(p);
    const envelope = sealEnvelope(p, decodeInvite(p, demo.invite).mailbox, {
      sender: device.publicIdentity,
      initial: null,
      message: new TextEncoder().encode('hello'),
    });
    expect(refusal(() => autoApprove(p, demo, envelope, NOW))).toBe(
      EnrolmentErrorCode.ENVELOPE_UNREADABLE,
    );
  });
});
