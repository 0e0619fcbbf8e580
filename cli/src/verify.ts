/**
 * `passage client verify <url>`: is the page this relay serves the page the organization built?
 * (docs/threat-model.md, "A relay that serves other code".) It fetches the page and every file
 * it names (its scripts and stylesheet, every module of its import map) and every file the
 * signed profile lists, and compares each file's SHA-384 with
 *
 * - the organization's signed list (`--key <organization key>`: the profile's signature,
 *   expiry and `client.files`, as `passage org publish --client <dist>` signed them), and/or
 * - a build made here (`--dist <client/dist>`: two clean builds are byte-identical, so a build
 *   of the same commit must match byte for byte).
 *
 * Every file either list names must be served identically, and the page may name no file that
 * a list lacks. Any difference is `client_mismatch` (exit 11), with each file's verdict printed.
 * `passage client digests <dist>` prints what `--dist` and `org publish --client` compute.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { asEd25519PublicKey } from '@passage/shared/crypto/keys';
import { verifyOrgProfile } from '@passage/shared/crypto/org-profile';
import { fromBase64url } from '@passage/shared/protocol/base64url';
import type { CommandSpec, ParsedCommand } from './argv.js';
import type { CommandContext } from './commands.js';
import { CliError, CliErrorCode } from './errors.js';

/** The `passage client` commands. */
export const CLIENT_COMMANDS: Readonly<Record<string, CommandSpec>> = {
  verify: { options: ['key', 'dist'], args: 1 },
  digests: { options: [], args: 1 },
};

/** A file's `integrity` value: SHA-384, base64. */
export function integrityOf(bytes: Uint8Array): string {
  return `sha384-${createHash('sha384').update(bytes).digest('base64')}`;
}

/**
 * The digest of every file a relay serves of a built client directory, by URL path
 * (`/index.html`, `/assets/…`); dot files and folders (`.vite/`) are not served and not listed.
 */
export function clientDigests(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith('.')) continue;
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[`/${relative(dir, path).split(sep).join('/')}`] = integrityOf(readFileSync(path));
    }
  };
  try {
    walk(dir);
  } catch (cause) {
    throw new CliError(CliErrorCode.USAGE, `${dir} is not a readable build directory`, { cause });
  }
  if (out['/index.html'] === undefined) {
    throw new CliError(CliErrorCode.USAGE, `${dir} holds no index.html: not a client build`);
  }
  return out;
}

/** The paths of the files a page names: its scripts, stylesheets and import-map modules. */
export function filesNamedBy(html: string): string[] {
  const named = new Set<string>();
  for (const m of html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*"([^"]+)"/gi)) {
    named.add(m[1]!);
  }
  for (const m of html.matchAll(
    /<script\b[^>]*type\s*=\s*"importmap"[^>]*>([\s\S]*?)<\/script>/gi,
  )) {
    try {
      const map = JSON.parse(m[1]!) as { integrity?: Record<string, unknown>; imports?: unknown };
      for (const path of Object.keys(map.integrity ?? {})) named.add(path);
    } catch {
      named.add('(an import map that is not JSON)');
    }
  }
  return [...named].sort();
}

async function fetchBytes(ctx: CommandContext, url: URL): Promise<Uint8Array | null> {
  let res: Response;
  try {
    res = await ctx.fetch(url, { redirect: 'error' });
  } catch (cause) {
    throw new CliError(CliErrorCode.CLIENT_UNREACHABLE, `cannot fetch ${url.href}`, { cause });
  }
  if (res.status === 404) return null;
  if (!res.ok) {
    throw new CliError(CliErrorCode.CLIENT_UNREACHABLE, `${url.href} answered HTTP ${res.status}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

async function verify(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  let base: URL;
  try {
    base = new URL(parsed.args[0]!);
  } catch {
    throw new CliError(CliErrorCode.USAGE, 'client verify needs the page URL (https://…)');
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new CliError(CliErrorCode.USAGE, 'client verify needs an http(s) URL');
  }
  const keyText = parsed.options.get('key');
  const dist = parsed.options.get('dist');
  if (keyText === undefined && dist === undefined) {
    throw new CliError(
      CliErrorCode.USAGE,
      'client verify needs --key <organization key>, --dist <client build>, or both',
    );
  }
  const lists: { readonly name: string; readonly files: Record<string, string> }[] = [];
  if (keyText !== undefined) {
    const key = fromBase64url(keyText);
    if (key === undefined || key.length !== 32) {
      throw new CliError(
        CliErrorCode.USAGE,
        '--key must be the organization key (43 base64url characters)',
      );
    }
    const bytes = await fetchBytes(ctx, new URL('/v1/org/profile', base));
    if (bytes === null) {
      throw new CliError(CliErrorCode.CLIENT_MISMATCH, 'the relay serves no organization profile');
    }
    let files: Record<string, string> | undefined;
    try {
      const profile = verifyOrgProfile(ctx.p, bytes, {
        organizationKey: asEd25519PublicKey(key),
        nowSeconds: ctx.nowSeconds(),
      });
      ctx.out(`profile version ${profile.version}: signed by the organization key`);
      files = profile.content.client?.files;
    } catch (cause) {
      const code = (cause as { code?: unknown }).code;
      throw new CliError(
        CliErrorCode.CLIENT_MISMATCH,
        `the served profile does not verify under this key (${typeof code === 'string' ? code : 'invalid'})`,
        { cause },
      );
    }
    if (files === undefined) {
      throw new CliError(
        CliErrorCode.CLIENT_MISMATCH,
        'the signed profile lists no page files: publish with passage org publish --client <dist>',
      );
    }
    lists.push({ name: 'signed', files });
  }
  if (dist !== undefined) lists.push({ name: 'local build', files: clientDigests(dist) });

  const html = await fetchBytes(ctx, new URL('/', base));
  if (html === null) throw new CliError(CliErrorCode.CLIENT_MISMATCH, 'the relay serves no page');
  const served = new Map<string, string | null>([['/index.html', integrityOf(html)]]);
  const paths = new Set([
    '/index.html',
    ...filesNamedBy(new TextDecoder().decode(html)),
    ...lists.flatMap((l) => Object.keys(l.files)),
  ]);
  for (const path of [...paths].sort()) {
    if (served.has(path)) continue;
    const bytes = path.startsWith('/') ? await fetchBytes(ctx, new URL(path, base)) : null;
    served.set(path, bytes === null ? null : integrityOf(bytes));
  }

  let bad = 0;
  for (const [path, digest] of [...served].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const problems: string[] = [];
    if (digest === null) problems.push('not served');
    for (const list of lists) {
      const expected = list.files[path];
      if (expected === undefined) problems.push(`not in the ${list.name}`);
      else if (digest !== null && expected !== digest)
        problems.push(`differs from the ${list.name}`);
    }
    if (problems.length > 0) bad++;
    ctx.out(
      `${problems.length === 0 ? 'ok  ' : 'FAIL'} ${path}${problems.length === 0 ? '' : `: ${problems.join(', ')}`}`,
    );
  }
  const against = lists.map((l) => l.name).join(' and the ');
  if (bad > 0) {
    throw new CliError(
      CliErrorCode.CLIENT_MISMATCH,
      `${bad} of ${served.size} files do not match the ${against}: do not trust this page`,
    );
  }
  ctx.out(`verified: all ${served.size} files match the ${against}`);
}

function digests(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  for (const [path, digest] of Object.entries(clientDigests(parsed.args[0]!))) {
    ctx.out(`${digest} ${path}`);
  }
  return Promise.resolve();
}

/** Runs a `passage client` command. */
export function runClientCommand(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  return parsed.command === 'verify' ? verify(ctx, parsed) : digests(ctx, parsed);
}
