/**
 * The Content-Security-Policy the relay sends, and the one inline script it allows: the page's
 * import map of module digests (client/src/build/integrity.ts), by its SHA-256, so that the
 * browser checks every module the page imports. Nothing else inline runs: an import map named
 * by hash cannot be swapped for another, and an inline script of any other type has no hash in
 * the policy.
 */
import { createHash } from 'node:crypto';

/**
 * The policy without the import map's hash. `'wasm-unsafe-eval'` lets libsodium's WebAssembly
 * compile without allowing JavaScript `eval`.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none';script-src 'self' 'wasm-unsafe-eval';style-src 'self';img-src 'self';" +
  "connect-src 'self';font-src 'self';base-uri 'none';form-action 'none';frame-ancestors 'none'";

const IMPORT_MAP = /<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi;

/** The CSP hash sources (`'sha256-…'`) of the import maps inline in `html`. */
export function importMapHashes(html: string): string[] {
  const hashes: string[] = [];
  for (const m of html.matchAll(IMPORT_MAP)) {
    const attrs = m[1]!;
    if (!/\btype\s*=\s*["']?importmap["']?(\s|$)/i.test(attrs) || /\bsrc\s*=/i.test(attrs))
      continue;
    const digest = createHash('sha256').update(m[2]!, 'utf8').digest('base64');
    hashes.push(`'sha256-${digest}'`);
  }
  return hashes;
}

/** The policy with `hashes` allowed as inline scripts (none: the policy as it is). */
export function contentSecurityPolicy(hashes: readonly string[]): string {
  if (hashes.length === 0) return CONTENT_SECURITY_POLICY;
  return CONTENT_SECURITY_POLICY.replace(
    "script-src 'self' 'wasm-unsafe-eval'",
    `script-src 'self' 'wasm-unsafe-eval' ${hashes.join(' ')}`,
  );
}
