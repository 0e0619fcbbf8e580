/**
 * The demo organization that `npm start` makes on a machine with no organization configured
 * (start.ts, ADR 0020): a fresh organization key, held in this process's memory only and never
 * written anywhere, a profile marked DEMO (display name, page title) with a questionnaire of
 * every field kind in Russian and English, one built-in coordinator device (a roster lists at
 * least one), and an invite that the demo approves by itself: it reads its enrolment mailbox
 * over the relay, takes each request in, approves it, signs the next roster and profile, and
 * publishes them. Auto-approval skips the one check that protects a real organization (the
 * admin comparing the device's fingerprint with its owner), which is why the demo is only ever
 * made when no organization is configured, and says DEMO wherever it shows.
 *
 * The functions here are pure over the state (as organization.ts); start.ts does the I/O.
 */
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { asEd25519PublicKey, asEd25519Seed } from '@passage/shared/crypto/keys';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { DEFAULT_PROFILE_VALIDITY_SECONDS } from '@passage/shared/org/limits';
import { checkProfileContent, type ProfileContent } from '@passage/shared/org/profile';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { STATE_KEY_BYTES, type OrgSecrets } from './keyfile.js';
import {
  approveEnrolment,
  createInvite,
  identityOf,
  initialState,
  publishProfile,
  receiveEnrolmentEnvelope,
} from './organization.js';
import type { OrgState } from './state.js';

const isSet = (value: string | undefined) => value !== undefined && value.trim() !== '';

/**
 * Why `npm start` runs the plain relay, or undefined when it makes the demo: an organization
 * is configured (ORG_PUBLIC_KEY), a shared store is (REDIS_URL, REDIS_CLUSTER_NODES: a real
 * deployment, whose store must never hold a demo's profile), or PASSAGE_DEMO=0. A blank value
 * counts as unset, as it does for the relay's own configuration.
 */
export function plainRelayReason(
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  if (isSet(env['ORG_PUBLIC_KEY'])) return 'an organization is configured (ORG_PUBLIC_KEY)';
  if (isSet(env['REDIS_URL']) || isSet(env['REDIS_CLUSTER_NODES'])) {
    return 'a shared store is configured (REDIS_URL / REDIS_CLUSTER_NODES)';
  }
  if (env['PASSAGE_DEMO'] === '0') return 'PASSAGE_DEMO=0';
  return undefined;
}

/** The demo's display name: what the contact page and every listing show. */
export const DEMO_DISPLAY_NAME = 'DEMO — Passage test organization';
/** How long each demo invite is valid: 24 hours, as a real one by default. */
export const DEMO_INVITE_VALIDITY_SECONDS = 24 * 3600;
/** The coordinator name each demo invite is made for. */
export const DEMO_COORDINATOR = 'demo coordinator';

/** The demo's profile content: DEMO in the name and the title; ru + en; every field kind. */
export function demoProfileContent(): ProfileContent {
  return checkProfileContent({
    displayName: DEMO_DISPLAY_NAME,
    languages: ['en', 'ru'],
    disguise: { title: 'DEMO — Notes', icon: 'notes' },
    retentionDays: 7,
    questionnaire: {
      fields: [
        {
          id: 'safe_now',
          kind: 'single',
          label: { en: 'Are you safe right now?', ru: 'Вы сейчас в безопасности?' },
          required: true,
          when: [],
          choices: [
            { id: 'yes', label: { en: 'Yes', ru: 'Да' }, urgency: 0 },
            { id: 'not_sure', label: { en: 'I am not sure', ru: 'Не уверен(а)' }, urgency: 6 },
            { id: 'no', label: { en: 'No', ru: 'Нет' }, urgency: 10 },
          ],
        },
        {
          id: 'danger',
          kind: 'text',
          label: {
            en: 'What is happening? (demo: write nothing real)',
            ru: 'Что происходит? (демо: не пишите ничего настоящего)',
          },
          required: false,
          when: [{ field: 'safe_now', anyOf: ['no', 'not_sure'] }],
          maxLength: 1000,
        },
        {
          id: 'needs',
          kind: 'multiple',
          label: { en: 'What do you need?', ru: 'Что вам нужно?' },
          required: false,
          when: [],
          choices: [
            {
              id: 'shelter',
              label: { en: 'A safe place to stay', ru: 'Безопасное жильё' },
              urgency: 7,
            },
            { id: 'leave', label: { en: 'Help to leave', ru: 'Помощь с выездом' }, urgency: 8 },
            { id: 'legal', label: { en: 'Legal help', ru: 'Юридическая помощь' }, urgency: 3 },
            { id: 'talk', label: { en: 'Someone to talk to', ru: 'Поговорить' }, urgency: 2 },
          ],
        },
        {
          id: 'language',
          kind: 'single',
          label: { en: 'Which language do you prefer?', ru: 'Какой язык вам удобнее?' },
          required: false,
          when: [],
          choices: [
            { id: 'ru', label: { en: 'Russian', ru: 'Русский' }, urgency: 0 },
            { id: 'en', label: { en: 'English', ru: 'Английский' }, urgency: 0 },
          ],
        },
        {
          id: 'contact_time',
          kind: 'text',
          label: {
            en: 'When is it safe to answer you?',
            ru: 'Когда вам безопасно отвечать?',
          },
          required: false,
          when: [],
          maxLength: 200,
        },
      ],
    },
  });
}

/** The demo organization as it runs: its secrets, its state, and the invite on offer. */
export interface DemoOrganization {
  readonly secrets: OrgSecrets;
  readonly state: OrgState;
  /** The invite code to print (one device, once; a fresh one after each approval). */
  readonly invite: string;
  /** The signed profile to publish now. */
  readonly profile: Uint8Array;
  readonly profileVersion: number;
}

/** A fresh demo organization: key, built-in device, signed profile version 1, one invite. */
export function createDemoOrganization(p: Primitives, nowSeconds: number): DemoOrganization {
  const seed = asEd25519Seed(p.random.bytes(32));
  const secrets: OrgSecrets = {
    seed,
    publicKey: asEd25519PublicKey(p.ed25519KeyPairFromSeed(seed).publicKey),
    // Never used to write a file (the demo writes none), but part of the secrets' shape.
    stateKey: p.random.bytes(STATE_KEY_BYTES),
  };
  const builtIn = DeviceIdentity.generate(p);
  const start: OrgState = {
    ...initialState(p, DEMO_DISPLAY_NAME),
    profile: demoProfileContent(),
    devices: [
      {
        identity: toBase64url(builtIn.publicIdentity.encode()),
        coordinator: 'demo',
        label: 'DEMO built-in device',
        addedAtSeconds: nowSeconds,
      },
    ],
  };
  const published = publishProfile(
    p,
    secrets,
    start,
    undefined,
    nowSeconds,
    DEFAULT_PROFILE_VALIDITY_SECONDS,
  );
  const invited = createInvite(
    p,
    secrets,
    published.state,
    DEMO_COORDINATOR,
    DEMO_INVITE_VALIDITY_SECONDS,
    nowSeconds,
  );
  return {
    secrets,
    state: invited.state,
    invite: invited.code,
    profile: published.profile,
    profileVersion: published.version,
  };
}

/** What one envelope of the demo's enrolment mailbox did. */
export type DemoOutcome =
  | { readonly kind: 'repeat' }
  | {
      readonly kind: 'approved';
      readonly demo: DemoOrganization;
      /** The approved device's id (64 hex digits). */
      readonly deviceId: string;
      readonly label: string;
      readonly rosterSerial: number;
    };

/**
 * Takes one envelope in, approves the device at once, and signs the next roster and profile
 * and a fresh invite. Refusals throw as in `receiveEnrolmentEnvelope` (CliError
 * `enrolment_refused`), and leave the demo as it was.
 */
export function autoApprove(
  p: Primitives,
  demo: DemoOrganization,
  envelope: Uint8Array,
  nowSeconds: number,
): DemoOutcome {
  const received = receiveEnrolmentEnvelope(p, demo.secrets, demo.state, envelope, nowSeconds);
  if (received.outcome.kind === 'repeat') return { kind: 'repeat' };
  const deviceId = identityOf(p, received.outcome.enrolment.identity).id;
  const approved = approveEnrolment(
    p,
    demo.secrets,
    received.state,
    deviceId,
    nowSeconds,
    DEFAULT_PROFILE_VALIDITY_SECONDS,
  );
  const published = publishProfile(
    p,
    demo.secrets,
    approved.state,
    undefined,
    nowSeconds,
    DEFAULT_PROFILE_VALIDITY_SECONDS,
  );
  const invited = createInvite(
    p,
    demo.secrets,
    published.state,
    DEMO_COORDINATOR,
    DEMO_INVITE_VALIDITY_SECONDS,
    nowSeconds,
  );
  return {
    kind: 'approved',
    demo: {
      secrets: demo.secrets,
      state: invited.state,
      invite: invited.code,
      profile: published.profile,
      profileVersion: published.version,
    },
    deviceId,
    label: received.outcome.enrolment.label,
    rosterSerial: published.state.roster!.serial,
  };
}
