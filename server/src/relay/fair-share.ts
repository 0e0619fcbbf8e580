/**
 * Fair shares of a mailbox's send rate (issue 7 §3 "Strangers pay, everyone else keeps working";
 * docs/adr/0022-fair-shares-of-a-mailbox-send-rate.md).
 *
 * A mailbox's send rate (`MAILBOX_SENDS_PER_SECOND`, burst `MAILBOX_SEND_BURST`) bounds what all
 * senders together may put into it through this relay. Shared as one bucket, it let one flooder
 * writing to a mailbox spend the rate of everyone else writing to it: the real senders got
 * `rate_limited`. So each sender (a connection, which is what the relay can tell apart: sends
 * carry no sender, and a first-contact admission is per connection) gets its own share of the
 * mailbox's rate, and the mailbox's total decides between senders by how much each has used:
 *
 * 1. **Share.** A sender may take at most `1 / MAILBOX_SENDER_SHARES` of the mailbox's rate and
 *    burst (by default a quarter). Past it: `rate_limited`, whatever the total holds. So one
 *    connection can never take a mailbox's whole rate.
 * 2. **Total.** While the mailbox's total bucket has a token, a send within its share takes one.
 * 3. **Borrowing.** When the total is spent (several heavy senders together), a *settled* sender
 *    still passes, by putting the total into debt, down to one burst below zero: its connection
 *    has been open at least `SETTLE` (the time half a share's burst takes to refill, 1 s by
 *    default) and its share is at least half full, i.e. it sends well below its share. Heavy
 *    senders are refused until their share is back over half. A new connection is never
 *    settled: reconnecting buys no priority, and each new connection costs a first-contact
 *    proof-of-work besides; nor is a share made after the bounded map forgot one.
 *
 * What holds: over any interval the mailbox takes at most its rate plus two bursts (the burst,
 * and the debt); a sender under half its share and settled is refused only when settled senders
 * together have used a burst beyond the total. What does not: k heavy senders each under its
 * share get k shares (up to the total), so fairness among many connections costs the attacker k
 * connections and k proofs-of-work, not one.
 *
 * Per relay: these buckets are this process's (with Redis, N relays give N times the total;
 * docs/threat-model.md says so).
 */
import { MAX_ADMITTED_MAILBOXES_PER_CONNECTION } from './first-contact.js';
import { KeyedRateLimiter, TokenBucket } from './rate-limit.js';

/** The send-rate settings of {@link RelaySettings} (config.ts). */
export interface SendRateSettings {
  /** Sustained sends per second to one mailbox, over all connections of this relay. */
  readonly mailboxSendsPerSecond: number;
  /** Sends to one mailbox allowed at once above the sustained rate. */
  readonly mailboxSendBurst: number;
  /** How many shares a mailbox's rate is cut into: one sender takes at most one. */
  readonly mailboxSenderShares: number;
  /** Most mailboxes whose total is tracked at once. */
  readonly maxTrackedMailboxes: number;
}

/**
 * Most mailboxes whose share one connection holds at once; a further one forgets the least
 * recently used (which, made again, starts unsettled). The same bound as first-contact
 * admissions: a sender with more targets than that pays proof-of-work again anyway.
 */
export const MAX_SHARES_PER_CONNECTION = MAX_ADMITTED_MAILBOXES_PER_CONNECTION;

/** Why a send was refused, or that it may go on. */
export type SendVerdict =
  /** Within the sender's share and the mailbox's total (or borrowed from it). */
  | 'ok'
  /** Past this sender's share of the mailbox's rate. */
  | 'over_share'
  /** The mailbox's total is spent and this sender is not settled below its share. */
  | 'over_total';

/** One sender's share of one mailbox: a bucket, and since when it counts towards settling. */
class Share extends TokenBucket {
  constructor(
    ratePerSecond: number,
    burst: number,
    nowMs: number,
    readonly sinceMs: number,
  ) {
    super(ratePerSecond, burst, nowMs);
  }
}

/**
 * One connection's shares, by mailbox, least recently used first. Holds nothing (no Map) until
 * the connection's first `send`: most connections are recipients that never send.
 */
export class SenderShares {
  readonly #openedMs: number;
  #shares: Map<string, Share> | undefined;
  /** True once a share was forgotten for room: from then on a new share settles on its own. */
  #forgot = false;

  /**
   * `openedMs` is when the sender's connection opened: a share settles that long after it, so
   * a contact who connected, solved a slow proof-of-work and then sends is settled already.
   */
  constructor(openedMs: number) {
    this.#openedMs = openedMs;
  }

  /**
   * The share for `to`, made with `make(sinceMs)` if there is none; marks it most recently used.
   * A share made after one was forgotten counts from its own making, so forgetting (cycling
   * through more mailboxes than the bound) never hands a sender a settled, full share.
   */
  of(to: string, nowMs: number, make: (sinceMs: number) => Share): Share {
    const shares = (this.#shares ??= new Map<string, Share>());
    let share = shares.get(to);
    if (share === undefined) {
      if (shares.size >= MAX_SHARES_PER_CONNECTION) {
        shares.delete(shares.keys().next().value as string);
        this.#forgot = true;
      }
      share = make(this.#forgot ? nowMs : Math.min(this.#openedMs, nowMs));
    } else {
      shares.delete(to);
    }
    shares.set(to, share);
    return share;
  }

  /** Mailboxes with a share now; for tests. */
  get size(): number {
    return this.#shares?.size ?? 0;
  }
}

/** The mailboxes' totals, and the rule of the module comment. One per relay. */
export class MailboxSendLimiter {
  readonly #totals: KeyedRateLimiter;
  readonly #burst: number;
  readonly #shareRate: number;
  readonly #shareBurst: number;
  /** How long a share must exist before it may borrow, in ms. */
  readonly #settleMs: number;

  constructor(settings: SendRateSettings) {
    const shares = settings.mailboxSenderShares;
    if (!Number.isInteger(shares) || shares < 1) throw new RangeError('shares must be ≥ 1');
    this.#burst = settings.mailboxSendBurst;
    this.#totals = new KeyedRateLimiter(
      settings.mailboxSendsPerSecond,
      settings.mailboxSendBurst,
      settings.maxTrackedMailboxes,
      settings.mailboxSendBurst,
    );
    this.#shareRate = settings.mailboxSendsPerSecond / shares;
    // At least one token, or a share could never send.
    this.#shareBurst = Math.max(1, settings.mailboxSendBurst / shares);
    this.#settleMs = (this.#shareBurst / 2 / this.#shareRate) * 1000;
  }

  /** Decides one `send` from the sender whose shares are `shares` to mailbox `to`. */
  take(to: string, shares: SenderShares, nowMs: number): SendVerdict {
    const share = shares.of(
      to,
      nowMs,
      (sinceMs) => new Share(this.#shareRate, this.#shareBurst, nowMs, sinceMs),
    );
    if (!share.has(nowMs)) return 'over_share';
    if (!this.#totals.take(to, nowMs)) {
      const settled =
        nowMs - share.sinceMs >= this.#settleMs && share.has(nowMs, this.#shareBurst / 2);
      if (!settled || !this.#totals.take(to, nowMs, -this.#burst)) return 'over_total';
    }
    share.take(nowMs);
    return 'ok';
  }

  /** Mailboxes whose total is tracked now. */
  get size(): number {
    return this.#totals.size;
  }

  /** Forgets totals that have refilled; called from the relay's periodic tick. */
  sweep(nowMs: number): void {
    this.#totals.sweep(nowMs);
  }
}
