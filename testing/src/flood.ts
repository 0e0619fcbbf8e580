/**
 * The flood scenario of issue 7 §3: legitimate pairs talk through a relay while one anonymous
 * client floods it at its maximum. Used by `npm run bench:flood` (which reports latencies and the
 * p99 ratio against a run without the flood) and by test/src/flood.test.ts (which asserts that no
 * legitimate message is lost; timing is never asserted in tests).
 *
 * Each pair is a recipient (authenticated, acknowledges every delivery at once) and a sender on
 * its own anonymous connection, which admits itself to the recipient's mailbox with a
 * proof-of-work when the relay asks for one, sends at a fixed pace and resends (same id) what was
 * refused with a retryable code, as a real client does. Latency is from the first attempt to the
 * first delivery, on one clock.
 *
 * The flooder is one client at a time, reconnecting whenever the relay closes it: it admits itself
 * to the recipients' mailboxes and to random ones, and keeps `FLOOD_WINDOW` sends in flight of
 * 2,048-byte envelopes, answering `pow_required` with a new proof and otherwise ignoring refusals.
 *
 * Frames are read with JSON.parse and a few checks (not the zod schemas): the load side must
 * spend little CPU, and the relay's own parser is tested elsewhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { PROTOCOL_VERSION, WS_SUBPROTOCOL } from '@passage/shared/protocol/limits';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';
import { parsePowChallenge, solvePow } from '@passage/shared/pow/pow';
import { identity, type TestIdentity } from './test-client.js';

const V = PROTOCOL_VERSION;
const nodeSha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();

/** Sends the flooder keeps in flight (unanswered) at once. */
export const FLOOD_WINDOW = 256;
/** Random mailboxes the flooder writes to besides the recipients (store fill). */
const FLOOD_RANDOM_TARGETS = 32;
/** A legitimate sender waits this long before resending a refused message, in ms. */
const RETRY_DELAY_MS = 100;

export interface FloodOptions {
  readonly wsUrl: string;
  readonly pairs: number;
  readonly messagesPerPair: number;
  /** Time between two sends of one pair, in ms. */
  readonly intervalMs: number;
  /** Run the flooder alongside. */
  readonly flood: boolean;
  /** Bytes of each envelope (before base64url). */
  readonly envelopeBytes?: number;
  /** How long to wait for the last deliveries after the last send, in ms. */
  readonly drainTimeoutMs?: number;
  /** Starts the flooder; by default on this thread. */
  readonly startFlooder?: (task: FlooderTask) => FlooderHandle;
}

export interface FloodResult {
  readonly sent: number;
  readonly delivered: number;
  /** Legitimate messages never delivered (within the drain timeout). */
  readonly lost: number;
  /** Deliveries of a message already delivered. */
  readonly duplicates: number;
  /** Resends after a retryable refusal. */
  readonly retries: number;
  /** Refusals of legitimate sends by code. */
  readonly refused: Readonly<Record<string, number>>;
  /** Send-to-first-delivery latencies in ms, sorted. */
  readonly latenciesMs: readonly number[];
  readonly flooder: FlooderStats & {
    /** Bytes of envelopes the relay stored for the flooder, per second of the run. */
    readonly storedBytesPerSecond: number;
  };
  readonly durationMs: number;
}

interface Frame {
  readonly t: string;
  readonly rid?: number;
  readonly id?: string;
  readonly code?: string;
  readonly retryable?: boolean;
  readonly nonce?: string;
  readonly challenge?: unknown;
}

function read(data: WebSocket.RawData): Frame | undefined {
  try {
    // ws's default binaryType: every message is one Buffer.
    const frame = JSON.parse((data as Buffer).toString()) as unknown;
    if (typeof frame !== 'object' || frame === null) return undefined;
    return typeof (frame as Frame).t === 'string' ? (frame as Frame) : undefined;
  } catch {
    return undefined;
  }
}

/** A raw connection with request/answer matching by rid and a listener for the rest. */
class Raw {
  readonly ws: WebSocket;
  readonly #waiting = new Map<
    number,
    { resolve: (frame: Frame) => void; reject: (err: Error) => void }
  >();
  readonly #nonce: Promise<string>;
  onOther: (frame: Frame) => void = () => {};
  #rid = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('close', () => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error('closed'));
      this.#waiting.clear();
    });
    this.#nonce = new Promise((resolve) => {
      ws.on('message', (data) => {
        const frame = read(data);
        if (frame === undefined) return;
        if (frame.t === 'challenge' && frame.nonce !== undefined) {
          resolve(frame.nonce);
          return;
        }
        const waiter = frame.rid === undefined ? undefined : this.#waiting.get(frame.rid);
        if (waiter !== undefined) {
          this.#waiting.delete(frame.rid!);
          waiter.resolve(frame);
          return;
        }
        this.onOther(frame);
      });
    });
  }

  static open(url: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, WS_SUBPROTOCOL, { perMessageDeflate: false });
      ws.once('open', () => resolve(new Raw(ws)));
      ws.once('error', reject);
    });
  }

  nextRid(): number {
    this.#rid = this.#rid >= 1_000_000_000 ? 1 : this.#rid + 1;
    return this.#rid;
  }

  /**
   * Sends a request and waits for the answer with its rid; frames whose rid nobody waits for
   * (the flooder's send answers) go to `onOther`. Rejects if the socket closes first.
   */
  request(frame: Record<string, unknown>): Promise<Frame> {
    const rid = this.nextRid();
    return this.sendWaiting(rid, JSON.stringify({ v: V, rid, ...frame }));
  }

  /** Sends `text` (a frame carrying `rid`) and waits for the answer with that rid. */
  sendWaiting(rid: number, text: string): Promise<Frame> {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error('closed'));
        return;
      }
      this.#waiting.set(rid, { resolve, reject });
      this.ws.send(text);
    });
  }

  async authenticate(who: TestIdentity): Promise<void> {
    const nonce = Buffer.from(await this.#nonce, 'base64url');
    const answer = await this.request({
      t: 'auth',
      pk: toBase64url(who.publicKey),
      sig: toBase64url(who.sign(authChallengeMessage(nonce))),
    });
    if (answer.t !== 'authed') throw new Error(`auth refused: ${answer.code ?? answer.t}`);
  }

  /** Proof-of-work admission to `to`; false if the relay refused. */
  async admit(to: string): Promise<boolean> {
    const offered = await this.request({ t: 'pow.request', to });
    if (offered.t !== 'pow.challenge') return false;
    const challenge = parsePowChallenge(offered.challenge);
    const solution = solvePow(challenge, nodeSha256, { nowMs: Date.now(), start: randomBytes(8) });
    const answer = await this.request({
      t: 'pow.solve',
      nonce: toBase64url(challenge.nonce),
      solution: toBase64url(solution),
    });
    return answer.t === 'pow.admitted';
  }

  close(): void {
    this.ws.terminate();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** What the flooder got, for the report. */
export interface FlooderStats {
  readonly connections: number;
  readonly sent: number;
  readonly stored: number;
  readonly admissions: number;
  /** Time spent solving proofs-of-work, in ms (synchronous: it blocks the flooder's thread). */
  readonly solveMs: number;
  readonly refused: Readonly<Record<string, number>>;
}

/** Where the flooder writes to and with what. */
export interface FlooderTask {
  readonly wsUrl: string;
  /** The legitimate recipients' mailboxes; random ones are added. */
  readonly targets: readonly string[];
  readonly envelopeBytes: number;
}

/** A running flooder; `stop` ends it and resolves with what it got. */
export interface FlooderHandle {
  stop(): Promise<FlooderStats>;
}

/**
 * Floods until `flooding()` turns false: one client at a time, reconnecting whenever the relay
 * closes it (see the module comment). Runs on whatever thread calls it: the bench runs it in a
 * worker thread (bench/src/flood-worker.ts), because its proofs-of-work are synchronous and on the
 * legitimate clients' thread they would delay them by the flooder's CPU, not the relay's.
 */
export async function flood(task: FlooderTask, flooding: () => boolean): Promise<FlooderStats> {
  const env = toBase64url(randomBytes(task.envelopeBytes));
  const flooder = {
    connections: 0,
    sent: 0,
    stored: 0,
    admissions: 0,
    solveMs: 0,
    refused: {} as Record<string, number>,
  };
  const targets = [
    ...task.targets,
    ...Array.from({ length: FLOOD_RANDOM_TARGETS }, () => toBase64url(randomBytes(32))),
  ];
  while (flooding()) {
    let raw: Raw;
    try {
      raw = await Raw.open(task.wsUrl);
    } catch {
      await sleep(50);
      continue;
    }
    flooder.connections++;
    let inFlight = 0;
    let wake: (() => void) | undefined;
    /** Mailboxes this connection is admitted to, and the target of each send in flight. */
    const admitted: string[] = [];
    const targetOf = new Map<number, string>();
    let lostAdmissions = 0;
    raw.onOther = (frame) => {
      if (frame.rid === undefined) return;
      const to = targetOf.get(frame.rid);
      if (to === undefined) return;
      targetOf.delete(frame.rid);
      if (frame.t === 'stored') {
        flooder.stored++;
      } else if (frame.code !== undefined) {
        bump(flooder.refused, frame.code);
        const i = admitted.indexOf(to);
        if (frame.code === 'pow_required' && i >= 0) {
          admitted.splice(i, 1);
          lostAdmissions++;
        }
      }
      inFlight--;
      wake?.();
    };
    let open = true;
    raw.ws.once('close', () => {
      open = false;
      wake?.();
    });
    let cursor = 0;
    const admitNext = async () => {
      const to = targets[cursor++ % targets.length]!;
      const solveStart = performance.now();
      const isAdmitted = await raw.admit(to);
      flooder.solveMs += performance.now() - solveStart;
      if (isAdmitted) {
        admitted.push(to);
        flooder.admissions++;
      }
    };
    try {
      // A few admissions (the relay keeps at most four open challenges), then flood them;
      // every spent share is replaced by an admission to the next target.
      for (let i = 0; i < 4 && open && flooding(); i++) await admitNext();
      let next = 0;
      while (open && flooding()) {
        while (inFlight < FLOOD_WINDOW && open && admitted.length > 0) {
          const to = admitted[next++ % admitted.length]!;
          const rid = raw.nextRid();
          targetOf.set(rid, to);
          inFlight++;
          flooder.sent++;
          raw.ws.send(
            `{"v":${V},"t":"send","rid":${rid},"to":"${to}","id":"${toBase64url(randomBytes(16))}","env":"${env}"}`,
          );
        }
        if (lostAdmissions > 0 || admitted.length === 0) {
          lostAdmissions = Math.max(0, lostAdmissions - 1);
          await admitNext();
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } catch {
      // Closed under us: reconnect.
    }
    raw.close();
  }
  return flooder;
}

/** The flooder on this thread (what the tests use). */
function startInlineFlooder(task: FlooderTask): FlooderHandle {
  let flooding = true;
  const running = flood(task, () => flooding);
  return {
    stop() {
      flooding = false;
      return running;
    },
  };
}

/** Runs the scenario once and returns what happened. */
export async function runFlood(options: FloodOptions): Promise<FloodResult> {
  const envBytes = options.envelopeBytes ?? 2048;
  const drainTimeoutMs = options.drainTimeoutMs ?? 15_000;
  const env = toBase64url(randomBytes(envBytes));
  const started = performance.now();

  // Recipients first: authenticated, acknowledging every delivery at once.
  const firstDelivery = new Map<string, number>();
  let duplicates = 0;
  const recipients = await Promise.all(
    Array.from({ length: options.pairs }, async () => {
      const who = identity();
      const raw = await Raw.open(options.wsUrl);
      raw.onOther = (frame) => {
        if (frame.t !== 'deliver' || frame.id === undefined) return;
        if (firstDelivery.has(frame.id)) duplicates++;
        else firstDelivery.set(frame.id, performance.now());
        raw.ws.send(`{"v":${V},"t":"ack","ids":["${frame.id}"]}`);
      };
      await raw.authenticate(who);
      return { who, raw };
    }),
  );
  const mailboxes = recipients.map((r) => r.who.mailbox);

  // The senders, each admitted to its recipient before the timed part (a real client pays this
  // once per connection; here it is setup, not message latency).
  const senders = await Promise.all(
    recipients.map(async ({ who }) => {
      const raw = await Raw.open(options.wsUrl);
      await raw.admit(who.mailbox);
      return { who, raw };
    }),
  );
  // The flooder, once everyone is set up.
  const floodStart = performance.now();
  const flooderRun = options.flood
    ? (options.startFlooder ?? startInlineFlooder)({
        wsUrl: options.wsUrl,
        targets: mailboxes,
        envelopeBytes: envBytes,
      })
    : undefined;

  let sent = 0;
  let retries = 0;
  const refused: Record<string, number> = {};
  const sentAt = new Map<string, number>();
  await Promise.all(
    senders.map(async ({ who, raw }) => {
      const sendOnce = (id: string): Promise<Frame> => {
        const rid = raw.nextRid();
        return raw.sendWaiting(
          rid,
          `{"v":${V},"t":"send","rid":${rid},"to":"${who.mailbox}","id":"${id}","env":"${env}"}`,
        );
      };
      for (let i = 0; i < options.messagesPerPair; i++) {
        const id = toBase64url(randomBytes(16));
        sentAt.set(id, performance.now());
        sent++;
        for (;;) {
          const answer = await sendOnce(id);
          if (answer.t === 'stored') break;
          bump(refused, answer.code ?? 'unknown');
          if (answer.code === 'pow_required') {
            await raw.admit(who.mailbox);
          } else if (answer.retryable === true) {
            retries++;
            await sleep(RETRY_DELAY_MS);
          } else {
            throw new Error(`legitimate send refused: ${answer.code ?? answer.t}`);
          }
        }
        await sleep(options.intervalMs);
      }
      raw.close();
    }),
  );

  // Wait for the last deliveries.
  const deadline = performance.now() + drainTimeoutMs;
  while (firstDelivery.size < sent && performance.now() < deadline) await sleep(50);
  const floodMs = performance.now() - floodStart;
  const flooder = (await flooderRun?.stop()) ?? {
    connections: 0,
    sent: 0,
    stored: 0,
    admissions: 0,
    solveMs: 0,
    refused: {},
  };
  for (const r of recipients) r.raw.close();

  const latenciesMs: number[] = [];
  let delivered = 0;
  for (const [id, at] of sentAt) {
    const got = firstDelivery.get(id);
    if (got === undefined) continue;
    delivered++;
    latenciesMs.push(got - at);
  }
  latenciesMs.sort((a, b) => a - b);
  return {
    sent,
    delivered,
    lost: sent - delivered,
    duplicates,
    retries,
    refused,
    latenciesMs,
    flooder: {
      ...flooder,
      storedBytesPerSecond: options.flood ? (flooder.stored * envBytes * 1000) / floodMs : 0,
    },
    durationMs: performance.now() - started,
  };
}

/** The `p` quantile (0 … 1) of sorted values. */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}
