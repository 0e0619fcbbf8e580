/**
 * The HTTP side over a real server: headers on every kind of response, health, readiness, and
 * upgrade refusals.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestClient } from '@passage/testing/test-client';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { CONTENT_SECURITY_POLICY } from './app.js';

// Real sockets on a loaded 2-core machine: generous, and above the harness's own waits.
jest.setTimeout(60_000);

const EXPECTED_CSP =
  "default-src 'none';script-src 'self' 'wasm-unsafe-eval';style-src 'self';img-src 'self';" +
  "connect-src 'self';font-src 'self';base-uri 'none';form-action 'none';frame-ancestors 'none'";

/** A raw upgrade request; resolves with the HTTP status the server answered. */
function upgradeStatus(port: number, path: string, protocol?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...(protocol === undefined ? {} : { 'Sec-WebSocket-Protocol': protocol }),
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP', () => {
  let relay: InProcessRelay;
  let staticDir: string;
  beforeAll(async () => {
    staticDir = mkdtempSync(join(tmpdir(), 'passage-static-'));
    mkdirSync(join(staticDir, 'assets'));
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>Passage</title>');
    writeFileSync(join(staticDir, 'assets', 'app.js'), 'export {};');
    writeFileSync(join(staticDir, '.secret'), 'not for anyone');
    relay = await startInProcessRelay({ env: { STATIC_DIR: staticDir } });
  });
  afterAll(async () => {
    await relay.stop();
    rmSync(staticDir, { recursive: true, force: true });
  });

  it('exports exactly the intended CSP', () => {
    expect(CONTENT_SECURITY_POLICY).toBe(EXPECTED_CSP);
  });

  it.each(['/', '/assets/app.js', '/case/123', '/healthz', '/readyz', '/missing.js', '/.secret'])(
    'sends the security headers, no-store and no cookie on %s',
    async (path) => {
      const res = await fetch(relay.url + path);
      await res.arrayBuffer();
      expect(res.headers.get('content-security-policy')).toBe(EXPECTED_CSP);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('set-cookie')).toBeNull();
      expect(res.headers.get('x-powered-by')).toBeNull();
      expect(res.headers.get('etag')).toBeNull();
      expect(res.headers.get('last-modified')).toBeNull();
    },
  );

  it('serves the client and falls back to index.html for app paths', async () => {
    const asset = await fetch(`${relay.url}/assets/app.js`);
    expect(asset.status).toBe(200);
    expect(await asset.text()).toBe('export {};');
    const deep = await fetch(`${relay.url}/case/123`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('<title>Passage</title>');
  });

  it('serves the page as it was at start, so that it always matches its CSP hash', async () => {
    const before = await (await fetch(`${relay.url}/`)).text();
    expect(before).toContain('<title>Passage</title>');
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>Replaced</title>');
    try {
      for (const path of ['/', '/index.html', '/case/123']) {
        const res = await fetch(`${relay.url}${path}`);
        expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
        expect(await res.text()).toBe(before);
      }
    } finally {
      writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>Passage</title>');
    }
  });

  it('does not serve dot files', async () => {
    const res = await fetch(`${relay.url}/.secret`);
    expect(await res.text()).not.toContain('not for anyone');
  });

  it('answers 404 to a method other than GET on an unknown path', async () => {
    const res = await fetch(`${relay.url}/anything`, { method: 'POST' });
    expect(res.status).toBe(404);
  });

  it('reports alive and ready', async () => {
    const health = await fetch(`${relay.url}/healthz`);
    expect([health.status, await health.json()]).toEqual([200, { status: 'ok' }]);
    const ready = await fetch(`${relay.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { ready: true }]);
  });

  it('refuses an upgrade without the passage.v1 subprotocol with 400', async () => {
    expect(await upgradeStatus(relay.port, '/v1/ws')).toBe(400);
    expect(await upgradeStatus(relay.port, '/v1/ws', 'passage.v2, chat')).toBe(400);
    await expect(TestClient.connect(relay.wsUrl, { protocols: ['other'] })).rejects.toThrow(
      'HTTP 400',
    );
  });

  it('refuses an upgrade on another path with 404', async () => {
    expect(await upgradeStatus(relay.port, '/ws', 'passage.v1')).toBe(404);
    expect(await upgradeStatus(relay.port, '/v1/ws/x', 'passage.v1')).toBe(404);
  });

  it('accepts an upgrade that offers passage.v1 among others', async () => {
    expect(await upgradeStatus(relay.port, '/v1/ws?x=1', 'chat, passage.v1')).toBe(101);
  });
});

describe('readiness', () => {
  it('says 503 when the store is not ready, while staying alive', async () => {
    const relay = await startInProcessRelay();
    try {
      await relay.store.close(); // a closed MemoryStore reports not ready
      const ready = await fetch(`${relay.url}/readyz`);
      expect([ready.status, await ready.json()]).toEqual([503, { ready: false }]);
      expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
    } finally {
      await relay.server.shutdown(1_000);
    }
  });
});

describe('Onion-Location', () => {
  const onion = `http://${'b3'.repeat(28)}.onion`;
  let relay: InProcessRelay;
  let plain: InProcessRelay;
  let staticDir: string;
  beforeAll(async () => {
    staticDir = mkdtempSync(join(tmpdir(), 'passage-static-'));
    mkdirSync(join(staticDir, 'assets'));
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>Passage</title>');
    writeFileSync(join(staticDir, 'assets', 'app.js'), 'export {};');
    [relay, plain] = await Promise.all([
      startInProcessRelay({ env: { STATIC_DIR: staticDir, ONION_LOCATION: onion } }),
      startInProcessRelay({ env: { STATIC_DIR: staticDir } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([relay.stop(), plain.stop()]);
    rmSync(staticDir, { recursive: true, force: true });
  });

  /** The Onion-Location a GET answers (null: none), with an optional Host header. */
  function onionLocationOf(port: number, path: string, host?: string): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path, headers: host === undefined ? {} : { Host: host } },
        (res) => {
          res.resume();
          const value = res.headers['onion-location'];
          resolve(typeof value === 'string' ? value : null);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it('names the onion service, with the path, on the page and its app paths', async () => {
    expect(await onionLocationOf(relay.port, '/')).toBe(`${onion}/`);
    expect(await onionLocationOf(relay.port, '/index.html')).toBe(`${onion}/index.html`);
    expect(await onionLocationOf(relay.port, '/case/123')).toBe(`${onion}/case/123`);
  });

  it('is not sent on assets, the API, blobs or health', async () => {
    expect(await onionLocationOf(relay.port, '/assets/app.js')).toBeNull();
    expect(await onionLocationOf(relay.port, '/v1/org/profile')).toBeNull();
    expect(await onionLocationOf(relay.port, `/v1/blobs/${'A'.repeat(22)}`)).toBeNull();
    expect(await onionLocationOf(relay.port, '/healthz')).toBeNull();
    expect(await onionLocationOf(relay.port, '/readyz')).toBeNull();
  });

  it('is not sent to a request that came under an onion host already', async () => {
    const host = `${'b3'.repeat(28)}.onion`;
    expect(await onionLocationOf(relay.port, '/', host)).toBeNull();
    expect(await onionLocationOf(relay.port, '/', `${host}:80`)).toBeNull();
    // A name that only ends like one is not an onion host.
    expect(await onionLocationOf(relay.port, '/', 'example.onion.org')).toBe(`${onion}/`);
  });

  it('echoes only an origin-form request target, never an absolute-form one', async () => {
    // A raw request line with an absolute URL as its target: the header names no other site.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port: relay.port }, () =>
        socket.write(
          'GET http://evil.example/x?a=b HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
        ),
      );
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    const header = /^onion-location: (.*)$/im.exec(raw)?.[1]?.trim();
    expect(header === undefined || header.startsWith(`${onion}/`)).toBe(true);
    expect(raw).not.toContain('evil.example/x?a=b\r\n');
    expect(header ?? '').not.toContain('evil.example');
    // And a path that starts like a network-path reference is not turned into another host.
    expect(await onionLocationOf(relay.port, '//evil.example/x')).toBeNull();
  });

  it('is never sent without ONION_LOCATION', async () => {
    expect(await onionLocationOf(plain.port, '/')).toBeNull();
    expect(await onionLocationOf(plain.port, '/case/123')).toBeNull();
  });
});
