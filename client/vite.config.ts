import { defineConfig } from 'vite';

export default defineConfig({
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
