/**
 * Where the passphrase comes from, in this order: `--passphrase-fd N` (read to its end, one
 * trailing newline dropped: for scripts and tests, with the passphrase on a pipe), the
 * PASSAGE_PASSPHRASE environment variable (for scripted use; an environment can be read by
 * other processes of the same user, so prefer the descriptor), or a prompt on the terminal with
 * echo off. Without any of them the command fails (`passphrase_unavailable`) rather than
 * reading a passphrase from a pipe that was meant for something else.
 */
import { readFileSync } from 'node:fs';
import { CliError, CliErrorCode } from './errors.js';

export interface PassphraseSource {
  /** A file descriptor to read the passphrase from. */
  readonly fd?: number | undefined;
  /** The environment (PASSAGE_PASSPHRASE). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Asks on the terminal; undefined when there is none. */
  readonly prompt?: ((question: string) => Promise<string>) | undefined;
}

/** Longest passphrase read, in characters (the rest of a descriptor is not looked at). */
export const MAX_PASSPHRASE_CHARS = 1024;

/** Reads the passphrase; with `confirm` (org init) a prompt asks twice and compares. */
export async function readPassphrase(
  source: PassphraseSource,
  options: { readonly confirm?: boolean } = {},
): Promise<string> {
  let value: string | undefined;
  if (source.fd !== undefined) {
    value = readFileSync(source.fd, 'utf8').replace(/\r?\n$/, '');
  } else if (source.env['PASSAGE_PASSPHRASE'] !== undefined) {
    value = source.env['PASSAGE_PASSPHRASE'];
  } else if (source.prompt !== undefined) {
    value = await source.prompt('Passphrase: ');
    if (options.confirm === true && (await source.prompt('Again: ')) !== value) {
      throw new CliError(CliErrorCode.PASSPHRASE_UNAVAILABLE, 'the two passphrases differ');
    }
  }
  if (value === undefined || value.length === 0) {
    throw new CliError(
      CliErrorCode.PASSPHRASE_UNAVAILABLE,
      'no passphrase: run on a terminal, or give --passphrase-fd or PASSAGE_PASSPHRASE',
    );
  }
  if (value.length > MAX_PASSPHRASE_CHARS) {
    throw new CliError(CliErrorCode.PASSPHRASE_UNAVAILABLE, 'the passphrase is too long');
  }
  return value;
}

/** A prompt on the controlling terminal with echo off (stdin must be a TTY). */
export function terminalPrompt(): ((question: string) => Promise<string>) | undefined {
  const stdin = process.stdin;
  if (!stdin.isTTY) return undefined;
  return (question) =>
    new Promise((resolve, reject) => {
      process.stderr.write(question);
      let typed = '';
      stdin.setRawMode(true);
      stdin.resume();
      stdin.setEncoding('utf8');
      const done = (result: string | Error) => {
        stdin.setRawMode(false);
        stdin.pause();
        stdin.off('data', onData);
        process.stderr.write('\n');
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') return done(typed);
          if (ch === '\u0003')
            return done(new CliError(CliErrorCode.PASSPHRASE_UNAVAILABLE, 'cancelled'));
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      stdin.on('data', onData);
    });
}
