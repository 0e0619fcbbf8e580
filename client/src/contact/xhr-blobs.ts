/**
 * The page's blob transport: downloads as the client core's fetch transport does (its body is
 * read as a stream, with progress), uploads by XMLHttpRequest, whose `upload` events give the
 * progress a person watching a large photo leave needs (fetch reports none). No cookie, no
 * cache, the same refusal codes (`blobRefusalCode`).
 */
import {
  AttachmentError,
  AttachmentErrorCode,
  blobRefusalCode,
  fetchBlobTransport,
  type BlobTransport,
} from '@passage/shared/client/index';
import { BLOBS_PATH } from './profile.js';

/** A stalled upload is given up after this long without progress (then retried by the core). */
const UPLOAD_STALL_MS = 60_000;

export function pageBlobTransport(): BlobTransport {
  const fetched = fetchBlobTransport({ baseUrl: location.origin });
  return {
    get: (id, onProgress, maxBytes) => fetched.get(id, onProgress, maxBytes),
    put: (id, token, bytes, onProgress) =>
      new Promise<void>((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open('PUT', `${BLOBS_PATH}/${encodeURIComponent(id)}`);
        xhr.withCredentials = false;
        xhr.setRequestHeader('authorization', `Bearer ${token}`);
        xhr.setRequestHeader('content-type', 'application/octet-stream');
        xhr.timeout = 0;
        let stall: ReturnType<typeof setTimeout> | undefined;
        const watch = () => {
          clearTimeout(stall);
          stall = setTimeout(() => xhr.abort(), UPLOAD_STALL_MS);
        };
        const fail = (code: AttachmentErrorCode) => {
          clearTimeout(stall);
          reject(new AttachmentError(code));
        };
        xhr.upload.onprogress = (e) => {
          watch();
          onProgress?.({ bytes: e.loaded, total: bytes.length });
        };
        xhr.onerror = () => fail(AttachmentErrorCode.NETWORK);
        xhr.onabort = () => fail(AttachmentErrorCode.TIMEOUT);
        xhr.onload = () => {
          clearTimeout(stall);
          if (xhr.status === 201) {
            onProgress?.({ bytes: bytes.length, total: bytes.length });
            resolve();
            return;
          }
          let code: unknown;
          try {
            code = (JSON.parse(xhr.responseText) as { code?: unknown }).code;
          } catch {
            code = undefined;
          }
          fail(blobRefusalCode(xhr.status, code));
        };
        watch();
        onProgress?.({ bytes: 0, total: bytes.length });
        // A copy in a fresh ArrayBuffer: the body must not be a view of a larger buffer.
        xhr.send(bytes.slice().buffer);
      }),
  };
}
