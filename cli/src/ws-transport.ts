/**
 * The client core's transport port over `ws`, for the CLI (its layer may not import
 * @passage/testing, whose adapter this mirrors): no compression, the relay's frame bound as
 * `maxPayload`, a handshake timeout.
 */
import WebSocket from 'ws';
import type { Socket, Transport } from '@passage/shared/client/index';
import { MAX_FRAME_BYTES } from '@passage/shared/protocol/limits';

/** How long the WebSocket handshake may take, in ms. */
export const WS_HANDSHAKE_TIMEOUT_MS = 15_000;

export function wsTransport(): Transport {
  return {
    open(url, protocol, handlers): Socket {
      const ws = new WebSocket(url, [protocol], {
        perMessageDeflate: false,
        maxPayload: MAX_FRAME_BYTES,
        handshakeTimeout: WS_HANDSHAKE_TIMEOUT_MS,
      });
      let closed = false;
      ws.on('open', () => handlers.onOpen());
      ws.on('message', (data, isBinary) => {
        handlers.onMessage(isBinary ? new Uint8Array(data as Buffer) : (data as Buffer).toString());
      });
      ws.on('error', () => {}); // a close follows
      ws.on('close', (code, reason) => {
        if (closed) return;
        closed = true;
        handlers.onClose(code, reason.toString());
      });
      return {
        send: (text) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(text);
        },
        close: (code) => {
          if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
          else ws.close(code);
        },
        get bufferedAmount() {
          return ws.bufferedAmount;
        },
      };
    },
  };
}
