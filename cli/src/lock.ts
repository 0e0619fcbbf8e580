/**
 * The state file's lock: one command at a time changes an organization. Every command that
 * writes the state file holds `org-state.lock` (beside it, created exclusively with O_EXCL,
 * mode 0600) from before it reads the state until it has written it for the last time, so a
 * command that runs for a while (`org enrolments --relay`, up to a minute) cannot write back a
 * state that another one (`org remove` in a second terminal) has changed meanwhile: that would
 * undo a revocation, or sign a profile version twice.
 *
 * The lock names its holder: `<pid> <host> <token>`. A command that finds it held says by whom;
 * one that finds it left by a process that no longer runs (killed with SIGKILL, a power cut)
 * says so and how to clear it, and never removes it by itself: a process on another machine
 * sharing the directory, or one this check cannot see, may still hold it. SIGINT, SIGTERM and
 * SIGHUP release the lock before the process ends (a state write is atomic, files.ts, so ending
 * at any point leaves the state whole).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CliError, CliErrorCode } from './errors.js';
import { FILE_MODE } from './files.js';

/** The lock's file name inside the organization directory. */
export const LOCK_FILE_NAME = 'org-state.lock';

/** Signals that release the lock and end the process (with 128 + the signal's number). */
const RELEASING_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/** A held lock; `release` is idempotent. */
export interface StateLock {
  readonly path: string;
  release(): void;
}

/** What a lock file says of its holder (`undefined` when it says nothing readable). */
interface Holder {
  readonly pid: number;
  readonly host: string;
}

function parseHolder(text: string): Holder | undefined {
  const match = /^(\d{1,10}) (\S{1,255}) [0-9a-f]{32}\n$/.exec(text);
  if (match === null) return undefined;
  return { pid: Number(match[1]), host: match[2]! };
}

/** Whether a process of this machine runs under `pid` (one of another user counts). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function refuse(path: string, text: string): CliError {
  const holder = parseHolder(text);
  const clear = `if no passage command is running on this organization, remove ${path} and run this one again`;
  if (holder === undefined) {
    return new CliError(
      CliErrorCode.STATE_LOCK_STALE,
      `the organization is locked by a lock file that names no process (a command may have been stopped as it started); ${clear}`,
    );
  }
  if (holder.host !== hostname()) {
    return new CliError(
      CliErrorCode.STATE_LOCKED,
      `another passage command (process ${holder.pid} on ${holder.host}) is changing this organization; run this one again when it has finished (${clear})`,
    );
  }
  if (!isRunning(holder.pid)) {
    return new CliError(
      CliErrorCode.STATE_LOCK_STALE,
      `the organization is locked by process ${holder.pid}, which is no longer running (it was stopped before it could clear its lock); ${clear}`,
    );
  }
  return new CliError(
    CliErrorCode.STATE_LOCKED,
    `another passage command (process ${holder.pid}) is changing this organization; run this one again when it has finished`,
  );
}

/**
 * Takes the lock of the organization directory `dir`, or throws `state_locked` (held by a
 * running process, or one of another host) or `state_lock_stale` (left by a process that no
 * longer runs, or unreadable), changing nothing.
 */
export function lockState(dir: string): StateLock {
  const path = join(dir, LOCK_FILE_NAME);
  const content = `${process.pid} ${hostname()} ${randomBytes(16).toString('hex')}\n`;
  let fd: number;
  try {
    fd = openSync(path, 'wx', FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    let text: string;
    try {
      text = readFileSync(path, 'latin1');
    } catch (readError) {
      // Released between the two calls: the holder has just finished.
      if ((readError as NodeJS.ErrnoException).code === 'ENOENT') return lockState(dir);
      throw readError;
    }
    throw refuse(path, text);
  }
  try {
    writeSync(fd, content);
  } catch (error) {
    rmSync(path, { force: true });
    throw error;
  } finally {
    closeSync(fd);
  }

  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    for (const [signal, handler] of handlers) process.off(signal, handler);
    // Removed only if it is still ours (someone may have cleared it by hand and taken it).
    try {
      if (readFileSync(path, 'latin1') === content) rmSync(path, { force: true });
    } catch {
      // Gone already.
    }
  };
  const handlers = Object.entries(RELEASING_SIGNALS).map(([signal, number]) => {
    const handler = (): void => {
      release();
      process.exit(128 + number);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  process.on('exit', release);
  return { path, release };
}
