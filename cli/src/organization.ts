/**
 * What the commands do to the organization, as functions from the state before to the state
 * after (commands.ts reads and writes the files around them). Every change to the set of
 * devices signs a new roster, with the next serial: a removed device is in no later roster.
 */
import {
  EnrolmentError,
  EnrolmentErrorCode,
  type EnrolmentCheck,
  encodeInvite,
  inviteIdHex,
  newInvite,
  openEnrolmentEnvelope,
  verifyEnrolmentRequest,
} from '@passage/shared/crypto/enrolment';
import { DeviceIdentity, PublicIdentity } from '@passage/shared/crypto/identity';
import { signOrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { MAX_ROSTER_DEVICES, signRoster } from '@passage/shared/crypto/roster';
import { checkProfileContent, type ProfileContent } from '@passage/shared/org/profile';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { CliError, CliErrorCode } from './errors.js';
import type { OrgSecrets } from './keyfile.js';
import {
  MAX_KEPT_INVITES,
  MAX_PENDING_ENROLMENTS,
  MAX_ROSTER_HISTORY,
  type OrgState,
} from './state.js';

/**
 * How long an invite code is valid unless the admin says otherwise: 24 hours. Long enough to
 * hand the code over (in person, or on a channel the team trusts) and enrol the device the same
 * day; short enough that a code left in a chat history is dead by the next. It enrols one
 * device, once, and only after `org approve`, where the admin compares the device's
 * fingerprint with its owner.
 */
export const DEFAULT_INVITE_VALIDITY_SECONDS = 24 * 3600;
/** Longest validity `org invite --valid-hours` accepts: 7 days. */
export const MAX_INVITE_VALIDITY_SECONDS = 7 * 24 * 3600;
/** An invite is forgotten this long after it expired (until then a late request is told
 * `invite_expired` rather than `invite_unknown`). */
export const INVITE_FORGET_AFTER_SECONDS = 7 * 24 * 3600;

/** Characters of a device id as the listings show it (the full id is 64 hex digits). */
export const SHORT_ID_CHARS = 16;
/** Fewest characters of a device id prefix that `org approve` and `org remove` accept. */
export const MIN_ID_PREFIX_CHARS = 8;

function bytesOf(b64: string): Uint8Array {
  const bytes = fromBase64url(b64);
  if (bytes === undefined) {
    throw new CliError(CliErrorCode.STATE_FILE_DAMAGED, 'the state file is damaged (base64url)');
  }
  return bytes;
}

/** The public identity of a stored device (it was verified when it was received). */
export function identityOf(p: Primitives, b64: string): PublicIdentity {
  return PublicIdentity.decode(p, bytesOf(b64));
}

/** The enrolment mailbox's identity. */
export function enrolmentMailbox(p: Primitives, state: OrgState): DeviceIdentity {
  return DeviceIdentity.decodeSecret(p, bytesOf(state.enrolmentMailbox));
}

/** The profile content a new organization starts with: one language, no questions. */
export function defaultProfile(displayName: string): ProfileContent {
  return checkProfileContent({
    displayName,
    languages: ['en'],
    disguise: { title: 'Notes', icon: 'notes' },
    retentionDays: 90,
    questionnaire: { fields: [] },
  });
}

/** The state of a new organization. */
export function initialState(p: Primitives, displayName: string): OrgState {
  return {
    v: 1,
    profile: defaultProfile(displayName),
    enrolmentMailbox: toBase64url(DeviceIdentity.generate(p).encodeSecret()),
    devices: [],
    roster: null,
    rosterHistory: [],
    profileVersion: 0,
    published: null,
    invites: [],
    enrolments: [],
  };
}

/** Signs the next roster for `devices` and records it. */
function withNewRoster(
  p: Primitives,
  secrets: OrgSecrets,
  state: OrgState,
  devices: OrgState['devices'],
  nowSeconds: number,
  validitySeconds: number,
): OrgState {
  if (devices.length === 0) {
    throw new CliError(
      CliErrorCode.ROSTER_EMPTY,
      'the roster would list no device; enrol and approve another device first',
    );
  }
  const serial = (state.roster?.serial ?? 0) + 1;
  const identities = devices.map((d) => identityOf(p, d.identity));
  const bytes = signRoster(p, secrets.seed, {
    serial,
    issuedAtSeconds: nowSeconds,
    expiresAtSeconds: nowSeconds + validitySeconds,
    devices: identities,
  });
  const history = [
    ...state.rosterHistory,
    { serial, signedAtSeconds: nowSeconds, devices: identities.map((i) => i.id) },
  ].slice(-MAX_ROSTER_HISTORY);
  return {
    ...state,
    devices,
    roster: { serial, bytes: toBase64url(bytes) },
    rosterHistory: history,
  };
}

/** Drops invites that expired more than INVITE_FORGET_AFTER_SECONDS ago. */
function pruneInvites(state: OrgState, nowSeconds: number): OrgState {
  return {
    ...state,
    invites: state.invites.filter(
      (i) => i.expiresAtSeconds + INVITE_FORGET_AFTER_SECONDS > nowSeconds,
    ),
  };
}

/** A new invite for a device of `coordinator`; returns the code to hand over. */
export function createInvite(
  p: Primitives,
  secrets: OrgSecrets,
  state: OrgState,
  coordinator: string,
  validitySeconds: number,
  nowSeconds: number,
): { readonly state: OrgState; readonly code: string; readonly expiresAtSeconds: number } {
  const pruned = pruneInvites(state, nowSeconds);
  if (pruned.invites.length >= MAX_KEPT_INVITES) {
    throw new CliError(
      CliErrorCode.LIMIT_REACHED,
      `${MAX_KEPT_INVITES} invites are kept already; let some expire first`,
    );
  }
  const expiresAtSeconds = nowSeconds + validitySeconds;
  const invite = newInvite(
    p,
    secrets.publicKey,
    enrolmentMailbox(p, state).publicIdentity,
    expiresAtSeconds,
  );
  return {
    state: {
      ...pruned,
      invites: [
        ...pruned.invites,
        {
          id: inviteIdHex(invite.id),
          secret: toBase64url(invite.secret),
          coordinator,
          createdAtSeconds: nowSeconds,
          expiresAtSeconds,
          usedAtSeconds: null,
        },
      ],
    },
    code: encodeInvite(invite),
    expiresAtSeconds,
  };
}

/** What `verifyEnrolmentRequest` checks a request against: this organization's state. */
function enrolmentCheck(
  p: Primitives,
  secrets: OrgSecrets,
  state: OrgState,
  nowSeconds: number,
): EnrolmentCheck {
  const known = new Set([
    ...state.devices.map((d) => identityOf(p, d.identity).id),
    ...state.enrolments.map((e) => identityOf(p, e.identity).id),
  ]);
  return {
    organizationKey: secrets.publicKey,
    nowSeconds,
    findInvite: (id) => {
      const invite = state.invites.find((i) => i.id === id);
      return invite === undefined
        ? undefined
        : {
            secret: bytesOf(invite.secret),
            expiresAtSeconds: invite.expiresAtSeconds,
            usedAtSeconds: invite.usedAtSeconds,
          };
    },
    isKnownDevice: (id) => known.has(id),
  };
}

/**
 * What `verifyEnrolmentRequest` refuses only after the request's MAC (the invite's secret) and
 * its device's signature have verified: the invite's state and the device's. From a device that
 * is pending or enrolled, any of them makes a request a repeat.
 */
const REFUSALS_OF_AN_AUTHENTIC_REQUEST: ReadonlySet<string> = new Set([
  EnrolmentErrorCode.INVITE_EXPIRED,
  EnrolmentErrorCode.INVITE_USED,
  EnrolmentErrorCode.DEVICE_KNOWN,
]);

/**
 * Verifies an enrolment request (as it will arrive in the enrolment mailbox) and keeps it for
 * `org approve`; the invite it used is spent, approved or not.
 */
export function receiveEnrolment(
  p: Primitives,
  secrets: OrgSecrets,
  state: OrgState,
  request: Uint8Array,
  nowSeconds: number,
): { readonly state: OrgState; readonly enrolment: OrgState['enrolments'][number] } {
  if (state.enrolments.length >= MAX_PENDING_ENROLMENTS) {
    throw new CliError(
      CliErrorCode.LIMIT_REACHED,
      `${MAX_PENDING_ENROLMENTS} enrolments are waiting already; approve or remove some first`,
    );
  }
  let verified;
  try {
    verified = verifyEnrolmentRequest(p, request, enrolmentCheck(p, secrets, state, nowSeconds));
  } catch (error) {
    if (error instanceof EnrolmentError) throw refused(error);
    throw error;
  }
  const invite = state.invites.find((i) => i.id === verified.inviteId)!;
  const enrolment = {
    inviteId: verified.inviteId,
    identity: toBase64url(verified.identity.encode()),
    label: verified.label,
    coordinator: invite.coordinator,
    receivedAtSeconds: nowSeconds,
  };
  return {
    state: {
      ...state,
      invites: state.invites.map((i) =>
        i.id === verified.inviteId ? { ...i, usedAtSeconds: nowSeconds } : i,
      ),
      enrolments: [...state.enrolments, enrolment],
    },
    enrolment,
  };
}

/** What one envelope of the enrolment mailbox came to. */
export type EnvelopeOutcome =
  | { readonly kind: 'received'; readonly enrolment: OrgState['enrolments'][number] }
  /** An authentic request of a device that is pending or enrolled already: the relay's
   * redelivery after a lost ack, or the device sending again. Nothing changes. */
  | { readonly kind: 'repeat' };

/**
 * Takes in one envelope of the enrolment mailbox (delivered by the relay): opens it with the
 * mailbox's key, then as `receiveEnrolment`. An authentic request (its MAC and signature
 * verify) from a device that is pending or in the roster is a repeat (at-least-once delivery
 * brings one after a lost ack, possibly after its invite expired), not a refusal: that is
 * decided first, before the invite's expiry or the bound on pending enrolments, whose refusals
 * would otherwise report, or leave on the relay, a request that was taken in already.
 *
 * @throws CliError `enrolment_refused` (with the EnrolmentError as cause), `limit_reached`.
 */
export function receiveEnrolmentEnvelope(
  p: Primitives,
  secrets: OrgSecrets,
  state: OrgState,
  envelope: Uint8Array,
  nowSeconds: number,
): { readonly state: OrgState; readonly outcome: EnvelopeOutcome } {
  let opened;
  try {
    opened = openEnrolmentEnvelope(p, enrolmentMailbox(p, state), envelope);
  } catch (error) {
    if (error instanceof EnrolmentError) throw refused(error);
    throw error;
  }
  const fromKnownDevice = [...state.devices, ...state.enrolments].some((d) =>
    identityOf(p, d.identity).equals(opened.sender),
  );
  if (fromKnownDevice) {
    try {
      // A known device is refused as `device_already_known` at the latest: this never returns.
      verifyEnrolmentRequest(p, opened.request, enrolmentCheck(p, secrets, state, nowSeconds));
    } catch (error) {
      if (error instanceof EnrolmentError && REFUSALS_OF_AN_AUTHENTIC_REQUEST.has(error.code)) {
        return { state, outcome: { kind: 'repeat' } };
      }
      if (error instanceof EnrolmentError) throw refused(error);
      throw error;
    }
  }
  const result = receiveEnrolment(p, secrets, state, opened.request, nowSeconds);
  return { state: result.state, outcome: { kind: 'received', enrolment: result.enrolment } };
}

function refused(error: EnrolmentError): CliError {
  return new CliError(
    CliErrorCode.ENROLMENT_REFUSED,
    `enrolment refused: ${error.message} (${error.code})`,
    { cause: error },
  );
}

/** Finds the one entry whose device id starts with `prefix` (hex, at least 8 characters). */
function byIdPrefix<T extends { readonly identity: string }>(
  p: Primitives,
  entries: readonly T[],
  prefix: string,
): T | undefined {
  const lower = prefix.toLowerCase();
  if (!/^[0-9a-f]+$/.test(lower) || lower.length < MIN_ID_PREFIX_CHARS) return undefined;
  const matches = entries.filter((e) => identityOf(p, e.identity).id.startsWith(lower));
  if (matches.length > 1) {
    throw new CliError(
      CliErrorCode.USAGE,
      `${prefix} names more than one device; give more of its id`,
    );
  }
  return matches[0];
}

/** Approves a pending enrolment: the device joins, and a new roster is signed. */
export function approveEnrolment(
  p: Primitives,
  secrets: OrgSecrets,
  state: OrgState,
  idPrefix: string,
  nowSeconds: number,
  validitySeconds: number,
): { readonly state: OrgState; readonly device: OrgState['devices'][number] } {
  const enrolment = byIdPrefix(p, state.enrolments, idPrefix);
  if (enrolment === undefined) {
    throw new CliError(CliErrorCode.UNKNOWN_DEVICE, `no pending enrolment ${idPrefix}`);
  }
  if (state.devices.length >= MAX_ROSTER_DEVICES) {
    throw new CliError(
      CliErrorCode.LIMIT_REACHED,
      `a roster lists at most ${MAX_ROSTER_DEVICES} devices`,
    );
  }
  const device = {
    identity: enrolment.identity,
    coordinator: enrolment.coordinator,
    label: enrolment.label,
    addedAtSeconds: nowSeconds,
  };
  const next = withNewRoster(
    p,
    secrets,
    state,
    [...state.devices, device],
    nowSeconds,
    validitySeconds,
  );
  return {
    state: { ...next, enrolments: state.enrolments.filter((e) => e !== enrolment) },
    device,
  };
}

/**
 * Removes a device (by id prefix) or a coordinator (by name: all of their devices, pending
 * enrolments and unused invites), and signs a new roster without them.
 */
export function removeMember(
  p: Primitives,
  secrets: OrgSecrets,
  state: OrgState,
  target: string,
  nowSeconds: number,
  validitySeconds: number,
): { readonly state: OrgState; readonly removed: number } {
  const isCoordinator =
    state.devices.some((d) => d.coordinator === target) ||
    state.enrolments.some((e) => e.coordinator === target) ||
    state.invites.some((i) => i.coordinator === target && i.usedAtSeconds === null);
  if (isCoordinator) {
    const devices = state.devices.filter((d) => d.coordinator !== target);
    const removed = state.devices.length - devices.length;
    const base = {
      ...state,
      enrolments: state.enrolments.filter((e) => e.coordinator !== target),
      // An unused invite of theirs is spent, so that it can no longer enrol anything.
      invites: state.invites.map((i) =>
        i.coordinator === target && i.usedAtSeconds === null
          ? { ...i, usedAtSeconds: nowSeconds }
          : i,
      ),
    };
    return {
      state:
        removed === 0
          ? base
          : withNewRoster(p, secrets, base, devices, nowSeconds, validitySeconds),
      removed,
    };
  }
  const device = byIdPrefix(p, state.devices, target);
  if (device !== undefined) {
    const devices = state.devices.filter((d) => d !== device);
    return {
      state: withNewRoster(p, secrets, state, devices, nowSeconds, validitySeconds),
      removed: 1,
    };
  }
  const pending = byIdPrefix(p, state.enrolments, target);
  if (pending !== undefined) {
    return {
      state: { ...state, enrolments: state.enrolments.filter((e) => e !== pending) },
      removed: 0,
    };
  }
  throw new CliError(CliErrorCode.UNKNOWN_DEVICE, `no device or coordinator ${target}`);
}

/**
 * Signs a new roster (the same devices, a fresh expiry) and the next profile version around it,
 * with `content` as the new profile settings when given.
 */
export function publishProfile(
  p: Primitives,
  secrets: OrgSecrets,
  state: OrgState,
  content: unknown,
  nowSeconds: number,
  validitySeconds: number,
): { readonly state: OrgState; readonly profile: Uint8Array; readonly version: number } {
  let checked: ProfileContent;
  try {
    checked = checkProfileContent(content ?? state.profile);
  } catch (error) {
    const issues = (error as { issues?: readonly { path: string; code: string }[] }).issues ?? [];
    throw new CliError(
      CliErrorCode.PROFILE_INVALID,
      `the profile settings are not valid: ${issues.map((i) => `${i.path || '(top)'}: ${i.code}`).join('; ')}`,
      { cause: error },
    );
  }
  const withRoster = withNewRoster(p, secrets, state, state.devices, nowSeconds, validitySeconds);
  const version = state.profileVersion + 1;
  const expiresAtSeconds = nowSeconds + validitySeconds;
  const profile = signOrgProfile(p, secrets.seed, {
    version,
    issuedAtSeconds: nowSeconds,
    expiresAtSeconds,
    roster: bytesOf(withRoster.roster!.bytes),
    content: checked,
  });
  return {
    state: {
      ...withRoster,
      profile: checked,
      profileVersion: version,
      published: { version, expiresAtSeconds, bytes: toBase64url(profile) },
    },
    profile,
    version,
  };
}
