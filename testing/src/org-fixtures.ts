/**
 * What the organization-profile tests build again and again: a valid profile content (two
 * languages, a questionnaire with every field kind and a condition), and a signed profile with a
 * roster, under a given organization key and clock.
 */
import type { PublicIdentity } from '@passage/shared/crypto/identity';
import type { Ed25519Seed } from '@passage/shared/crypto/keys';
import { signOrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { signRoster } from '@passage/shared/crypto/roster';
import type { ProfileContent } from '@passage/shared/org/profile';

/** A valid profile content: Russian first, English second; three fields, one conditional. */
export function sampleProfileContent(): ProfileContent {
  return {
    displayName: 'Rainbow Shelter',
    languages: ['ru', 'en'],
    disguise: { title: 'Notes', icon: 'notes' },
    retentionDays: 90,
    questionnaire: {
      fields: [
        {
          id: 'safe_now',
          kind: 'single',
          label: { ru: 'Вы сейчас в безопасности?', en: 'Are you safe right now?' },
          required: true,
          when: [],
          choices: [
            { id: 'yes', label: { ru: 'Да', en: 'Yes' }, urgency: 0 },
            { id: 'no', label: { ru: 'Нет', en: 'No' }, urgency: 10 },
          ],
        },
        {
          id: 'needs',
          kind: 'multiple',
          label: { ru: 'Что вам нужно?', en: 'What do you need?' },
          required: false,
          when: [],
          choices: [
            { id: 'shelter', label: { ru: 'Жильё', en: 'Shelter' }, urgency: 6 },
            { id: 'legal', label: { ru: 'Юрист', en: 'Legal help' }, urgency: 3 },
          ],
        },
        {
          id: 'danger',
          kind: 'text',
          label: { ru: 'Что происходит?', en: 'What is happening?' },
          required: false,
          when: [{ field: 'safe_now', anyOf: ['no'] }],
          maxLength: 2000,
        },
      ],
    },
  };
}

/** What {@link signedProfile} signs, each part replaceable. */
export interface SignedProfileOptions {
  readonly version?: number;
  readonly issuedAtSeconds?: number;
  readonly expiresAtSeconds?: number;
  readonly rosterSerial?: number;
  readonly rosterExpiresAtSeconds?: number;
  /** The key that signs the roster (the organization's by default). */
  readonly rosterSeed?: Ed25519Seed;
  readonly content?: ProfileContent;
}

/** A profile signed by `seed` at `now`, listing `devices`, valid for an hour by default. */
export function signedProfile(
  p: Primitives,
  seed: Ed25519Seed,
  devices: readonly PublicIdentity[],
  now: number,
  options: SignedProfileOptions = {},
): Uint8Array {
  const expiresAtSeconds = options.expiresAtSeconds ?? now + 3600;
  const roster = signRoster(p, options.rosterSeed ?? seed, {
    serial: options.rosterSerial ?? 1,
    issuedAtSeconds: options.issuedAtSeconds ?? now - 10,
    expiresAtSeconds: options.rosterExpiresAtSeconds ?? expiresAtSeconds,
    devices,
  });
  return signOrgProfile(p, seed, {
    version: options.version ?? 1,
    issuedAtSeconds: options.issuedAtSeconds ?? now - 10,
    expiresAtSeconds,
    roster,
    content: options.content ?? sampleProfileContent(),
  });
}
