import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from '../crypto/backend.js';
import { DeviceIdentity, type PublicIdentity } from '../crypto/identity.js';
import type { Primitives } from '../crypto/primitives.js';
import { signRoster, verifyRoster, type Roster } from '../crypto/roster.js';
import { idOf, sampleMessages } from '@passage/testing/conversation-fixtures';
import { FIXED_NOW_SECONDS, organizationKey } from '@passage/testing/crypto-fixtures';
import type { ConversationMessage } from './conversation/messages.js';
import { checkIncoming, originOf, recipientsOf } from './routing.js';

let p: Primitives;
let roster: Roster;
let d1: PublicIdentity;
let d2: PublicIdentity;
let d3: PublicIdentity;
let contact: PublicIdentity;
let stranger: PublicIdentity;

beforeAll(async () => {
  p = await loadPrimitives();
  [d1, d2, d3, contact, stranger] = Array.from(
    { length: 5 },
    () => DeviceIdentity.generate(p).publicIdentity,
  ) as [PublicIdentity, PublicIdentity, PublicIdentity, PublicIdentity, PublicIdentity];
  const org = organizationKey(p);
  const bytes = signRoster(p, org.seed, {
    serial: 1,
    issuedAtSeconds: FIXED_NOW_SECONDS - 10,
    expiresAtSeconds: FIXED_NOW_SECONDS + 3600,
    devices: [d1, d2, d3],
  });
  roster = verifyRoster(p, bytes, {
    organizationKey: org.publicKey,
    nowSeconds: FIXED_NOW_SECONDS,
  });
});

const ids = (devices: readonly PublicIdentity[]) => devices.map((d) => d.id).sort();

/** A sample of `type`, as the team sends it for the contact's case. */
function teamMessage<T extends ConversationMessage['type']>(type: T): ConversationMessage {
  const m = sampleMessages()[type] as ConversationMessage & Record<string, unknown>;
  if (type !== 'sync_response' && ('case' in m || type === 'text' || type === 'attachment')) {
    (m as { case?: string }).case = contact.id;
  }
  if (m.type === 'case_event') m.hlc = { ...m.hlc, device: d1.id };
  return m;
}

/** A sample of `type`, as a contact sends it (no case). */
function contactMessage<T extends ConversationMessage['type']>(type: T): ConversationMessage {
  const m = { ...sampleMessages()[type] } as Record<string, unknown>;
  delete m['case'];
  return m as ConversationMessage;
}

describe('recipientsOf: a contact', () => {
  it.each(['text', 'intake', 'receipt', 'attachment'] as const)(
    'sends a %s to every roster device',
    (type) => {
      const r = recipientsOf({
        role: 'contact',
        self: contact,
        roster,
        message: contactMessage(type),
      });
      expect(r.ok && ids(r.recipients)).toEqual(ids([d1, d2, d3]));
    },
  );

  it.each(['status_notice', 'case_event', 'sync_request', 'sync_response'] as const)(
    'may not send a %s (wrong_role)',
    (type) => {
      const r = recipientsOf({
        role: 'contact',
        self: contact,
        roster,
        message: teamMessage(type),
      });
      expect(r).toEqual({ ok: false, code: 'wrong_role' });
    },
  );

  it('may not send a text that names a case (wrong_role)', () => {
    const message = { ...contactMessage('text'), case: contact.id } as ConversationMessage;
    expect(recipientsOf({ role: 'contact', self: contact, roster, message })).toEqual({
      ok: false,
      code: 'wrong_role',
    });
  });
});

describe('recipientsOf: a team device', () => {
  const route = (message: ConversationMessage, who?: PublicIdentity, self?: PublicIdentity) =>
    recipientsOf({
      role: 'team',
      self: self ?? d1,
      roster,
      message,
      ...(who === undefined ? {} : { contact: who }),
    });

  it('sends a reply to the contact and every OTHER roster device', () => {
    const r = route(teamMessage('text'), contact);
    expect(r.ok && ids(r.recipients)).toEqual(ids([contact, d2, d3]));
  });

  it('sends a read receipt and a status notice to the contact and the other devices', () => {
    const read = { ...teamMessage('receipt'), kind: 'read' } as ConversationMessage;
    for (const m of [read, teamMessage('status_notice')]) {
      const r = route(m, contact);
      expect(r.ok && ids(r.recipients)).toEqual(ids([contact, d2, d3]));
    }
  });

  it('sends a delivered receipt to the contact only', () => {
    const delivered = { ...teamMessage('receipt'), kind: 'delivered' } as ConversationMessage;
    const r = route(delivered, contact);
    expect(r.ok && ids(r.recipients)).toEqual(ids([contact]));
  });

  it.each(['case_event', 'sync_request', 'sync_response'] as const)(
    'sends a %s to the other roster devices only, never the contact',
    (type) => {
      const r = route(teamMessage(type), contact);
      expect(r.ok && ids(r.recipients)).toEqual(ids([d2, d3]));
      expect(r.ok && r.recipients.some((d) => d.equals(contact))).toBe(false);
    },
  );

  it('refuses to send as a device the roster does not list (not_in_roster)', () => {
    expect(route(teamMessage('text'), contact, stranger)).toEqual({
      ok: false,
      code: 'not_in_roster',
    });
    expect(route(teamMessage('case_event'), undefined, stranger)).toEqual({
      ok: false,
      code: 'not_in_roster',
    });
  });

  it('refuses a reply without a known contact (unknown_case)', () => {
    expect(route(teamMessage('text'))).toEqual({ ok: false, code: 'unknown_case' });
  });

  it('refuses a reply whose contact is not the case it names (unknown_case)', () => {
    expect(route(teamMessage('text'), stranger)).toEqual({ ok: false, code: 'unknown_case' });
  });

  it('refuses a "contact" that is a roster device (unknown_case): a case is always a contact', () => {
    const message = { ...teamMessage('text'), case: d2.id } as ConversationMessage;
    expect(route(message, d2)).toEqual({ ok: false, code: 'unknown_case' });
  });

  it('refuses an intake from a team device (wrong_role)', () => {
    expect(route(contactMessage('intake'), contact)).toEqual({ ok: false, code: 'wrong_role' });
  });

  it('refuses a team text without its case (wrong_role)', () => {
    expect(route(contactMessage('text'), contact)).toEqual({ ok: false, code: 'wrong_role' });
  });

  it('refuses a case event stamped with another device (wrong_role)', () => {
    const m = teamMessage('case_event') as Extract<ConversationMessage, { type: 'case_event' }>;
    const forged = { ...m, hlc: { ...m.hlc, device: d2.id } };
    expect(route(forged, contact)).toEqual({ ok: false, code: 'wrong_role' });
  });
});

describe('originOf and checkIncoming', () => {
  it('a roster sender is a team device, to a contact and to a team device', () => {
    expect(originOf('contact', roster, d2)).toEqual({
      ok: true,
      origin: { from: 'team', device: d2.id },
    });
    expect(originOf('team', roster, d2)).toEqual({
      ok: true,
      origin: { from: 'team', device: d2.id },
    });
  });

  it('a non-roster sender is a contact to a team device', () => {
    expect(originOf('team', roster, contact)).toEqual({ ok: true, origin: { from: 'contact' } });
  });

  it('a team device takes a contact text, with the contact as its case', () => {
    expect(checkIncoming('team', d1, roster, contact, contactMessage('text'))).toEqual({
      ok: true,
      origin: { from: 'contact' },
      caseId: contact.id,
    });
  });

  it("a contact takes a roster device's reply naming its own case", () => {
    expect(checkIncoming('contact', contact, roster, d1, teamMessage('text'))).toEqual({
      ok: true,
      origin: { from: 'team', device: d1.id },
      caseId: contact.id,
    });
  });

  it('a team device takes a colleague case event', () => {
    const r = checkIncoming('team', d2, roster, d1, teamMessage('case_event'));
    expect(r).toMatchObject({ ok: true, caseId: contact.id });
  });

  it('a contact drops anything from a device not on its roster (sender_not_in_roster)', () => {
    for (const sender of [stranger, contact]) {
      expect(checkIncoming('contact', contact, roster, sender, teamMessage('text'))).toEqual({
        ok: false,
        code: 'sender_not_in_roster',
      });
    }
  });

  it.each(['case_event', 'sync_request', 'sync_response'] as const)(
    'a contact drops a %s even from a roster device (msg_wrong_origin)',
    (type) => {
      expect(checkIncoming('contact', contact, roster, d1, teamMessage(type))).toEqual({
        ok: false,
        code: 'msg_wrong_origin',
      });
    },
  );

  it("a contact drops a roster device's text naming another contact's case", () => {
    const message = { ...teamMessage('text'), case: stranger.id } as ConversationMessage;
    expect(checkIncoming('contact', contact, roster, d1, message)).toEqual({
      ok: false,
      code: 'msg_wrong_origin',
    });
  });

  it.each(['case_event', 'status_notice', 'sync_request', 'sync_response'] as const)(
    'a team device drops a %s from a non-roster sender (a contact, or a removed device)',
    (type) => {
      for (const sender of [contact, stranger]) {
        expect(checkIncoming('team', d1, roster, sender, teamMessage(type))).toEqual({
          ok: false,
          code: 'msg_wrong_origin',
        });
      }
    },
  );

  it('a team device drops a contact text that names a case (another contact’s)', () => {
    const message = { ...contactMessage('text'), case: stranger.id } as ConversationMessage;
    expect(checkIncoming('team', d1, roster, contact, message)).toEqual({
      ok: false,
      code: 'msg_wrong_origin',
    });
  });

  it("a team device drops a colleague's case event stamped with a third device", () => {
    const m = teamMessage('case_event') as Extract<ConversationMessage, { type: 'case_event' }>;
    const forged = { ...m, id: idOf(99), hlc: { ...m.hlc, device: d3.id } };
    expect(checkIncoming('team', d2, roster, d1, forged)).toEqual({
      ok: false,
      code: 'msg_wrong_origin',
    });
  });

  it('a team device drops an intake from a roster device', () => {
    expect(checkIncoming('team', d1, roster, d2, contactMessage('intake'))).toEqual({
      ok: false,
      code: 'msg_wrong_origin',
    });
  });
});
