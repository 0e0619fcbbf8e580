/**
 * The CLI's failures: a stable code each, the exit status it ends the process with, and a
 * message for the admin. Messages name no secret and no passphrase; they may name a file the
 * admin gave. Every refusal leaves the files as they were (writes are atomic, files.ts).
 *
 * Exit statuses (README, "Organization set-up"):
 *   0 done · 1 an unexpected failure (I/O, a bug) · 2 usage · 3 no organization here, or one
 *   already · 4 wrong passphrase, or none available · 5 a damaged or unsupported key or state
 *   file · 6 an enrolment refused (invite unknown, expired or used, request not authentic) ·
 *   7 an unknown device, coordinator or enrolment · 8 the organization cannot do that now (an
 *   empty roster, too many invites) · 9 the relay refused or could not be reached (publish,
 *   reading the enrolment mailbox, a device's enrolment), or a device's enrolment whose outcome
 *   is unknown · 10 another command is changing the organization (its state file is locked), or
 *   a lock was left by one that no longer runs
 */
export const CliErrorCode = {
  /** Unknown command or option, a missing or malformed argument. */
  USAGE: 'usage',
  /** No key file in the organization directory. */
  NOT_INITIALISED: 'not_initialised',
  /** `org init` where a key or state file exists already (never overwritten). */
  ALREADY_INITIALISED: 'already_initialised',
  /** The passphrase does not open the key file. */
  WRONG_PASSPHRASE: 'wrong_passphrase',
  /** No passphrase could be read (no TTY, no PASSAGE_PASSPHRASE, no --passphrase-fd), the two
   * entries at `org init` differ, or the new one is too short. */
  PASSPHRASE_UNAVAILABLE: 'passphrase_unavailable',
  /** The key file is damaged: truncated, changed, or not a key file at all. */
  KEY_FILE_DAMAGED: 'key_file_damaged',
  /** The key file is of a format version this tool does not read. */
  KEY_FILE_UNSUPPORTED: 'key_file_unsupported_version',
  /** The state file is damaged, of another organization, or of an unknown version. */
  STATE_FILE_DAMAGED: 'state_file_damaged',
  /** An enrolment request refused (the `EnrolmentError` code is in the message). */
  ENROLMENT_REFUSED: 'enrolment_refused',
  /** No device, coordinator or pending enrolment by that id or name. */
  UNKNOWN_DEVICE: 'unknown_device',
  /** A change that would leave the roster with no device (a roster lists at least one). */
  ROSTER_EMPTY: 'roster_empty',
  /** A bound reached: pending invites or enrolments, devices in the roster. */
  LIMIT_REACHED: 'limit_reached',
  /** The profile settings file is not valid profile content. */
  PROFILE_INVALID: 'profile_invalid',
  /** The relay answered a publish with an error, or could not be reached. */
  PUBLISH_FAILED: 'publish_failed',
  /** The relay's WebSocket could not be reached or used in time (reading the enrolment
   * mailbox, sending a device's enrolment), or it refused the envelope. */
  RELAY_FAILED: 'relay_failed',
  /** A device's enrolment was sent but the relay did not say whether it stored it (no answer
   * in time, the connection lost): the identity file is kept, since the request may be in the
   * enrolment mailbox. */
  ENROLMENT_OUTCOME_UNKNOWN: 'enrolment_outcome_unknown',
  /** `passage client verify`: a served file differs from the signed or the local build, the
   * page names a file neither lists, or the signed profile carries no file digests. */
  CLIENT_MISMATCH: 'client_mismatch',
  /** `passage client verify`: the page, a file or the profile could not be fetched. */
  CLIENT_UNREACHABLE: 'client_unreachable',
  /** Another command holds the state file's lock (lock.ts), or changed the state file while
   * this one ran; nothing was written. */
  STATE_LOCKED: 'state_locked',
  /** The state file's lock was left by a process that no longer runs (or names none): never
   * cleared by the tool; the message says which file to remove once no command is running. */
  STATE_LOCK_STALE: 'state_lock_stale',
} as const;

export type CliErrorCode = (typeof CliErrorCode)[keyof typeof CliErrorCode];

/** The exit status of each code. */
export const EXIT_STATUS: Readonly<Record<CliErrorCode, number>> = {
  usage: 2,
  not_initialised: 3,
  already_initialised: 3,
  wrong_passphrase: 4,
  passphrase_unavailable: 4,
  key_file_damaged: 5,
  key_file_unsupported_version: 5,
  state_file_damaged: 5,
  enrolment_refused: 6,
  unknown_device: 7,
  roster_empty: 8,
  limit_reached: 8,
  profile_invalid: 2,
  publish_failed: 9,
  relay_failed: 9,
  enrolment_outcome_unknown: 9,
  client_mismatch: 11,
  client_unreachable: 9,
  state_locked: 10,
  state_lock_stale: 10,
};

/** A failure the admin can act on. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly code: CliErrorCode,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }

  get exitStatus(): number {
    return EXIT_STATUS[this.code];
  }
}
