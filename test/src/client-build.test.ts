/**
 * The built client is checkable (issue "The contact page", a client people can verify): two
 * clean builds give byte-identical files; every script and stylesheet the page names carries
 * the SHA-384 of the file as built, and every JavaScript file is in the page's import map with
 * its digest; and in Chromium a file whose bytes were changed on the way — the first script, or
 * a module the page imports later — is refused, while the unchanged page works.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { deviceIdentities, organizationKey } from '@passage/testing/crypto-fixtures';
import { sampleProfileContent, signedProfile } from '@passage/testing/org-fixtures';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';

const CLIENT_DIR = new URL('../../client/', import.meta.url).pathname;
const DIST = join(CLIENT_DIR, 'dist');
const VITE = new URL('../../node_modules/vite/bin/vite.js', import.meta.url).pathname;
const run = promisify(execFile);

/** Every file under `dir`, by path relative to it, as bytes. */
function filesOf(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path));
    }
  };
  walk(dir);
  return out;
}

const sri = (bytes: Buffer) => `sha384-${createHash('sha384').update(bytes).digest('base64')}`;

describe('the client build', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('is reproducible: two clean builds give the same files, byte for byte', async () => {
    const builds: Map<string, Buffer>[] = [];
    for (let i = 0; i < 2; i++) {
      const out = mkdtempSync(join(tmpdir(), 'passage-build-'));
      dirs.push(out);
      await run(process.execPath, [VITE, 'build', '--outDir', out, '--emptyOutDir'], {
        cwd: CLIENT_DIR,
        timeout: 120_000,
        // As `npm run build` runs it (jest sets NODE_ENV=test, which Vite would build for).
        env: { ...process.env, NODE_ENV: 'production' },
      });
      builds.push(filesOf(out));
    }
    const [a, b] = builds as [Map<string, Buffer>, Map<string, Buffer>];
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    expect(a.size).toBeGreaterThan(5);
    const differ = [...a].filter(([path, bytes]) => !bytes.equals(b.get(path)!)).map(([p]) => p);
    expect(differ).toEqual([]);
    // And the same as the build the relay serves (npm test builds it first).
    const served = filesOf(DIST);
    expect([...served].filter(([p, bytes]) => !bytes.equals(a.get(p) ?? Buffer.alloc(0)))).toEqual(
      [],
    );
  }, 300_000);

  it('names each script and stylesheet with the digest of the file as built', () => {
    const html = readFileSync(join(DIST, 'index.html'), 'utf8');
    const tags = [...html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="(\/[^"]+)"[^>]*>/g)];
    expect(tags.length).toBeGreaterThanOrEqual(2);
    for (const [tag, path] of tags) {
      const integrity = /\bintegrity="([^"]+)"/.exec(tag)?.[1];
      expect({ path, integrity }).toEqual({
        path,
        integrity: sri(readFileSync(join(DIST, path!))),
      });
    }
  });

  it('maps every JavaScript file of the build to its digest in the import map', () => {
    const html = readFileSync(join(DIST, 'index.html'), 'utf8');
    const map = JSON.parse(/<script type="importmap">(.*?)<\/script>/.exec(html)![1]!) as {
      integrity: Record<string, string>;
    };
    const scripts = [...filesOf(DIST).keys()].filter((p) => p.endsWith('.js')).map((p) => `/${p}`);
    expect(Object.keys(map.integrity).sort()).toEqual(scripts.sort());
    for (const [path, value] of Object.entries(map.integrity)) {
      expect(value).toBe(sri(readFileSync(join(DIST, path))));
    }
  });
});

describe('in Chromium, a changed file is refused', () => {
  let relay: RelayProcess;
  let browser: Browser;
  const assets = readdirSync(join(DIST, 'assets'));
  const entry = assets.find((f) => /^index-.*\.js$/.test(f))!;
  const lazy = assets.find((f) => /^load-.*\.js$/.test(f))!;

  beforeAll(async () => {
    const p = await loadPrimitives();
    const org = organizationKey(p);
    relay = await startRelay({ ORG_PUBLIC_KEY: toBase64url(org.publicKey) });
    const now = Math.floor(Date.now() / 1000);
    const put = await fetch(`${relay.url}/v1/org/profile`, {
      method: 'PUT',
      body: Buffer.from(
        signedProfile(p, org.seed, deviceIdentities(p, 1), now, {
          content: sampleProfileContent(),
        }),
      ),
    });
    expect(put.status).toBe(200);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stopAllRelays();
  });

  /** Opens the page with `file` (if any) changed by one appended comment on its way. */
  async function openWith(file: string | undefined) {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
    const errors: string[] = [];
    if (file !== undefined) {
      await context.route(`**/assets/${file}`, async (route) => {
        const response = await route.fetch();
        const body = `${await response.text()}\n//changed`;
        await route.fulfill({ response, body });
      });
    }
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(relay.url);
    return { context, page, errors };
  }

  it('(control) the unchanged page reaches its first screen, with no error', async () => {
    const { context, page, errors } = await openWith(undefined);
    try {
      await page.waitForSelector('main[data-screen="welcome"]', { timeout: 30_000 });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('refuses a changed first script: nothing of the page runs', async () => {
    const { context, page, errors } = await openWith(entry);
    try {
      await page.waitForFunction(() => document.readyState === 'complete');
      await page.waitForTimeout(1_000);
      expect(await page.locator('main[data-screen]').count()).toBe(0);
      expect(errors.join('\n')).toMatch(/integrity/i);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('refuses a changed module imported later: the page stops at a plain error', async () => {
    const { context, page, errors } = await openWith(lazy);
    try {
      await page.waitForSelector('main[data-screen="failed"]', { timeout: 30_000 });
      expect(await page.locator('main[data-screen="welcome"]').count()).toBe(0);
      expect(errors.join('\n')).toMatch(/integrity/i);
    } finally {
      await context.close();
    }
  }, 60_000);
});
