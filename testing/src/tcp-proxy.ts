/**
 * A loopback TCP proxy in front of a real server (a redis-server) that can freeze single
 * connections: their bytes stay in the kernel's buffers in both directions, as if the server had
 * stopped answering on that connection alone. SIGSTOP (redis.ts `freeze`) stops every connection
 * of the server at once; this stops one, e.g. a store's subscriber connection while its command
 * connection keeps working (a subscriber silently cut off by a middlebox looks like that).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** Bytes of a connection's client-to-server traffic kept to recognise it (see freezeWhere). */
const SEEN_BYTES = 64 * 1024;

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  /** The start of what the client sent, as latin1 text. */
  seen: string;
  frozen: boolean;
  /** Cut with its last bytes passed on: the server's side closes once they are written. */
  draining?: boolean;
}

export interface TcpProxy {
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Freezes every open connection whose client has sent `marker` (ignoring case, within its
   * first 64 KiB); returns how many were frozen.
   */
  freezeWhere(marker: string): number;
  /** Lets every frozen connection go on. */
  thawAll(): void;
  /** Cuts every open connection now (no close frame: as a dropped network); returns how many. */
  cutAll(): number;
  /**
   * Arms a cut at the `n`-th chunk of bytes (1 = the next) that any client sends from now on:
   * that chunk is dropped (`forward` false) or passed on to the server first (`forward` true),
   * then every open connection is cut. Resolves with the chunk's size once cut.
   */
  cutAtClientChunk(n: number, forward: boolean): Promise<number>;
  /** Closes every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port forwarding to 127.0.0.1:`targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const links = new Set<Link>();
  let armed: { left: number; forward: boolean; done: (bytes: number) => void } | undefined;
  const cutAll = () => {
    const n = links.size;
    for (const link of links) {
      link.client.destroy();
      link.upstream.destroy();
    }
    links.clear();
    return n;
  };
  const server: Server = createServer((client) => {
    const upstream = connect({ port: targetPort, host: '127.0.0.1' });
    const link: Link = { client, upstream, seen: '', frozen: false };
    links.add(link);
    client.on('data', (chunk: Buffer) => {
      if (link.seen.length < SEEN_BYTES) link.seen += chunk.toString('latin1').toLowerCase();
      if (armed !== undefined && --armed.left === 0) {
        const { forward, done } = armed;
        armed = undefined;
        // Passed on with the server's side ended after it (so the bytes are not lost in a
        // reset); the client's side goes at once, before any answer can come back.
        if (forward) {
          link.draining = true;
          upstream.end(chunk);
        }
        links.delete(link);
        client.destroy();
        if (!forward) upstream.destroy();
        cutAll();
        done(chunk.length);
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = () => {
      links.delete(link);
      client.destroy();
      if (link.draining !== true) upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    get connections() {
      return links.size;
    },
    freezeWhere(marker) {
      let n = 0;
      for (const link of links) {
        if (link.frozen || !link.seen.includes(marker.toLowerCase())) continue;
        link.frozen = true;
        link.client.pause();
        link.upstream.pause();
        n += 1;
      }
      return n;
    },
    thawAll() {
      for (const link of links) {
        if (!link.frozen) continue;
        link.frozen = false;
        link.client.resume();
        link.upstream.resume();
      }
    },
    cutAll,
    cutAtClientChunk(n, forward) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError('n must be a positive integer');
      return new Promise<number>((resolve) => {
        armed = { left: n, forward, done: resolve };
      });
    },
    async close() {
      armed = undefined;
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      links.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
