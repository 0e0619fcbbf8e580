/**
 * The client core's two ports to the outside world: a WebSocket-like transport and a clock.
 * Everything else in shared/src/client is written against these, so the same code runs in a
 * browser (the global WebSocket, `webSocketTransport()` below), in Node (the `ws` adapter in
 * @passage/testing, or the CLI's own) and in tests (a fake transport and a fake clock that a
 * test drives step by step). The client layer imports no DOM and no Node module: the globals
 * used here are typed structurally, and only looked up when the adapter is made.
 */

/** One open (or opening) connection, as the client core uses it. */
export interface Socket {
  /** Sends one text message. Only called after `onOpen`. */
  send(text: string): void;
  /** Starts the closing handshake. The core stops listening to a socket it closes. */
  close(code?: number, reason?: string): void;
  /**
   * Bytes given to `send` that the platform has not yet written to the network. When the relay
   * stops reading (its backpressure, docs/protocol.md "Sending"), this grows; the outbox holds
   * back while it is over its bound.
   */
  readonly bufferedAmount: number;
}

/** What a socket reports. Each socket reports `onClose` at most once; nothing after it. */
export interface SocketHandlers {
  onOpen(): void;
  /** A text message as a string; a binary message as anything else (the core refuses it). */
  onMessage(data: unknown): void;
  /** The connection ended, or never opened (`code` 1006 when there was no close frame). */
  onClose(code: number, reason: string): void;
}

/** Opens connections to the relay, offering the WebSocket subprotocol `protocol`. */
export interface Transport {
  open(url: string, protocol: string, handlers: SocketHandlers): Socket;
}

/** An opaque timer handle (a number in browsers, an object in Node). */
export type TimerHandle = object | number;

/** Time and timers. A fake clock makes backoff, timeouts and heartbeats deterministic. */
export interface Clock {
  /** Unix time in ms. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The platform's timers (browser and Node alike). */
interface TimerGlobals {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `Date.now()` and the global timers. */
export function systemClock(): Clock {
  const g = globalThis as unknown as TimerGlobals;
  return {
    now: () => Date.now(),
    setTimeout: (callback, ms) => g.setTimeout(callback, ms),
    clearTimeout: (handle) => g.clearTimeout(handle),
  };
}

/** The part of the WHATWG WebSocket this adapter uses (browsers; Node 22's global; `ws`). */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructorLike = new (
  url: string,
  protocols: string | string[],
) => WebSocketLike;

/**
 * A transport over a WHATWG WebSocket constructor: the page's global `WebSocket` by default.
 * An error event is always followed by a close event, which is what the core acts on.
 */
export function webSocketTransport(
  WebSocketImpl: WebSocketConstructorLike = (globalThis as { WebSocket?: WebSocketConstructorLike })
    .WebSocket as WebSocketConstructorLike,
): Transport {
  if (typeof WebSocketImpl !== 'function') throw new TypeError('no WebSocket implementation');
  return {
    open(url, protocol, handlers) {
      const ws = new WebSocketImpl(url, protocol);
      ws.binaryType = 'arraybuffer';
      let closed = false;
      ws.onopen = () => handlers.onOpen();
      ws.onmessage = (event) => handlers.onMessage(event.data);
      ws.onerror = () => {};
      ws.onclose = (event) => {
        if (closed) return;
        closed = true;
        handlers.onClose(event.code, event.reason);
      };
      return {
        send: (text) => ws.send(text),
        close: (code, reason) => ws.close(code, reason),
        get bufferedAmount() {
          return ws.bufferedAmount;
        },
      };
    },
  };
}
