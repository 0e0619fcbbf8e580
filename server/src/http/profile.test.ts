/**
 * The organization profile's endpoints over a real in-process relay: a publish is kept only if
 * signed by the configured key, unexpired and newer; GET serves exactly the bytes kept, with the
 * headers of every other response; the body limit at MAX_PROFILE_BYTES and one past it.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import type { Primitives } from '@passage/shared/crypto/primitives';
import type { PublicIdentity } from '@passage/shared/crypto/identity';
import { MAX_PROFILE_BYTES } from '@passage/shared/org/limits';
import { encodeProfileBody, profileSignedMessage, readProfile } from '@passage/shared/org/signed';
import { toBase64url } from '@passage/shared/protocol/base64url';
import {
  deviceIdentities,
  organizationKey,
  type OrganizationKey,
} from '@passage/testing/crypto-fixtures';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { signedProfile } from '@passage/testing/org-fixtures';
import { expectedPageCsp } from '@passage/testing/page-csp';
import { PROFILE_PATH } from './profile.js';

jest.setTimeout(60_000);

let p: Primitives;
let org: OrganizationKey;
let other: OrganizationKey;
let devices: PublicIdentity[];
let relay: InProcessRelay;
let bare: InProcessRelay;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  p = await loadSodiumBackend();
  org = organizationKey(p);
  other = organizationKey(p);
  devices = deviceIdentities(p, 2);
  relay = await startInProcessRelay({ env: { ORG_PUBLIC_KEY: toBase64url(org.publicKey) } });
  bare = await startInProcessRelay();
});
afterAll(async () => {
  await relay.stop();
  await bare.stop();
});

const put = (target: InProcessRelay, body: Uint8Array) =>
  fetch(target.url + PROFILE_PATH, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body,
  });

async function answer(res: Response): Promise<[number, unknown]> {
  return [res.status, await res.json()];
}

const profile = (version: number, options = {}) =>
  signedProfile(p, org.seed, devices, now(), { version, ...options });

describe('organization profile endpoints', () => {
  it('answer 404 no_organization on a relay with no ORG_PUBLIC_KEY', async () => {
    expect(await answer(await fetch(bare.url + PROFILE_PATH))).toEqual([
      404,
      { code: 'no_organization' },
    ]);
    expect(await answer(await put(bare, profile(1)))).toEqual([404, { code: 'no_organization' }]);
  });

  it('keeps a signed profile and serves exactly its bytes, with the headers of every response', async () => {
    const bytes = profile(10);
    expect(await answer(await put(relay, bytes))).toEqual([200, { status: 'stored', version: 10 }]);
    const res = await fetch(relay.url + PROFILE_PATH);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toBe(expectedPageCsp());
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  it('answers unchanged to the same profile again (a retried publish)', async () => {
    const bytes = profile(20);
    await put(relay, bytes);
    expect(await answer(await put(relay, bytes))).toEqual([
      200,
      { status: 'unchanged', version: 20 },
    ]);
  });

  it('refuses an older version and another profile under the held version (409), keeping the held one', async () => {
    const held = profile(30);
    await put(relay, held);
    expect(await answer(await put(relay, profile(29)))).toEqual([
      409,
      { code: 'profile_rollback' },
    ]);
    const twin = signedProfile(p, org.seed, devices.slice(1), now(), { version: 30 });
    expect(await answer(await put(relay, twin))).toEqual([409, { code: 'profile_rollback' }]);
    const res = await fetch(relay.url + PROFILE_PATH);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(held);
  });

  it('refuses a profile of another organization (403 profile_wrong_key)', async () => {
    const foreign = signedProfile(p, other.seed, devices, now(), { version: 1000 });
    expect(await answer(await put(relay, foreign))).toEqual([403, { code: 'profile_wrong_key' }]);
  });

  it('refuses a profile that names the key but another signed (403 profile_bad_signature)', async () => {
    const body = readProfile(profile(1001)).body;
    const forged = new Uint8Array([
      ...body,
      ...p.ed25519Sign(other.seed, profileSignedMessage(body)),
    ]);
    expect(await answer(await put(relay, forged))).toEqual([
      403,
      { code: 'profile_bad_signature' },
    ]);
  });

  it('refuses an expired profile (400 profile_expired)', async () => {
    const expired = profile(1002, { issuedAtSeconds: now() - 100, expiresAtSeconds: now() - 1 });
    expect(await answer(await put(relay, expired))).toEqual([400, { code: 'profile_expired' }]);
  });

  it('refuses bytes that are not a profile: an unknown version, truncated, empty', async () => {
    const v2 = profile(1003);
    v2[0] = 2;
    expect(await answer(await put(relay, v2))).toEqual([
      400,
      { code: 'profile_unsupported_version' },
    ]);
    expect(await answer(await put(relay, profile(1004).subarray(0, 100)))).toEqual([
      400,
      { code: 'profile_malformed' },
    ]);
    expect(await answer(await put(relay, new Uint8Array(0)))).toEqual([
      400,
      { code: 'profile_malformed' },
    ]);
  });

  it('takes a body of MAX_PROFILE_BYTES and refuses one byte more (413) unread', async () => {
    const read = readProfile(profile(2000));
    const fixed = encodeProfileBody({ ...read, content: new Uint8Array(0) }).length + 64;
    const body = encodeProfileBody({ ...read, content: new Uint8Array(MAX_PROFILE_BYTES - fixed) });
    const atLimit = new Uint8Array([
      ...body,
      ...p.ed25519Sign(org.seed, profileSignedMessage(body)),
    ]);
    expect(atLimit.length).toBe(MAX_PROFILE_BYTES);
    expect((await put(relay, atLimit)).status).toBe(200);
    const past = new Uint8Array(MAX_PROFILE_BYTES + 1);
    expect(await answer(await put(relay, past))).toEqual([413, { code: 'profile_too_large' }]);
  });

  it('logs the stored version and nothing of the profile or the organization key', async () => {
    await put(relay, profile(3000));
    await relay.waitForLog('organization profile stored');
    const key = toBase64url(org.publicKey);
    for (const line of relay.logs) {
      expect(line).not.toContain(key);
      expect(line).not.toContain('Rainbow');
    }
  });
});
