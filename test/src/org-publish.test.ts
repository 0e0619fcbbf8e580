/**
 * The organization's whole set-up path with real parts: the `passage` CLI as a child process,
 * two relay processes on one redis-server. `org init` → relays configured with its key → an
 * invite → an enrolment request (made as the device will make it) → `org approve` →
 * `org publish --relay` to one relay → a contact's fetch from the other, verified against the
 * pinned key. Then a removal and a second publish: the removed device is in no served roster,
 * and the older profile cannot be put back.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createEnrolmentRequest, decodeInvite } from '@passage/shared/crypto/enrolment';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { asEd25519PublicKey } from '@passage/shared/crypto/keys';
import { verifyOrgProfile, type OrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { keysWithoutTtl, startRedis, type RedisServer } from '@passage/testing/redis';
import { runCli, type CliRun } from '@passage/testing/cli-process';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';

jest.setTimeout(180_000);

const PASSPHRASE = 'an organization passphrase';

function cli(args: readonly string[]): Promise<CliRun> {
  return runCli([...args, '--dir', dir], { PASSAGE_PASSPHRASE: PASSPHRASE });
}

let p: Primitives;
let root: string;
let dir: string;
let redis: RedisServer;
let a: RelayProcess;
let b: RelayProcess;
let orgKey: string;

beforeAll(async () => {
  p = await loadSodiumBackend();
  root = mkdtempSync(join(tmpdir(), 'passage-org-'));
  dir = join(root, 'org');
  const init = await cli(['org', 'init', '--name', 'Rainbow Shelter']);
  expect(init.status).toBe(0);
  orgKey = /ORG_PUBLIC_KEY=([A-Za-z0-9_-]{43})/.exec(init.stdout)![1]!;
  redis = await startRedis();
  const env = { REDIS_URL: redis.url, ORG_PUBLIC_KEY: orgKey };
  [a, b] = await Promise.all([startRelay(env), startRelay(env)]);
});

afterAll(async () => {
  await stopAllRelays();
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

async function enrol(coordinator: string): Promise<DeviceIdentity> {
  const invite = await cli(['org', 'invite', '--coordinator', coordinator]);
  expect(invite.status).toBe(0);
  const code = invite.stdout.split('\n').find((l) => l.startsWith('passage-invite:'))!;
  const device = DeviceIdentity.generate(p);
  const request = createEnrolmentRequest(p, {
    invite: decodeInvite(p, code),
    device,
    label: `${coordinator}'s phone`,
    nowSeconds: Math.floor(Date.now() / 1000),
  });
  const file = join(root, `${coordinator}.request`);
  writeFileSync(file, toBase64url(request));
  expect((await cli(['org', 'enrolments', '--import', file])).status).toBe(0);
  expect((await cli(['org', 'approve', device.publicIdentity.id.slice(0, 16)])).status).toBe(0);
  return device;
}

/** What a contact's page does: fetch the profile and verify it against the pinned key. */
async function fetchVerified(relay: RelayProcess, last: OrgProfile | null): Promise<OrgProfile> {
  const res = await fetch(`${relay.url}/v1/org/profile`);
  expect(res.status).toBe(200);
  return verifyOrgProfile(p, new Uint8Array(await res.arrayBuffer()), {
    organizationKey: asEd25519PublicKey(fromBase64url(orgKey)!),
    nowSeconds: Math.floor(Date.now() / 1000),
    lastAccepted: last,
  });
}

describe('organization set-up over real relays', () => {
  it('serves nothing before the first publish', async () => {
    expect((await fetch(`${b.url}/v1/org/profile`)).status).toBe(404);
  });

  it('publishes through one relay and serves the verified profile from the other; a removed device is in no later roster', async () => {
    const anna = await enrol('anna');
    const boris = await enrol('boris');
    const published = await cli(['org', 'publish', '--relay', a.url]);
    expect(published.status).toBe(0);
    expect(published.stdout).toContain(`published to ${a.url}`);

    const first = await fetchVerified(b, null);
    expect(first.content.displayName).toBe('Rainbow Shelter');
    expect(first.roster.devices.map((d) => d.id).sort()).toEqual(
      [anna.publicIdentity.id, boris.publicIdentity.id].sort(),
    );
    const firstBytes = first.bytes;

    expect((await cli(['org', 'remove', 'anna'])).status).toBe(0);
    expect((await cli(['org', 'publish', '--relay', b.url])).status).toBe(0);
    const second = await fetchVerified(a, first);
    expect(second.version).toBe(first.version + 1);
    expect(second.roster.devices.map((d) => d.id)).toEqual([boris.publicIdentity.id]);

    // The relay, or anyone, replaying the first profile is refused: the held one is newer.
    const replay = await fetch(`${a.url}/v1/org/profile`, {
      method: 'PUT',
      body: Buffer.from(firstBytes),
    });
    expect([replay.status, await replay.json()]).toEqual([409, { code: 'profile_rollback' }]);
    const served = await fetchVerified(b, second);
    expect(served.version).toBe(second.version);
  });

  it('leaves no key without a TTL in Redis', async () => {
    expect(await keysWithoutTtl(redis.url)).toEqual([]);
  });

  it('logs nothing of the organization (key, name) on either relay', () => {
    for (const relay of [a, b]) {
      expect(relay.stdout()).not.toContain(orgKey);
      expect(relay.stdout()).not.toContain('Rainbow');
    }
  });
});
