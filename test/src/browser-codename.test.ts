/**
 * The codename worker in real Chromium, under the relay's CSP: the page hands it a codename,
 * the worker stretches it off the page's thread (Argon2id, ADR 0007) and answers with the same
 * keys as the crypto core in Node; input that is not a codename is refused with its code. The
 * worker is a file of the page's origin (never a Blob URL) and there is no CSP violation.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import { deriveCodenameKeys, generateCodename } from '@passage/shared/crypto/codename';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { toHex } from '@passage/shared/crypto/encoding';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];

function builtModule(): { module: string; worker: string } {
  const manifest = JSON.parse(
    readFileSync(new URL('../../client/dist/.vite/manifest.json', import.meta.url), 'utf8'),
  ) as Record<string, { file: string; assets?: string[]; imports?: string[] }>;
  const entry = manifest['src/codename/derive-in-worker.ts'];
  // The worker file is an asset of the entry or of a chunk it imports (the page shares it).
  const chunks = [entry, ...(entry?.imports ?? []).map((i) => manifest[i])];
  const worker = chunks.flatMap((c) => c?.assets ?? []).find((f) => f.includes('derive-worker'));
  if (entry === undefined || worker === undefined)
    throw new Error('client not built with the worker');
  return { module: `/${entry.file}`, worker: `/${worker}` };
}

interface Run {
  readonly ok: boolean;
  readonly code?: string | undefined;
  readonly keys?: { signingSeed: string; x25519Secret: string; mailboxKey: string } | undefined;
  readonly backend?: string | undefined;
  readonly violations: string[];
  readonly workers: string[];
}

let p: Primitives;
let relay: RelayProcess;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  p = await loadPrimitives();
  relay = await startRelay();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const context = await browser.newContext();
  page = await context.newPage();
  await page.addInitScript(() => {
    const w = window as unknown as { __violations: string[] };
    w.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const workers: string[] = [];
  page.on('worker', (w) => workers.push(w.url()));
  (page as unknown as { __workers: string[] }).__workers = workers;
  await page.goto(relay.url);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stopAllRelays();
});

async function derive(codename: string): Promise<Run> {
  const { module } = builtModule();
  const run = await page.evaluate(
    async ({ module, codename }) => {
      const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
      const m = (await import(module)) as {
        deriveInWorker(c: string): Promise<{
          keys: { signingSeed: Uint8Array; x25519Secret: Uint8Array; mailboxKey: Uint8Array };
          backend: string;
        }>;
      };
      const violations = (window as unknown as { __violations: string[] }).__violations;
      try {
        const d = await m.deriveInWorker(codename);
        return {
          ok: true,
          keys: {
            signingSeed: hex(d.keys.signingSeed),
            x25519Secret: hex(d.keys.x25519Secret),
            mailboxKey: hex(d.keys.mailboxKey),
          },
          backend: d.backend,
          violations,
        };
      } catch (error) {
        return { ok: false, code: (error as { code?: string }).code, violations };
      }
    },
    { module, codename },
  );
  return { ...run, workers: [...(page as unknown as { __workers: string[] }).__workers] };
}

describe('the codename worker in Chromium', () => {
  it('derives the keys the crypto core derives, from a file of the page’s origin', async () => {
    const codename = generateCodename(p);
    const expected = deriveCodenameKeys(p, codename);
    const run = await derive(codename);
    expect(run.ok).toBe(true);
    expect(run.keys).toEqual({
      signingSeed: toHex(expected.signingSeed),
      x25519Secret: toHex(expected.x25519Secret),
      mailboxKey: toHex(expected.mailboxKey),
    });
    expect(run.backend).toBe('libsodium');
    expect(run.violations).toEqual([]);
    expect(run.workers.every((u) => u.startsWith(`${relay.url}/assets/`))).toBe(true);
    expect(run.workers.some((u) => u.includes('derive-worker'))).toBe(true);
  }, 60_000);

  it('gives the same keys for the same words typed with other case and spacing', async () => {
    const codename = generateCodename(p);
    const messy = `  ${codename.toUpperCase().split(' ').join('   ')} `;
    const [a, b] = [await derive(codename), await derive(messy)];
    expect(a.ok && b.ok).toBe(true);
    expect(b.keys).toEqual(a.keys);
  }, 60_000);

  it.each([
    ['an unknown word', 'abacus abdomen abdominal abide abiding ability notaword'],
    ['too few words', 'abacus abdomen'],
    ['nothing', ''],
  ])(
    'refuses %s with invalid_codename',
    async (_name, input) => {
      const run = await derive(input);
      expect(run).toMatchObject({ ok: false, code: 'invalid_codename' });
      expect(run.violations).toEqual([]);
    },
    60_000,
  );

  it('refuses input past the length bound as not a codename, without starting a worker', async () => {
    const before = (await derive(generateCodename(p))).workers.length;
    const run = await derive('abacus '.repeat(100));
    expect(run).toMatchObject({ ok: false, code: 'invalid_codename' });
    expect(run.workers.length).toBe(before);
  }, 60_000);
});
