/**
 * The responses the relay writes straight to a socket, outside express: a request Node could not
 * parse, and refused WebSocket upgrades (by the relay, or by `ws` for a bad handshake). Each must
 * carry the headers of every other response.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createConnection } from 'node:net';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { CONTENT_SECURITY_POLICY } from './app.js';

let relay: InProcessRelay;
beforeAll(async () => {
  relay = await startInProcessRelay();
});
afterAll(() => relay.stop());

/** Writes `request` on a fresh TCP connection and resolves with everything the relay answers. */
function raw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port: relay.port, host: '127.0.0.1' });
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(data));
    socket.write(request);
  });
}

/** The status code and the headers (names lower-cased) of a raw HTTP response. */
function parse(response: string): { status: number; headers: Map<string, string> } {
  const [head = ''] = response.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = new Map<string, string>();
  for (const line of lines) {
    const i = line.indexOf(':');
    headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return { status: Number(statusLine.split(' ')[1]), headers };
}

const upgrade = (path: string, extra: string) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${extra}\r\n`;
const GOOD_KEY = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

describe('regression: responses written outside express lack no-store and the CSP', () => {
  const cases: [string, string, number][] = [
    ['a request Node cannot parse (clientError)', 'NOT HTTP AT ALL\r\n\r\n', 400],
    [
      'an upgrade ws refuses for its key',
      upgrade(
        '/v1/ws',
        'Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: passage.v1\r\n',
      ),
      400,
    ],
    [
      'an upgrade ws refuses for its version',
      upgrade(
        '/v1/ws',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\nSec-WebSocket-Protocol: passage.v1\r\n',
      ),
      400,
    ],
    ['an upgrade without the subprotocol', upgrade('/v1/ws', GOOD_KEY), 400],
    ['an upgrade on another path', upgrade('/elsewhere', GOOD_KEY), 404],
  ];

  it.each(cases)('%s gets Cache-Control: no-store and the CSP', async (_what, request, status) => {
    const { status: got, headers } = parse(await raw(request));
    expect(got).toBe(status);
    expect(headers.get('cache-control')).toBe('no-store');
    expect(headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(headers.get('referrer-policy')).toBe('no-referrer');
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    expect(headers.get('connection')).toBe('close');
  });

  it('still upgrades a valid handshake', async () => {
    const response = await new Promise<string>((resolve, reject) => {
      const socket = createConnection({ port: relay.port, host: '127.0.0.1' });
      socket.once('data', (chunk) => {
        resolve(chunk.toString('latin1'));
        socket.destroy();
      });
      socket.on('error', reject);
      socket.write(upgrade('/v1/ws', `${GOOD_KEY}Sec-WebSocket-Protocol: passage.v1\r\n`));
    });
    expect(parse(response).status).toBe(101);
  });
});
