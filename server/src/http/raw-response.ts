/**
 * HTTP responses written straight to a socket, where express does not answer: a request Node
 * could not parse (`clientError`) and a refused WebSocket upgrade. They carry the headers every
 * express response carries (the CSP, `Cache-Control: no-store`, no referrer, no framing, no
 * sniffing) and an empty body, so that no response of the relay is cacheable or frameable.
 */
import { STATUS_CODES } from 'node:http';
import { CONTENT_SECURITY_POLICY } from './app.js';

/** The complete text of a response with `status`, `Connection: close` and no body. */
export function rawHttpResponse(status: number): string {
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Connection: close\r\n' +
    'Cache-Control: no-store\r\n' +
    `Content-Security-Policy: ${CONTENT_SECURITY_POLICY}\r\n` +
    'Referrer-Policy: no-referrer\r\n' +
    'X-Content-Type-Options: nosniff\r\n' +
    'X-Frame-Options: DENY\r\n' +
    'Content-Length: 0\r\n\r\n'
  );
}
