/**
 * The organization directory and its two files, written so that nothing is ever half-written:
 * each write goes to a fresh temporary file beside the target (mode 0600, created exclusively),
 * is flushed to disk (fsync), renamed over the target (atomic on POSIX file systems), and the
 * directory is flushed so the rename survives a power cut. A failure at any step removes the
 * temporary file and leaves the target as it was.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** File names inside the organization directory. */
export const KEY_FILE_NAME = 'org-key';
export const STATE_FILE_NAME = 'org-state';

/** Mode of every file the tool writes, and of the directory it creates. */
export const FILE_MODE = 0o600;
export const DIRECTORY_MODE = 0o700;

/**
 * Test-only: `PASSAGE_DANGEROUS_TEST_ONLY_FAIL_RENAME=1` makes every write fail after the
 * temporary file is written and before it is renamed, to prove that a failed write changes
 * nothing. Honoured only with NODE_ENV=test.
 */
function failBeforeRename(): boolean {
  return (
    process.env['NODE_ENV'] === 'test' &&
    process.env['PASSAGE_DANGEROUS_TEST_ONLY_FAIL_RENAME'] === '1'
  );
}

/** The organization directory: `--dir`, else PASSAGE_ORG_DIR, else ~/.config/passage-org. */
export function organizationDirectory(explicit: string | undefined): string {
  if (explicit !== undefined) return explicit;
  const fromEnv = process.env['PASSAGE_ORG_DIR'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const config = process.env['XDG_CONFIG_HOME'];
  return join(
    config !== undefined && config !== '' ? config : join(homedir(), '.config'),
    'passage-org',
  );
}

/** Creates the directory (mode 0700) if it does not exist. */
export function ensureDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: DIRECTORY_MODE });
}

export function fileExists(path: string): boolean {
  return existsSync(path);
}

export function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** Writes `data` to `path` atomically (see the module comment), mode 0600. */
export function writeFileAtomic(path: string, data: Uint8Array): void {
  const dir = dirname(path);
  const temporary = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const fd = openSync(temporary, 'wx', FILE_MODE);
  try {
    try {
      let written = 0;
      while (written < data.length) {
        written += writeSync(fd, data, written, data.length - written);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (failBeforeRename()) throw new Error('write failed before rename (test hook)');
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
