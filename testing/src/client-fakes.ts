/**
 * A fake transport and a fake clock for the client core's unit tests: the test plays the relay
 * frame by frame (`FakeSocket.receive`, `serverClose`) and moves time by hand
 * (`FakeClock.advance`), so backoff, timeouts and heartbeats are deterministic and no test
 * depends on how fast the machine is.
 */
import type {
  Clock,
  Socket,
  SocketHandlers,
  TimerHandle,
  Transport,
} from '@passage/shared/client/transport';

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

/** Timers run only inside `advance`, in time order (ties in creation order). */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, Timer>();

  constructor(start = 1_800_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  /** Timers pending. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Delays (from now) of the pending timers, sorted. */
  delays(): number[] {
    return [...this.#timers.values()].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due on the way (and those they
   * set, if due), with the microtask queue drained after each, so promise chains settle.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await flush();
      let next: Timer | undefined;
      for (const t of this.#timers.values()) {
        if (t.at <= end && (next === undefined || t.at < next.at)) next = t;
      }
      if (next === undefined) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
    }
    this.#now = end;
    await flush();
  }
}

/** Lets every pending promise reaction run (a few macrotask-free turns). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

export class FakeSocket implements Socket {
  readonly sent: string[] = [];
  bufferedAmount = 0;
  closedByClient: { code: number | undefined } | undefined;
  #closed = false;

  constructor(
    readonly url: string,
    readonly protocol: string,
    readonly handlers: SocketHandlers,
  ) {}

  send(text: string): void {
    if (this.#closed) throw new Error('send on a closed socket');
    this.sent.push(text);
  }

  close(code?: number): void {
    this.closedByClient = { code };
  }

  /** The frames sent, parsed. */
  frames(): Record<string, unknown>[] {
    return this.sent.map((text) => JSON.parse(text) as Record<string, unknown>);
  }

  /** The last frame of type `t` the client sent. */
  last(t: string): Record<string, unknown> | undefined {
    return this.frames()
      .filter((f) => f['t'] === t)
      .at(-1);
  }

  open(): void {
    this.handlers.onOpen();
  }

  /** The relay sends `frame` (an object is JSON-encoded; a string is sent as it is). */
  receive(frame: object | string): void {
    this.handlers.onMessage(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  receiveBinary(bytes: Uint8Array): void {
    this.handlers.onMessage(bytes);
  }

  /** The connection ends (a close frame with `code`, or 1006 for a lost network). */
  serverClose(code = 1006): void {
    if (this.#closed) return;
    this.#closed = true;
    this.handlers.onClose(code, '');
  }
}

export class FakeTransport implements Transport {
  readonly sockets: FakeSocket[] = [];
  /** When set, `open` throws it (a URL the platform refuses). */
  failOpen: Error | undefined;

  open(url: string, protocol: string, handlers: SocketHandlers): Socket {
    if (this.failOpen !== undefined) throw this.failOpen;
    const socket = new FakeSocket(url, protocol, handlers);
    this.sockets.push(socket);
    return socket;
  }

  /** The most recent socket. */
  get current(): FakeSocket {
    const socket = this.sockets.at(-1);
    if (socket === undefined) throw new Error('no socket opened');
    return socket;
  }
}
