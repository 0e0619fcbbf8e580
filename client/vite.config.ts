import { defineConfig } from 'vite';

export default defineConfig({
  // Read @passage/shared from src/ through its `source` export condition.
  resolve: { conditions: ['source', 'browser', 'module', 'import', 'default'] },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No inline scripts or styles, so the CSP can forbid them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    // libsodium (sumo, with its WebAssembly inlined) is one lazily loaded chunk of ~0.5 MB.
    chunkSizeWarningLimit: 1024,
  },
});
