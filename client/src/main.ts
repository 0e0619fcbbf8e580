// Placeholder page until the contact page and the coordinator workspace land. It proves, in a
// real browser under the relay's CSP, that the crypto core loads (libsodium's WebAssembly, or
// the pure-JS backend where WebAssembly is off) and that the relay answers on the wire protocol.
// It stores nothing and sends nothing.

// First import: it must run before any schema is built (see the module).
import '@passage/shared/protocol/jitless';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import { WS_SUBPROTOCOL } from '@passage/shared/protocol/limits';
import { parseServerFrame } from '@passage/shared/protocol/parse';

const status = document.getElementById('status');

function show(text: string, state: string): void {
  if (!status) return;
  status.textContent = text;
  status.dataset['state'] = state;
}

/** Resolves once the relay has sent a valid `challenge` frame, rejects otherwise. */
function reachRelay(): Promise<void> {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/v1/ws`, WS_SUBPROTOCOL);
  return new Promise((resolve, reject) => {
    socket.addEventListener('message', (event: MessageEvent<unknown>) => {
      const frame = typeof event.data === 'string' ? parseServerFrame(event.data) : undefined;
      socket.close(1000);
      if (frame?.ok === true && frame.value.t === 'challenge') resolve();
      else reject(new Error('unexpected first frame'));
    });
    socket.addEventListener('error', () => reject(new Error('relay unreachable')));
  });
}

async function start(): Promise<void> {
  const primitives = await loadPrimitives();
  document.documentElement.dataset['backend'] = primitives.backend;
  await reachRelay();
  show('Passage is ready.', 'ready');
}

start().catch(() => show('Passage could not start.', 'failed'));
