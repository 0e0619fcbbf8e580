/**
 * `passage device enrol`: a new coordinator device's side of enrolment, for a device that runs
 * in a terminal (the demo, scripts, tests) until the coordinator workspace carries it. It makes
 * a fresh device identity, seals its enrolment request to the invite's enrolment mailbox and
 * sends it over the relay (paying the first-contact proof-of-work), and prints the device's
 * fingerprint, which the admin compares before `org approve`.
 *
 * With `--out`, the device's secret identity is written to that file (mode 0600, never over an
 * existing file) before anything is sent: no device is ever enrolled whose key was not kept. It
 * is removed again only when the enrolment definitely did not reach the relay (it could not be
 * reached, or refused the envelope); when the outcome is unknown (no answer in time, the
 * connection lost after the send), the relay may hold the request, so the file is kept and the
 * command says so (`enrolment_outcome_unknown`). The file is not encrypted: it is for test and
 * demo devices (the workspace will keep its key in its own encrypted store).
 */
import { readFileSync, rmSync } from 'node:fs';
import { EnrolmentFailed, sendEnrolment } from '@passage/shared/client/index';
import { EnrolmentError, decodeInvite, type Invite } from '@passage/shared/crypto/enrolment';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import {
  fingerprintDigits,
  fingerprintWords,
  formatSafetyNumber,
} from '@passage/shared/crypto/safety-number';
import { MAX_DEVICE_LABEL_BYTES } from '@passage/shared/crypto/enrolment';
import { hasForbiddenCharacters } from '@passage/shared/org/profile';
import { utf8Encode } from '@passage/shared/org/utf8';
import { toBase64url } from '@passage/shared/protocol/base64url';
import type { CommandSpec, ParsedCommand } from './argv.js';
import type { CommandContext } from './commands.js';
import { CliError, CliErrorCode } from './errors.js';
import { fileExists, readBytes, writeFileAtomic } from './files.js';
import { relayAddress, sendAnonymously } from './relay.js';

/** The `passage device` commands. */
export const DEVICE_COMMANDS: Readonly<Record<string, CommandSpec>> = {
  enrol: { options: ['relay', 'invite', 'invite-file', 'label', 'out'], args: 0 },
};

/** Format version of the identity file `--out` writes. */
export const DEVICE_FILE_VERSION = 1;

/** The identity file: what a device needs to read its mailbox and to know its organization. */
export function encodeDeviceFile(device: DeviceIdentity, invite: Invite, label: string): string {
  return (
    JSON.stringify({
      v: DEVICE_FILE_VERSION,
      identity: toBase64url(device.encodeSecret()),
      organizationKey: toBase64url(invite.organizationKey),
      label,
    }) + '\n'
  );
}

/** Longest invite text read from a file or stdin (a code is about 320 characters). */
export const MAX_INVITE_TEXT_BYTES = 4096;

/**
 * The invite code: from `--invite-file <file>`, from stdin with `--invite -`, or (a demo
 * shortcut) inline with `--invite <code>`, which puts the secret in `ps` and the shell's history.
 */
function inviteText(parsed: ParsedCommand, stdin: () => Uint8Array): string {
  const code = parsed.options.get('invite');
  const file = parsed.options.get('invite-file');
  if ((code === undefined) === (file === undefined)) {
    throw new CliError(
      CliErrorCode.USAGE,
      'device enrol needs --invite-file <file>, or --invite - to read the code from stdin (one of them)',
    );
  }
  if (code !== undefined && code !== '-') return code;
  let bytes: Uint8Array;
  try {
    bytes = code === '-' ? stdin() : readBytes(file!);
  } catch (cause) {
    throw new CliError(
      CliErrorCode.USAGE,
      code === '-' ? 'cannot read the invite code from stdin' : `cannot read ${file}`,
      { cause },
    );
  }
  if (bytes.length > MAX_INVITE_TEXT_BYTES) {
    throw new CliError(
      CliErrorCode.ENROLMENT_REFUSED,
      'that is not an invite code: it is too long (invite_malformed)',
    );
  }
  return new TextDecoder().decode(bytes);
}

/** The device's id and fingerprint, which the admin compares before `org approve`. */
function printDevice(ctx: CommandContext, device: DeviceIdentity): void {
  ctx.out(`device id:          ${device.publicIdentity.id}`);
  ctx.out(
    `device fingerprint: ${formatSafetyNumber(fingerprintDigits(ctx.p, device.publicIdentity.signingKey))}`,
  );
}

async function enrol(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  const relayText = parsed.options.get('relay');
  if (relayText === undefined) {
    throw new CliError(CliErrorCode.USAGE, 'device enrol needs --relay <url>');
  }
  const relay = relayAddress(relayText);
  const label = parsed.options.get('label') ?? '';
  if (utf8Encode(label).length > MAX_DEVICE_LABEL_BYTES || hasForbiddenCharacters(label)) {
    throw new CliError(
      CliErrorCode.USAGE,
      `--label must be at most ${MAX_DEVICE_LABEL_BYTES} bytes of plain text`,
    );
  }
  let invite: Invite;
  try {
    invite = decodeInvite(
      ctx.p,
      inviteText(parsed, () => new Uint8Array(readFileSync(0))),
    );
  } catch (error) {
    if (error instanceof EnrolmentError) {
      throw new CliError(CliErrorCode.ENROLMENT_REFUSED, `${error.message} (${error.code})`, {
        cause: error,
      });
    }
    throw error;
  }
  const now = ctx.nowSeconds();
  if (now >= invite.expiresAtSeconds) {
    throw new CliError(
      CliErrorCode.ENROLMENT_REFUSED,
      'The invite has expired; ask the admin for a new one (invite_expired)',
    );
  }
  const out = parsed.options.get('out');
  if (out !== undefined && fileExists(out)) {
    throw new CliError(CliErrorCode.USAGE, `${out} exists already; nothing was sent`);
  }
  const device = DeviceIdentity.generate(ctx.p);
  if (out !== undefined) writeFileAtomic(out, utf8Encode(encodeDeviceFile(device, invite, label)));
  try {
    await sendAnonymously(
      ctx.p,
      relay,
      (client) => sendEnrolment(client, ctx.p, { invite, device, label, nowSeconds: now }),
      // The relay answered the send with an error that is not worth retrying: not stored.
      (error) => error instanceof EnrolmentFailed,
    );
  } catch (error) {
    if (error instanceof CliError && error.code === CliErrorCode.ENROLMENT_OUTCOME_UNKNOWN) {
      // The relay may hold the request: the admin may see it, so this device's key and its
      // fingerprint must not be lost.
      printDevice(ctx, device);
      throw new CliError(
        error.code,
        out === undefined
          ? `${error.message}; the admin may see this device's enrolment: its key was not kept (no --out), so they should remove it (passage org remove <device id>); ask for a new invite`
          : `${error.message}; the device identity in ${out} is kept, since the admin may see its enrolment: ask them whether it arrived before you enrol again (with a new invite and another --out file)`,
        { cause: error },
      );
    }
    if (out !== undefined) rmSync(out, { force: true });
    throw error;
  }
  const orgKey = invite.organizationKey;
  ctx.out(`enrolment sent to ${relay.origin}`);
  printDevice(ctx, device);
  ctx.out(
    `organization:       ${formatSafetyNumber(fingerprintDigits(ctx.p, orgKey))} (${fingerprintWords(ctx.p, orgKey).join(' ')})`,
  );
  ctx.out('Check that the organization fingerprint is the one it publishes, and tell the admin');
  ctx.out('the device fingerprint: they compare it before passage org approve.');
  if (out !== undefined) ctx.out(`device identity written to ${out} (secret: keep it safe)`);
}

/** Runs one `passage device` command. */
export async function runDeviceCommand(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  if (parsed.command === 'enrol') await enrol(ctx, parsed);
}
