import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { POW_MAX_BITS, POW_MIN_BITS } from '@passage/shared/protocol/limits';
import { parsePowChallenge, solvePow } from '@passage/shared/pow/pow';
import {
  AdmissionGauge,
  FirstContact,
  MAX_ADMITTED_MAILBOXES_PER_CONNECTION,
  MAX_OPEN_POW_CHALLENGES,
  POW_WINDOW_MS,
  extraBits,
  type AdmissionSettings,
} from './first-contact.js';

const nodeSha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();
const NOW = 1_700_000_000_000;

const SETTINGS: AdmissionSettings = {
  powBits: 4,
  powMaxBits: 12,
  powChallengeTtlMs: 60_000,
  powAdmissionsPerWindow: 8,
  powTargetAdmissionsPerWindow: 2,
  powSendsPerAdmission: 3,
};

const mailbox = () => toBase64url(randomBytes(32));

function setup(settings: Partial<AdmissionSettings> = {}) {
  const gauge = new AdmissionGauge({ ...SETTINGS, ...settings }, NOW);
  const contact = new FirstContact(gauge, { ...SETTINGS, ...settings });
  return { gauge, contact };
}

/** Requests a challenge for `to` and solves it; returns the nonce and solution sent back. */
function solved(contact: FirstContact, to: string, nowMs = NOW) {
  const wire = contact.request(to, nowMs);
  const solution = solvePow(parsePowChallenge(wire), nodeSha256, { nowMs });
  return { nonce: wire.nonce, solution: toBase64url(solution), bits: wire.bits };
}

/** A solution that fails the difficulty: the first candidate that does NOT meet it. */
function wrongSolution(contact: FirstContact, to: string): { nonce: string; solution: string } {
  const wire = contact.request(to, NOW);
  const challenge = parsePowChallenge(wire);
  for (let i = 0; ; i++) {
    const candidate = new Uint8Array(8);
    new DataView(candidate.buffer).setUint32(4, i);
    try {
      // solvePow with one attempt from `candidate` returns it only if it meets the difficulty.
      solvePow(challenge, nodeSha256, { nowMs: NOW, start: candidate, maxAttempts: 1 });
    } catch {
      return { nonce: wire.nonce, solution: toBase64url(candidate) };
    }
  }
}

describe('extraBits', () => {
  it('adds nothing up to the nominal count and one bit per doubling past it', () => {
    expect(extraBits(0, 10)).toBe(0);
    expect(extraBits(10, 10)).toBe(0);
    expect(extraBits(10.5, 10)).toBe(1);
    expect(extraBits(20, 10)).toBe(2);
    expect(extraBits(39, 10)).toBe(2);
    expect(extraBits(40, 10)).toBe(3);
  });
});

describe('AdmissionGauge', () => {
  it('asks for the base difficulty when nothing was admitted', () => {
    const { gauge } = setup();
    expect(gauge.bitsFor(mailbox(), NOW)).toBe(SETTINGS.powBits);
  });

  it('raises the difficulty for a mailbox admitted past its nominal count, not for others', () => {
    const { gauge } = setup({ powAdmissionsPerWindow: 1_000 });
    const target = mailbox();
    gauge.record(target, NOW);
    gauge.record(target, NOW);
    expect(gauge.bitsFor(target, NOW)).toBe(SETTINGS.powBits); // at the bound
    gauge.record(target, NOW);
    expect(gauge.bitsFor(target, NOW)).toBe(SETTINGS.powBits + 1); // one past
    for (let i = 0; i < 5; i++) gauge.record(target, NOW);
    expect(gauge.bitsFor(target, NOW)).toBe(SETTINGS.powBits + 3); // 8 = 2 × 2^2
    expect(gauge.bitsFor(mailbox(), NOW)).toBe(SETTINGS.powBits);
  });

  it('raises the difficulty for every mailbox when the relay-wide count passes its nominal', () => {
    const { gauge } = setup({ powTargetAdmissionsPerWindow: 1_000 });
    for (let i = 0; i < 8; i++) gauge.record(mailbox(), NOW);
    expect(gauge.bitsFor(mailbox(), NOW)).toBe(SETTINGS.powBits);
    gauge.record(mailbox(), NOW);
    expect(gauge.bitsFor(mailbox(), NOW)).toBe(SETTINGS.powBits + 1);
  });

  it('never asks for more than powMaxBits, nor more than the protocol allows', () => {
    const { gauge } = setup({ powTargetAdmissionsPerWindow: 1, powAdmissionsPerWindow: 1 });
    const target = mailbox();
    for (let i = 0; i < 20_000; i++) gauge.record(target, NOW);
    expect(gauge.bitsFor(target, NOW)).toBe(SETTINGS.powMaxBits);
    const wide = setup({ powMaxBits: POW_MAX_BITS, powAdmissionsPerWindow: 1 }).gauge;
    for (let i = 0; i < 20_000; i++) wide.record(target, NOW);
    expect(wide.bitsFor(target, NOW)).toBeLessThanOrEqual(POW_MAX_BITS);
  });

  it('forgets admissions over two windows, half of the previous window after half a window', () => {
    const { gauge } = setup();
    for (let i = 0; i < 10; i++) gauge.record(mailbox(), NOW);
    expect(gauge.admissions(NOW)).toBe(10);
    expect(gauge.admissions(NOW + POW_WINDOW_MS * 1.5)).toBeCloseTo(5);
    expect(gauge.admissions(NOW + POW_WINDOW_MS * 2)).toBe(0);
    for (let i = 0; i < 4; i++) gauge.record(mailbox(), NOW + POW_WINDOW_MS * 5);
    expect(gauge.admissions(NOW + POW_WINDOW_MS * 5)).toBe(4);
  });

  it('does not lower a mailbox difficulty when many other mailboxes are admitted', () => {
    // The sketch has a fixed size and only over-counts: flooding it with other ids cannot make
    // it forget a targeted mailbox (a tracker that forgets under pressure forgets in the
    // attacker's favour).
    const { gauge } = setup({ powAdmissionsPerWindow: 10_000_000 });
    const target = mailbox();
    for (let i = 0; i < 8; i++) gauge.record(target, NOW);
    const before = gauge.bitsFor(target, NOW);
    for (let i = 0; i < 50_000; i++) gauge.record(mailbox(), NOW);
    expect(gauge.bitsFor(target, NOW)).toBeGreaterThanOrEqual(before);
  });

  it('signals likely spam for a mailbox one admission past its nominal count, not at it', () => {
    const { gauge } = setup({ powAdmissionsPerWindow: 1_000 });
    const target = mailbox();
    expect(gauge.signal(target, NOW)).toEqual({ admissions: 0, bits: 4, likelySpam: false });
    gauge.record(target, NOW);
    gauge.record(target, NOW);
    expect(gauge.signal(target, NOW)).toEqual({ admissions: 2, bits: 4, likelySpam: false });
    gauge.record(target, NOW);
    expect(gauge.signal(target, NOW)).toEqual({ admissions: 3, bits: 5, likelySpam: true });
    expect(gauge.signal(mailbox(), NOW).likelySpam).toBe(false);
    expect(gauge.signal(target, NOW + 2 * POW_WINDOW_MS).likelySpam).toBe(false);
  });

  it('reports the least difficulty when proof-of-work is off', () => {
    const { gauge } = setup({ powBits: 0 });
    expect(gauge.enabled).toBe(false);
    expect(gauge.bitsFor(mailbox(), NOW)).toBe(POW_MIN_BITS);
  });
});

describe('FirstContact: accepts', () => {
  it('admits a connection that solved a challenge, for that mailbox, with its share of sends', () => {
    const { contact } = setup();
    const to = mailbox();
    expect(contact.takeSend(to)).toBe(false);
    const { nonce, solution } = solved(contact, to);
    expect(contact.solve(nonce, solution, NOW)).toEqual({ ok: true, to, sends: 3 });
    expect([contact.takeSend(to), contact.takeSend(to), contact.takeSend(to)]).toEqual([
      true,
      true,
      true,
    ]);
  });

  it('issues a challenge for the mailbox asked, at the gauge difficulty, expiring after the TTL', () => {
    const { contact } = setup();
    const to = mailbox();
    const wire = contact.request(to, NOW);
    expect(wire.to).toBe(to);
    expect(wire.bits).toBe(SETTINGS.powBits);
    expect(wire.exp).toBe(NOW + SETTINGS.powChallengeTtlMs);
    expect(fromBase64url(wire.nonce)).toHaveLength(16);
  });

  it('gives back a send that stored nothing, never past a fresh share', () => {
    const { contact } = setup();
    const to = mailbox();
    const { nonce, solution } = solved(contact, to);
    contact.solve(nonce, solution, NOW);
    expect(contact.takeSend(to)).toBe(true);
    contact.refund(to);
    contact.refund(to);
    contact.refund(to);
    for (let i = 0; i < 3; i++) expect(contact.takeSend(to)).toBe(true);
    expect(contact.takeSend(to)).toBe(false);
  });

  it('lets every send through when proof-of-work is off', () => {
    const { contact } = setup({ powBits: 0 });
    for (let i = 0; i < 10; i++) expect(contact.takeSend(mailbox())).toBe(true);
  });

  it(`keeps ${MAX_ADMITTED_MAILBOXES_PER_CONNECTION} admissions (a whole roster) at once`, () => {
    const { contact } = setup({ powAdmissionsPerWindow: 1_000 });
    const targets = Array.from({ length: MAX_ADMITTED_MAILBOXES_PER_CONNECTION }, mailbox);
    for (const to of targets) {
      const { nonce, solution } = solved(contact, to);
      expect(contact.solve(nonce, solution, NOW).ok).toBe(true);
    }
    expect(contact.sizes.admitted).toBe(MAX_ADMITTED_MAILBOXES_PER_CONNECTION);
    for (const to of targets) expect(contact.takeSend(to)).toBe(true);
  });
});

describe('FirstContact: refuses', () => {
  it('a send past the share, until the connection solves again', () => {
    const { contact } = setup();
    const to = mailbox();
    let { nonce, solution } = solved(contact, to);
    contact.solve(nonce, solution, NOW);
    for (let i = 0; i < 3; i++) contact.takeSend(to);
    expect(contact.takeSend(to)).toBe(false);
    ({ nonce, solution } = solved(contact, to));
    expect(contact.solve(nonce, solution, NOW).ok).toBe(true);
    expect(contact.takeSend(to)).toBe(true);
  });

  it('a send to another mailbox than the one admitted', () => {
    const { contact } = setup();
    const { nonce, solution } = solved(contact, mailbox());
    contact.solve(nonce, solution, NOW);
    expect(contact.takeSend(mailbox())).toBe(false);
  });

  it('a solution that misses the difficulty, and spends the challenge', () => {
    const { contact } = setup({ powBits: 8 });
    const to = mailbox();
    const wrong = wrongSolution(contact, to);
    expect(contact.solve(wrong.nonce, wrong.solution, NOW)).toEqual({ ok: false });
    expect(contact.sizes.open).toBe(0);
    expect(contact.takeSend(to)).toBe(false);
  });

  it('a solution answered twice (single use)', () => {
    const { contact } = setup();
    const to = mailbox();
    const { nonce, solution } = solved(contact, to);
    expect(contact.solve(nonce, solution, NOW).ok).toBe(true);
    expect(contact.solve(nonce, solution, NOW)).toEqual({ ok: false });
  });

  it('a nonce this connection was never issued (another connection’s challenge)', () => {
    const { gauge, contact } = setup();
    const other = new FirstContact(gauge, SETTINGS);
    const { nonce, solution } = solved(other, mailbox());
    expect(contact.solve(nonce, solution, NOW)).toEqual({ ok: false });
    expect(other.solve(nonce, solution, NOW).ok).toBe(true);
  });

  it('a solution after the challenge expired, and one at the last moment is accepted', () => {
    const { contact } = setup();
    const late = solved(contact, mailbox());
    expect(contact.solve(late.nonce, late.solution, NOW + SETTINGS.powChallengeTtlMs)).toEqual({
      ok: false,
    });
    const onTime = solved(contact, mailbox());
    expect(
      contact.solve(onTime.nonce, onTime.solution, NOW + SETTINGS.powChallengeTtlMs - 1).ok,
    ).toBe(true);
  });

  it('a solution that is not base64url or not 8 bytes', () => {
    const { contact } = setup();
    const { nonce } = solved(contact, mailbox());
    expect(contact.solve(nonce, '!!!!!!!!!!!', NOW)).toEqual({ ok: false });
    const again = solved(contact, mailbox());
    expect(contact.solve(again.nonce, toBase64url(new Uint8Array(7)), NOW)).toEqual({ ok: false });
  });

  it(`the oldest challenge once ${MAX_OPEN_POW_CHALLENGES} are open and one more is asked`, () => {
    const { contact } = setup();
    const first = solved(contact, mailbox());
    const rest = Array.from({ length: MAX_OPEN_POW_CHALLENGES - 1 }, () =>
      solved(contact, mailbox()),
    );
    expect(contact.sizes.open).toBe(MAX_OPEN_POW_CHALLENGES); // at the bound: all kept
    const extra = solved(contact, mailbox()); // one past: the oldest is forgotten
    expect(contact.sizes.open).toBe(MAX_OPEN_POW_CHALLENGES);
    expect(contact.solve(first.nonce, first.solution, NOW)).toEqual({ ok: false });
    for (const c of [...rest, extra]) expect(contact.solve(c.nonce, c.solution, NOW).ok).toBe(true);
  });

  it('a send to the oldest admitted mailbox once one more than the bound is admitted', () => {
    const { contact } = setup({ powAdmissionsPerWindow: 1_000 });
    const targets = Array.from({ length: MAX_ADMITTED_MAILBOXES_PER_CONNECTION + 1 }, mailbox);
    for (const to of targets) {
      const { nonce, solution } = solved(contact, to);
      contact.solve(nonce, solution, NOW);
    }
    expect(contact.sizes.admitted).toBe(MAX_ADMITTED_MAILBOXES_PER_CONNECTION);
    expect(contact.takeSend(targets[0]!)).toBe(false);
    expect(contact.takeSend(targets[1]!)).toBe(true);
  });

  it('a refund for a mailbox not admitted does not admit it', () => {
    const { contact } = setup();
    const to = mailbox();
    contact.refund(to);
    expect(contact.takeSend(to)).toBe(false);
  });
});
