/**
 * Send admission: proof-of-work for first contact (docs/protocol.md, "Proof-of-work for first
 * contact"; ADR 0011). Sending needs no account and carries no sender, so the relay cannot tell
 * a contact from a flood. What it can tell is the connection: a connection's first `send` to a
 * mailbox needs a solved challenge for that mailbox, and one solved challenge admits at most
 * `powSendsPerAdmission` stored envelopes to it; after that the connection pays again. So every
 * queued envelope costs its sender a share of a proof, a fresh connection starts with nothing,
 * and one connection can take at most one admission's share of a mailbox's queue per proof.
 *
 * The difficulty adapts to load: each doubling of the admissions this relay granted within the
 * last window above the nominal rate adds one bit, relay-wide and, separately, per target
 * mailbox (a count-min sketch keyed with a secret, so that it never under-counts a mailbox and
 * no one can aim collisions at one). Nothing here forgets in the attacker's favour: the sketch
 * has a fixed size and only over-counts, and a connection's bounded maps forget the oldest
 * admission (which then costs a new proof) or the oldest open challenge (which can no longer be
 * answered).
 *
 * Verification is one SHA-256 (node:crypto), a few microseconds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { POW_MAX_BITS, POW_MIN_BITS, POW_NONCE_BYTES } from '@passage/shared/protocol/limits';
import type { EncodablePowChallenge } from '@passage/shared/protocol/encode';
import { createPowChallenge, verifyPow, type PowChallenge } from '@passage/shared/pow/pow';
import { sha256 } from '../sha256.js';

/** The admission settings of {@link RelaySettings} (config.ts). */
export interface AdmissionSettings {
  /** Base difficulty in leading zero bits; 0 turns first-contact proof-of-work off. */
  readonly powBits: number;
  /** The most the adaptive rule may raise the difficulty to. */
  readonly powMaxBits: number;
  /** How long an issued challenge may be answered, in ms. */
  readonly powChallengeTtlMs: number;
  /** Admissions per window, relay-wide, above which each doubling adds a bit. */
  readonly powAdmissionsPerWindow: number;
  /** Admissions to one mailbox per window above which each doubling adds a bit. */
  readonly powTargetAdmissionsPerWindow: number;
  /** Envelopes one admission may store for its mailbox before the connection pays again. */
  readonly powSendsPerAdmission: number;
}

/** The window over which admissions are counted for the difficulty, in ms. */
export const POW_WINDOW_MS = 60_000;

/**
 * Most challenges open at once on one connection; a further `pow.request` forgets the oldest.
 * A client solves one at a time per mailbox; four leaves room for a few mailboxes in parallel.
 */
export const MAX_OPEN_POW_CHALLENGES = 4;

/**
 * Most mailboxes one connection is admitted to at once; a further admission forgets the oldest,
 * which then needs a new proof. 64 is the most devices an organization's roster lists
 * (`MAX_ROSTER_DEVICES` in shared/src/crypto/roster.ts), so a contact's page writing to every
 * coordinator device on one connection keeps all its admissions.
 */
export const MAX_ADMITTED_MAILBOXES_PER_CONNECTION = 64;

/** Rows and columns of the per-mailbox count-min sketch (2 × 4 × 4,096 u32 = 128 KiB). */
const SKETCH_ROWS = 4;
const SKETCH_COLUMNS = 4_096;

/** Extra bits for `count` admissions in a window where `nominal` are normal: one per doubling. */
export function extraBits(count: number, nominal: number): number {
  if (!(count > nominal)) return 0;
  return Math.floor(Math.log2(count / nominal)) + 1;
}

/**
 * Counts admissions over a sliding window (the current window plus the previous one, weighted
 * by how much of it still overlaps), relay-wide and per target mailbox, and turns the counts
 * into a difficulty. One per relay.
 */
export class AdmissionGauge {
  readonly #settings: AdmissionSettings;
  /** Secret key of the sketch's hash, so that no one can pick mailbox ids that collide. */
  readonly #key = randomBytes(32);
  #current = new Uint32Array(SKETCH_ROWS * SKETCH_COLUMNS);
  #previous = new Uint32Array(SKETCH_ROWS * SKETCH_COLUMNS);
  #currentTotal = 0;
  #previousTotal = 0;
  #windowStartMs: number;

  constructor(settings: AdmissionSettings, nowMs: number) {
    this.#settings = settings;
    this.#windowStartMs = nowMs;
  }

  /** True when first contact needs a proof at all. */
  get enabled(): boolean {
    return this.#settings.powBits > 0;
  }

  /** The share of sends one admission carries. */
  get sendsPerAdmission(): number {
    return this.#settings.powSendsPerAdmission;
  }

  /** The difficulty for a challenge to `to` now, in bits. */
  bitsFor(to: string, nowMs: number): number {
    const s = this.#settings;
    if (s.powBits === 0) return POW_MIN_BITS;
    const weight = this.#rotate(nowMs);
    const total = this.#currentTotal + this.#previousTotal * weight;
    const target = this.#estimate(to, weight);
    const bits =
      s.powBits +
      extraBits(total, s.powAdmissionsPerWindow) +
      extraBits(target, s.powTargetAdmissionsPerWindow);
    return Math.max(POW_MIN_BITS, Math.min(bits, s.powMaxBits, POW_MAX_BITS));
  }

  /** Counts one admission to `to`. */
  record(to: string, nowMs: number): void {
    this.#rotate(nowMs);
    this.#currentTotal++;
    const cells = this.#cells(to);
    for (let row = 0; row < SKETCH_ROWS; row++) {
      const i = row * SKETCH_COLUMNS + cells[row]!;
      // Saturate rather than wrap: a wrapped counter would forget in the attacker's favour.
      if (this.#current[i]! < 0xffffffff) this.#current[i]!++;
    }
  }

  /**
   * The spam signal of `to` (`firstcontact.status`): admissions to it in the sliding window (the
   * sketch's estimate, never under the truth), the difficulty a first contact pays now, and
   * whether the admissions are past the nominal count for one mailbox.
   */
  signal(to: string, nowMs: number): { admissions: number; bits: number; likelySpam: boolean } {
    const weight = this.#rotate(nowMs);
    const admissions = Math.min(Math.floor(this.#estimate(to, weight)), 0xffffffff);
    return {
      admissions,
      bits: this.bitsFor(to, nowMs),
      likelySpam: admissions > this.#settings.powTargetAdmissionsPerWindow,
    };
  }

  /** Admissions counted now (weighted over the sliding window), relay-wide; for tests. */
  admissions(nowMs: number): number {
    const weight = this.#rotate(nowMs);
    return this.#currentTotal + this.#previousTotal * weight;
  }

  /** Moves the windows on if time has passed; returns the weight of the previous window. */
  #rotate(nowMs: number): number {
    let elapsed = nowMs - this.#windowStartMs;
    if (elapsed >= POW_WINDOW_MS) {
      const windows = Math.floor(elapsed / POW_WINDOW_MS);
      if (windows === 1) {
        [this.#previous, this.#current] = [this.#current, this.#previous];
        this.#previousTotal = this.#currentTotal;
      } else {
        this.#previous.fill(0);
        this.#previousTotal = 0;
      }
      this.#current.fill(0);
      this.#currentTotal = 0;
      this.#windowStartMs += windows * POW_WINDOW_MS;
      elapsed = nowMs - this.#windowStartMs;
    }
    return Math.max(0, 1 - Math.max(0, elapsed) / POW_WINDOW_MS);
  }

  #estimate(to: string, weight: number): number {
    const cells = this.#cells(to);
    let least = Infinity;
    for (let row = 0; row < SKETCH_ROWS; row++) {
      const i = row * SKETCH_COLUMNS + cells[row]!;
      least = Math.min(least, this.#current[i]! + this.#previous[i]! * weight);
    }
    return least;
  }

  /** One column per row, from a keyed SHA-256 of the mailbox id. */
  #cells(to: string): number[] {
    const digest = createHash('sha256').update(this.#key).update(to).digest();
    const out: number[] = [];
    for (let row = 0; row < SKETCH_ROWS; row++) {
      out.push(digest.readUInt16BE(row * 2) % SKETCH_COLUMNS);
    }
    return out;
  }
}

/** What a `pow.solve` did. */
export type SolveResult =
  { readonly ok: true; readonly to: string; readonly sends: number } | { readonly ok: false };

/**
 * One connection's first-contact state: the challenges it was issued and not yet answered, and
 * the mailboxes it is admitted to with the sends left in each admission's share. Both maps are
 * bounded and forget their oldest entry first.
 */
export class FirstContact {
  readonly #gauge: AdmissionGauge;
  readonly #ttlMs: number;
  /** Open challenges by nonce (base64url), oldest first. */
  readonly #open = new Map<string, PowChallenge>();
  /** Admitted mailbox → sends left in its share, least recently admitted first. */
  readonly #admitted = new Map<string, number>();
  /** True once a challenge was solved on this connection (any mailbox's). */
  #paid = false;

  constructor(gauge: AdmissionGauge, settings: Pick<AdmissionSettings, 'powChallengeTtlMs'>) {
    this.#gauge = gauge;
    this.#ttlMs = settings.powChallengeTtlMs;
  }

  /** A new challenge for a first `send` to `to` (base64url mailbox id); `nowMs` is Unix time. */
  request(to: string, nowMs: number): EncodablePowChallenge {
    const mailbox = fromBase64url(to);
    if (mailbox === undefined) throw new RangeError('not a mailbox id');
    const challenge = createPowChallenge({
      nonce: randomBytes(POW_NONCE_BYTES),
      bits: this.#gauge.bitsFor(to, nowMs),
      to: mailbox,
      nowMs,
      ttlMs: this.#ttlMs,
    });
    const wire: EncodablePowChallenge = {
      v: challenge.v,
      nonce: toBase64url(challenge.nonce),
      bits: challenge.bits,
      exp: challenge.exp,
      to,
    };
    if (this.#open.size >= MAX_OPEN_POW_CHALLENGES) {
      this.#open.delete(this.#open.keys().next().value as string);
    }
    this.#open.set(wire.nonce, challenge);
    return wire;
  }

  /**
   * Checks a solution against the open challenge named by `nonce`. The challenge is spent
   * whatever the outcome (single use); on success the connection is admitted to its mailbox
   * with a fresh share, replacing what was left of an earlier one.
   */
  solve(nonce: string, solution: string, nowMs: number): SolveResult {
    const challenge = this.#open.get(nonce);
    const bytes = fromBase64url(solution);
    if (challenge === undefined || bytes === undefined) return { ok: false };
    this.#open.delete(nonce);
    try {
      verifyPow(challenge, bytes, sha256, nowMs);
    } catch {
      return { ok: false };
    }
    const to = toBase64url(challenge.to);
    this.#paid = true;
    this.#gauge.record(to, nowMs);
    this.#admitted.delete(to);
    if (this.#admitted.size >= MAX_ADMITTED_MAILBOXES_PER_CONNECTION) {
      this.#admitted.delete(this.#admitted.keys().next().value as string);
    }
    const sends = this.#gauge.sendsPerAdmission;
    this.#admitted.set(to, sends);
    return { ok: true, to, sends };
  }

  /**
   * Takes one send from the share for `to`; false means the connection must (again) prove work
   * first. Always true when proof-of-work is off. Give it back with {@link refund} when the
   * send stored nothing new.
   */
  takeSend(to: string): boolean {
    if (!this.#gauge.enabled) return true;
    const left = this.#admitted.get(to);
    if (left === undefined || left <= 0) return false;
    this.#admitted.set(to, left - 1);
    return true;
  }

  /** Returns a send taken by {@link takeSend} that stored nothing (a duplicate, or refused). */
  refund(to: string): void {
    if (!this.#gauge.enabled) return;
    const left = this.#admitted.get(to);
    // An admission forgotten (or renewed) in between is not topped up past a fresh share.
    if (left !== undefined) {
      this.#admitted.set(to, Math.min(left + 1, this.#gauge.sendsPerAdmission));
    }
  }

  /**
   * True once this connection solved a challenge (for any mailbox), or when proof-of-work is
   * off: what storing a new state blob or reserving an attachment upload needs (ADR 0014).
   */
  get paid(): boolean {
    return this.#paid || !this.#gauge.enabled;
  }

  /** Challenges open and mailboxes admitted now; for tests. */
  get sizes(): { readonly open: number; readonly admitted: number } {
    return { open: this.#open.size, admitted: this.#admitted.size };
  }
}
