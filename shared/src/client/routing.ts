/**
 * Routing by the verified roster: which devices one conversation message is encrypted to, and
 * who a received message came from. Pure functions over a roster that `verifyOrgProfile` has
 * verified (org-trust.ts); the session layer encrypts to exactly the devices returned here and
 * never to one it learnt from the network (ADR 0006).
 *
 * Sending (docs/client.md "Routing"):
 *
 * | sender  | message                                        | recipients                                 |
 * | ------- | ---------------------------------------------- | ------------------------------------------ |
 * | contact | anything a contact may send                    | every roster device                        |
 * | team    | a team-only type (`mayBeSentToContact` false)  | every OTHER roster device                  |
 * | team    | a `delivered` receipt                          | the case's contact only                    |
 * | team    | anything else (text, read receipt, notice, …)  | the case's contact + every OTHER roster device |
 *
 * A `delivered` receipt from the team goes to the contact only: every team device confirms
 * delivery of every contact message, and fanning each of those out to the whole team would
 * cost (devices)² envelopes per contact message for nothing the team shows. `read` receipts do
 * reach the team: "read by a colleague" is what the case list's unread state is made of.
 *
 * Receiving: a sender on the roster is a team device; any other sender is a contact (to a team
 * device) or refused (to a contact: `sender_not_in_roster`: a contact talks only to the roster).
 * Then `checkOrigin` (conversation/messages.ts) decides whether that origin may send that
 * message to this side.
 */
import type { PublicIdentity } from '../crypto/identity.js';
import type { Roster } from '../crypto/roster.js';
import { ConversationErrorCode, type ConversationFailure } from './conversation/errors.js';
import {
  caseOf,
  checkOrigin,
  mayBeSentToContact,
  type ConversationMessage,
  type Origin,
} from './conversation/messages.js';
import { ClientErrorCode } from './errors.js';

/** Which side of a conversation this device is on. */
export type Role = 'contact' | 'team';

/** Why a received message was dropped before it reached the conversation (besides the codes
 * of `ConversationErrorCode`). */
export const RoutingDropCode = {
  /** A contact's device received a message from a device that is not on the roster it holds
   * (a removed coordinator, or anyone else who got a session): never shown. */
  SENDER_NOT_IN_ROSTER: 'sender_not_in_roster',
} as const;
export type RoutingDropCode = (typeof RoutingDropCode)[keyof typeof RoutingDropCode];

/** A device of the roster (compared by signing and X25519 key, as sessions are). */
export function isRosterDevice(roster: Roster, device: PublicIdentity): boolean {
  return roster.devices.some((d) => d.equals(device));
}

/** What `recipientsOf` needs. */
export interface RouteInput {
  readonly role: Role;
  /** This device. */
  readonly self: PublicIdentity;
  /** The roster verified last. */
  readonly roster: Roster;
  readonly message: ConversationMessage;
  /** For a team device: the identity of the contact of the message's case, when it is known. */
  readonly contact?: PublicIdentity;
}

/** The devices a message goes to, or why it cannot go (a `ClientErrorCode`). */
export type RouteResult =
  | { readonly ok: true; readonly recipients: readonly PublicIdentity[] }
  | {
      readonly ok: false;
      readonly code:
        | typeof ClientErrorCode.WRONG_ROLE
        | typeof ClientErrorCode.NOT_IN_ROSTER
        | typeof ClientErrorCode.UNKNOWN_CASE;
    };

/**
 * The devices `message` is encrypted to (see the module comment). Refuses `wrong_role` for a
 * type this side may not send (or a team message of a case bound type without its case, or a
 * contact's message naming one), `not_in_roster` for a team device not on its roster, and
 * `unknown_case` for a team message to a contact this device does not know or that is a roster
 * device (a case is always a contact's).
 */
export function recipientsOf(input: RouteInput): RouteResult {
  const { role, self, roster, message } = input;
  const others = roster.devices.filter((d) => !d.equals(self));
  if (role === 'contact') {
    // The same rules the receiving team device applies: a bug here would only get dropped.
    if (checkOrigin(message, { from: 'contact' }) !== null) {
      return { ok: false, code: ClientErrorCode.WRONG_ROLE };
    }
    return { ok: true, recipients: others };
  }
  if (!isRosterDevice(roster, self)) return { ok: false, code: ClientErrorCode.NOT_IN_ROSTER };
  if (checkOrigin(message, { from: 'team', device: self.id }) !== null) {
    return { ok: false, code: ClientErrorCode.WRONG_ROLE };
  }
  if (!mayBeSentToContact(message.type)) return { ok: true, recipients: others };
  const contact = input.contact;
  const caseId = caseOf(message);
  if (
    contact === undefined ||
    caseId === undefined ||
    contact.id !== caseId ||
    isRosterDevice(roster, contact)
  ) {
    return { ok: false, code: ClientErrorCode.UNKNOWN_CASE };
  }
  if (message.type === 'receipt' && message.kind === 'delivered') {
    return { ok: true, recipients: [contact] };
  }
  return { ok: true, recipients: [contact, ...others] };
}

/** Who sent a received message, as this side classifies the authenticated sender. */
export type OriginResult =
  | { readonly ok: true; readonly origin: Origin }
  | { readonly ok: false; readonly code: RoutingDropCode };

/** The origin of a message from `sender` (authenticated by its session), for a device of `role`. */
export function originOf(role: Role, roster: Roster, sender: PublicIdentity): OriginResult {
  if (isRosterDevice(roster, sender)) {
    return { ok: true, origin: { from: 'team', device: sender.id } };
  }
  if (role === 'contact') return { ok: false, code: RoutingDropCode.SENDER_NOT_IN_ROSTER };
  return { ok: true, origin: { from: 'contact' } };
}

/** A received message that passed the routing checks, with the case it belongs to. */
export type IncomingResult =
  | { readonly ok: true; readonly origin: Origin; readonly caseId: string | undefined }
  | { readonly ok: false; readonly code: RoutingDropCode | ConversationFailure['code'] };

/**
 * Whether a decoded message from `sender` may reach this device (`self`, a `role` device): the
 * origin by the roster, then `checkOrigin`, and on a contact's device a team message must name
 * the contact's own case. The case is the contact's own id for a contact's message (a contact
 * never names one), the message's `case` for a team message.
 */
export function checkIncoming(
  role: Role,
  self: PublicIdentity,
  roster: Roster,
  sender: PublicIdentity,
  message: ConversationMessage,
): IncomingResult {
  const origin = originOf(role, roster, sender);
  if (!origin.ok) return origin;
  const failure = checkOrigin(message, origin.origin, role);
  if (failure !== null) return { ok: false, code: failure.code };
  const caseId = origin.origin.from === 'contact' ? sender.id : caseOf(message);
  if (role === 'contact' && caseId !== undefined && caseId !== self.id) {
    return { ok: false, code: ConversationErrorCode.WRONG_ORIGIN };
  }
  return { ok: true, origin: origin.origin, caseId };
}
