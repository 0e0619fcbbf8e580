/**
 * The page in real Chromium, served by the real relay with its real headers: the bundle runs
 * under the strict CSP (no CSP violation at all), libsodium's WebAssembly is allowed by
 * 'wasm-unsafe-eval', the pure-JS backend takes over where WebAssembly is switched off (as in
 * Tor Browser at "Safer"), and the page reaches the relay over the wire protocol.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

interface PageRun {
  readonly state: string | undefined;
  readonly backend: string | undefined;
  readonly violations: readonly string[];
  readonly consoleErrors: readonly string[];
  readonly storage: number;
}

async function openPage(
  browser: Browser,
  url: string,
  options: { withoutWebAssembly?: boolean } = {},
): Promise<PageRun> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    if (options.withoutWebAssembly === true) {
      // Tor Browser at "Safer" sets javascript.options.wasm=false: the global is simply absent.
      await page.addInitScript(() => {
        delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
      });
    }
    // Record CSP violations from the first script on.
    await page.addInitScript(() => {
      const w = window as unknown as { __violations: string[] };
      w.__violations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    await page.goto(url);
    await page.waitForFunction(
      () => document.getElementById('status')?.dataset['state'] !== undefined,
      undefined,
      { timeout: 30_000 },
    );
    const inPage = await page.evaluate(() => ({
      state: document.getElementById('status')?.dataset['state'],
      backend: document.documentElement.dataset['backend'],
      violations: (window as unknown as { __violations: string[] }).__violations,
      storage: localStorage.length + sessionStorage.length + document.cookie.length,
    }));
    return { ...inPage, consoleErrors };
  } finally {
    await context.close();
  }
}

let relay: RelayProcess;

beforeAll(async () => {
  relay = await startRelay();
});

afterAll(stopAllRelays);

describe('the page in Chromium', () => {
  it('runs under the strict CSP with libsodium and reaches the relay', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const run = await openPage(browser, relay.url);
      expect(run.violations).toEqual([]);
      expect(run.consoleErrors).toEqual([]);
      expect(run.backend).toBe('libsodium');
      expect(run.state).toBe('ready');
      expect(run.storage).toBe(0);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('falls back to the pure-JS backend when WebAssembly is switched off', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const run = await openPage(browser, relay.url, { withoutWebAssembly: true });
      expect(run.consoleErrors).toEqual([]);
      expect(run.violations).toEqual([]);
      expect(run.backend).toBe('noble');
      expect(run.state).toBe('ready');
    } finally {
      await browser.close();
    }
  }, 60_000);
});
