/**
 * A coordinator's new device enrols over the relay (docs/protocol.md "Enrolment", ADR 0019): it
 * seals its request to the invite's enrolment mailbox (`createEnrolmentEnvelope`, crypto
 * layer) and sends it as one more envelope, paying the first-contact proof-of-work like any
 * stranger; the admin's tool reads the mailbox, verifies the request and lists it for approval.
 * This module is the sending half: one envelope, resolved once the relay has stored it.
 */
import { createEnrolmentEnvelope, type EnrolmentRequestInput } from '../crypto/enrolment.js';
import type { Primitives } from '../crypto/primitives.js';
import type { PassageClient } from './client.js';

/** What `sendEnrolment` sent. */
export interface SentEnrolment {
  /** The message id of the envelope. */
  readonly id: string;
  /** The enrolment mailbox it went to. */
  readonly to: string;
}

/**
 * Builds, seals and sends the device's enrolment request through `client` (anonymous or
 * authenticated; give it a `solvePow`), and resolves once the relay has stored it.
 *
 * @throws RangeError for a label the request cannot carry; `EnrolmentFailed` when the outbox
 *   gives the message up (`failure` is the relay's or the client core's code); whatever
 *   `client.send` throws.
 */
export async function sendEnrolment(
  client: PassageClient,
  p: Primitives,
  input: EnrolmentRequestInput,
): Promise<SentEnrolment> {
  const { envelope, to } = createEnrolmentEnvelope(p, input);
  // Subscribed before the send: the outbox may settle the message before `send` resolves.
  const settled = new Map<string, string | undefined>();
  let waiter: ((failure: string | undefined) => void) | undefined;
  let mine: string | undefined;
  const off = client.on('message-state', (e) => {
    if (e.state !== 'sent' && e.state !== 'failed') return;
    const failure = e.state === 'failed' ? (e.failure ?? 'failed') : undefined;
    if (e.id === mine) waiter?.(failure);
    else settled.set(e.id, failure);
  });
  try {
    const id = await client.send(to, envelope);
    mine = id;
    const failure = settled.has(id)
      ? settled.get(id)
      : await new Promise<string | undefined>((resolve) => (waiter = resolve));
    if (failure !== undefined) throw new EnrolmentFailed(failure);
    return { id, to };
  } finally {
    off();
  }
}

/** The outbox gave the enrolment envelope up (`failure`: e.g. `pow_required`, `closed`). */
export class EnrolmentFailed extends Error {
  override readonly name = 'EnrolmentFailed';
  constructor(readonly failure: string) {
    super(`enrolment: the relay did not store the request (${failure})`);
  }
}
