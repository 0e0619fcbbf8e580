/**
 * SHA-256 for the shared code that takes it as a parameter (mailbox ids, proof-of-work): Node's
 * native implementation, because the server may not import the crypto layer (see
 * `shared/src/protocol/sha256.ts`).
 */
import { createHash } from 'node:crypto';
import type { Sha256 } from '@passage/shared/protocol/sha256';

/** SHA-256 of `data`, 32 bytes. */
export const sha256: Sha256 = (data) => createHash('sha256').update(data).digest();
