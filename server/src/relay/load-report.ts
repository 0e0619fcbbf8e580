/**
 * What the relay did under load, counted and told to the operator: reading paused because the
 * store was behind (backpressure.ts), `overloaded` answered (a store that is really full, or
 * the hard bound), acknowledgements retried and given up (delivery.ts), and acknowledgements that
 * failed with a bug rather than a store error.
 *
 * Reported as a log line, not an HTTP endpoint: the relay's port is public, and counters that
 * anyone can poll are a timing side channel on a small deployment (when did traffic happen) and
 * feedback for whoever tunes a flood. The operator already reads the logs. Lines carry counts and
 * durations only, never an identifier, and are rate-limited: the first event of each kind in a
 * report interval is logged at once (so a problem is visible when it starts), the rest are only
 * counted, and one summary line per interval with activity gives the totals; the first quiet
 * interval after one with activity says that the relay has recovered.
 */
import type { Logger } from '../log.js';

/** How often the summary line is written (when anything happened), in ms. */
export const LOAD_REPORT_INTERVAL_MS = 60_000;

/** Counts of one report interval. */
interface IntervalCounts {
  /** Times reading was paused because the store was behind (episodes, not connections). */
  pauseEpisodes: number;
  /** Connections paused, summed over the episodes. */
  pausedConnections: number;
  /** Time spent paused, in ms. */
  pausedMs: number;
  /** Most store operations pending at once. */
  maxPending: number;
  /** `overloaded` answers sent. */
  shed: number;
  /** Acknowledgements the store failed and the relay tried again. */
  ackRetries: number;
  /** Acknowledgements given up after the last retry (their messages are delivered again). */
  ackAbandoned: number;
  /** Acknowledgement batches whose store call failed with a bug (not a store error). */
  ackBugs: number;
}

function zero(): IntervalCounts {
  return {
    pauseEpisodes: 0,
    pausedConnections: 0,
    pausedMs: 0,
    maxPending: 0,
    shed: 0,
    ackRetries: 0,
    ackAbandoned: 0,
    ackBugs: 0,
  };
}

/**
 * The counters of the current interval (mutable: the hot paths add to them) and the log lines.
 * Totals since start are kept too, for tests and a future endpoint.
 */
export class LoadCounters implements IntervalCounts {
  pauseEpisodes = 0;
  pausedConnections = 0;
  pausedMs = 0;
  maxPending = 0;
  shed = 0;
  ackRetries = 0;
  ackAbandoned = 0;
  ackBugs = 0;
  /** Totals since start (updated at each report and by {@link totals}). */
  readonly #totals = zero();
  readonly #logger: Logger;
  #announcedPause = false;
  #announcedShed = false;
  #announcedAbandon = false;
  #announcedAckBug = false;
  #activeLastInterval = false;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Reading paused: the first time in an interval is logged at once (warn). */
  notePause(pending: number): void {
    if (this.#announcedPause) return;
    this.#announcedPause = true;
    this.#logger.warn(
      { event: 'store_behind', pending },
      'store behind: reading from clients paused until it catches up',
    );
  }

  /** An `overloaded` answer: counted; the first in an interval is logged at once (warn). */
  noteShed(): void {
    this.shed += 1;
    if (this.#announcedShed) return;
    this.#announcedShed = true;
    this.#logger.warn({ event: 'store_overloaded' }, 'store full: answering overloaded');
  }

  /** A failed acknowledgement the delivery will try again. */
  noteAckRetry(): void {
    this.ackRetries += 1;
  }

  /** An acknowledgement given up: counted; the first in an interval is logged at once (warn). */
  noteAckAbandoned(): void {
    this.ackAbandoned += 1;
    if (this.#announcedAbandon) return;
    this.#announcedAbandon = true;
    this.#logger.warn(
      { event: 'ack_abandoned' },
      'store failed an acknowledgement after every retry; its messages will be delivered again',
    );
  }

  /**
   * An acknowledgement batch failed with a bug (once per batch, not per retry): counted; the
   * first in an interval is logged at once at error level, with the error (reduced by the
   * logger's redact(): no identifiers).
   */
  noteAckBug(err: unknown): void {
    this.ackBugs += 1;
    if (this.#announcedAckBug) return;
    this.#announcedAckBug = true;
    this.#logger.error({ event: 'ack_bug', err }, 'acknowledgement failed');
  }

  /** Totals since start, this interval included. */
  totals(): Readonly<IntervalCounts> {
    const t = this.#totals;
    return {
      pauseEpisodes: t.pauseEpisodes + this.pauseEpisodes,
      pausedConnections: t.pausedConnections + this.pausedConnections,
      pausedMs: t.pausedMs + this.pausedMs,
      maxPending: Math.max(t.maxPending, this.maxPending),
      shed: t.shed + this.shed,
      ackRetries: t.ackRetries + this.ackRetries,
      ackAbandoned: t.ackAbandoned + this.ackAbandoned,
      ackBugs: t.ackBugs + this.ackBugs,
    };
  }

  /**
   * Ends an interval: one summary line if anything happened (warn when messages were refused or
   * acknowledgements given up, else info), one recovery line for the first quiet interval after
   * an active one, nothing otherwise.
   */
  report(intervalMs: number): void {
    const active =
      this.pauseEpisodes > 0 ||
      this.shed > 0 ||
      this.ackRetries > 0 ||
      this.ackAbandoned > 0 ||
      this.ackBugs > 0;
    if (active) {
      const fields = {
        event: 'load_report',
        durationMs: Math.round(intervalMs),
        pauses: this.pauseEpisodes,
        pausedConnections: this.pausedConnections,
        pausedMs: Math.round(this.pausedMs),
        maxPending: this.maxPending,
        shed: this.shed,
        ackRetries: this.ackRetries,
        ackAbandoned: this.ackAbandoned,
        ackBugs: this.ackBugs,
      };
      if (this.shed > 0 || this.ackAbandoned > 0 || this.ackBugs > 0)
        this.#logger.warn(fields, 'relay under load');
      else this.#logger.info(fields, 'relay under load');
    } else if (this.#activeLastInterval) {
      this.#logger.info({ event: 'load_normal' }, 'relay load back to normal');
    }
    this.#activeLastInterval = active;
    const t = this.totals();
    Object.assign(this.#totals, t);
    Object.assign(this, zero());
    this.#announcedPause = false;
    this.#announcedShed = false;
    this.#announcedAbandon = false;
    this.#announcedAckBug = false;
  }
}
