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

/** The import suffix that asks for a worker built into the page's own bundle (see below). */
const PAGE_WORKER_SUFFIX = '?page-worker';
/** How Rolldown writes a file name's hash before it is computed. */
const HASH_PLACEHOLDER = /!~\{[0-9A-Za-z]+\}~/;

/**
 * `import url from './x-worker.ts?page-worker'` gives the URL of `x-worker.ts` built as a chunk of
 * the page's own build, instead of Vite's `new Worker(new URL(…))`, which bundles a worker on its
 * own. A worker bundled on its own cannot share chunks with the page: the codename worker then
 * carried a second copy of libsodium (~190 KB gzipped) under another file name, and a contact who
 * sent a first message downloaded libsodium twice. Built here, the worker imports the page's
 * chunks (libsodium, the word lists, the core), so each is fetched once.
 *
 * The URL goes through `import.meta.ROLLUP_FILE_URL_…`, which Vite resolves to the emitted file and
 * lists in the manifest as an asset of the chunk that refers to it, as it did the worker before.
 */
function pageWorker(): Plugin {
  /** Chunks that a page worker imports; dynamic imports there must not touch `document`. */
  const workerChunks = new Set<string>();
  const refs: string[] = [];
  return {
    name: 'passage:page-worker',
    enforce: 'pre',
    async resolveId(source, importer) {
      if (!source.endsWith(PAGE_WORKER_SUFFIX)) return null;
      const resolved = await this.resolve(source.slice(0, -PAGE_WORKER_SUFFIX.length), importer);
      return resolved === null ? null : `${resolved.id}${PAGE_WORKER_SUFFIX}`;
    },
    load(id) {
      if (!id.endsWith(PAGE_WORKER_SUFFIX)) return null;
      const file = id.slice(0, -PAGE_WORKER_SUFFIX.length);
      if (this.meta.watchMode) {
        // The dev server serves the module itself.
        return `export default new URL(${JSON.stringify(`/@fs${file}`)}, import.meta.url).href;`;
      }
      const name = /([^/]+)\.ts$/.exec(file)?.[1] ?? 'worker';
      const ref = this.emitFile({ type: 'chunk', id: file, name });
      refs.push(ref);
      return `export default import.meta.ROLLUP_FILE_URL_${ref};`;
    },
    generateBundle: {
      order: 'pre',
      handler(_options, bundle) {
        // Runs before Vite's preload rewriting (below), which reads `workerChunks`.
        workerChunks.clear();
        const workers = refs.map((ref) => this.getFileName(ref));
        // Vite records a referenced chunk in the manifest under the name it had before its hash
        // was known (`name-!~{00d}~.js`); put the final name there.
        for (const chunk of Object.values(bundle)) {
          if (chunk.type !== 'chunk') continue;
          const assets = chunk.viteMetadata?.importedAssets;
          for (const asset of [...(assets ?? [])]) {
            const [head, tail] = asset.split(HASH_PLACEHOLDER);
            const final = workers.find((w) => w.startsWith(head!) && w.endsWith(tail ?? ''));
            if (tail === undefined || final === undefined) continue;
            assets?.delete(asset);
            assets?.add(final);
          }
        }
        const pending = [...workers];
        while (pending.length > 0) {
          const name = pending.pop()!;
          const chunk = bundle[name];
          if (workerChunks.has(name) || chunk?.type !== 'chunk') continue;
          workerChunks.add(name);
          pending.push(...chunk.imports);
        }
      },
    },
    // Vite's preload helper reads `document` for a dynamic import with dependencies; a worker has
    // none. A dynamic import made from a chunk a worker also runs preloads nothing (its target's
    // dependencies are imported as usual, one round trip later).
    config: () => ({
      build: {
        modulePreload: {
          polyfill: false,
          resolveDependencies: (_file, deps, { hostId }) => (workerChunks.has(hostId) ? [] : deps),
        },
      },
    }),
  };
}

export default defineConfig({
  plugins: [pageWorker(), integrity],
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
    sourcemap: false,
    // libsodium (sumo, with its WebAssembly inlined) is one lazily loaded chunk of ~0.5 MB.
    chunkSizeWarningLimit: 1024,
    // Which file each entry became (dist/.vite/manifest.json; dot-folders are not served): the
    // browser tests find the worker modules there, and the bundle budget
    // (testing/src/bundle-budget.ts) walks what the page loads from it.
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
