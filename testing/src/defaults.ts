/**
 * Settings every test relay (in-process.ts, relay-process.ts) starts with unless the test's own
 * environment says otherwise: first-contact proof-of-work off (`POW_BITS=0`), so that tests of
 * delivery, limits and faults send as they always did. The tests of admission itself
 * (server/src/relay/first-contact.test.ts, the "first contact" tests in relay.test.ts) turn it on
 * and solve challenges with `TestClient.admit`.
 */
export const TEST_RELAY_DEFAULTS: Readonly<Record<string, string>> = { POW_BITS: '0' };
