/**
 * Connection admission: who may hold one of the relay's connection slots, and for how long.
 *
 * Anyone may open a connection without an account, so a slot must not be something one process
 * can take and keep:
 * - A connection that has not authenticated holds one of at most `maxUnauthenticated` slots,
 *   for at most the auth window (AUTH_TIMEOUT_MS). When they are all taken, a new connection
 *   displaces the **oldest** unauthenticated one rather than being refused: a real client
 *   answers the challenge within a round trip, so to keep newcomers out an attacker must open
 *   connections faster than `maxUnauthenticated` per round trip, instead of once per auth window.
 * - Past its auth window, an unauthenticated connection stays only as an anonymous sender (it
 *   has sent at least one `send`; first contact needs no account) and only within the smaller
 *   `maxAnonymous`, again displacing the oldest; every other one is closed (AUTH_TIMEOUT).
 * - An authenticated mailbox holds at most `maxPerMailbox` connections; a further one closes the
 *   **oldest** (SUPERSEDED). The newest wins because a client on a flaky network reconnects
 *   while its previous socket is still half-open until the heartbeat drops it; refusing the
 *   newest would lock it out for that long. Whoever holds the identity key may take the slot,
 *   but whoever holds the key can read the mailbox anyway.
 *
 * It keeps no mailbox id longer than the connection is open, and logs nothing.
 */
import { CloseCode } from '@passage/shared/protocol/errors';

/** What admission needs from a connection. */
export interface Admittee {
  /** Closes the connection with `code`; admission has already forgotten it. Must not throw. */
  evict(code: CloseCode, reason: string): void;
}

/** The bounds admission enforces (see RelaySettings). */
export interface AdmissionLimits {
  readonly maxUnauthenticatedConnections: number;
  readonly maxAnonymousConnections: number;
  readonly maxConnectionsPerMailbox: number;
}

export class Admission {
  readonly #limits: AdmissionLimits;
  // Set iteration order is insertion order: the first element is the oldest.
  readonly #unauthenticated = new Set<Admittee>();
  readonly #anonymous = new Set<Admittee>();
  /** Authenticated connections by mailbox, oldest first. */
  readonly #byMailbox = new Map<string, Admittee[]>();
  readonly #mailboxOf = new Map<Admittee, string>();

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  /** Connections within their auth window. */
  get unauthenticatedCount(): number {
    return this.#unauthenticated.size;
  }

  /** Unauthenticated connections kept past their auth window as anonymous senders. */
  get anonymousCount(): number {
    return this.#anonymous.size;
  }

  /** Authenticated connections of `mailbox` (for tests). */
  connectionsOf(mailbox: string): number {
    return this.#byMailbox.get(mailbox)?.length ?? 0;
  }

  /** A new connection, in its auth window; displaces the oldest one when the window is full. */
  opened(connection: Admittee): void {
    if (this.#unauthenticated.size >= this.#limits.maxUnauthenticatedConnections) {
      const oldest = first(this.#unauthenticated);
      if (oldest !== undefined) {
        this.#unauthenticated.delete(oldest);
        oldest.evict(CloseCode.AUTH_TIMEOUT, 'authenticate sooner');
      }
    }
    this.#unauthenticated.add(connection);
  }

  /**
   * The connection's auth window ended without auth. True when it may stay as an anonymous
   * sender (it has sent, and takes one of `maxAnonymous`, displacing the oldest); false when the
   * caller must close it (AUTH_TIMEOUT). A connection admission does not hold answers false.
   */
  authWindowEnded(connection: Admittee, hasSent: boolean): boolean {
    if (!this.#unauthenticated.delete(connection)) return false;
    if (!hasSent) return false;
    if (this.#anonymous.size >= this.#limits.maxAnonymousConnections) {
      const oldest = first(this.#anonymous);
      if (oldest !== undefined) {
        this.#anonymous.delete(oldest);
        oldest.evict(CloseCode.AUTH_TIMEOUT, 'authenticate sooner');
      }
    }
    this.#anonymous.add(connection);
    return true;
  }

  /**
   * The connection authenticated as `mailbox`: it leaves the unauthenticated slots, and the
   * mailbox's oldest connection is closed when the mailbox would hold more than its bound.
   */
  authenticated(connection: Admittee, mailbox: string): void {
    this.#unauthenticated.delete(connection);
    this.#anonymous.delete(connection);
    let list = this.#byMailbox.get(mailbox);
    if (list === undefined) {
      list = [];
      this.#byMailbox.set(mailbox, list);
    }
    list.push(connection);
    this.#mailboxOf.set(connection, mailbox);
    while (list.length > this.#limits.maxConnectionsPerMailbox) {
      const oldest = list.shift()!;
      this.#mailboxOf.delete(oldest);
      oldest.evict(CloseCode.SUPERSEDED, 'superseded');
    }
  }

  /** The connection closed (or is closing); forgets it. Idempotent. */
  closed(connection: Admittee): void {
    this.#unauthenticated.delete(connection);
    this.#anonymous.delete(connection);
    const mailbox = this.#mailboxOf.get(connection);
    if (mailbox === undefined) return;
    this.#mailboxOf.delete(connection);
    const list = this.#byMailbox.get(mailbox);
    if (list === undefined) return;
    const i = list.indexOf(connection);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#byMailbox.delete(mailbox);
  }
}

function first<T>(set: Set<T>): T | undefined {
  for (const x of set) return x;
  return undefined;
}
