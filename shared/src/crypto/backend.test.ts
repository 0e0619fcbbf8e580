import { afterEach, describe, expect, it } from '@jest/globals';
import { loadPrimitives, webAssemblyAvailable } from './backend.js';
import { CryptoError, CryptoErrorCode } from './errors.js';

/** The WebAssembly global, typed loosely: the test removes and restores it. */
const holder = globalThis as { WebAssembly?: unknown };
const savedWebAssembly = holder.WebAssembly;

/** Removes the WebAssembly global, as Tor Browser at "Safer" does. */
function disableWebAssembly(): void {
  Reflect.deleteProperty(globalThis, 'WebAssembly');
}

describe('loadPrimitives', () => {
  afterEach(() => {
    holder.WebAssembly = savedWebAssembly;
  });

  it('loads libsodium by default when WebAssembly is available', async () => {
    expect(webAssemblyAvailable()).toBe(true);
    expect((await loadPrimitives()).backend).toBe('libsodium');
  });

  it('loads noble when asked to prefer it', async () => {
    expect((await loadPrimitives({ prefer: 'noble' })).backend).toBe('noble');
  });

  it('falls back to noble when WebAssembly is unavailable', async () => {
    disableWebAssembly();
    expect(webAssemblyAvailable()).toBe(false);
    const primitives = await loadPrimitives();
    expect(primitives.backend).toBe('noble');
    // And it works: the RFC 7748 §6.1 public key.
    const alice = Uint8Array.from(
      Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'),
    );
    expect(Buffer.from(primitives.x25519PublicKey(alice)).toString('hex')).toBe(
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    );
  });

  it('refuses to fall back in strict mode when WebAssembly is unavailable', async () => {
    disableWebAssembly();
    const failure = await loadPrimitives({ strict: true }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CryptoError);
    expect((failure as CryptoError).code).toBe(CryptoErrorCode.BACKEND_UNAVAILABLE);
  });
});
