import { describe, expect, it } from '@jest/globals';
import { MAX_ONE_TIME_PREKEYS_STORED } from '@passage/shared/protocol/limits';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from './config.js';

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('loadConfig', () => {
  it('has a default for everything', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      logLevel: 'info',
      storeLimits: { queueTtlSeconds: 604_800, maxOneTimePrekeys: 100 },
      relay: { maxInflight: 256, pingIntervalMs: 30_000 },
    });
    expect(config.redisUrl).toBeUndefined();
    expect(config.redisClusterNodes).toBeUndefined();
    expect(config.staticDir).toMatch(/client[/\\]dist$/);
  });

  it('reads values and treats an empty variable as unset', () => {
    const config = loadConfig({ PORT: '9000', HOST: '', REDIS_URL: 'redis://127.0.0.1:7000' });
    expect(config.port).toBe(9000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.redisUrl).toBe('redis://127.0.0.1:7000');
  });

  it('reads the first-contact proof-of-work settings, each at its bound, and refuses one past', () => {
    const config = loadConfig({
      POW_BITS: '32',
      POW_MAX_BITS: '32',
      POW_CHALLENGE_TTL_MS: '600000',
      POW_SENDS_PER_ADMISSION: '10000',
    });
    expect(config.relay).toMatchObject({
      powBits: 32,
      powMaxBits: 32,
      powChallengeTtlMs: 600_000,
      powSendsPerAdmission: 10_000,
    });
    expect(loadConfig({ POW_BITS: '0' }).relay.powBits).toBe(0);
    expect(loadConfig({}).relay).toMatchObject({ powBits: 10, powMaxBits: 18 });
    expect(problems({ POW_BITS: '33', POW_MAX_BITS: '32' })[0]).toMatch(/^POW_BITS:/);
    expect(problems({ POW_MAX_BITS: '33' })[0]).toMatch(/^POW_MAX_BITS:/);
    expect(problems({ POW_MAX_BITS: '0' })[0]).toMatch(/^POW_MAX_BITS:/);
    expect(problems({ POW_CHALLENGE_TTL_MS: '600001' })[0]).toMatch(/^POW_CHALLENGE_TTL_MS:/);
    expect(problems({ POW_CHALLENGE_TTL_MS: '999' })[0]).toMatch(/^POW_CHALLENGE_TTL_MS:/);
    expect(problems({ POW_SENDS_PER_ADMISSION: '10001' })[0]).toMatch(/^POW_SENDS_PER_ADMISSION:/);
    expect(problems({ POW_SENDS_PER_ADMISSION: '0' })[0]).toMatch(/^POW_SENDS_PER_ADMISSION:/);
    expect(problems({ POW_BITS: '12', POW_MAX_BITS: '11' })).toEqual([
      'POW_MAX_BITS: must be at least POW_BITS',
    ]);
  });

  it('reads an onion service address, with or without a port or a final slash', () => {
    const onion = `http://${'a2'.repeat(28)}.onion`;
    expect(loadConfig({}).onionLocation).toBeUndefined();
    expect(loadConfig({ ONION_LOCATION: onion }).onionLocation).toBe(onion);
    expect(loadConfig({ ONION_LOCATION: `${onion}/` }).onionLocation).toBe(onion);
    expect(loadConfig({ ONION_LOCATION: `${onion}:8080` }).onionLocation).toBe(`${onion}:8080`);
  });

  it.each([
    ['a path', `http://${'a'.repeat(56)}.onion/contact`],
    ['a query', `http://${'a'.repeat(56)}.onion/?x=1`],
    ['a v2 (16-character) address', `http://${'a'.repeat(16)}.onion`],
    ['55 characters', `http://${'a'.repeat(55)}.onion`],
    ['letters outside base32', `http://${'a'.repeat(55)}1.onion`],
    ['upper case', `http://${'A'.repeat(56)}.onion`],
    ['no scheme', `${'a'.repeat(56)}.onion`],
    ['another scheme', `ftp://${'a'.repeat(56)}.onion`],
    ['a name that is not an onion', 'https://example.org'],
    ['user info', `http://u@${'a'.repeat(56)}.onion`],
  ])('refuses an onion address with %s', (_what, value) => {
    expect(problems({ ONION_LOCATION: value }).join('\n')).toMatch(/^ONION_LOCATION: /);
  });

  it('splits cluster seed nodes', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: 'redis://a:7000, redis://b:7001' });
    expect(config.redisClusterNodes).toEqual(['redis://a:7000', 'redis://b:7001']);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '65536'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['QUEUE_TTL_SECONDS', '0'],
    ['MAX_ONE_TIME_PREKEYS', '101'],
    ['LOG_LEVEL', 'verbose'],
    ['REDIS_URL', 'http://example.com'],
    ['REDIS_CLUSTER_NODES', 'redis://a:1,,'],
    ['MAX_INFLIGHT', '0'],
    // regression: above the most one refill reads, every refill threw and nothing queued went out
    ['MAX_INFLIGHT', '1001'],
  ])('refuses %s=%s and names the variable', (name, value) => {
    const found = problems({ [name]: value });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^${name}: `));
  });

  it('never puts a value in the error, which could be a password', () => {
    const found = problems({ REDIS_URL: 'redis://:hunter2secret@host:notaport' });
    expect(found).toHaveLength(1);
    expect(found.join('')).not.toContain('hunter2secret');
  });

  it.each([
    [
      { REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'redis://b:2' },
      'REDIS_URL and REDIS_CLUSTER_NODES',
    ],
    [{ PING_INTERVAL_MS: '1000', HEARTBEAT_TIMEOUT_MS: '999' }, 'HEARTBEAT_TIMEOUT_MS'],
    [{ MAX_BUFFERED_BYTES: '4096', SLOW_CONSUMER_BYTES: '4096' }, 'SLOW_CONSUMER_BYTES'],
    [{ QUEUE_TTL_SECONDS: '100', DEDUP_TTL_SECONDS: '99' }, 'DEDUP_TTL_SECONDS'],
    [{ STORE_PAUSE_PENDING_OPS: '10', STORE_RESUME_PENDING_OPS: '10' }, 'STORE_RESUME_PENDING_OPS'],
    [{ STORE_PAUSE_PENDING_OPS: '10', MAX_PENDING_STORE_OPS: '10' }, 'MAX_PENDING_STORE_OPS'],
  ])('refuses inconsistent settings %#', (env, name) => {
    expect(problems(env).join('\n')).toContain(name);
  });

  it('accepts backpressure watermarks one apart and a hard bound one above', () => {
    const config = loadConfig({
      STORE_PAUSE_PENDING_OPS: '10',
      STORE_RESUME_PENDING_OPS: '9',
      MAX_PENDING_STORE_OPS: '11',
    });
    expect(config.relay.storePausePendingOps).toBe(10);
    expect(config.relay.storeResumePendingOps).toBe(9);
    expect(config.maxPendingStoreOps).toBe(11);
  });

  it('lists every bad variable at once', () => {
    expect(problems({ PORT: 'x', LOG_LEVEL: 'y' })).toHaveLength(2);
  });
});

describe('CONFIG_VARIABLES', () => {
  it('documents every variable with a description, and each default parses', () => {
    expect(CONFIG_VARIABLES.length).toBeGreaterThan(20);
    for (const v of CONFIG_VARIABLES) {
      expect(v.name).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(v.description.length).toBeGreaterThan(10);
      if (v.default !== '') expect(problems({ [v.name]: v.default })).toEqual([]);
    }
  });
});

// Regressions from the security review of the relay, each named after the defect it pins.
describe('regression: one-time prekeys drained in one burst', () => {
  it('has defaults that let a few fetches through but never a whole device of prekeys at once', () => {
    const { relay: settings } = loadConfig({});
    expect(settings.prekeyFetchesPerSecond).toBe(6 / 60);
    expect(settings.prekeyFetchBurst).toBe(16);
    expect(settings.prekeyFetchBurst).toBeLessThan(MAX_ONE_TIME_PREKEYS_STORED / 4);
    expect(settings.mailboxSendBurst).toBeGreaterThan(MAX_ONE_TIME_PREKEYS_STORED);
  });

  it.each([
    ['PREKEY_FETCHES_PER_MINUTE', '0'],
    ['PREKEY_FETCHES_PER_MINUTE', '1.5'],
    ['PREKEY_FETCH_BURST', '0'],
    ['PREKEY_FETCH_BURST', '-3'],
  ])('refuses to start with %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  });
});
