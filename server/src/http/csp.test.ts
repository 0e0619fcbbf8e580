import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { CONTENT_SECURITY_POLICY, contentSecurityPolicy, importMapHashes } from './csp.js';

const MAP = '{"integrity":{"/assets/index.js":"sha384-AAAA"}}';
const hashOf = (text: string) =>
  `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

describe('importMapHashes', () => {
  it('hashes the exact text of an inline import map', () => {
    const html = `<head><script type="importmap">${MAP}</script><script type="module" src="/a.js"></script></head>`;
    expect(importMapHashes(html)).toEqual([hashOf(MAP)]);
  });

  it('hashes nothing for a page without one', () => {
    expect(importMapHashes('<script type="module" src="/a.js"></script>')).toEqual([]);
    expect(importMapHashes('')).toEqual([]);
  });

  it('never hashes an inline script of another type', () => {
    expect(importMapHashes('<script>alert(1)</script>')).toEqual([]);
    expect(importMapHashes('<script type="module">alert(1)</script>')).toEqual([]);
    expect(importMapHashes('<script type="importmapx">alert(1)</script>')).toEqual([]);
  });

  it('never hashes an import map that names a file', () => {
    expect(importMapHashes('<script type="importmap" src="/m.json"></script>')).toEqual([]);
  });

  it('differs for a map that differs by one character', () => {
    const other = MAP.replace('AAAA', 'AAAB');
    expect(importMapHashes(`<script type="importmap">${other}</script>`)).not.toEqual([
      hashOf(MAP),
    ]);
  });
});

describe('contentSecurityPolicy', () => {
  it('is the base policy with nothing to allow', () => {
    expect(contentSecurityPolicy([])).toBe(CONTENT_SECURITY_POLICY);
  });

  it('allows the given hashes in script-src and nowhere else', () => {
    const policy = contentSecurityPolicy([hashOf(MAP)]);
    const directives = new Map(
      policy.split(';').map((d) => [d.split(' ')[0]!, d.split(' ').slice(1)] as const),
    );
    expect(directives.get('script-src')).toEqual(["'self'", "'wasm-unsafe-eval'", hashOf(MAP)]);
    expect(policy.replace(` ${hashOf(MAP)}`, '')).toBe(CONTENT_SECURITY_POLICY);
    expect(policy).not.toContain('unsafe-inline');
  });
});
