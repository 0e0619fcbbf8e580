/**
 * Known-answer and negative tests of the primitive layer, run once per backend. The expected
 * values are copied from the RFCs (RFC 7748, RFC 8032, RFC 5869, RFC 4231,
 * draft-irtf-cfrg-xchacha §A.3.1); Argon2id and ML-KEM-768 values are explained where they
 * appear.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { CryptoErrorCode } from './errors.js';
import type { CryptoErrorCode as Code } from './errors.js';
import { loadNobleBackend } from './noble.js';
import { loadSodiumBackend } from './sodium.js';
import type { Primitives } from './primitives.js';

function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function repeat(byte: number, length: number): Uint8Array {
  return new Uint8Array(length).fill(byte);
}

/** Runs `operation` and returns the code of the CryptoError it throws (failing otherwise). */
function codeOf(operation: () => unknown): Code {
  try {
    operation();
  } catch (error: unknown) {
    if (error instanceof Error && error.name === 'CryptoError' && 'code' in error) {
      return error.code as Code;
    }
    throw error;
  }
  throw new Error('expected a CryptoError, but the operation succeeded');
}

const BACKENDS: ReadonlyArray<readonly [string, () => Promise<Primitives>]> = [
  ['libsodium', loadSodiumBackend],
  ['noble', loadNobleBackend],
];

describe.each(BACKENDS)('primitives on %s', (name, load) => {
  let p: Primitives;
  beforeAll(async () => {
    p = await load();
  });

  it('reports its backend name', () => {
    expect(p.backend).toBe(name);
  });

  describe('X25519', () => {
    it('computes the RFC 7748 §5.2 scalar multiplications', () => {
      expect(
        toHex(
          p.x25519(
            hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
            hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'),
          ),
        ),
      ).toBe('c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
      // The second vector's u has its top bit set, which X25519 ignores.
      expect(
        toHex(
          p.x25519(
            hex('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'),
            hex('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'),
          ),
        ),
      ).toBe('95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957');
    });

    it('reaches the RFC 7748 §5.2 values after 1 and 1,000 iterations', () => {
      let k: Uint8Array = hex('0900000000000000000000000000000000000000000000000000000000000000');
      let u: Uint8Array = k.slice();
      for (let i = 1; i <= 1000; i++) {
        const next = p.x25519(k, u);
        u = k;
        k = next;
        if (i === 1) {
          expect(toHex(k)).toBe('422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
        }
      }
      expect(toHex(k)).toBe('684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
    });

    it('derives the RFC 7748 §6.1 key pairs and shared secret', () => {
      const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
      const bob = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
      const alicePublic = p.x25519PublicKey(alice);
      const bobPublic = p.x25519PublicKey(bob);
      expect(toHex(alicePublic)).toBe(
        '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
      );
      expect(toHex(bobPublic)).toBe(
        'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
      );
      const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
      expect(toHex(p.x25519(alice, bobPublic))).toBe(shared);
      expect(toHex(p.x25519(bob, alicePublic))).toBe(shared);
    });

    // The low-order points of Curve25519 (RFC 7748 §7; the list libsodium blacklists): 0, 1,
    // the two points of order 8, p − 1, p and p + 1, and the same with the ignored top bit set.
    const LOW_ORDER = [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      '0000000000000000000000000000000000000000000000000000000000000080',
      '0100000000000000000000000000000000000000000000000000000000000080',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880',
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    ];
    it.each(LOW_ORDER)('rejects the low-order public key %s with low_order', (point) => {
      const secret = hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4');
      expect(codeOf(() => p.x25519(secret, hex(point)))).toBe(CryptoErrorCode.LOW_ORDER);
    });

    it('rejects keys of the wrong length with bad_length', () => {
      const key = repeat(9, 32);
      expect(codeOf(() => p.x25519(repeat(1, 31), key))).toBe(CryptoErrorCode.BAD_LENGTH);
      expect(codeOf(() => p.x25519(repeat(1, 32), repeat(9, 33)))).toBe(CryptoErrorCode.BAD_LENGTH);
      expect(codeOf(() => p.x25519PublicKey(repeat(1, 0)))).toBe(CryptoErrorCode.BAD_LENGTH);
    });

    it('rejects a value that is not a byte array with bad_encoding', () => {
      const notBytes = Array.from(repeat(1, 32)) as unknown as Uint8Array;
      expect(codeOf(() => p.x25519PublicKey(notBytes))).toBe(CryptoErrorCode.BAD_ENCODING);
    });
  });

  describe('Ed25519', () => {
    // RFC 8032 §7.1, TEST 1–3.
    const RFC8032 = [
      {
        seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
        publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
        message: '',
        signature:
          'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
      },
      {
        seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
        publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
        message: '72',
        signature:
          '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
      },
      {
        seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
        publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
        message: 'af82',
        signature:
          '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
      },
    ];

    it.each(RFC8032.map((v, i) => [i + 1, v] as const))(
      'derives, signs and verifies RFC 8032 TEST %d',
      (_n, v) => {
        const pair = p.ed25519KeyPairFromSeed(hex(v.seed));
        expect(toHex(pair.publicKey)).toBe(v.publicKey);
        expect(toHex(pair.secretKey)).toBe(v.seed);
        expect(toHex(p.ed25519Sign(hex(v.seed), hex(v.message)))).toBe(v.signature);
        expect(p.ed25519Verify(hex(v.publicKey), hex(v.message), hex(v.signature))).toBe(true);
      },
    );

    const v1 = RFC8032[1]!;

    it('rejects a signature over another message', () => {
      expect(p.ed25519Verify(hex(v1.publicKey), hex('73'), hex(v1.signature))).toBe(false);
    });

    it('rejects a signature with any single flipped bit', () => {
      const signature = hex(v1.signature);
      for (let bit = 0; bit < signature.length * 8; bit += 37) {
        const tampered = signature.slice();
        tampered[bit >> 3]! ^= 1 << (bit & 7);
        expect(p.ed25519Verify(hex(v1.publicKey), hex(v1.message), tampered)).toBe(false);
      }
    });

    it('rejects a signature under another public key', () => {
      expect(p.ed25519Verify(hex(RFC8032[0]!.publicKey), hex(v1.message), hex(v1.signature))).toBe(
        false,
      );
    });

    it('rejects a malleated signature whose S is S + L (non-canonical S)', () => {
      // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
      const L = hex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');
      const signature = hex(v1.signature);
      let carry = 0;
      for (let i = 0; i < 32; i++) {
        const sum = signature[32 + i]! + L[i]! + carry;
        signature[32 + i] = sum & 0xff;
        carry = sum >> 8;
      }
      expect(p.ed25519Verify(hex(v1.publicKey), hex(v1.message), signature)).toBe(false);
    });

    it('rejects the identity (a small-order point) as public key', () => {
      const identity = hex('0100000000000000000000000000000000000000000000000000000000000000');
      // With A and R the identity and S = 0, the cofactorless equation holds for any message;
      // a strict verifier must still refuse it.
      const signature = new Uint8Array(64);
      signature.set(identity, 0);
      expect(p.ed25519Verify(identity, ascii('anything'), signature)).toBe(false);
    });

    it('answers false for a signature or public key of the wrong length', () => {
      const signature = hex(v1.signature);
      expect(p.ed25519Verify(hex(v1.publicKey), hex(v1.message), signature.subarray(0, 63))).toBe(
        false,
      );
      const longer = new Uint8Array(65);
      longer.set(signature);
      expect(p.ed25519Verify(hex(v1.publicKey), hex(v1.message), longer)).toBe(false);
      expect(p.ed25519Verify(hex(v1.publicKey).subarray(1), hex(v1.message), signature)).toBe(
        false,
      );
    });

    it('rejects a seed of the wrong length with bad_length', () => {
      expect(codeOf(() => p.ed25519KeyPairFromSeed(repeat(1, 64)))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
      expect(codeOf(() => p.ed25519Sign(repeat(1, 31), ascii('m')))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
    });
  });

  describe('XChaCha20-Poly1305', () => {
    // draft-irtf-cfrg-xchacha-03 §A.3.1.
    const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
    const nonce = hex('404142434445464748494a4b4c4d4e4f5051525354555657');
    const aad = hex('50515253c0c1c2c3c4c5c6c7');
    const plaintext = ascii(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    const sealed = hex(
      'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e' +
        'c0875924c1c7987947deafd8780acf49',
    );

    it('seals and opens the draft §A.3.1 vector', () => {
      expect(toHex(p.xchacha20poly1305Seal(key, nonce, plaintext, aad))).toBe(toHex(sealed));
      expect(toHex(p.xchacha20poly1305Open(key, nonce, sealed, aad))).toBe(toHex(plaintext));
    });

    it('seals and opens an empty plaintext to a bare tag', () => {
      const tagOnly = p.xchacha20poly1305Seal(key, nonce, new Uint8Array(0), new Uint8Array(0));
      expect(tagOnly.length).toBe(16);
      expect(p.xchacha20poly1305Open(key, nonce, tagOnly, new Uint8Array(0)).length).toBe(0);
    });

    it('rejects a flipped bit in the ciphertext or the tag with decrypt_failed', () => {
      for (const index of [0, 57, sealed.length - 16, sealed.length - 1]) {
        const tampered = sealed.slice();
        tampered[index]! ^= 0x01;
        expect(codeOf(() => p.xchacha20poly1305Open(key, nonce, tampered, aad))).toBe(
          CryptoErrorCode.DECRYPT_FAILED,
        );
      }
    });

    it('rejects other associated data, another nonce or another key with decrypt_failed', () => {
      const otherNonce = nonce.slice();
      otherNonce[23]! ^= 1;
      const otherKey = key.slice();
      otherKey[0]! ^= 1;
      expect(codeOf(() => p.xchacha20poly1305Open(key, nonce, sealed, new Uint8Array(0)))).toBe(
        CryptoErrorCode.DECRYPT_FAILED,
      );
      expect(codeOf(() => p.xchacha20poly1305Open(key, otherNonce, sealed, aad))).toBe(
        CryptoErrorCode.DECRYPT_FAILED,
      );
      expect(codeOf(() => p.xchacha20poly1305Open(otherKey, nonce, sealed, aad))).toBe(
        CryptoErrorCode.DECRYPT_FAILED,
      );
    });

    it('rejects a sealed value shorter than the tag, or truncated, with decrypt_failed', () => {
      expect(codeOf(() => p.xchacha20poly1305Open(key, nonce, sealed.subarray(0, 15), aad))).toBe(
        CryptoErrorCode.DECRYPT_FAILED,
      );
      expect(
        codeOf(() =>
          p.xchacha20poly1305Open(key, nonce, sealed.subarray(0, sealed.length - 1), aad),
        ),
      ).toBe(CryptoErrorCode.DECRYPT_FAILED);
    });

    it('rejects a key or nonce of the wrong length with bad_length', () => {
      expect(codeOf(() => p.xchacha20poly1305Seal(key.subarray(1), nonce, plaintext, aad))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
      // A 12-byte (ChaCha20-Poly1305 IETF) nonce is not an XChaCha nonce.
      expect(
        codeOf(() => p.xchacha20poly1305Seal(key, nonce.subarray(0, 12), plaintext, aad)),
      ).toBe(CryptoErrorCode.BAD_LENGTH);
      expect(codeOf(() => p.xchacha20poly1305Open(key, nonce.subarray(1), sealed, aad))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
    });
  });

  describe('SHA-2, HMAC and HKDF', () => {
    it('hashes "abc" with SHA-256 and SHA-512 (FIPS 180-4 examples)', () => {
      expect(toHex(p.sha256(ascii('abc')))).toBe(
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      );
      expect(toHex(p.sha512(ascii('abc')))).toBe(
        'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
      );
    });

    // RFC 4231 §4.2–4.5, 4.7, 4.8 (case 5, a truncated tag, is left out: we never truncate).
    const RFC4231 = [
      {
        case: 1,
        key: repeat(0x0b, 20),
        data: ascii('Hi There'),
        sha256: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
        sha512:
          '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854',
      },
      {
        case: 2,
        key: ascii('Jefe'),
        data: ascii('what do ya want for nothing?'),
        sha256: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
        sha512:
          '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737',
      },
      {
        case: 3,
        key: repeat(0xaa, 20),
        data: repeat(0xdd, 50),
        sha256: '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe',
        sha512:
          'fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb',
      },
      {
        case: 4,
        key: hex('0102030405060708090a0b0c0d0e0f10111213141516171819'),
        data: repeat(0xcd, 50),
        sha256: '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
        sha512:
          'b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd',
      },
      {
        case: 6,
        key: repeat(0xaa, 131),
        data: ascii('Test Using Larger Than Block-Size Key - Hash Key First'),
        sha256: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
        sha512:
          '80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598',
      },
      {
        case: 7,
        key: repeat(0xaa, 131),
        data: ascii(
          'This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.',
        ),
        sha256: '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
        sha512:
          'e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58',
      },
    ];

    it.each(RFC4231.map((v) => [v.case, v] as const))(
      'computes HMAC-SHA256 and HMAC-SHA512 of RFC 4231 test case %d',
      (_n, v) => {
        expect(toHex(p.hmacSha256(v.key, v.data))).toBe(v.sha256);
        expect(toHex(p.hmacSha512(v.key, v.data))).toBe(v.sha512);
      },
    );

    it('gives a different HMAC for a key that differs in one bit', () => {
      const v = RFC4231[1]!;
      const key = v.key.slice();
      key[0]! ^= 1;
      expect(toHex(p.hmacSha256(key, v.data))).not.toBe(v.sha256);
      expect(toHex(p.hmacSha512(key, v.data))).not.toBe(v.sha512);
    });

    // RFC 5869 Appendix A, test cases 1–3.
    const RFC5869 = [
      {
        case: 1,
        ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
        salt: '000102030405060708090a0b0c',
        info: 'f0f1f2f3f4f5f6f7f8f9',
        length: 42,
        okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
      },
      {
        case: 2,
        ikm: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f',
        salt: '606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf',
        info: 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff',
        length: 82,
        okm: 'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
      },
      {
        case: 3,
        ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
        salt: '',
        info: '',
        length: 42,
        okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
      },
    ];

    it.each(RFC5869.map((v) => [v.case, v] as const))(
      'derives the OKM of RFC 5869 test case %d',
      (_n, v) => {
        expect(toHex(p.hkdfSha256(hex(v.ikm), hex(v.salt), hex(v.info), v.length))).toBe(v.okm);
      },
    );

    it('derives the maximal 8160 bytes, whose prefix is the shorter output', () => {
      const v = RFC5869[0]!;
      const okm = p.hkdfSha256(hex(v.ikm), hex(v.salt), hex(v.info), 255 * 32);
      expect(okm.length).toBe(8160);
      expect(toHex(okm.subarray(0, 42))).toBe(v.okm);
    });

    it('rejects an HKDF output longer than 255 × 32 bytes with limit_exceeded', () => {
      expect(
        codeOf(() => p.hkdfSha256(repeat(1, 32), repeat(2, 32), new Uint8Array(0), 8161)),
      ).toBe(CryptoErrorCode.LIMIT_EXCEEDED);
      expect(codeOf(() => p.hkdfSha256(repeat(1, 32), repeat(2, 32), new Uint8Array(0), -1))).toBe(
        CryptoErrorCode.LIMIT_EXCEEDED,
      );
    });

    it('rejects a fractional HKDF output length with bad_length', () => {
      expect(codeOf(() => p.hkdfSha256(repeat(1, 32), repeat(2, 32), new Uint8Array(0), 1.5))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
    });
  });

  describe('ML-KEM-768', () => {
    // Wycheproof mlkem_768_test.json tcId 1 (from FIPS 203 key generation): the 64-byte seed
    // d ‖ z and SHA-256 of the encapsulation key it must produce (the 1,184-byte key itself is
    // not copied here).
    const seed = hex(
      'cbfc4405d1b2a3a386c94c25e0f2d5f5ee92cb0388ff4d6aa04223086d51c3fd24752da14c9fc3b8ae0d9e4a8b1016b8d8fc69e229c03ea2ef08a4ae0cffc37f',
    );
    const EK_SHA256 = '67fe2cb60768d55758c67bfd5842692dedb14513d581c48db2cd3adf94568106';

    it('derives the known encapsulation key from a seed', () => {
      const pair = p.mlkem768KeyPairFromSeed(seed);
      expect(pair.publicKey.length).toBe(1184);
      expect(pair.secretKey.length).toBe(2400);
      expect(toHex(p.sha256(pair.publicKey))).toBe(EK_SHA256);
    });

    it('decapsulates what it encapsulates, deterministically in the seed m', () => {
      const pair = p.mlkem768KeyPairFromSeed(seed);
      const m = repeat(0x42, 32);
      const first = p.mlkem768Encapsulate(pair.publicKey, m);
      const second = p.mlkem768Encapsulate(pair.publicKey, m);
      expect(first.ciphertext.length).toBe(1088);
      expect(toHex(second.ciphertext)).toBe(toHex(first.ciphertext));
      expect(toHex(p.mlkem768Decapsulate(pair.secretKey, first.ciphertext))).toBe(
        toHex(first.sharedSecret),
      );
      const other = p.mlkem768Encapsulate(pair.publicKey, repeat(0x43, 32));
      expect(toHex(other.sharedSecret)).not.toBe(toHex(first.sharedSecret));
    });

    it('implicitly rejects a tampered ciphertext with J(z ‖ c), as FIPS 203 specifies', () => {
      const pair = p.mlkem768KeyPairFromSeed(seed);
      const { ciphertext, sharedSecret } = p.mlkem768Encapsulate(pair.publicKey, repeat(7, 32));
      const tampered = ciphertext.slice();
      tampered[100]! ^= 0x10;
      const rejected = p.mlkem768Decapsulate(pair.secretKey, tampered);
      expect(toHex(rejected)).not.toBe(toHex(sharedSecret));
      const z = pair.secretKey.subarray(2400 - 32);
      const expected = shake256(Uint8Array.from([...z, ...tampered]), { dkLen: 32 });
      expect(toHex(rejected)).toBe(toHex(expected));
    });

    it('rejects a public key whose coefficients are not reduced mod q with bad_encoding', () => {
      const pair = p.mlkem768KeyPairFromSeed(seed);
      const publicKey = pair.publicKey.slice();
      // The first 12-bit coefficient becomes 0xfff ≥ q = 3329.
      publicKey[0] = 0xff;
      publicKey[1]! |= 0x0f;
      expect(codeOf(() => p.mlkem768Encapsulate(publicKey, repeat(1, 32)))).toBe(
        CryptoErrorCode.BAD_ENCODING,
      );
    });

    it('rejects a decapsulation key whose embedded H(ek) does not match with bad_encoding', () => {
      const pair = p.mlkem768KeyPairFromSeed(seed);
      const { ciphertext } = p.mlkem768Encapsulate(pair.publicKey, repeat(7, 32));
      const corrupted = pair.secretKey.slice();
      corrupted[1152 + 10]! ^= 1;
      expect(codeOf(() => p.mlkem768Decapsulate(corrupted, ciphertext))).toBe(
        CryptoErrorCode.BAD_ENCODING,
      );
    });

    it('rejects seeds, keys and ciphertexts of the wrong length with bad_length', () => {
      const pair = p.mlkem768KeyPairFromSeed(seed);
      const { ciphertext } = p.mlkem768Encapsulate(pair.publicKey, repeat(7, 32));
      expect(codeOf(() => p.mlkem768KeyPairFromSeed(seed.subarray(0, 32)))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
      expect(codeOf(() => p.mlkem768Encapsulate(pair.publicKey, repeat(7, 31)))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
      expect(codeOf(() => p.mlkem768Encapsulate(pair.publicKey.subarray(1), repeat(7, 32)))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
      expect(codeOf(() => p.mlkem768Decapsulate(pair.secretKey, ciphertext.subarray(1)))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
      expect(codeOf(() => p.mlkem768Decapsulate(pair.secretKey.subarray(1), ciphertext))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
    });
  });

  describe('Argon2id', () => {
    // libsodium's API has no secret or associated data and one lane, so RFC 9106 §5.3 (which
    // uses both and four lanes) cannot be run here. These values were computed with OpenSSL's
    // Argon2id (through pyca/cryptography 48, checked first against RFC 9106 §5.3), and both
    // backends reproduce them independently.
    it('derives known outputs with one lane and no secret', () => {
      expect(
        toHex(
          p.argon2id(ascii('password'), ascii('somesaltsomesalt'), {
            iterations: 2,
            memoryKiB: 64,
            outputBytes: 32,
          }),
        ),
      ).toBe('1a98fba8e6394425c9bdc333a9c750aaf811df070f5fb4a5788e1cf4db5793a1');
      expect(
        toHex(
          p.argon2id(repeat(1, 32), repeat(2, 16), {
            iterations: 3,
            memoryKiB: 32,
            outputBytes: 32,
          }),
        ),
      ).toBe('30e0b44b7e23423b7282859ea36f02825b5828dde3c25f124d59d42d7235e132');
    });

    const params = { iterations: 1, memoryKiB: 8, outputBytes: 32 };

    it('rejects a salt that is not 16 bytes with bad_length', () => {
      expect(codeOf(() => p.argon2id(ascii('pw'), repeat(2, 15), params))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
      expect(codeOf(() => p.argon2id(ascii('pw'), repeat(2, 32), params))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
    });

    it('rejects parameters outside their bounds with limit_exceeded', () => {
      const salt = repeat(2, 16);
      const pw = ascii('pw');
      expect(codeOf(() => p.argon2id(pw, salt, { ...params, iterations: 0 }))).toBe(
        CryptoErrorCode.LIMIT_EXCEEDED,
      );
      expect(codeOf(() => p.argon2id(pw, salt, { ...params, memoryKiB: 7 }))).toBe(
        CryptoErrorCode.LIMIT_EXCEEDED,
      );
      expect(codeOf(() => p.argon2id(pw, salt, { ...params, memoryKiB: 256 * 1024 + 1 }))).toBe(
        CryptoErrorCode.LIMIT_EXCEEDED,
      );
      expect(codeOf(() => p.argon2id(pw, salt, { ...params, outputBytes: 15 }))).toBe(
        CryptoErrorCode.LIMIT_EXCEEDED,
      );
      expect(codeOf(() => p.argon2id(pw, salt, { ...params, iterations: 1.5 }))).toBe(
        CryptoErrorCode.BAD_LENGTH,
      );
    });
  });

  describe('random', () => {
    it('returns the number of bytes asked for, and different bytes each time', () => {
      expect(p.random.bytes(0).length).toBe(0);
      const a = p.random.bytes(32);
      const b = p.random.bytes(32);
      expect(a.length).toBe(32);
      expect(toHex(a)).not.toBe(toHex(b));
    });

    it('returns integers below the bound, reaching every value of a small range', () => {
      const seen = new Set<number>();
      for (let i = 0; i < 400; i++) {
        const value = p.random.uniform(7);
        expect(Number.isInteger(value) && value >= 0 && value < 7).toBe(true);
        seen.add(value);
      }
      expect(seen.size).toBe(7);
      expect(p.random.uniform(1)).toBe(0);
    });

    it('rejects bounds outside [1, 2³² − 1] and negative counts', () => {
      expect(codeOf(() => p.random.uniform(0))).toBe(CryptoErrorCode.LIMIT_EXCEEDED);
      expect(codeOf(() => p.random.uniform(2 ** 32))).toBe(CryptoErrorCode.LIMIT_EXCEEDED);
      expect(codeOf(() => p.random.uniform(2.5))).toBe(CryptoErrorCode.BAD_LENGTH);
      expect(codeOf(() => p.random.bytes(-1))).toBe(CryptoErrorCode.LIMIT_EXCEEDED);
    });
  });
});

describe.each(BACKENDS)('Ed25519 public keys of mixed order (%s)', (_name, load) => {
  let p: Primitives;
  beforeAll(async () => {
    p = await load();
  });
  // A mixed-order key is a prime-order point plus a point of small order T (here order 8): one
  // secret scalar a then "owns" A + T for each of the eight T, and a cofactorless verifier
  // accepts a signature under A + T whenever the challenge k is a multiple of 8.
  const ORDER_8 = 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a';
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  const le = (n: bigint): Uint8Array => {
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
    return out;
  };
  const leToBig = (b: Uint8Array): bigint =>
    b.reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n);

  /** A prime-order key, the mixed-order key A + T, and a signature under the latter. */
  function mixedOrderSignature(): {
    prime: Uint8Array;
    mixed: Uint8Array;
    message: Uint8Array;
    signature: Uint8Array;
  } {
    const t = ed25519.Point.fromHex(ORDER_8);
    expect(t.multiplyUnsafe(8n).is0()).toBe(true);
    const ext = ed25519.utils.getExtendedPublicKey(new Uint8Array(32).fill(9));
    const mixedPoint = ext.point.add(t);
    const mixed = mixedPoint.toBytes();
    for (let i = 0; ; i++) {
      const message = ascii(`mixed order ${i}`);
      const r = (leToBig(sha512(message)) % (L - 1n)) + 1n;
      const rBytes = ed25519.Point.BASE.multiply(r).toBytes();
      const k = leToBig(sha512(new Uint8Array([...rBytes, ...mixed, ...message]))) % L;
      if (k % 8n !== 0n) continue;
      const s = (r + k * ext.scalar) % L;
      return {
        prime: ext.pointBytes,
        mixed,
        message,
        signature: new Uint8Array([...rBytes, ...le(s)]),
      };
    }
  }

  it('regression: mixed-order keys: a signature under one does not verify', () => {
    const { prime, mixed, message, signature } = mixedOrderSignature();
    // The signature is valid under the cofactorless equation (what verification used to accept).
    const k =
      leToBig(sha512(new Uint8Array([...signature.subarray(0, 32), ...mixed, ...message]))) % L;
    const sB = ed25519.Point.BASE.multiply(leToBig(signature.subarray(32)));
    expect(toHex(sB.subtract(ed25519.Point.fromBytes(mixed).multiplyUnsafe(k)).toBytes())).toBe(
      toHex(signature.subarray(0, 32)),
    );
    expect(p.ed25519Verify(mixed, message, signature)).toBe(false);
    expect(p.ed25519IsValidPublicKey(mixed)).toBe(false);
    expect(p.ed25519IsValidPublicKey(prime)).toBe(true);
  });

  it('refuses a mixed-order key however often it is asked, and after its prime-order part was accepted', () => {
    // Each backend checks a key once (checks.ts, ValidEd25519KeyMemo): the verdict must not
    // carry over to other bytes, nor to the same array changed in place.
    const { prime, mixed, message, signature } = mixedOrderSignature();
    for (let n = 0; n < 3; n++) {
      expect(p.ed25519IsValidPublicKey(prime)).toBe(true);
      expect(p.ed25519IsValidPublicKey(mixed)).toBe(false);
      expect(p.ed25519Verify(mixed, message, signature)).toBe(false);
    }
    const changed = prime.slice();
    expect(p.ed25519IsValidPublicKey(changed)).toBe(true);
    changed.set(mixed);
    expect(p.ed25519IsValidPublicKey(changed)).toBe(false);
    expect(p.ed25519Verify(changed, message, signature)).toBe(false);
  });

  it('still verifies signatures under a key it already checked, and refuses a bad one', () => {
    const pair = p.ed25519KeyPairFromSeed(repeat(42, 32));
    const message = ascii('checked once');
    const signature = p.ed25519Sign(pair.secretKey, message);
    expect(p.ed25519IsValidPublicKey(pair.publicKey)).toBe(true);
    for (let n = 0; n < 3; n++) {
      expect(p.ed25519Verify(pair.publicKey, message, signature)).toBe(true);
      expect(p.ed25519Verify(pair.publicKey, ascii('another message'), signature)).toBe(false);
    }
  });

  it('refuses small-order, identity and non-canonical keys, accepts generated ones', () => {
    expect(p.ed25519IsValidPublicKey(hex(ORDER_8))).toBe(false);
    expect(p.ed25519IsValidPublicKey(le(1n))).toBe(false); // the identity (y = 1)
    // y = p + 1 ≡ 1: a non-canonical encoding.
    expect(p.ed25519IsValidPublicKey(le(2n ** 255n - 19n + 1n))).toBe(false);
    expect(p.ed25519IsValidPublicKey(new Uint8Array(31))).toBe(false);
    for (let i = 0; i < 8; i++) {
      const key = p.ed25519KeyPairFromSeed(repeat(i, 32)).publicKey;
      expect(p.ed25519IsValidPublicKey(key)).toBe(true);
    }
  });
});
