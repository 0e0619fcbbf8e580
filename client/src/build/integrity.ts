/**
 * Subresource Integrity for the built pages (issue "The contact page", a client people can
 * verify): every script and stylesheet the HTML names gets an `integrity` attribute, and an
 * import map gives the integrity of every JavaScript file of the build, so that the modules the
 * page imports later (the lazily loaded screens, the crypto backend) are checked too: a browser
 * refuses a module whose bytes do not match (Chromium ≥ 127, Firefox ≥ 138). The import map is
 * the one inline script; the relay allows exactly it by its hash in the CSP
 * (server/src/http/csp.ts).
 *
 * Not covered by the browser: a document's import map does not apply inside a Worker, so the
 * key-stretching and proof-of-work workers, and the chunks they import, load unchecked. Their
 * digests are in the map and in the signed profile (`passage org publish --client`), and
 * `passage verify` checks them from outside (docs/threat-model.md, section 7).
 *
 * Used by vite.config.ts once the bundle is final. Pure text in, text out: the digests come in
 * already computed (`sha384-<base64>`), so this runs in a test as it runs in the build.
 */

/** `integrity` values by the URL path the page loads them from (`/assets/index-….js`). */
export type IntegrityMap = ReadonlyMap<string, string>;

const INTEGRITY = /^sha(256|384|512)-[A-Za-z0-9+/]+={0,2}$/;
const TAG = /<(script|link)\b([^>]*)>/gi;

function attribute(attrs: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s"'>]+))`, 'i').exec(attrs);
  return m === null ? undefined : (m[2] ?? m[3] ?? m[4]);
}

/** Thrown for HTML the build cannot protect: the build fails rather than ship it. */
export class IntegrityError extends Error {
  override readonly name = 'IntegrityError';
}

/**
 * `html` with an `integrity` attribute on every `<script src>` and every stylesheet or
 * modulepreload `<link>`, and an import map of every JavaScript file in `integrity` before the
 * first module script. Throws `IntegrityError` for a tag that names a file with no digest, a tag
 * that has an integrity attribute already, an inline script, an import map already present, or
 * a digest that is not one.
 */
export function withIntegrity(html: string, integrity: IntegrityMap): string {
  for (const [path, value] of integrity) {
    if (!path.startsWith('/') || !INTEGRITY.test(value)) {
      throw new IntegrityError(`integrity: bad entry for ${path}`);
    }
  }
  let sawModule = false;
  const out = html.replace(TAG, (whole: string, tag: string, attrs: string) => {
    const kind = tag.toLowerCase();
    const rel = attribute(attrs, 'rel')?.toLowerCase();
    const url = kind === 'script' ? attribute(attrs, 'src') : attribute(attrs, 'href');
    if (kind === 'script') {
      const type = attribute(attrs, 'type')?.toLowerCase();
      if (type === 'importmap') throw new IntegrityError('integrity: an import map is present');
      if (url === undefined) throw new IntegrityError('integrity: an inline script');
      if (type === 'module') sawModule = true;
    } else if (rel !== 'stylesheet' && rel !== 'modulepreload') {
      return whole;
    }
    if (url === undefined) return whole;
    if (attribute(attrs, 'integrity') !== undefined) {
      throw new IntegrityError(`integrity: ${url} has one already`);
    }
    const value = integrity.get(url);
    if (value === undefined) throw new IntegrityError(`integrity: no digest for ${url}`);
    const selfClosing = attrs.endsWith('/');
    const kept = selfClosing ? attrs.slice(0, -1).trimEnd() : attrs;
    return `<${tag}${kept} integrity="${value}"${selfClosing ? ' /' : ''}>`;
  });
  const scripts = [...integrity.keys()].filter((p) => p.endsWith('.js')).sort();
  if (scripts.length === 0) return out;
  const map = JSON.stringify({
    integrity: Object.fromEntries(scripts.map((p) => [p, integrity.get(p)])),
  });
  const importMap = `<script type="importmap">${map}</script>\n    `;
  if (!sawModule) throw new IntegrityError('integrity: no module script to map');
  const place = out.search(/<script\b[^>]*\btype\s*=\s*["']?module/i);
  return out.slice(0, place) + importMap + out.slice(place);
}
