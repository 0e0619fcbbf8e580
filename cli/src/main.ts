#!/usr/bin/env node
/**
 * `passage`: the organization admin's tool. See `passage org` for the commands and the README's
 * "Organization set-up" for the order to run them in. Exit statuses: errors.ts.
 */
import { loadPrimitives } from '@passage/shared/crypto/backend';
import { runCommand, USAGE } from './commands.js';
import { CliError, CliErrorCode } from './errors.js';
import { terminalPrompt } from './passphrase.js';

/** The clock; tests may fix it (PASSAGE_DANGEROUS_TEST_ONLY_NOW, Unix seconds, NODE_ENV=test). */
function nowSeconds(): number {
  const fixed = process.env['PASSAGE_DANGEROUS_TEST_ONLY_NOW'];
  if (process.env['NODE_ENV'] === 'test' && fixed !== undefined && /^\d+$/.test(fixed)) {
    return Number(fixed);
  }
  return Math.floor(Date.now() / 1000);
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === 'help') {
    process.stdout.write(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  try {
    await runCommand(
      {
        p: await loadPrimitives(),
        env: process.env,
        nowSeconds,
        out: (line) => process.stdout.write(line + '\n'),
        err: (line) => process.stderr.write(line + '\n'),
        prompt: terminalPrompt(),
        fetch,
      },
      argv,
    );
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      process.stderr.write(`passage: ${error.message} (${error.code})\n`);
      if (error.code === CliErrorCode.USAGE) process.stderr.write(USAGE);
      return error.exitStatus;
    }
    const text = error instanceof Error ? error.message : 'unknown error';
    process.stderr.write(`passage: unexpected failure: ${text}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
