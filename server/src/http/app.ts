/**
 * The HTTP side of the relay: the static client, `/healthz` and `/readyz`, the organization
 * profile (`/v1/org/profile`, profile.ts), attachment blobs (`/v1/blobs/<id>`, blobs.ts), and
 * the headers that
 * make the page hard to attack and leave nothing behind: a strict CSP with no third-party
 * origin and no inline script, `Cache-Control: no-store` on every response, no referrer, no
 * cookies. Requests are not logged: an access log is a list of who talked to whom.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import express, { type ErrorRequestHandler, type Express } from 'express';
import helmet from 'helmet';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { blobRoutes } from './blobs.js';
import { contentSecurityPolicy, importMapHashes } from './csp.js';
import { profileRoutes } from './profile.js';

export { CONTENT_SECURITY_POLICY } from './csp.js';

export interface AppOptions {
  /** Directory of the built client (index.html and assets). */
  readonly staticDir: string;
  /** True while the relay should get traffic: store reachable and not shutting down. */
  readonly isReady: () => boolean;
  readonly logger: Logger;
  /** The store that holds the organization profile (profile.ts). */
  readonly store: Store;
  /** The configured organization key (base64url), if any. */
  readonly organizationKey?: string | undefined;
  /**
   * The onion service's origin (`http://….onion`, config `ONION_LOCATION`): page responses
   * carry `Onion-Location: <origin><path>`, and Tor Browser offers to go there. Not sent on
   * responses reached under an onion host already, nor on the API and assets.
   */
  readonly onionLocation?: string | undefined;
}

/** Whether a request came under an onion host name (`Host: ….onion[:port]`). */
export function isOnionHost(host: string | undefined): boolean {
  return host !== undefined && /^[a-z2-7]{56}\.onion(:\d{1,5})?$/i.test(host);
}

/** Builds the express app. WebSocket upgrades are handled by the relay, not here. */
export function createApp(options: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Nothing derived from proxy headers (X-Forwarded-For, …) is trusted or used.
  app.set('trust proxy', false);

  app.use(
    helmet({
      contentSecurityPolicy: false,
      referrerPolicy: { policy: 'no-referrer' },
      xFrameOptions: { action: 'deny' },
    }),
  );
  // The page is read once and served from memory, and its import map (module digests) is the
  // one inline script allowed, by its hash: the bytes served and the hash always agree, even if
  // the build on disk is replaced under a running relay.
  let builtPage: Buffer | undefined;
  try {
    builtPage = readFileSync(join(options.staticDir, 'index.html'));
  } catch {
    // No built page: nothing inline to allow, and no page to serve.
  }
  const policy = contentSecurityPolicy(importMapHashes(builtPage?.toString('utf8') ?? ''));
  app.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', policy);
    // Nothing the relay serves may be kept by a browser or a proxy: a seized phone's cache
    // must not show that the page was visited.
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  const onion = options.onionLocation;
  if (onion !== undefined) {
    // The page (`/`, `/index.html`, and what the single-page fallback serves), not the API,
    // assets or blobs.
    app.use((req, res, next) => {
      const page =
        (req.method === 'GET' || req.method === 'HEAD') &&
        !/^\/(v1\/|assets\/|healthz$|readyz$)/.test(req.path) &&
        !/\.[a-z0-9]+$/i.test(req.path.replace(/\/index\.html$/, '/'));
      // Only an origin-form target (`/path?query`): an absolute-form one
      // (`GET http://other.example/x`) is not echoed, and the result must stay on the onion.
      const target = req.originalUrl;
      if (page && !isOnionHost(req.headers.host) && /^\/(?!\/)/.test(target)) {
        const location = new URL(target, onion);
        if (location.origin === new URL(onion).origin) {
          res.setHeader('Onion-Location', location.href);
        }
      }
      next();
    });
  }

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = options.isReady();
    res.status(ready ? 200 : 503).json({ ready });
  });

  app.use(
    profileRoutes({
      store: options.store,
      organizationKey: options.organizationKey,
      logger: options.logger,
    }),
  );

  app.use(blobRoutes({ store: options.store }));

  const sendPage: express.RequestHandler = (_req, res, next) => {
    if (builtPage === undefined) {
      next();
      return;
    }
    res.type('html').send(builtPage);
  };
  app.get(['/', '/index.html'], sendPage);
  app.use(
    express.static(options.staticDir, {
      cacheControl: false,
      etag: false,
      lastModified: false,
      dotfiles: 'ignore',
      index: false,
      fallthrough: true,
    }),
  );
  // Single-page app: any other GET is the page itself (express 5 path syntax).
  app.get('/{*splat}', sendPage);

  app.use((_req, res) => {
    res.status(404).type('text/plain').send('Not found');
  });
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    const status =
      typeof (err as { status?: unknown }).status === 'number'
        ? (err as { status: number }).status
        : 500;
    if (status >= 500) options.logger.error({ err }, 'http request failed');
    res
      .status(status)
      .type('text/plain')
      .send(status >= 500 ? 'Internal error' : 'Bad request');
  };
  app.use(onError);
  return app;
}
