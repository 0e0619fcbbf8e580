/**
 * What the page fetches after its first screen is painted: the crypto backend and the
 * organization's profile. Its own chunk, so that the first screen stays small.
 */
// First import: it must run before any schema is built (see the module).
import '@passage/shared/protocol/jitless';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import { fingerprintDigits, formatSafetyNumber } from '@passage/shared/crypto/safety-number';
import { loadProfile, type ProfileResult } from './profile.js';
import type { Loaded } from './app.js';
import * as screens from './intake.js';
import * as chat from './chat.js';
import * as live from './conversation.js';

export async function loadOrganization(): Promise<
  { ok: true; loaded: Loaded } | Extract<ProfileResult, { ok: false }>
> {
  const p = await loadPrimitives();
  document.documentElement.dataset['backend'] = p.backend;
  const result = await loadProfile(p, Math.floor(Date.now() / 1000));
  if (!result.ok) return result;
  const { profile } = result;
  return {
    ok: true,
    loaded: {
      p,
      profile,
      fingerprint: formatSafetyNumber(fingerprintDigits(p, profile.organizationKey)),
      screens,
      chat,
      live,
    },
  };
}
