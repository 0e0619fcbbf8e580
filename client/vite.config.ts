import { createHash } from 'node:crypto';
import { defineConfig, type Plugin } from 'vite';
import { withIntegrity } from './src/build/integrity.ts';

const sri = (bytes: string | Uint8Array) =>
  `sha384-${createHash('sha384').update(bytes).digest('base64')}`;

/**
 * Subresource Integrity on the finished bundle (src/build/integrity.ts): the digests of every
 * JavaScript and CSS file as written, put into each HTML page. Last of all, so nothing changes
 * a file after its digest is taken.
 */
const integrity: Plugin = {
  name: 'passage-integrity',
  enforce: 'post',
  generateBundle: {
    order: 'post',
    handler(_options, bundle) {
      const digests = new Map<string, string>();
      for (const item of Object.values(bundle)) {
        if (item.type === 'chunk') digests.set(`/${item.fileName}`, sri(item.code));
        else if (/\.(js|css)$/.test(item.fileName))
          digests.set(`/${item.fileName}`, sri(item.source));
      }
      for (const item of Object.values(bundle)) {
        if (item.type === 'asset' && item.fileName.endsWith('.html')) {
          item.source = withIntegrity(String(item.source), digests);
        }
      }
    },
  },
};

export default defineConfig({
  plugins: [integrity],
  // JSX for Preact (the contact page), compiled by Vite's own transformer.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  // Read @passage/shared from src/ through its `source` export condition.
  resolve: { conditions: ['source', 'browser', 'module', 'import', 'default'] },
  // The proof-of-work worker is a module worker emitted as a file of its own on the page's
  // origin (a Blob-URL worker is blocked by the CSP); never inlined.
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No inline scripts or styles, so the CSP can forbid them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    // libsodium (sumo, with its WebAssembly inlined) is one lazily loaded chunk of ~0.5 MB.
    chunkSizeWarningLimit: 1024,
    // Which file each entry became (dist/.vite/manifest.json; dot-folders are not served): the
    // browser test finds the proof-of-work module there.
    manifest: true,
    rollupOptions: {
      // The page, and the proof-of-work module the pages will use (solveInWorker), as an entry
      // of its own so that its exports keep their names.
      input: {
        index: 'index.html',
        pow: 'src/pow/solve-in-worker.ts',
        codename: 'src/codename/derive-in-worker.ts',
      },
      preserveEntrySignatures: 'exports-only',
    },
  },
});
