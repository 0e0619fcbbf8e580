/**
 * The ceiling of the stack: a minimal `ws` forwarder with no store, no authentication and no
 * validation beyond `JSON.parse`. It speaks just enough of protocol v1 that the load generator
 * drives it with the same client code as the relay:
 *
 * - a recipient sends `{"v":1,"t":"register","mailbox":…}` (instead of challenge/auth) and gets
 *   `authed`;
 * - a `send` is answered with `stored` and forwarded as a `deliver` frame to the socket that
 *   registered the mailbox (dropped with an `unavailable` error when nobody did);
 * - an `ack` is parsed and consumed.
 *
 * Whatever the relay does on top of this (schemas, auth, the store, rate limits) is what the
 * benchmark's `ratioToRaw` prices. Run as `node bench/dist/raw-forwarder.js` with PORT and HOST.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_FRAME_BYTES, PROTOCOL_VERSION, WS_SUBPROTOCOL } from '@passage/shared/protocol/limits';
import { encodeDeliverFrame } from '@passage/shared/protocol/encode';

/** The relay's WebSocket path, mirrored so the load generator needs no special case. */
const WS_PATH = '/v1/ws';

const port = Number(process.env['PORT'] ?? '0');
const host = process.env['HOST'] ?? '127.0.0.1';

const mailboxes = new Map<string, WebSocket>();

const http = createServer((req, res) => {
  // `/readyz` lets the harness wait for the forwarder exactly as it waits for the relay.
  res.writeHead(req.url === '/readyz' || req.url === '/healthz' ? 200 : 404, {
    'content-type': 'text/plain',
  });
  res.end();
});

const wss = new WebSocketServer({
  server: http,
  path: WS_PATH,
  perMessageDeflate: false,
  maxPayload: MAX_FRAME_BYTES,
  handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
});

interface RawFrame {
  t?: unknown;
  rid?: unknown;
  to?: unknown;
  id?: unknown;
  env?: unknown;
  mailbox?: unknown;
}

wss.on('connection', (ws) => {
  let registered: string | undefined;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return;
    let frame: RawFrame;
    try {
      // Deliberately unvalidated: the ceiling does the least work a router can.
      frame = JSON.parse(data.toString()) as RawFrame;
    } catch {
      return;
    }
    switch (frame.t) {
      case 'send': {
        const rid = Number(frame.rid);
        const id = String(frame.id);
        const target = mailboxes.get(String(frame.to));
        if (target) {
          target.send(encodeDeliverFrame(id, String(frame.env)));
          ws.send(`{"v":${PROTOCOL_VERSION},"t":"stored","rid":${rid},"id":"${id}"}`);
        } else {
          ws.send(
            `{"v":${PROTOCOL_VERSION},"t":"error","rid":${rid},"code":"unavailable","retryable":true,"message":"no such mailbox here"}`,
          );
        }
        return;
      }
      case 'ack':
        return;
      case 'register': {
        registered = String(frame.mailbox);
        mailboxes.set(registered, ws);
        ws.send(`{"v":${PROTOCOL_VERSION},"t":"authed","rid":0,"mailbox":"${registered}"}`);
        return;
      }
      default:
        return;
    }
  });
  ws.on('close', () => {
    if (registered !== undefined && mailboxes.get(registered) === ws) mailboxes.delete(registered);
  });
  ws.on('error', () => {
    // A reset by a load-generator client that is shutting down; nothing to do.
  });
});

function shutdown(): void {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  http.close();
  // A normal exit (not death by signal) so that `--cpu-prof` writes its profile.
  setTimeout(() => process.exit(0), 50).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

http.listen(port, host);
