/**
 * Chooses the primitive backend once, at start-up: libsodium (WebAssembly) when it loads, the
 * pure-JavaScript noble backend otherwise (Tor Browser at "Safer" has no WebAssembly at all;
 * some environments have the global but refuse to instantiate). Nothing here does I/O beyond
 * instantiating libsodium's WebAssembly module, which is bundled with it.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import { loadNobleBackend } from './noble.js';
import type { Primitives } from './primitives.js';

/** Which backend to use: libsodium (the default) or noble. */
export type BackendName = Primitives['backend'];

export interface LoadPrimitivesOptions {
  /**
   * The backend to try first. 'libsodium' (the default) falls back to noble when WebAssembly is
   * unavailable; 'noble' always gives noble (benchmarks, tests, and users who choose it).
   */
  readonly prefer?: BackendName;
  /**
   * When true, do not fall back: fail with CryptoError('backend_unavailable') if the preferred
   * backend cannot load (tests that must exercise libsodium use it).
   */
  readonly strict?: boolean;
}

/** True when this JavaScript environment exposes WebAssembly at all. */
export function webAssemblyAvailable(): boolean {
  // `WebAssembly` is not in the ES library typings shared/ compiles with (no DOM, no Node), so
  // look it up on globalThis; Tor Browser at "Safer" removes the global entirely.
  const global = globalThis as { readonly WebAssembly?: unknown };
  return typeof global.WebAssembly === 'object' && global.WebAssembly !== null;
}

/**
 * Loads the primitives. Call once at start-up and pass the result down; the choice is recorded
 * in `primitives.backend`.
 *
 * @throws CryptoError('backend_unavailable') only with `strict: true` when libsodium cannot load.
 */
export async function loadPrimitives(options: LoadPrimitivesOptions = {}): Promise<Primitives> {
  const prefer = options.prefer ?? 'libsodium';
  if (prefer === 'noble') return loadNobleBackend();
  if (webAssemblyAvailable()) {
    try {
      // Imported on demand: a browser without WebAssembly never fetches libsodium, and a
      // bundler splits it into its own chunk.
      const { loadSodiumBackend } = await import('./sodium.js');
      return await loadSodiumBackend();
    } catch (error: unknown) {
      // WebAssembly exists but instantiation failed (a CSP without 'wasm-unsafe-eval', a
      // memory limit): fall through to noble unless the caller insists on libsodium.
      if (options.strict === true) {
        throw new CryptoError(CryptoErrorCode.BACKEND_UNAVAILABLE, { cause: error });
      }
    }
  } else if (options.strict === true) {
    throw new CryptoError(CryptoErrorCode.BACKEND_UNAVAILABLE);
  }
  return loadNobleBackend();
}
