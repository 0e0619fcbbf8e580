/**
 * Pins what ws-internals.ts reads from `ws`'s private receiver, and that the socket of the
 * `upgrade` event is the one `ws` reads and writes (the relay corks it and listens to it), on a
 * real `ws` server and client. If a `ws` upgrade renames or retypes a field, these fail instead
 * of the input budget silently reading 0.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { until } from '@passage/testing/wait';
import { PER_BUFFER_OVERHEAD_BYTES, receiverOf, unfinishedInputBytes } from './ws-internals.js';

let wss: WebSocketServer;
let url: string;
const accepted: { ws: WebSocket; socket: Duplex; messages: number }[] = [];

beforeAll(async () => {
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', (ws, req) => {
    const entry = { ws, socket: req.socket as Duplex, messages: 0 };
    ws.on('message', () => entry.messages++);
    accepted.push(entry);
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const { ws } of accepted) ws.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
});

async function pair(): Promise<{ client: WebSocket; server: (typeof accepted)[number] }> {
  const before = accepted.length;
  const client = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve());
    client.once('error', reject);
  });
  await until(() => accepted.length > before);
  return { client, server: accepted[before]! };
}

describe('ws internals the relay relies on', () => {
  it('has a receiver with the four fields the input budget reads, of the expected types', async () => {
    const { client, server } = await pair();
    const r = receiverOf(server.ws);
    expect(r).toBeDefined();
    expect(typeof r!._bufferedBytes).toBe('number');
    expect(typeof r!._messageLength).toBe('number');
    expect(Array.isArray(r!._buffers)).toBe(true);
    expect(Array.isArray(r!._fragments)).toBe(true);
    client.terminate();
  });

  it('counts the fragments of an unfinished message, and nothing once it completes', async () => {
    const { client, server } = await pair();
    expect(unfinishedInputBytes(server.ws)).toBe(0);
    for (let i = 0; i < 3; i++) client.send('x'.repeat(1_000), { fin: false });
    const held = 3 * 1_000 + 3 * PER_BUFFER_OVERHEAD_BYTES;
    await until(() => unfinishedInputBytes(server.ws) === held);
    client.send('x', { fin: true });
    await until(() => server.messages === 1);
    expect(unfinishedInputBytes(server.ws)).toBe(0);
    client.terminate();
  });

  it('counts received bytes of a frame that has not fully arrived', async () => {
    const { client, server } = await pair();
    // A 10,000-byte masked text frame of which only the header and 4,000 payload bytes are sent,
    // on the client's socket directly (the client's ws would send the whole frame).
    const header = Buffer.from([0x81, 0x80 | 126, 0x27, 0x10, 0, 0, 0, 0]);
    const raw = (client as unknown as { _socket: Duplex })._socket;
    raw.write(Buffer.concat([header, Buffer.alloc(4_000, 0x20)]));
    await until(() => unfinishedInputBytes(server.ws) === 4_000 + PER_BUFFER_OVERHEAD_BYTES);
    client.terminate();
  });

  it('reads from and writes to the socket of the upgrade event', async () => {
    const { client, server } = await pair();
    expect((server.ws as unknown as { _socket: unknown })._socket).toBe(server.socket);
    const written = (server.socket as unknown as { bytesWritten: number }).bytesWritten;
    const got = new Promise<void>((resolve) => client.once('message', () => resolve()));
    server.ws.send('hello');
    await got;
    expect((server.socket as unknown as { bytesWritten: number }).bytesWritten).toBeGreaterThan(
      written,
    );
    client.terminate();
  });

  it('reads 0 from a WebSocket without a receiver', () => {
    expect(unfinishedInputBytes({} as WebSocket)).toBe(0);
    expect(unfinishedInputBytes({ _receiver: null } as unknown as WebSocket)).toBe(0);
  });
});
