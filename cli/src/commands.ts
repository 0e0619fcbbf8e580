/**
 * The commands: read the passphrase, open the key and state files, run one operation of
 * organization.ts, write the state back atomically, print what the admin needs. Output goes to
 * `out` (stdout), diagnostics to `err` (stderr); nothing secret is printed except the invite
 * code, which is the point of `org invite`.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { formatSafetyNumber } from '@passage/shared/crypto/safety-number';
import { fingerprintDigits, fingerprintWords } from '@passage/shared/crypto/safety-number';
import { asEd25519PublicKey, asEd25519Seed } from '@passage/shared/crypto/keys';
import type { Primitives } from '@passage/shared/crypto/primitives';
import {
  DEFAULT_PROFILE_VALIDITY_SECONDS,
  MAX_PROFILE_VALIDITY_SECONDS,
} from '@passage/shared/org/limits';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { integerOption, parseArgv, type CommandSpec, type ParsedCommand } from './argv.js';
import { CliError, CliErrorCode } from './errors.js';
import {
  KEY_FILE_NAME,
  STATE_FILE_NAME,
  ensureDirectory,
  fileExists,
  organizationDirectory,
  readBytes,
  writeFileAtomic,
} from './files.js';
import {
  MIN_PASSPHRASE_CHARS,
  openKeyFile,
  sealKeyFile,
  STATE_KEY_BYTES,
  type OrgSecrets,
} from './keyfile.js';
import { DEVICE_COMMANDS, runDeviceCommand } from './device.js';
import { CLIENT_COMMANDS, clientDigests, runClientCommand } from './verify.js';
import {
  DEFAULT_INVITE_VALIDITY_SECONDS,
  MAX_INVITE_VALIDITY_SECONDS,
  SHORT_ID_CHARS,
  approveEnrolment,
  createInvite,
  enrolmentMailbox,
  identityOf,
  initialState,
  publishProfile,
  receiveEnrolment,
  receiveEnrolmentEnvelope,
  removeMember,
} from './organization.js';
import { lockState } from './lock.js';
import { readMailboxOnce, relayAddress } from './relay.js';
import { readPassphrase, type PassphraseSource } from './passphrase.js';
import { coordinatorName, openState, sealState, type OrgState } from './state.js';

const COMMON = ['dir', 'passphrase-fd'];

/** Every command and what it accepts. */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  init: { options: [...COMMON, 'name'], args: 0 },
  show: { options: COMMON, args: 0 },
  invite: { options: [...COMMON, 'coordinator', 'valid-hours', 'out'], args: 0 },
  enrolments: { options: [...COMMON, 'import', 'relay'], args: 0 },
  approve: { options: COMMON, args: 1 },
  remove: { options: COMMON, args: 1 },
  publish: { options: [...COMMON, 'profile', 'out', 'relay', 'valid-days', 'client'], args: 0 },
};

export const USAGE = `usage: passage org <command> [options]
  init --name <display name>        a new organization key and state (asks for a passphrase)
  show                              fingerprint, roster, invites, enrolments, last publish
  invite --coordinator <name> [--valid-hours <n>] [--out <file>]
                                    a one-time enrolment code for a new device (printed, or
                                    written to a new 0600 file to hand over)
  enrolments [--relay <url> | --import <file>]
                                    read the enrolment mailbox on the relay (or take one request
                                    in from a file), then list the pending requests
  approve <device id>               add a pending device; signs a new roster
  remove <device id | coordinator>  remove a device or a whole coordinator; signs a new roster
  publish [--profile <file.json>] [--out <file>] [--relay <url>] [--valid-days <n>]
          [--client <client/dist>]  sign the next profile (with a fresh roster) and publish it;
                                    --client signs the digests of the page's build into it
options of every command: --dir <organization directory> --passphrase-fd <n>

usage: passage device enrol --relay <url> (--invite-file <file> | --invite -)
                            [--label <name>] [--out <identity file>]
  a new coordinator device: sends its enrolment over the relay and prints its fingerprint;
  the code comes from a file or stdin (--invite <code> works too, a demo shortcut: the code
  would show in ps and the shell's history)

usage: passage client verify <page url> [--key <organization key>] [--dist <client/dist>]
  (or passage verify <url>) checks that the page and every file it loads are the ones the
  organization signed (--key) and/or a build made here (--dist); exit 11 on any difference
usage: passage client digests <client/dist>
  the SHA-384 of every file of a build, as org publish --client signs them
`;

/** What a command runs with: the environment, the clock, output and a terminal prompt. */
export interface CommandContext {
  readonly p: Primitives;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly nowSeconds: () => number;
  readonly out: (line: string) => void;
  /** Diagnostics that do not end the command (an enrolment envelope refused). */
  readonly err: (line: string) => void;
  readonly prompt: PassphraseSource['prompt'];
  readonly fetch: typeof fetch;
}

interface Paths {
  readonly dir: string;
  readonly key: string;
  readonly state: string;
}

function pathsOf(parsed: ParsedCommand): Paths {
  const dir = organizationDirectory(parsed.options.get('dir'));
  return { dir, key: join(dir, KEY_FILE_NAME), state: join(dir, STATE_FILE_NAME) };
}

function passphraseSource(ctx: CommandContext, parsed: ParsedCommand): PassphraseSource {
  const fd = parsed.options.get('passphrase-fd');
  if (fd !== undefined && !/^\d+$/.test(fd)) {
    throw new CliError(CliErrorCode.USAGE, '--passphrase-fd must be a file descriptor number');
  }
  return { fd: fd === undefined ? undefined : Number(fd), env: ctx.env, prompt: ctx.prompt };
}

/** An opened organization: its secrets and state, and for a command that changes it, `save`. */
interface Unlocked {
  readonly paths: Paths;
  readonly secrets: OrgSecrets;
  readonly state: OrgState;
  /**
   * Writes `state` to the state file (atomically), after checking that the file is still the
   * one this command read or last wrote (`state_locked` if not: a writer that ignored the lock,
   * or a lock removed by hand while this command ran; nothing is written then).
   */
  save(state: OrgState): void;
  /** Releases the state file's lock (idempotent; nothing for a read-only command). */
  release(): void;
}

/**
 * Opens the key file (asking for the passphrase) and the state file. With `forChange`, it takes
 * the state file's lock (lock.ts) before it reads the state, and holds it until `release`: a
 * command that changes the organization always starts from the latest state and nobody writes
 * between its read and its writes.
 */
/**
 * Runs `work` on the organization unlocked for a change: the state lock is held from before the
 * state is read until `work` has finished (saved, or failed), and released whatever happens.
 */
async function withChange<T>(
  ctx: CommandContext,
  parsed: ParsedCommand,
  work: (org: Unlocked) => T | Promise<T>,
): Promise<T> {
  const org = await unlock(ctx, parsed, { forChange: true });
  try {
    return await work(org);
  } finally {
    org.release();
  }
}

async function unlock(
  ctx: CommandContext,
  parsed: ParsedCommand,
  { forChange }: { readonly forChange: boolean },
): Promise<Unlocked> {
  const paths = pathsOf(parsed);
  if (!fileExists(paths.key)) {
    throw new CliError(
      CliErrorCode.NOT_INITIALISED,
      `no organization key in ${paths.dir} (run passage org init)`,
    );
  }
  if (!fileExists(paths.state)) {
    throw new CliError(
      CliErrorCode.STATE_FILE_DAMAGED,
      `the state file is missing in ${paths.dir}`,
    );
  }
  const passphrase = await readPassphrase(passphraseSource(ctx, parsed));
  // Taken after the passphrase, so that a prompt left open holds nothing up.
  const lock = forChange ? lockState(paths.dir) : undefined;
  try {
    const secrets = openKeyFile(ctx.p, readBytes(paths.key), passphrase);
    let onDisk = readBytes(paths.state);
    const state = openState(ctx.p, secrets.stateKey, secrets.publicKey, onDisk);
    return {
      paths,
      secrets,
      state,
      save: (next) => {
        if (lock === undefined) throw new Error('a read-only command cannot save');
        if (!fileExists(paths.state) || !Buffer.from(readBytes(paths.state)).equals(onDisk)) {
          throw new CliError(
            CliErrorCode.STATE_LOCKED,
            'the state file was changed by another command while this one ran; this one wrote nothing: run it again',
          );
        }
        const sealed = sealState(ctx.p, secrets.stateKey, secrets.publicKey, next);
        writeFileAtomic(paths.state, sealed);
        onDisk = sealed;
      },
      release: () => lock?.release(),
    };
  } catch (error) {
    lock?.release();
    throw error;
  }
}

function printFingerprint(ctx: CommandContext, publicKey: Uint8Array): void {
  const key = asEd25519PublicKey(publicKey);
  ctx.out(`fingerprint (digits): ${formatSafetyNumber(fingerprintDigits(ctx.p, key))}`);
  ctx.out(`fingerprint (words):  ${fingerprintWords(ctx.p, key).join(' ')}`);
  ctx.out(`relay setting:        ORG_PUBLIC_KEY=${toBase64url(publicKey)}`);
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

function shortId(ctx: CommandContext, identity: string): string {
  return identityOf(ctx.p, identity).id.slice(0, SHORT_ID_CHARS);
}

function deviceFingerprint(ctx: CommandContext, identity: string): string {
  return formatSafetyNumber(fingerprintDigits(ctx.p, identityOf(ctx.p, identity).signingKey));
}

async function init(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  const paths = pathsOf(parsed);
  const name = parsed.options.get('name');
  if (name === undefined) throw new CliError(CliErrorCode.USAGE, 'org init needs --name');
  if (fileExists(paths.key) || fileExists(paths.state)) {
    throw new CliError(
      CliErrorCode.ALREADY_INITIALISED,
      `${paths.dir} holds an organization already; nothing was changed`,
    );
  }
  const passphrase = await readPassphrase(passphraseSource(ctx, parsed), { confirm: true });
  if (passphrase.length < MIN_PASSPHRASE_CHARS) {
    throw new CliError(
      CliErrorCode.PASSPHRASE_UNAVAILABLE,
      `the passphrase must have at least ${MIN_PASSPHRASE_CHARS} characters`,
    );
  }
  let state: OrgState;
  try {
    state = initialState(ctx.p, name);
  } catch {
    throw new CliError(
      CliErrorCode.USAGE,
      '--name must be 1–100 characters, with no control characters or surrounding spaces',
    );
  }
  const seed = asEd25519Seed(ctx.p.random.bytes(32));
  const secrets: OrgSecrets = {
    seed,
    publicKey: asEd25519PublicKey(ctx.p.ed25519KeyPairFromSeed(seed).publicKey),
    stateKey: ctx.p.random.bytes(STATE_KEY_BYTES),
  };
  const keyFile = sealKeyFile(ctx.p, secrets, passphrase);
  ensureDirectory(paths.dir);
  const lock = lockState(paths.dir);
  try {
    // Checked again under the lock: another init may have run while the passphrase was asked.
    if (fileExists(paths.key) || fileExists(paths.state)) {
      throw new CliError(
        CliErrorCode.ALREADY_INITIALISED,
        `${paths.dir} holds an organization already; nothing was changed`,
      );
    }
    // The state first: a key file without its state would look like a finished set-up.
    writeFileAtomic(paths.state, sealState(ctx.p, secrets.stateKey, secrets.publicKey, state));
    writeFileAtomic(paths.key, keyFile);
  } finally {
    lock.release();
  }
  ctx.out(`organization created in ${paths.dir}`);
  printFingerprint(ctx, secrets.publicKey);
  ctx.out('Publish the fingerprint on your website and cards; keep the passphrase and a copy of');
  ctx.out(`${paths.key} somewhere safe: without both, the organization cannot be changed.`);
}

async function show(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  const { state, secrets } = await unlock(ctx, parsed, { forChange: false });
  const profile = state.profile as { displayName?: string };
  ctx.out(`organization: ${profile.displayName ?? '?'}`);
  printFingerprint(ctx, secrets.publicKey);
  ctx.out(
    state.roster === null
      ? 'roster: none signed yet'
      : `roster: version ${state.roster.serial}, ${state.devices.length} device(s)`,
  );
  for (const d of state.devices) {
    ctx.out(`  ${shortId(ctx, d.identity)}  ${d.coordinator}  ${d.label}`);
  }
  const now = ctx.nowSeconds();
  const open = state.invites.filter((i) => i.usedAtSeconds === null && i.expiresAtSeconds > now);
  ctx.out(`invites: ${open.length} open`);
  for (const i of open) ctx.out(`  for ${i.coordinator}, until ${iso(i.expiresAtSeconds)}`);
  ctx.out(`enrolments waiting: ${state.enrolments.length}`);
  ctx.out(
    state.published === null
      ? 'published: never'
      : `published: version ${state.published.version}, valid until ${iso(state.published.expiresAtSeconds)}`,
  );
}

async function invite(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  const coordinator = coordinatorName.safeParse(parsed.options.get('coordinator'));
  if (!coordinator.success) {
    throw new CliError(
      CliErrorCode.USAGE,
      'org invite needs --coordinator <name> (1–64 plain characters)',
    );
  }
  const hours = integerOption(
    parsed,
    'valid-hours',
    DEFAULT_INVITE_VALIDITY_SECONDS / 3600,
    1,
    MAX_INVITE_VALIDITY_SECONDS / 3600,
  );
  // With --out the code goes to a file (0600) to hand over, not to the terminal's scrollback.
  const out = parsed.options.get('out');
  if (out !== undefined && fileExists(out)) {
    throw new CliError(CliErrorCode.USAGE, `${out} exists already; nothing was changed`);
  }
  const result = await withChange(ctx, parsed, (org) => {
    const invite = createInvite(
      ctx.p,
      org.secrets,
      org.state,
      coordinator.data,
      hours * 3600,
      ctx.nowSeconds(),
    );
    // The code first: a failed save then leaves a code to no invite, never an invite whose
    // code was lost.
    if (out !== undefined) writeFileAtomic(out, new TextEncoder().encode(invite.code + '\n'));
    try {
      org.save(invite.state);
    } catch (error) {
      if (out !== undefined) rmSync(out, { force: true });
      throw error;
    }
    return invite;
  });
  if (out === undefined) {
    ctx.out(`invite for ${coordinator.data}, valid until ${iso(result.expiresAtSeconds)}, once:`);
    ctx.out(result.code);
  } else {
    ctx.out(
      `invite for ${coordinator.data}, valid until ${iso(result.expiresAtSeconds)}, once, written to ${out}`,
    );
    ctx.out('Hand the file over as you would a key; the device reads it with --invite-file.');
  }
}

async function enrolments(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  const file = parsed.options.get('import');
  const relayText = parsed.options.get('relay');
  if (file !== undefined && relayText !== undefined) {
    throw new CliError(CliErrorCode.USAGE, 'org enrolments takes --relay or --import, not both');
  }
  const relay = relayText === undefined ? undefined : relayAddress(relayText);
  let request: Uint8Array | undefined;
  if (file !== undefined) {
    const text = new TextDecoder().decode(readBytes(file)).trim();
    request = fromBase64url(text);
    if (request === undefined) {
      throw new CliError(
        CliErrorCode.ENROLMENT_REFUSED,
        'enrolment refused: the file does not hold an enrolment request (enrolment_malformed)',
      );
    }
  }
  const org = await unlock(ctx, parsed, {
    forChange: request !== undefined || relay !== undefined,
  });
  const { secrets } = org;
  let current = org.state;
  let refusals = 0;
  try {
    if (request !== undefined) {
      const result = receiveEnrolment(ctx.p, secrets, current, request, ctx.nowSeconds());
      org.save(result.state);
      current = result.state;
      ctx.out(`enrolment received for ${result.enrolment.coordinator}`);
    }
    if (relay !== undefined) {
      let fatal: Error | undefined;
      let received = 0;
      await readMailboxOnce(ctx.p, relay, enrolmentMailbox(ctx.p, current), (envelope) => {
        if (fatal !== undefined) return { kind: 'later', reason: 'stopped' };
        try {
          const result = receiveEnrolmentEnvelope(
            ctx.p,
            secrets,
            current,
            envelope,
            ctx.nowSeconds(),
          );
          if (result.outcome.kind === 'repeat') {
            ctx.err('passage: a repeat of an enrolment already received; ignored');
            return { kind: 'accepted' };
          }
          // Committed before the ack (the handler returns, then the inbox acknowledges): a
          // crash in between brings the envelope again, and it is then a repeat.
          org.save(result.state);
          current = result.state;
          received += 1;
          ctx.out(`enrolment received for ${result.outcome.enrolment.coordinator}`);
          return { kind: 'accepted' };
        } catch (error) {
          if (error instanceof CliError && error.code === CliErrorCode.ENROLMENT_REFUSED) {
            refusals += 1;
            ctx.err(`passage: ${error.message}`);
            return { kind: 'unreadable', reason: error.code };
          }
          if (error instanceof CliError && error.code === CliErrorCode.LIMIT_REACHED) {
            // Left in the mailbox: it is read again once the admin has made room.
            ctx.err(`passage: ${error.message}; the request stays on the relay`);
            return { kind: 'later', reason: error.code };
          }
          // A failed write or a bug: stop taking envelopes in; they stay on the relay.
          fatal = error instanceof Error ? error : new Error('unexpected failure');
          return { kind: 'later', reason: 'failed' };
        }
      });
      if (fatal !== undefined) throw fatal;
      ctx.out(
        `read the enrolment mailbox at ${relay.origin}: ${received} new, ${refusals} refused`,
      );
    }
  } finally {
    org.release();
  }
  if (current.enrolments.length === 0) ctx.out('no enrolment waiting');
  for (const e of current.enrolments) {
    ctx.out(
      `${shortId(ctx, e.identity)}  ${e.coordinator}  ${e.label}  received ${iso(e.receivedAtSeconds)}`,
    );
    ctx.out(`  device fingerprint: ${deviceFingerprint(ctx, e.identity)}`);
  }
  if (current.enrolments.length > 0) {
    ctx.out('Compare each fingerprint with the one its device shows (in person or by phone), then');
    ctx.out('run passage org approve <id>.');
  }
  if (refusals > 0) {
    throw new CliError(
      CliErrorCode.ENROLMENT_REFUSED,
      `${refusals} enrolment envelope(s) refused (each said above); the others were taken in`,
    );
  }
}

async function approve(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  const result = await withChange(ctx, parsed, (org) => {
    const approved = approveEnrolment(
      ctx.p,
      org.secrets,
      org.state,
      parsed.args[0]!,
      ctx.nowSeconds(),
      DEFAULT_PROFILE_VALIDITY_SECONDS,
    );
    org.save(approved.state);
    return approved;
  });
  ctx.out(
    `approved ${shortId(ctx, result.device.identity)} (${result.device.coordinator}); roster version ${result.state.roster!.serial}`,
  );
  ctx.out('Run passage org publish to serve the new roster.');
}

async function remove(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  const result = await withChange(ctx, parsed, (org) => {
    const removed = removeMember(
      ctx.p,
      org.secrets,
      org.state,
      parsed.args[0]!,
      ctx.nowSeconds(),
      DEFAULT_PROFILE_VALIDITY_SECONDS,
    );
    org.save(removed.state);
    return removed;
  });
  ctx.out(
    `removed ${result.removed} device(s); roster version ${result.state.roster?.serial ?? 0}`,
  );
  if (result.removed > 0)
    ctx.out('Run passage org publish now: until then the relay serves the old roster.');
}

async function publish(ctx: CommandContext, parsed: ParsedCommand): Promise<void> {
  const out = parsed.options.get('out');
  const relay = parsed.options.get('relay');
  if (out === undefined && relay === undefined) {
    throw new CliError(
      CliErrorCode.USAGE,
      'org publish needs --relay <url>, --out <file>, or both',
    );
  }
  let relayUrl: URL | undefined;
  if (relay !== undefined) {
    try {
      relayUrl = new URL('/v1/org/profile', relay);
    } catch {
      throw new CliError(CliErrorCode.USAGE, '--relay must be a URL (https://relay.example.org)');
    }
  }
  const days = integerOption(
    parsed,
    'valid-days',
    DEFAULT_PROFILE_VALIDITY_SECONDS / 86_400,
    1,
    MAX_PROFILE_VALIDITY_SECONDS / 86_400,
  );
  let content: unknown;
  const profileFile = parsed.options.get('profile');
  if (profileFile !== undefined) {
    try {
      content = JSON.parse(new TextDecoder().decode(readBytes(profileFile)));
    } catch (cause) {
      throw new CliError(CliErrorCode.PROFILE_INVALID, `${profileFile} is not a JSON file`, {
        cause,
      });
    }
  }
  const clientDir = parsed.options.get('client');
  const client = clientDir === undefined ? undefined : { files: clientDigests(clientDir) };
  const org = await unlock(ctx, parsed, { forChange: true });
  if (client !== undefined) {
    // The page's digests join the settings given (or the last ones signed).
    const base: unknown = content ?? org.state.profile;
    content = typeof base === 'object' && base !== null ? { ...base, client } : base;
  }
  // Held until the relay has answered, so that two publishes reach it in version order.
  try {
    const result = publishProfile(
      ctx.p,
      org.secrets,
      org.state,
      content,
      ctx.nowSeconds(),
      days * 86_400,
    );
    // Saved before it leaves: the version is spent even if the relay is down, so that a retry
    // signs the next one instead of a second, different profile under the same version.
    org.save(result.state);
    ctx.out(
      `signed profile version ${result.version} with roster version ${result.state.roster!.serial}`,
    );
    if (out !== undefined) {
      writeFileAtomic(out, result.profile);
      ctx.out(`written to ${out}`);
    }
    if (relayUrl !== undefined) {
      let response: Response;
      try {
        response = await ctx.fetch(relayUrl, {
          method: 'PUT',
          headers: { 'Content-Type': 'application/octet-stream' },
          body: new Uint8Array(result.profile),
        });
      } catch (cause) {
        throw new CliError(
          CliErrorCode.PUBLISH_FAILED,
          `cannot reach the relay at ${relayUrl.origin}`,
          {
            cause,
          },
        );
      }
      const body = (await response.json().catch(() => ({}))) as { code?: unknown };
      if (!response.ok) {
        const code = typeof body.code === 'string' ? body.code : `HTTP ${response.status}`;
        throw new CliError(CliErrorCode.PUBLISH_FAILED, `the relay refused the profile (${code})`);
      }
      ctx.out(`published to ${relayUrl.origin}`);
    }
  } finally {
    org.release();
  }
}

const RUN: Readonly<Record<string, (ctx: CommandContext, parsed: ParsedCommand) => Promise<void>>> =
  {
    init,
    show,
    invite,
    enrolments,
    approve,
    remove,
    publish,
  };

/** Runs one command line; throws CliError for everything the admin can act on. */
export async function runCommand(ctx: CommandContext, argv: readonly string[]): Promise<void> {
  if (argv[0] === 'client' || argv[0] === 'verify') {
    // `passage verify <url>` is `passage client verify <url>`.
    const words = argv[0] === 'verify' ? ['client', ...argv] : argv;
    await runClientCommand(ctx, parseArgv(words, CLIENT_COMMANDS, 'client'));
    return;
  }
  if (argv[0] === 'device') {
    await runDeviceCommand(ctx, parseArgv(argv, DEVICE_COMMANDS, 'device'));
    return;
  }
  const parsed = parseArgv(argv, COMMANDS);
  await RUN[parsed.command]!(ctx, parsed);
}
