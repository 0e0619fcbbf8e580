/**
 * The Content-Security-Policy a relay serving the built client must send, worked out here on
 * its own (not with the relay's code): the base policy, with the SHA-256 of the page's import map
 * (the one inline script) as a script source when the built page has one.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BASE_CSP =
  "default-src 'none';script-src 'self' 'wasm-unsafe-eval';style-src 'self';img-src 'self';" +
  "connect-src 'self';font-src 'self';base-uri 'none';form-action 'none';frame-ancestors 'none'";

const BUILT_PAGE = fileURLToPath(new URL('../../client/dist/index.html', import.meta.url));

/** The policy for the page at `indexHtml` (the built client by default). */
export function expectedPageCsp(indexHtml: string = BUILT_PAGE): string {
  if (!existsSync(indexHtml)) return BASE_CSP;
  const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(readFileSync(indexHtml, 'utf8'));
  if (map === null) return BASE_CSP;
  const hash = createHash('sha256').update(map[1]!, 'utf8').digest('base64');
  return BASE_CSP.replace(
    "script-src 'self' 'wasm-unsafe-eval'",
    `script-src 'self' 'wasm-unsafe-eval' 'sha256-${hash}'`,
  );
}
