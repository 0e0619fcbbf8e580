/**
 * What became of this device's own conversation messages: one message is one envelope per
 * recipient device (fan-out), each with its outbox id; the receipts that come back name the
 * conversation message id and are authenticated as coming from one device. The ledger maps a
 * receipt from device D to D's envelope only (a device cannot mark what another device got),
 * and folds the envelopes' states into the message's:
 *
 *   queued → sent (every envelope stored) → delivered (a counterpart's receipt) → read
 *
 * A counterpart is a recipient on the other side of the conversation: the contact, for a team
 * device's message; any coordinator device, for a contact's. A message to the team only (a
 * case event) ends at `sent`. States only move forward; `failed` when an envelope's send failed
 * for good. Bounded: the oldest messages are forgotten past `MAX_TRACKED_MESSAGES`.
 */
import type { OutgoingState } from './outbox.js';

/** Messages whose receipts are still followed (the oldest are forgotten first). */
export const MAX_TRACKED_MESSAGES = 1_000;

export type MessageState = 'queued' | 'sent' | 'delivered' | 'read' | 'failed';

const RANK: Readonly<Record<MessageState, number>> = {
  queued: 0,
  sent: 1,
  delivered: 2,
  read: 3,
  failed: 4,
};

/** One recipient device of a message. */
export interface TrackedRecipient {
  /** `PublicIdentity.id` of the device. */
  readonly device: string;
  /** The outbox id of its envelope. */
  readonly envelopeId: string;
  /** On the other side of the conversation (its receipts move the message's state). */
  readonly counterpart: boolean;
}

interface Tracked {
  readonly id: string;
  readonly byDevice: Map<string, TrackedRecipient>;
  readonly stored: Set<string>;
  readonly delivered: Set<string>;
  readonly read: Set<string>;
  failed: boolean;
  state: MessageState;
}

/** One envelope a receipt moves, for the outbox. */
export interface EnvelopeMark {
  readonly envelopeId: string;
  readonly kind: 'delivered' | 'read';
}

/** A message whose state moved. */
export interface StateChange {
  readonly id: string;
  readonly state: MessageState;
}

/** The delivery of one message as a UI shows it. */
export interface DeliveryStatus {
  readonly id: string;
  readonly state: MessageState;
  readonly recipients: number;
  /** Devices (ids) whose receipt said delivered (or read). */
  readonly deliveredTo: readonly string[];
  readonly readBy: readonly string[];
}

export class DeliveryLedger {
  readonly #messages = new Map<string, Tracked>();
  /** Outbox id → [message id, device id]. */
  readonly #envelopes = new Map<string, readonly [string, string]>();

  get size(): number {
    return this.#messages.size;
  }

  /** Follows a message just sealed for `recipients` (its envelopes are queued). */
  track(id: string, recipients: readonly TrackedRecipient[]): void {
    this.#forget(id);
    while (this.#messages.size >= MAX_TRACKED_MESSAGES) {
      const oldest = this.#messages.keys().next().value as string;
      this.#forget(oldest);
    }
    const byDevice = new Map(recipients.map((r) => [r.device, r]));
    this.#messages.set(id, {
      id,
      byDevice,
      stored: new Set(),
      delivered: new Set(),
      read: new Set(),
      failed: false,
      state: 'queued',
    });
    for (const r of recipients) this.#envelopes.set(r.envelopeId, [id, r.device]);
  }

  /** An envelope's outbox state changed (`message-state`); the message's change, if any. */
  onEnvelopeState(envelopeId: string, state: OutgoingState): StateChange | null {
    const at = this.#envelopes.get(envelopeId);
    if (at === undefined) return null;
    const tracked = this.#messages.get(at[0])!;
    if (state === 'failed') tracked.failed = true;
    else tracked.stored.add(at[1]);
    return this.#update(tracked);
  }

  /**
   * A receipt from `fromDevice` naming message ids: the envelopes of that device to mark in
   * the outbox, and the messages whose state moved. Ids this device did not send to
   * `fromDevice` are ignored.
   */
  onReceipt(
    fromDevice: string,
    kind: 'delivered' | 'read',
    ids: readonly string[],
  ): { readonly marks: EnvelopeMark[]; readonly changes: StateChange[] } {
    const marks: EnvelopeMark[] = [];
    const changes: StateChange[] = [];
    for (const id of ids) {
      const tracked = this.#messages.get(id);
      const recipient = tracked?.byDevice.get(fromDevice);
      if (tracked === undefined || recipient === undefined) continue;
      const had = kind === 'read' ? tracked.read : tracked.delivered;
      if (had.has(fromDevice)) continue;
      tracked.delivered.add(fromDevice);
      if (kind === 'read') tracked.read.add(fromDevice);
      // A receipt also proves the envelope was stored.
      tracked.stored.add(fromDevice);
      marks.push({ envelopeId: recipient.envelopeId, kind });
      const change = this.#update(tracked);
      if (change !== null) changes.push(change);
    }
    return { marks, changes };
  }

  status(id: string): DeliveryStatus | undefined {
    const t = this.#messages.get(id);
    if (t === undefined) return undefined;
    return {
      id,
      state: t.state,
      recipients: t.byDevice.size,
      deliveredTo: [...t.delivered],
      readBy: [...t.read],
    };
  }

  #update(t: Tracked): StateChange | null {
    const next = this.#stateOf(t);
    if (RANK[next] <= RANK[t.state]) return null;
    t.state = next;
    return { id: t.id, state: next };
  }

  #stateOf(t: Tracked): MessageState {
    if (t.failed) return 'failed';
    const counterpart = (device: string) => t.byDevice.get(device)?.counterpart === true;
    if ([...t.read].some(counterpart)) return 'read';
    if ([...t.delivered].some(counterpart)) return 'delivered';
    if (t.stored.size === t.byDevice.size) return 'sent';
    return 'queued';
  }

  #forget(id: string): void {
    const t = this.#messages.get(id);
    if (t === undefined) return;
    for (const r of t.byDevice.values()) this.#envelopes.delete(r.envelopeId);
    this.#messages.delete(id);
  }
}
