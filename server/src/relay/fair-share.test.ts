import { describe, expect, it } from '@jest/globals';
import {
  MAX_SHARES_PER_CONNECTION,
  MailboxSendLimiter,
  SenderShares,
  type SendRateSettings,
} from './fair-share.js';

/** 100 a second, 200 at once, four shares of 25 a second and 50 at once; settled after 1 s. */
const SETTINGS: SendRateSettings = {
  mailboxSendsPerSecond: 100,
  mailboxSendBurst: 200,
  mailboxSenderShares: 4,
  maxTrackedMailboxes: 1_000,
};
const SHARE_BURST = 50;
const SETTLE_MS = 1_000;

/** Sends `n` times at `nowMs`; the verdicts counted. */
function sendMany(
  limiter: MailboxSendLimiter,
  to: string,
  shares: SenderShares,
  n: number,
  nowMs: number,
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const verdict = limiter.take(to, shares, nowMs);
    counts[verdict] = (counts[verdict] ?? 0) + 1;
  }
  return counts;
}

describe('MailboxSendLimiter', () => {
  it('lets one sender take its whole share at once, and refuses the next as over_share', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const shares = new SenderShares(0);
    expect(sendMany(limiter, 'm', shares, SHARE_BURST, 0)).toEqual({ ok: SHARE_BURST });
    expect(limiter.take('m', shares, 0)).toBe('over_share');
  });

  it('refills a share at its rate (a quarter of the mailbox rate): one token every 40 ms', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const shares = new SenderShares(0);
    sendMany(limiter, 'm', shares, SHARE_BURST, 0);
    expect(limiter.take('m', shares, 39)).toBe('over_share');
    expect(limiter.take('m', shares, 40)).toBe('ok');
    expect(limiter.take('m', shares, 40)).toBe('over_share');
  });

  it('gives every sender its own share: one that spent its share leaves the others theirs', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const flooder = new SenderShares(0);
    const other = new SenderShares(0);
    sendMany(limiter, 'm', flooder, SHARE_BURST + 10, 0);
    expect(sendMany(limiter, 'm', other, SHARE_BURST, 0)).toEqual({ ok: SHARE_BURST });
  });

  it('keeps one share per mailbox: a spent share for one mailbox leaves another mailbox whole', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const shares = new SenderShares(0);
    sendMany(limiter, 'a', shares, SHARE_BURST, 0);
    expect(limiter.take('a', shares, 0)).toBe('over_share');
    expect(limiter.take('b', shares, 0)).toBe('ok');
    expect(shares.size).toBe(2);
  });

  it('bounds the total: four senders spending their shares use the burst, a fifth new one is refused', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    for (let i = 0; i < 4; i++) sendMany(limiter, 'm', new SenderShares(0), SHARE_BURST, 0);
    expect(limiter.take('m', new SenderShares(0), 0)).toBe('over_total');
  });

  it('lets a settled sender below its share borrow when heavy senders spent the total', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const contact = new SenderShares(0);
    expect(limiter.take('m', contact, 0)).toBe('ok'); // its share exists from now on
    for (let i = 0; i < 5; i++)
      sendMany(limiter, 'm', new SenderShares(SETTLE_MS), SHARE_BURST, SETTLE_MS);
    // The flood spent the total; the contact has written for a second and used one token.
    expect(sendMany(limiter, 'm', contact, 10, SETTLE_MS)).toEqual({ ok: 10 });
  });

  it('lets a settled sender borrow only while it has used under half its share', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const contact = new SenderShares(0);
    const heavy = new SenderShares(0);
    limiter.take('m', contact, 0);
    limiter.take('m', heavy, 0);
    for (let i = 0; i < 4; i++)
      sendMany(limiter, 'm', new SenderShares(SETTLE_MS), SHARE_BURST, SETTLE_MS);
    // The total is at zero; the contact borrows 20.
    expect(sendMany(limiter, 'm', contact, 20, SETTLE_MS)).toEqual({ ok: 20 });
    // The other settled sender keeps going: it borrows until its share is under half (26 of
    // 50 taken), then it is refused although its share still holds tokens.
    expect(sendMany(limiter, 'm', heavy, 40, SETTLE_MS)).toEqual({ ok: 26, over_total: 14 });
    // Its share refills at 25 a second: past half again 40 ms later, not before.
    expect(limiter.take('m', heavy, SETTLE_MS + 39)).toBe('over_total');
    expect(limiter.take('m', heavy, SETTLE_MS + 41)).toBe('ok');
    // The contact, still over half, goes on.
    expect(limiter.take('m', contact, SETTLE_MS + 41)).toBe('ok');
  });

  it('never lets a fresh share borrow, so reconnecting buys no priority', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    for (let i = 0; i < 4; i++) sendMany(limiter, 'm', new SenderShares(0), SHARE_BURST, 0);
    // A brand-new connection's share is full but not settled until the connection is a second old.
    const newcomer = new SenderShares(0);
    expect(limiter.take('m', newcomer, 0)).toBe('over_total');
    for (let i = 0; i < 2; i++)
      sendMany(limiter, 'm', new SenderShares(SETTLE_MS - 1), SHARE_BURST, SETTLE_MS - 1);
    expect(limiter.take('m', newcomer, SETTLE_MS - 1)).toBe('over_total');
  });

  it('does not let a share settle by age alone: one under half full cannot borrow', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const heavy = new SenderShares(0);
    limiter.take('m', heavy, 0);
    expect(sendMany(limiter, 'm', heavy, SHARE_BURST, SETTLE_MS)).toEqual({ ok: SHARE_BURST });
    for (let i = 0; i < 3; i++)
      sendMany(limiter, 'm', new SenderShares(SETTLE_MS), SHARE_BURST, SETTLE_MS);
    // 400 ms later the share holds 10 tokens (< 25) and the total 40: spend the total.
    expect(sendMany(limiter, 'm', new SenderShares(SETTLE_MS + 400), 40, SETTLE_MS + 400)).toEqual({
      ok: 40,
    });
    expect(limiter.take('m', heavy, SETTLE_MS + 400)).toBe('over_total');
  });

  it('stops borrowing at one burst of debt: settled senders together cannot pass it', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const settled = Array.from({ length: 12 }, () => new SenderShares(0));
    for (const s of settled) limiter.take('m', s, 0);
    // 12 tokens taken at 0; refilled to the burst by 1 s. Spend it with fresh senders.
    for (let i = 0; i < 4; i++)
      sendMany(limiter, 'm', new SenderShares(SETTLE_MS), SHARE_BURST, SETTLE_MS);
    let ok = 0;
    let refused = 0;
    for (const s of settled) {
      const counts = sendMany(limiter, 'm', s, 24, SETTLE_MS);
      ok += counts['ok'] ?? 0;
      refused += counts['over_total'] ?? 0;
    }
    expect(ok).toBe(SETTINGS.mailboxSendBurst);
    expect(refused).toBe(12 * 24 - SETTINGS.mailboxSendBurst);
  });

  it('lets one sender take the whole rate with one share, and still refuses it past the burst', () => {
    const limiter = new MailboxSendLimiter({ ...SETTINGS, mailboxSenderShares: 1 });
    const shares = new SenderShares(0);
    expect(sendMany(limiter, 'm', shares, 200, 0)).toEqual({ ok: 200 });
    expect(limiter.take('m', shares, 0)).toBe('over_share');
  });

  it('gives a share at least one token when the burst is smaller than the shares', () => {
    const limiter = new MailboxSendLimiter({
      ...SETTINGS,
      mailboxSendsPerSecond: 1,
      mailboxSendBurst: 2,
    });
    const shares = new SenderShares(0);
    expect(limiter.take('m', shares, 0)).toBe('ok');
    expect(limiter.take('m', shares, 0)).toBe('over_share');
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses %p shares', (mailboxSenderShares) => {
    expect(() => new MailboxSendLimiter({ ...SETTINGS, mailboxSenderShares })).toThrow(RangeError);
  });
});

describe('SenderShares', () => {
  it('holds nothing before the first send', () => {
    expect(new SenderShares(0).size).toBe(0);
  });

  it(`keeps ${MAX_SHARES_PER_CONNECTION} mailboxes and forgets the least recently used past it`, () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const shares = new SenderShares(0);
    for (let i = 0; i < MAX_SHARES_PER_CONNECTION; i++) limiter.take(`m${i}`, shares, 0);
    expect(shares.size).toBe(MAX_SHARES_PER_CONNECTION);
    limiter.take('m0', shares, 0); // m1 is now the least recently used
    limiter.take('extra', shares, 0);
    expect(shares.size).toBe(MAX_SHARES_PER_CONNECTION);
    // m0 kept its two spent tokens; m1 was forgotten and comes back full.
    expect(sendMany(limiter, 'm0', shares, SHARE_BURST, 0)).toEqual({
      ok: SHARE_BURST - 2,
      over_share: 2,
    });
    expect(sendMany(limiter, 'm1', shares, SHARE_BURST, 0)).toEqual({ ok: SHARE_BURST });
  });

  it('makes a share made after one was forgotten unsettled, so forgetting never grants a borrow', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const shares = new SenderShares(0);
    limiter.take('m', shares, 0);
    for (let i = 0; i < MAX_SHARES_PER_CONNECTION; i++) limiter.take(`x${i}`, shares, 0);
    for (let i = 0; i < 4; i++)
      sendMany(limiter, 'm', new SenderShares(SETTLE_MS), SHARE_BURST, SETTLE_MS);
    // The connection is a second old, but the share for 'm' is new since the forgetting.
    expect(limiter.take('m', shares, SETTLE_MS)).toBe('over_total');
  });

  it('settles a share by the connection’s age, not the share’s: a sender that solved a slow proof first', () => {
    const limiter = new MailboxSendLimiter(SETTINGS);
    const contact = new SenderShares(0); // connected at 0, first send at 1 s
    for (let i = 0; i < 4; i++)
      sendMany(limiter, 'm', new SenderShares(SETTLE_MS), SHARE_BURST, SETTLE_MS);
    expect(limiter.take('m', contact, SETTLE_MS)).toBe('ok');
  });
});
