/**
 * A fast source of ephemeral secrets for the hot path (a sealed envelope's ephemeral key, a
 * ratchet step's key pair), seeded from the backend's generator.
 *
 * Why: in libsodium's WebAssembly build under Node, `randombytes_buf` costs about 130 µs for 32
 * bytes (it calls back into JavaScript for every four bytes), more than an X25519 scalar
 * multiplication; every envelope needs a fresh X25519 secret. Drawing the generator once and
 * expanding it with HMAC-SHA256 costs two HMAC calls (about 5 µs) per 32 bytes.
 *
 * Construction (a "fast key erasure" generator, as Bernstein describes and libsodium's own
 * ChaCha20-based `randombytes` follows in spirit): a 32-byte key K drawn from the backend;
 * each block is HMAC(K, 0x01) and K is replaced by HMAC(K, 0x02) and the old K wiped, so a
 * later compromise of the state reveals no earlier output. Every `RESEED_INTERVAL_BLOCKS` blocks
 * fresh bytes from the backend are mixed in (K = HMAC(K, 0x03 ‖ fresh)), so a compromise is
 * healed. `uniform` is passed to the backend untouched (codenames are not a hot path).
 *
 * With a seeded backend (tests, golden transcripts) this generator is exactly as deterministic
 * as its seed, on either backend.
 */
import type { Primitives, RandomSource } from './primitives.js';
import { SHA256_BYTES } from './primitives.js';
import { concatBytes } from './encoding.js';

/** Blocks between two reseeds from the backend's generator. */
export const RESEED_INTERVAL_BLOCKS = 256;

const OUTPUT = new Uint8Array([0x01]);
const NEXT_KEY = new Uint8Array([0x02]);
const RESEED = new Uint8Array([0x03]);

/** A `RandomSource` that expands the backend's generator as described above. */
export function fastKeyErasureRandom(p: Primitives): RandomSource {
  let key = p.random.bytes(SHA256_BYTES);
  let blocks = 0;
  const block = (): Uint8Array => {
    if (blocks >= RESEED_INTERVAL_BLOCKS) {
      const reseeded = p.hmacSha256(key, concatBytes(RESEED, p.random.bytes(SHA256_BYTES)));
      key.fill(0);
      key = reseeded;
      blocks = 0;
    }
    const out = p.hmacSha256(key, OUTPUT);
    const next = p.hmacSha256(key, NEXT_KEY);
    key.fill(0);
    key = next;
    blocks++;
    return out;
  };
  return {
    bytes(n: number): Uint8Array {
      if (!Number.isSafeInteger(n) || n < 0) return p.random.bytes(n); // the backend reports it
      const out = new Uint8Array(n);
      for (let offset = 0; offset < n; offset += SHA256_BYTES) {
        const b = block();
        out.set(b.subarray(0, Math.min(SHA256_BYTES, n - offset)), offset);
        b.fill(0);
      }
      return out;
    },
    uniform(upperBound: number): number {
      return p.random.uniform(upperBound);
    },
  };
}

/** The same primitives, drawing `random.bytes` from a fresh `fastKeyErasureRandom`. */
export function withFastKeyRandom(p: Primitives): Primitives {
  return { ...p, random: fastKeyErasureRandom(p) };
}
