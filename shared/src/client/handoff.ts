/**
 * The history hand-off to a coordinator's new device (ADR 0018): the new device sends
 * `sync_request` to the team's other devices; a device that holds the cases answers each open
 * case with `sync_response` parts over the ordinary pairwise sessions, and the new device takes
 * them in. Pure functions and one bounded receiver; sending and receiving the parts is the
 * session layer's (they are conversation messages like any other).
 *
 * What a case's hand-off carries: its transcript (the case's messages but case events: text,
 * intake, receipts, attachments, status notices, with their original ids, timestamps and
 * senders) and the case events that make its shared state — one per register write that holds
 * (status, priority, assignee, shown status, check-in, spam), one per tag register, every note,
 * the duress mark — rebuilt from the `CaseReplica`'s state (each register keeps the stamp of
 * the write that set it: HLC, event id and canonical op, which is the event). Applied through
 * the same merge, they give the new device a state equal to the sender's (`encodeCaseState`).
 *
 * Who may get one: only a device of the verified roster (the caller passes its device ids;
 * `buildHandoff` refuses any other requester), so a removed device is given nothing.
 *
 * Receiving (`HandoffReceiver`): only answers to a request this device made and still has
 * open, from a team device; per (sender, case) the parts must come in order from 0, and nothing
 * after `last`. A part out of order is refused and ends that case's hand-off from that sender
 * (the relay delivers one sender's envelopes in order, so a gap is a fault: ask again). Each
 * accepted part is applied at once (transcript items deduplicated by id, case events through
 * the replica), so nothing waits in memory.
 */
import type { CaseReplica, ReceiveOutcome } from './conversation/case-replica.js';
import type { CaseState, Stamp } from './conversation/case-state.js';
import { canonicalJson } from '../org/profile.js';
import { utf8Encode } from '../org/utf8.js';
import type { RandomSource } from '../crypto/primitives.js';
import {
  CONVERSATION_VERSION,
  MAX_CONVERSATION_MESSAGE_BYTES,
  MAX_SYNC_ITEMS,
  MAX_SYNC_PARTS,
} from './conversation/limits.js';
import {
  checkOrigin,
  decodeConversationMessage,
  encodeConversationMessage,
  newConversationId,
  type CaseEvent,
  type CaseOp,
  type ConversationMessage,
  type Origin,
  type SyncItem,
  type SyncRequestMessage,
  type SyncResponseMessage,
} from './conversation/messages.js';

// ---------------------------------------------------------------------------------------------
// Limits and codes

/** Hand-off requests a device keeps open at once (its own, to the team). */
export const MAX_OPEN_HANDOFF_REQUESTS = 4;

/** Transcript items one case's transcript keeps (`CaseTranscripts`); the oldest go first. */
export const MAX_TRANSCRIPT_ITEMS_PER_CASE = 10_000;

/** Why a hand-off part was not taken in. */
export const HandoffErrorCode = {
  /** Not a decodable conversation message, or not a `sync_response` (the decoder's code is in
   * `detail`). */
  NOT_A_PART: 'handoff_not_a_part',
  /** From a contact, or an item its sender could not have sent (`msg_wrong_origin`). */
  WRONG_ORIGIN: 'handoff_wrong_origin',
  /** An answer to no request this device has open. */
  UNKNOWN_REQUEST: 'handoff_unknown_request',
  /** Not the next part of its case from its sender (a gap, a repeat, or a part before 0). */
  OUT_OF_ORDER: 'handoff_out_of_order',
  /** A part after the `last` one of its case from its sender. */
  AFTER_LAST: 'handoff_after_last',
  /** Past a bound: open requests, or cases in one hand-off (`MAX_CASES_PER_REPLICA`). */
  LIMIT: 'handoff_limit',
  /** Building: the requester is not a device of the verified roster (or is this device). */
  NOT_IN_ROSTER: 'handoff_not_in_roster',
} as const;
export type HandoffErrorCode = (typeof HandoffErrorCode)[keyof typeof HandoffErrorCode];

export class HandoffError extends Error {
  override readonly name = 'HandoffError';
  constructor(readonly code: HandoffErrorCode) {
    super(`hand-off: ${code}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Transcripts

/** Transcript order: sender timestamp, then id (any two devices holding one set agree). */
function compareItems(a: SyncItem, b: SyncItem): number {
  if (a.message.ts !== b.message.ts) return a.message.ts - b.message.ts;
  return a.message.id < b.message.id ? -1 : a.message.id > b.message.id ? 1 : 0;
}

/** A transcript message: anything a hand-off carries but a case event. */
export type TranscriptItem = SyncItem & {
  readonly message: Exclude<SyncItem['message'], CaseEvent>;
};

/**
 * The transcripts of the cases a coordinator device holds, in memory (the reference for the
 * workspace's encrypted store): per case, the items in transcript order, one per message id.
 */
export class CaseTranscripts {
  readonly #cases = new Map<string, TranscriptItem[]>();
  readonly #ids = new Map<string, Set<string>>();

  /** Adds an item; false when its id is held already (a duplicate) — nothing changes then. */
  add(caseId: string, item: TranscriptItem): boolean {
    let ids = this.#ids.get(caseId);
    if (ids?.has(item.message.id) === true) return false;
    let items = this.#cases.get(caseId);
    if (items === undefined || ids === undefined) {
      items = [];
      ids = new Set();
      this.#cases.set(caseId, items);
      this.#ids.set(caseId, ids);
    }
    let at = items.length;
    while (at > 0 && compareItems(item, items[at - 1]!) < 0) at--;
    items.splice(at, 0, item);
    ids.add(item.message.id);
    if (items.length > MAX_TRANSCRIPT_ITEMS_PER_CASE) ids.delete(items.shift()!.message.id);
    return true;
  }

  /** The case's items, in order. */
  items(caseId: string): readonly TranscriptItem[] {
    return this.#cases.get(caseId) ?? [];
  }

  caseIds(): string[] {
    return [...this.#cases.keys()];
  }
}

// ---------------------------------------------------------------------------------------------
// The state as events

function eventOf(caseId: string, stamp: Stamp): CaseEvent {
  return {
    v: CONVERSATION_VERSION,
    type: 'case_event',
    id: stamp.event,
    ts: stamp.hlc.wallMs,
    case: caseId,
    hlc: stamp.hlc,
    // The stamp holds the canonical JSON of the op that won: the op itself.
    op: JSON.parse(stamp.op) as CaseOp,
  };
}

/**
 * Case events that rebuild `state` exactly: the write held by each register, each tag register,
 * every note and the duress mark. Applied to an empty case in any order they give a state whose
 * `encodeCaseState` equals this one's.
 */
export function caseStateEvents(state: CaseState): CaseEvent[] {
  const stamps: Stamp[] = [];
  for (const r of [
    state.status,
    state.priority,
    state.assignee,
    state.shownStatus,
    state.checkInHours,
    state.spam,
  ]) {
    if (r.stamp !== undefined) stamps.push(r.stamp);
  }
  if (state.duress !== undefined) stamps.push(state.duress);
  for (const r of state.tags.values()) if (r.stamp !== undefined) stamps.push(r.stamp);
  for (const n of state.notes) stamps.push(n.stamp);
  return stamps.map((s) => eventOf(state.case, s));
}

// ---------------------------------------------------------------------------------------------
// Building

export interface HandoffSource {
  readonly replica: CaseReplica;
  readonly transcripts: CaseTranscripts;
}

export interface BuildHandoffOptions {
  /** The request answered (decoded, its origin checked). */
  readonly request: SyncRequestMessage;
  /** The requesting device's id. */
  readonly requester: string;
  /** The device ids of the verified roster (`Roster.devices.map(d => d.id)`). */
  readonly roster: readonly string[];
  /** This device's id (it does not answer itself). */
  readonly self: string;
  readonly random: RandomSource;
  readonly nowMs: number;
  /** Which cases to hand off; by default every case whose status is not `closed`. */
  readonly include?: (state: CaseState) => boolean;
}

/** The parts of a hand-off, and the items too large to travel even alone (counted, not sent). */
export interface Handoff {
  readonly parts: SyncResponseMessage[];
  readonly omitted: number;
}

/**
 * The `sync_response` parts answering `request`: for each case chosen, its case events (first,
 * so that a case's state is whole as early as possible) then its transcript, split greedily into
 * parts of at most `MAX_SYNC_ITEMS` items whose encoding fits `MAX_CONVERSATION_MESSAGE_BYTES`,
 * numbered from 0, the last one marked. A case with nothing to carry still gets one empty last
 * part, so the new device lists it.
 *
 * @throws HandoffError('handoff_not_in_roster') for a requester that is not in the roster (a
 *   removed device) or is this device; ('handoff_limit') past `MAX_SYNC_PARTS` parts in a case
 */
export function buildHandoff(source: HandoffSource, options: BuildHandoffOptions): Handoff {
  const { requester, roster } = options;
  if (requester === options.self || !roster.includes(requester)) {
    throw new HandoffError(HandoffErrorCode.NOT_IN_ROSTER);
  }
  const include = options.include ?? ((s: CaseState) => s.status.value !== 'closed');
  const caseIds = new Set([...source.replica.caseIds(), ...source.transcripts.caseIds()]);
  const parts: SyncResponseMessage[] = [];
  let omitted = 0;
  for (const caseId of [...caseIds].sort()) {
    const state = source.replica.state(caseId);
    if (!include(state)) continue;
    const items: SyncItem[] = [
      ...caseStateEvents(state).map((message) => ({ from: message.hlc.device, message })),
      ...source.transcripts.items(caseId),
    ];
    const built = splitIntoParts(caseId, items, options);
    parts.push(...built.parts);
    omitted += built.omitted;
  }
  return { parts, omitted };
}

function splitIntoParts(
  caseId: string,
  items: readonly SyncItem[],
  options: BuildHandoffOptions,
): Handoff {
  const part = (n: number, list: SyncItem[], last: boolean): SyncResponseMessage => ({
    v: CONVERSATION_VERSION,
    type: 'sync_response',
    id: newConversationId(options.random),
    ts: Math.max(0, Math.floor(options.nowMs)),
    request: options.request.id,
    case: caseId,
    part: n,
    last,
    items: list,
  });
  // An encoded part is its empty form plus each item's canonical JSON and a comma between
  // items; the empty form is measured with `last: false` (the longer spelling).
  const emptySize = (n: number) => encodeConversationMessage(part(n, [], false)).length;
  const parts: SyncResponseMessage[] = [];
  let omitted = 0;
  let current: SyncItem[] = [];
  let size = emptySize(0);
  for (const item of items) {
    const itemSize = utf8Encode(canonicalJson(item)).length + (current.length > 0 ? 1 : 0);
    if (emptySize(0) + itemSize > MAX_CONVERSATION_MESSAGE_BYTES) {
      omitted++;
      continue;
    }
    if (current.length >= MAX_SYNC_ITEMS || size + itemSize > MAX_CONVERSATION_MESSAGE_BYTES) {
      parts.push(part(parts.length, current, false));
      current = [];
      size = emptySize(parts.length);
    }
    size += utf8Encode(canonicalJson(item)).length + (current.length > 0 ? 1 : 0);
    current.push(item);
  }
  parts.push(part(parts.length, current, true));
  if (parts.length - 1 > MAX_SYNC_PARTS) throw new HandoffError(HandoffErrorCode.LIMIT);
  // Our own messages: the encoder checks every part once more (schema and size) and throws on a
  // bug here rather than sending what a peer would drop.
  for (const m of parts) encodeConversationMessage(m);
  return { parts, omitted };
}

// ---------------------------------------------------------------------------------------------
// Receiving

/** What became of a part. */
export type HandoffOutcome =
  | {
      readonly ok: true;
      /** Transcript items new to this device. */
      readonly added: number;
      /** Case events by outcome (`CaseReplica.receive`). */
      readonly events: Readonly<Record<ReceiveOutcome, number>>;
      /** True when this was the case's last part from this sender. */
      readonly caseDone: boolean;
    }
  | { readonly ok: false; readonly code: HandoffErrorCode; readonly detail?: string };

interface CaseProgress {
  next: number;
  done: boolean;
  failed: boolean;
}

export class HandoffReceiver {
  /** Open requests: id → progress by sender and case ("device case"). */
  readonly #requests = new Map<string, Map<string, CaseProgress>>();

  constructor(
    private readonly target: HandoffSource,
    private readonly caseLimit: number = 10_000,
  ) {}

  /**
   * A new `sync_request` to send to the team's other devices (fan it out like any team
   * message); its answers are taken in until `close`.
   *
   * @throws HandoffError('handoff_limit') past `MAX_OPEN_HANDOFF_REQUESTS`
   */
  request(random: RandomSource, nowMs: number): SyncRequestMessage {
    if (this.#requests.size >= MAX_OPEN_HANDOFF_REQUESTS) {
      throw new HandoffError(HandoffErrorCode.LIMIT);
    }
    const message: SyncRequestMessage = {
      v: CONVERSATION_VERSION,
      type: 'sync_request',
      id: newConversationId(random),
      ts: Math.max(0, Math.floor(nowMs)),
    };
    this.#requests.set(message.id, new Map());
    return message;
  }

  /** Stops taking in answers to `requestId`. */
  close(requestId: string): void {
    this.#requests.delete(requestId);
  }

  /** Cases whose last part came from some sender, for `requestId`. */
  completedCases(requestId: string): string[] {
    const progress = this.#requests.get(requestId);
    if (progress === undefined) return [];
    const done = new Set<string>();
    for (const [key, p] of progress) if (p.done) done.add(key.slice(65));
    return [...done];
  }

  /** Decodes a decrypted plaintext and takes it in (`receive`). Never throws. */
  receiveBytes(plaintext: Uint8Array, origin: Origin, nowMs: number): HandoffOutcome {
    const decoded = decodeConversationMessage(plaintext);
    if (!decoded.ok) {
      return { ok: false, code: HandoffErrorCode.NOT_A_PART, detail: decoded.error.code };
    }
    return this.receive(decoded.message, origin, nowMs);
  }

  /** Takes in one part from a team device (its origin as the session layer authenticated it). */
  receive(message: ConversationMessage, origin: Origin, nowMs: number): HandoffOutcome {
    if (message.type !== 'sync_response') return { ok: false, code: HandoffErrorCode.NOT_A_PART };
    if (origin.from !== 'team' || checkOrigin(message, origin, 'team') !== null) {
      return { ok: false, code: HandoffErrorCode.WRONG_ORIGIN };
    }
    const progress = this.#requests.get(message.request);
    if (progress === undefined) return { ok: false, code: HandoffErrorCode.UNKNOWN_REQUEST };
    const key = `${origin.device} ${message.case}`;
    let p = progress.get(key);
    if (p === undefined) {
      if (progress.size >= this.caseLimit) return { ok: false, code: HandoffErrorCode.LIMIT };
      p = { next: 0, done: false, failed: false };
    }
    if (p.done) return { ok: false, code: HandoffErrorCode.AFTER_LAST };
    if (p.failed || message.part !== p.next) {
      p.failed = true;
      progress.set(key, p);
      return { ok: false, code: HandoffErrorCode.OUT_OF_ORDER };
    }
    progress.set(key, p);
    p.next++;
    p.done = message.last;
    const events: Record<ReceiveOutcome, number> = {
      applied: 0,
      unchanged: 0,
      deferred: 0,
      refused: 0,
    };
    let added = 0;
    for (const item of message.items) {
      if (item.message.type === 'case_event') {
        events[this.target.replica.receive(item.message, nowMs)]++;
      } else if (this.target.transcripts.add(message.case, item as TranscriptItem)) {
        added++;
      }
    }
    return { ok: true, added, events, caseDone: p.done };
  }
}
