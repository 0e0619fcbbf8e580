/**
 * A loopback HTTP front that gzips text responses, for the page benchmark (page-bench.ts).
 *
 * The relay serves the page's files uncompressed (`express.static`); a deployment puts a TLS
 * front in front of it, which compresses them, and the bundle budget is stated in gzipped bytes.
 * The bench measures the page as such a front would serve it: every request is passed to the
 * relay unchanged, and a response whose type is HTML, JavaScript, CSS or JSON goes back gzipped
 * (level 9, as the budget counts) when the browser asks for gzip. WebSocket upgrades are piped
 * through as bytes.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { createGzip } from 'node:zlib';

/** The gzip level of the front (the budget's, testing/src/bundle-budget.ts). */
export const FRONT_GZIP_LEVEL = 9;

const COMPRESSIBLE = /^(text\/|application\/(javascript|json)|image\/svg\+xml)/;

export interface GzipFront {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers['accept-encoding'];
  return typeof header === 'string' && /\bgzip\b/.test(header);
}

/** Starts the front on a free loopback port, in front of the relay at 127.0.0.1:`relayPort`. */
export async function startGzipFront(relayPort: number): Promise<GzipFront> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const upstream = request(
      {
        host: '127.0.0.1',
        port: relayPort,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'accept-encoding': 'identity' },
      },
      (answer) => {
        const type = String(answer.headers['content-type'] ?? '');
        const headers = { ...answer.headers };
        if (!acceptsGzip(req) || !COMPRESSIBLE.test(type) || req.method === 'HEAD') {
          res.writeHead(answer.statusCode ?? 502, headers);
          answer.pipe(res);
          return;
        }
        delete headers['content-length'];
        headers['content-encoding'] = 'gzip';
        headers['vary'] = 'Accept-Encoding';
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(createGzip({ level: FRONT_GZIP_LEVEL })).pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req, socket, head) => {
    const upstream = connect(relayPort, '127.0.0.1', () => {
      const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      }
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
