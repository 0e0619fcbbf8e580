/**
 * The CLI on the relay's WebSocket, through the client core (`@passage/shared/client/index`):
 * reading the enrolment mailbox (`org enrolments --relay`, and the demo, which stays on it) and
 * sending a device's enrolment (`device enrol`). The relay gives no "end of queue" signal (it
 * delivers what is queued after `authed`, then live envelopes), so a one-shot read ends after
 * `QUIET_MS` with nothing new, bounded by `READ_MAX_MS` in all.
 */
import {
  PassageClient,
  inlinePowSolver,
  systemClock,
  type EnvelopeHandler,
  type Signer,
} from '@passage/shared/client/index';
import type { DeviceIdentity } from '@passage/shared/crypto/identity';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { CliError, CliErrorCode } from './errors.js';
import { wsTransport } from './ws-transport.js';

/** How long connecting (WebSocket, challenge, auth) may take before the command gives up, ms. */
export const RELAY_CONNECT_TIMEOUT_MS = 20_000;
/** Failed connection attempts in a row after which a command gives up (about 3 s of backoff). */
export const RELAY_CONNECT_ATTEMPTS = 3;
/** A one-shot read of the enrolment mailbox ends after this long with nothing delivered, ms. */
export const ENROLMENT_READ_QUIET_MS = 2_000;
/** …and after this long in all, whatever is still arriving (the rest waits for the next run). */
export const ENROLMENT_READ_MAX_MS = 60_000;
/** How long a device's enrolment may take to be stored (proof-of-work included), ms. */
export const ENROLMENT_SEND_TIMEOUT_MS = 60_000;

/**
 * `ENROLMENT_SEND_TIMEOUT_MS`, or with NODE_ENV=test the milliseconds in
 * `PASSAGE_DANGEROUS_TEST_ONLY_ENROLMENT_SEND_TIMEOUT_MS` (a test of a relay answer that never
 * comes need not wait a minute).
 */
function enrolmentSendTimeoutMs(): number {
  const fixed = process.env['PASSAGE_DANGEROUS_TEST_ONLY_ENROLMENT_SEND_TIMEOUT_MS'];
  if (process.env['NODE_ENV'] === 'test' && fixed !== undefined && /^\d{1,6}$/.test(fixed)) {
    return Number(fixed);
  }
  return ENROLMENT_SEND_TIMEOUT_MS;
}

/** The relay's two addresses, from what the admin typed (`https://relay.example.org`). */
export interface RelayAddress {
  /** The HTTP origin (`https://relay.example.org`). */
  readonly origin: string;
  /** The WebSocket endpoint (`wss://relay.example.org/v1/ws`). */
  readonly ws: string;
}

/** Parses `--relay` (http, https, ws or wss; any path is ignored). */
export function relayAddress(text: string): RelayAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(CliErrorCode.USAGE, '--relay must be a URL (https://relay.example.org)');
  }
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  if (!secure && url.protocol !== 'http:' && url.protocol !== 'ws:') {
    throw new CliError(CliErrorCode.USAGE, '--relay must be an http(s) or ws(s) URL');
  }
  const host = url.host;
  return {
    origin: `${secure ? 'https' : 'http'}://${host}`,
    ws: `${secure ? 'wss' : 'ws'}://${host}/v1/ws`,
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves once `client` is ready; fails with `relay_failed` after `RELAY_CONNECT_ATTEMPTS`
 * failed attempts in a row or `RELAY_CONNECT_TIMEOUT_MS`, whichever comes first (a one-shot
 * command should say the relay is down, not retry for ever as an app does).
 */
async function readyOrFail(client: PassageClient, origin: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let off: (() => void) | undefined;
  try {
    await Promise.race([
      client.ready(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), RELAY_CONNECT_TIMEOUT_MS);
        off = client.on('state', (s) => {
          if (s.state === 'waiting' && s.attempt >= RELAY_CONNECT_ATTEMPTS) {
            reject(new Error('no connection'));
          }
        });
      }),
    ]);
  } catch (cause) {
    throw new CliError(CliErrorCode.RELAY_FAILED, `cannot reach the relay at ${origin}`, {
      cause,
    });
  } finally {
    clearTimeout(timer);
    off?.();
  }
}

/** The connection's signer for a device identity (the enrolment mailbox's). */
export function signerOf(identity: DeviceIdentity): Signer {
  return {
    signingKey: identity.publicIdentity.signingKey,
    sign: (message) => identity.sign(message),
  };
}

/** A client of the enrolment mailbox (authenticated with its key), connected and ready. */
export async function openMailbox(
  p: Primitives,
  relay: RelayAddress,
  identity: DeviceIdentity,
  onEnvelope: EnvelopeHandler,
): Promise<PassageClient> {
  const client = new PassageClient({
    url: relay.ws,
    transport: wsTransport(),
    primitives: p,
    identity: signerOf(identity),
    onEnvelope,
  });
  void client.connect();
  try {
    await readyOrFail(client, relay.origin);
  } catch (error) {
    client.close();
    throw error;
  }
  return client;
}

/**
 * Reads what the mailbox holds now: connects, hands every delivered envelope to `onEnvelope`
 * (one at a time, acknowledged after it returns), and closes once nothing new came for
 * `ENROLMENT_READ_QUIET_MS` (or after `ENROLMENT_READ_MAX_MS`).
 */
export async function readMailboxOnce(
  p: Primitives,
  relay: RelayAddress,
  identity: DeviceIdentity,
  onEnvelope: EnvelopeHandler,
): Promise<void> {
  let handled = 0;
  const client = await openMailbox(p, relay, identity, async (bytes, id) => {
    handled += 1;
    return onEnvelope(bytes, id);
  });
  try {
    const deadline = Date.now() + ENROLMENT_READ_MAX_MS;
    for (;;) {
      const before = handled;
      await delay(ENROLMENT_READ_QUIET_MS);
      await client.idle();
      if (handled === before || Date.now() >= deadline) break;
    }
  } finally {
    // The acks of everything handled were written when the inbox went idle; the relay applies
    // acks it has read even when the socket closes right after.
    client.close();
  }
}

/**
 * Sends one envelope anonymously (paying the relay's first-contact proof-of-work) and resolves
 * once it is stored. Fails with `relay_failed` when the outcome is known: the relay could not be
 * reached (nothing was sent), or it refused the envelope (`isRefusal` says which failures of
 * `send` are the relay's definite no). Any other failure after the send began (no answer within
 * `ENROLMENT_SEND_TIMEOUT_MS`, the connection lost) is `enrolment_outcome_unknown`: the relay
 * may have stored the envelope and only its answer been lost.
 */
export async function sendAnonymously(
  p: Primitives,
  relay: RelayAddress,
  send: (client: PassageClient) => Promise<unknown>,
  isRefusal: (error: unknown) => boolean,
): Promise<void> {
  const clock = systemClock();
  const client = new PassageClient({
    url: relay.ws,
    transport: wsTransport(),
    primitives: p,
    solvePow: inlinePowSolver({
      sha256: (data) => p.sha256(data),
      clock,
      randomBytes: (n) => p.random.bytes(n),
    }),
  });
  void client.connect();
  let timer: NodeJS.Timeout | undefined;
  try {
    // Fails with relay_failed before anything is sent.
    await readyOrFail(client, relay.origin);
    try {
      await Promise.race([
        send(client),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('no answer in time')),
            enrolmentSendTimeoutMs(),
          );
        }),
      ]);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : 'unknown failure';
      if (isRefusal(cause)) {
        throw new CliError(CliErrorCode.RELAY_FAILED, `the relay at ${relay.origin}: ${why}`, {
          cause,
        });
      }
      throw new CliError(
        CliErrorCode.ENROLMENT_OUTCOME_UNKNOWN,
        `the relay at ${relay.origin} did not say whether it stored the envelope (${why})`,
        { cause },
      );
    }
  } finally {
    clearTimeout(timer);
    client.close();
  }
}
