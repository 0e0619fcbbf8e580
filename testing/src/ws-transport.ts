/**
 * The client core's transport port over `ws`, for Node (the integration tests; the CLI will
 * carry its own copy, as its layer may not import @passage/testing). The client layer itself
 * imports no Node module, so this adapter lives outside shared/src/client.
 */
import WebSocket from 'ws';
import type { Socket, Transport } from '@passage/shared/client/transport';
import { MAX_FRAME_BYTES } from '@passage/shared/protocol/limits';

export function wsTransport(options: { readonly handshakeTimeoutMs?: number } = {}): Transport {
  return {
    open(url, protocol, handlers): Socket {
      const ws = new WebSocket(url, [protocol], {
        perMessageDeflate: false,
        maxPayload: MAX_FRAME_BYTES,
        handshakeTimeout: options.handshakeTimeoutMs ?? 15_000,
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
