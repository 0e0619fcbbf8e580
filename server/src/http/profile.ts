/**
 * The organization profile's endpoints (docs/adr/0013-organization-profile-in-the-store.md):
 *
 *   GET /v1/org/profile   the signed profile, as `application/octet-stream`; 404 when the relay
 *                         has no organization configured or holds no unexpired profile
 *   PUT /v1/org/profile   `passage org publish`: a signed profile in the body (at most
 *                         MAX_PROFILE_BYTES); kept until its expiry if it is signed by the
 *                         configured organization key and newer than the one held
 *
 * The relay checks size, format version, key, signature and expiry (`org/signed.ts`, with
 * Node's Ed25519); it reads neither the roster nor the questionnaire. The signature is the
 * publish's only authorization: whoever holds the organization key may publish, nobody else,
 * and the operator needs no part in it. Answers are JSON `{ code }` on refusal, with the
 * profile's stable error codes. Like every response, `Cache-Control: no-store`: a phone's cache
 * must not keep which organization's page was opened.
 */
import express, { type ErrorRequestHandler, type Router } from 'express';
import { OrgError, OrgErrorCode } from '@passage/shared/org/errors';
import { MAX_PROFILE_BYTES } from '@passage/shared/org/limits';
import { checkSignedProfile } from '@passage/shared/org/signed';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import type { Logger } from '../log.js';
import { verifyEd25519 } from '../relay/auth.js';
import { StoreError, type Store } from '../store/store.js';

/** The path of both endpoints. */
export const PROFILE_PATH = '/v1/org/profile';

export interface ProfileRouteOptions {
  readonly store: Store;
  /** The configured organization key (base64url); undefined → both endpoints answer 404. */
  readonly organizationKey: string | undefined;
  readonly logger: Logger;
  /** Unix seconds; the relay's clock. */
  readonly nowSeconds?: () => number;
}

/** HTTP status of each refusal of a publish. */
const REFUSAL_STATUS: Readonly<Record<OrgErrorCode, number>> = {
  profile_too_large: 413,
  profile_unsupported_version: 400,
  profile_malformed: 400,
  profile_wrong_key: 403,
  profile_bad_signature: 403,
  profile_invalid: 400,
  profile_expired: 400,
  profile_rollback: 409,
  profile_roster_invalid: 400,
  profile_roster_expired: 400,
  profile_roster_rollback: 409,
};

function storeFailure(res: express.Response, err: unknown): void {
  const code = err instanceof StoreError ? err.code : 'internal';
  res.status(503).json({ code: code === 'overloaded' ? 'overloaded' : 'unavailable' });
}

export function profileRoutes(options: ProfileRouteOptions): Router {
  const router = express.Router();
  const nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  const key = options.organizationKey;
  const keyBytes = key === undefined ? undefined : fromBase64url(key);

  router.get(PROFILE_PATH, (_req, res) => {
    if (key === undefined) {
      res.status(404).json({ code: 'no_organization' });
      return;
    }
    options.store.getProfile(key).then(
      (profile) => {
        const bytes = profile === null ? undefined : fromBase64url(profile);
        if (bytes === undefined) {
          res.status(404).json({ code: 'no_profile' });
          return;
        }
        res.status(200).type('application/octet-stream').send(Buffer.from(bytes));
      },
      (err: unknown) => storeFailure(res, err),
    );
  });

  router.put(
    PROFILE_PATH,
    (_req, res, next) => {
      if (key === undefined) res.status(404).json({ code: 'no_organization' });
      else next();
    },
    // Any content type: the body is taken as bytes, up to the limit (413 past it, unread).
    express.raw({ type: () => true, limit: MAX_PROFILE_BYTES }),
    (req, res) => {
      const body: unknown = req.body;
      const bytes = Buffer.isBuffer(body) ? new Uint8Array(body) : new Uint8Array(0);
      let version: number;
      let expiresAtSeconds: number;
      try {
        const read = checkSignedProfile(bytes, {
          organizationKey: keyBytes!,
          verify: verifyEd25519,
          nowSeconds: nowSeconds(),
        });
        version = read.version;
        expiresAtSeconds = read.expiresAtSeconds;
      } catch (err) {
        if (!(err instanceof OrgError)) throw err;
        res.status(REFUSAL_STATUS[err.code]).json({ code: err.code });
        return;
      }
      options.store
        .putProfile(key!, { version, expiresAtSeconds, profile: toBase64url(bytes) })
        .then(
          (result) => {
            if (result === 'stale') {
              res.status(409).json({ code: OrgErrorCode.ROLLBACK });
            } else if (result === 'expired') {
              res.status(400).json({ code: OrgErrorCode.EXPIRED });
            } else {
              if (result === 'stored') {
                options.logger.info({ version }, 'organization profile stored');
              }
              res.status(200).json({ status: result, version });
            }
          },
          (err: unknown) => storeFailure(res, err),
        );
    },
  );

  // A body past the limit, or one that cannot be read: the profile's own code, as JSON.
  const onBodyError: ErrorRequestHandler = (err, _req, res, next) => {
    const status = (err as { status?: unknown }).status;
    if (status === 413) res.status(413).json({ code: OrgErrorCode.TOO_LARGE });
    else if (typeof status === 'number' && status < 500) {
      res.status(400).json({ code: OrgErrorCode.MALFORMED });
    } else next(err);
  };
  router.use(PROFILE_PATH, onBodyError);
  return router;
}
