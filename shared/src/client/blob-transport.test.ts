/**
 * The mapping of the relay's HTTP answers to stable attachment codes (blob-transport.ts), for
 * every status docs/protocol.md lists and the ones only a proxy in front of the relay sends. The
 * transport itself is tested against the relay's real endpoints in test/src/blob-transport.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { AttachmentError, AttachmentErrorCode } from './attachments.js';
import { blobRefusalCode } from './blob-transport.js';

describe('blobRefusalCode', () => {
  it.each([
    [403, 'blob_not_reserved', AttachmentErrorCode.BLOB_NOT_RESERVED, true],
    [413, 'blob_too_large', AttachmentErrorCode.BLOB_TOO_LARGE, false],
    [400, 'blob_empty', AttachmentErrorCode.BLOB_EMPTY, false],
    [404, 'no_blob', AttachmentErrorCode.NO_BLOB, false],
    [503, 'overloaded', AttachmentErrorCode.OVERLOADED, true],
    [503, 'unavailable', AttachmentErrorCode.UNAVAILABLE, true],
  ])('maps the relay’s %i %s to its code (retryable: %s)', (status, body, code, retryable) => {
    expect(blobRefusalCode(status, body)).toBe(code);
    expect(new AttachmentError(blobRefusalCode(status, body)).retryable).toBe(retryable);
  });

  it.each([
    [429, undefined, AttachmentErrorCode.OVERLOADED],
    [502, undefined, AttachmentErrorCode.UNAVAILABLE],
    [504, 'gateway', AttachmentErrorCode.UNAVAILABLE],
    [500, undefined, AttachmentErrorCode.UNAVAILABLE],
    [503, undefined, AttachmentErrorCode.UNAVAILABLE],
  ])('takes a proxy’s %i as retryable', (status, body, code) => {
    expect(blobRefusalCode(status, body)).toBe(code);
    expect(new AttachmentError(code).retryable).toBe(true);
  });

  it.each([
    [200, undefined],
    [204, undefined],
    [302, undefined],
    [400, 'something else'],
    [401, undefined],
    [405, 'method_not_allowed'],
    [418, undefined],
    [600, undefined],
  ])('refuses %i (%s) as blob_bad_reply, not retryable', (status, body) => {
    expect(blobRefusalCode(status, body)).toBe(AttachmentErrorCode.BAD_REPLY);
    expect(new AttachmentError(AttachmentErrorCode.BAD_REPLY).retryable).toBe(false);
  });

  it('names only its code in its message', () => {
    const error = new AttachmentError(AttachmentErrorCode.NO_BLOB, { cause: new Error('x') });
    expect(error.message).toBe('attachment: no_blob');
    expect(error.name).toBe('AttachmentError');
  });
});
