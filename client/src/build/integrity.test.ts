import { describe, expect, it } from '@jest/globals';
import { IntegrityError, withIntegrity } from './integrity.js';

const A = `sha384-${'A'.repeat(64)}`;
const B = `sha384-${'B'.repeat(64)}`;
const C = `sha384-${'C'.repeat(64)}`;

const PAGE = `<!doctype html>
<html>
  <head>
    <title>Notes</title>
    <script type="module" crossorigin src="/assets/index.js"></script>
    <link rel="stylesheet" crossorigin href="/assets/index.css">
    <link rel="icon" href="/favicon.png">
  </head>
  <body><noscript><p>JavaScript</p></noscript></body>
</html>`;

const digests = new Map([
  ['/assets/index.js', A],
  ['/assets/index.css', B],
  ['/assets/lazy.js', C],
]);

describe('withIntegrity', () => {
  it('puts the digest on the module script and the stylesheet', () => {
    const out = withIntegrity(PAGE, digests);
    expect(out).toContain(
      `<script type="module" crossorigin src="/assets/index.js" integrity="${A}">`,
    );
    expect(out).toContain(
      `<link rel="stylesheet" crossorigin href="/assets/index.css" integrity="${B}">`,
    );
  });

  it('maps every JavaScript file, lazy ones included, in an import map before the first module script', () => {
    const out = withIntegrity(PAGE, digests);
    const m = /<script type="importmap">(.*?)<\/script>/.exec(out);
    expect(m).not.toBeNull();
    expect(JSON.parse(m![1]!)).toEqual({
      integrity: { '/assets/index.js': A, '/assets/lazy.js': C },
    });
    expect(out.indexOf('type="importmap"')).toBeLessThan(out.indexOf('type="module"'));
  });

  it('gives the same text for the same input (the map is sorted)', () => {
    const reversed = new Map([...digests].reverse());
    expect(withIntegrity(PAGE, reversed)).toBe(withIntegrity(PAGE, digests));
  });

  it('leaves other links alone and keeps a self-closing tag self-closing', () => {
    const page = PAGE.replace(
      '<link rel="stylesheet" crossorigin href="/assets/index.css">',
      '<link rel="modulepreload" href="/assets/lazy.js" />',
    );
    const out = withIntegrity(page, digests);
    expect(out).toContain(`<link rel="modulepreload" href="/assets/lazy.js" integrity="${C}" />`);
    expect(out).toContain('<link rel="icon" href="/favicon.png">');
  });

  it('refuses a script that names a file with no digest', () => {
    const without = new Map([...digests].filter(([p]) => p !== '/assets/index.js'));
    expect(() => withIntegrity(PAGE, without)).toThrow(IntegrityError);
  });

  it('refuses a stylesheet with no digest', () => {
    const without = new Map([...digests].filter(([p]) => p !== '/assets/index.css'));
    expect(() => withIntegrity(PAGE, without)).toThrow(IntegrityError);
  });

  it('refuses an inline script', () => {
    const page = PAGE.replace('</head>', '<script>alert(1)</script></head>');
    expect(() => withIntegrity(page, digests)).toThrow(/inline script/);
  });

  it('refuses a page that has an import map already', () => {
    const page = PAGE.replace('<title>', '<script type="importmap">{}</script><title>');
    expect(() => withIntegrity(page, digests)).toThrow(/import map/);
  });

  it('refuses a tag that carries an integrity attribute already', () => {
    const page = PAGE.replace('src="/assets/index.js"', `src="/assets/index.js" integrity="${B}"`);
    expect(() => withIntegrity(page, digests)).toThrow(/has one already/);
  });

  it('refuses a digest that is not one, or a relative path', () => {
    expect(() => withIntegrity(PAGE, new Map([...digests, ['/assets/x.js', 'md5-abc']]))).toThrow(
      IntegrityError,
    );
    expect(() => withIntegrity(PAGE, new Map([...digests, ['assets/x.js', A]]))).toThrow(
      IntegrityError,
    );
  });

  it('refuses a page with JavaScript files but no module script to map them for', () => {
    const page = PAGE.replace(/<script[^>]*><\/script>/, '');
    expect(() => withIntegrity(page, digests)).toThrow(/no module script/);
  });
});
