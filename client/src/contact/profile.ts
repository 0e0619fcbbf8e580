/**
 * The organization's signed profile, as the contact page takes it: fetched from the relay,
 * its signature checked against the key it names, its expiry and its roster checked
 * (crypto/org-profile.ts). The page has no key of its own to pin on a first visit: whatever it
 * could read (a key in the page, a header) comes from the same relay as the profile. What
 * protects a first visit is the person comparing the organization's fingerprint with what the
 * organization publishes elsewhere (the welcome screen asks for it), and the verifiable build
 * (issue "The contact page" §6); a returning contact's state pins the key seen before.
 */
import type { Primitives } from '@passage/shared/crypto/primitives';
import { verifyOrgProfile, type OrgProfile } from '@passage/shared/crypto/org-profile';
import { asEd25519PublicKey } from '@passage/shared/crypto/keys';
import { readProfile } from '@passage/shared/org/signed';
import { MAX_PROFILE_BYTES } from '@passage/shared/org/limits';

export type ProfileFailure = 'no_organization' | 'profile_invalid' | 'unreachable';

export type ProfileResult =
  | { readonly ok: true; readonly profile: OrgProfile }
  | { readonly ok: false; readonly failure: ProfileFailure };

export const PROFILE_PATH = '/v1/org/profile';
/** The relay's attachment blobs (docs/protocol.md, "Attachment blobs (HTTP)"). */
export const BLOBS_PATH = '/v1/blobs';

export async function loadProfile(p: Primitives, nowSeconds: number): Promise<ProfileResult> {
  let res: Response;
  try {
    res = await fetch(PROFILE_PATH, { cache: 'no-store', credentials: 'omit' });
  } catch {
    return { ok: false, failure: 'unreachable' };
  }
  if (res.status === 404) return { ok: false, failure: 'no_organization' };
  if (!res.ok) return { ok: false, failure: 'unreachable' };
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length > MAX_PROFILE_BYTES) return { ok: false, failure: 'profile_invalid' };
  try {
    const organizationKey = asEd25519PublicKey(readProfile(bytes).organizationKey);
    return { ok: true, profile: verifyOrgProfile(p, bytes, { organizationKey, nowSeconds }) };
  } catch {
    return { ok: false, failure: 'profile_invalid' };
  }
}
