// Placeholder page until the contact page and the coordinator workspace land. It proves the
// bundle loads under the relay's CSP and can reach the relay over the wire protocol.
import { PROTOCOL_VERSION, WS_SUBPROTOCOL } from '@passage/shared/protocol/limits';

const status = document.getElementById('status');
if (status) {
  status.textContent = `Relay protocol v${PROTOCOL_VERSION} (${WS_SUBPROTOCOL}).`;
}
