/**
 * Free loopback ports for the processes a test starts (relays, redis-servers). The port is
 * found by binding port 0 and closing again, so another process could in principle take it
 * before the test uses it; on one test machine that does not happen in practice, and a test that
 * loses the race fails loudly (the child cannot bind) rather than passing wrongly.
 */
import { createServer } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
