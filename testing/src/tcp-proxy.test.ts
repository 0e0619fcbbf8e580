import { afterEach, expect, it } from '@jest/globals';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

let server: Server | undefined;
let proxy: TcpProxy | undefined;

afterEach(async () => {
  await proxy?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = proxy = undefined;
});

/** A server that keeps what each connection sent, and tells when that connection ended. */
async function recorder(): Promise<{ port: number; got: () => string; ended: Promise<void> }> {
  let got = '';
  let ended!: () => void;
  const done = new Promise<void>((resolve) => (ended = resolve));
  server = createServer((socket) => {
    socket.on('data', (d: Buffer) => (got += d.toString('utf8')));
    socket.on('close', () => ended());
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, got: () => got, ended: done };
}

async function client(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

it('cuts at the next chunk a client sends and drops it', async () => {
  const target = await recorder();
  proxy = await startTcpProxy(target.port);
  const { socket, closed } = await client(proxy.port);
  socket.write('before|');
  await settle();
  const cut = proxy.cutAtClientChunk(1, false);
  socket.write('dropped');
  expect(await cut).toBe('dropped'.length);
  await closed;
  await target.ended;
  expect(target.got()).toBe('before|');
  expect(proxy.connections).toBe(0);
});

it('cuts at the next chunk a client sends after passing it on', async () => {
  const target = await recorder();
  proxy = await startTcpProxy(target.port);
  const { socket, closed } = await client(proxy.port);
  const cut = proxy.cutAtClientChunk(1, true);
  socket.write('passed on');
  expect(await cut).toBe('passed on'.length);
  await closed;
  await target.ended;
  expect(target.got()).toBe('passed on');
});

it('counts chunks to the n-th, and keeps listening after a cut', async () => {
  const target = await recorder();
  proxy = await startTcpProxy(target.port);
  const first = await client(proxy.port);
  const cut = proxy.cutAtClientChunk(2, false);
  first.socket.write('one|');
  await settle();
  expect(proxy.connections).toBe(1);
  first.socket.write('two');
  await cut;
  await first.closed;
  expect(target.got()).toBe('one|');
  const again = await client(proxy.port);
  expect(proxy.connections).toBe(1);
  expect(proxy.cutAll()).toBe(1);
  await again.closed;
  expect(() => proxy!.cutAtClientChunk(0, false)).toThrow(RangeError);
});
