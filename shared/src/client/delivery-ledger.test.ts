import { describe, expect, it } from '@jest/globals';
import { DeliveryLedger, MAX_TRACKED_MESSAGES } from './delivery-ledger.js';

/** A message from a team device to the contact `c` and two colleagues. */
function reply(ledger: DeliveryLedger, id = 'm1'): void {
  ledger.track(id, [
    { device: 'c', envelopeId: `${id}-c`, counterpart: true },
    { device: 'd2', envelopeId: `${id}-d2`, counterpart: false },
    { device: 'd3', envelopeId: `${id}-d3`, counterpart: false },
  ]);
}

describe('DeliveryLedger', () => {
  it('is sent once every envelope is stored, not before', () => {
    const ledger = new DeliveryLedger();
    reply(ledger);
    expect(ledger.onEnvelopeState('m1-c', 'sent')).toBeNull();
    expect(ledger.onEnvelopeState('m1-d2', 'sent')).toBeNull();
    expect(ledger.onEnvelopeState('m1-d3', 'sent')).toEqual({ id: 'm1', state: 'sent' });
  });

  it("the counterpart's receipts move it to delivered and read, and mark its envelope only", () => {
    const ledger = new DeliveryLedger();
    reply(ledger);
    expect(ledger.onReceipt('c', 'delivered', ['m1'])).toEqual({
      marks: [{ envelopeId: 'm1-c', kind: 'delivered' }],
      changes: [{ id: 'm1', state: 'delivered' }],
    });
    expect(ledger.onReceipt('c', 'read', ['m1'])).toEqual({
      marks: [{ envelopeId: 'm1-c', kind: 'read' }],
      changes: [{ id: 'm1', state: 'read' }],
    });
    expect(ledger.status('m1')).toMatchObject({ deliveredTo: ['c'], readBy: ['c'] });
  });

  it("a colleague's receipt marks its own envelope but is not the contact's delivery", () => {
    const ledger = new DeliveryLedger();
    reply(ledger);
    const r = ledger.onReceipt('d2', 'read', ['m1']);
    expect(r.marks).toEqual([{ envelopeId: 'm1-d2', kind: 'read' }]);
    expect(r.changes).toEqual([]);
    expect(ledger.status('m1')?.state).toBe('queued');
  });

  it('ignores a receipt from a device the message did not go to', () => {
    const ledger = new DeliveryLedger();
    reply(ledger);
    expect(ledger.onReceipt('stranger', 'read', ['m1'])).toEqual({ marks: [], changes: [] });
    expect(ledger.status('m1')?.state).toBe('queued');
  });

  it('ignores a receipt naming a message it does not follow', () => {
    const ledger = new DeliveryLedger();
    reply(ledger);
    expect(ledger.onReceipt('c', 'delivered', ['other'])).toEqual({ marks: [], changes: [] });
  });

  it('ignores the same receipt twice, and a delivered after read', () => {
    const ledger = new DeliveryLedger();
    reply(ledger);
    ledger.onReceipt('c', 'read', ['m1']);
    expect(ledger.onReceipt('c', 'read', ['m1'])).toEqual({ marks: [], changes: [] });
    expect(ledger.onReceipt('c', 'delivered', ['m1'])).toEqual({ marks: [], changes: [] });
    expect(ledger.status('m1')?.state).toBe('read');
  });

  it('never moves back: a stored envelope after read changes nothing', () => {
    const ledger = new DeliveryLedger();
    reply(ledger);
    ledger.onReceipt('c', 'read', ['m1']);
    for (const e of ['m1-c', 'm1-d2', 'm1-d3'])
      expect(ledger.onEnvelopeState(e, 'sent')).toBeNull();
  });

  it('ignores the state of an envelope it does not follow', () => {
    expect(new DeliveryLedger().onEnvelopeState('nope', 'sent')).toBeNull();
  });

  it('a failed envelope fails the message', () => {
    const ledger = new DeliveryLedger();
    reply(ledger);
    expect(ledger.onEnvelopeState('m1-d2', 'failed')).toEqual({ id: 'm1', state: 'failed' });
  });

  it('a message to the team only ends at sent', () => {
    const ledger = new DeliveryLedger();
    ledger.track('e', [{ device: 'd2', envelopeId: 'e-d2', counterpart: false }]);
    ledger.onEnvelopeState('e-d2', 'sent');
    ledger.onReceipt('d2', 'read', ['e']);
    expect(ledger.status('e')?.state).toBe('sent');
  });

  it(`follows at most ${MAX_TRACKED_MESSAGES} messages, forgetting the oldest`, () => {
    const ledger = new DeliveryLedger();
    for (let i = 0; i < MAX_TRACKED_MESSAGES; i++) reply(ledger, `m${i}`);
    expect(ledger.size).toBe(MAX_TRACKED_MESSAGES);
    expect(ledger.status('m0')).toBeDefined();
    reply(ledger, 'one-more');
    expect(ledger.size).toBe(MAX_TRACKED_MESSAGES);
    expect(ledger.status('m0')).toBeUndefined();
    expect(ledger.onEnvelopeState('m0-c', 'sent')).toBeNull();
    expect(ledger.status('one-more')).toBeDefined();
  });
});
