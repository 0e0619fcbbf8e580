/**
 * Issue 7 §3: one anonymous client floods a relay at its maximum while legitimate pairs talk;
 * none of their messages may be lost. Latency under the flood is a measurement, not a test
 * assertion: `npm run bench:flood` reports the p99 ratio.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runFlood } from '@passage/testing/flood';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';

describe('a flood next to legitimate pairs', () => {
  let relay: RelayProcess;
  beforeAll(async () => {
    // The relay's own defaults, proof-of-work included (the harness turns it off otherwise).
    relay = await startRelay({ POW_BITS: '10' });
  }, 60_000);
  afterAll(stopAllRelays);

  it('loses no legitimate message while one client floods at its maximum', async () => {
    const result = await runFlood({
      wsUrl: relay.wsUrl,
      pairs: 20,
      messagesPerPair: 10,
      intervalMs: 20,
      flood: true,
    });
    expect(result.sent).toBe(200);
    expect(result.lost).toBe(0);
    expect(result.delivered).toBe(200);
    // The flooder did flood, and was held back rather than let through.
    expect(result.flooder.sent).toBeGreaterThan(result.flooder.stored);
  }, 120_000);
});
