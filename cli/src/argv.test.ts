import { describe, expect, it } from '@jest/globals';
import { integerOption, parseArgv } from './argv.js';
import { COMMANDS } from './commands.js';
import { CliError, CliErrorCode } from './errors.js';

function usageOf(argv: string[]): string | undefined {
  try {
    parseArgv(argv, COMMANDS);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).code).toBe(CliErrorCode.USAGE);
    return (error as CliError).message;
  }
}

describe('argv', () => {
  it('parses a command with options in both spellings and an argument', () => {
    const parsed = parseArgv(
      ['org', 'approve', 'abcdef12', '--dir', '/x', '--passphrase-fd=3'],
      COMMANDS,
    );
    expect(parsed.command).toBe('approve');
    expect(parsed.args).toEqual(['abcdef12']);
    expect([...parsed.options]).toEqual([
      ['dir', '/x'],
      ['passphrase-fd', '3'],
    ]);
  });

  it('keeps an option value that starts like an option when given with =', () => {
    expect(parseArgv(['org', 'init', '--name=--weird'], COMMANDS).options.get('name')).toBe(
      '--weird',
    );
  });

  it('reads integer options within their bounds', () => {
    const parsed = parseArgv(['org', 'invite', '--valid-hours', '48'], COMMANDS);
    expect(integerOption(parsed, 'valid-hours', 24, 1, 168)).toBe(48);
    expect(integerOption(parseArgv(['org', 'invite'], COMMANDS), 'valid-hours', 24, 1, 168)).toBe(
      24,
    );
  });

  it.each([
    [[], 'expected'],
    [['org'], 'expected'],
    [['roster', 'show'], 'expected'],
    [['org', 'frobnicate'], 'unknown command'],
    [['org', 'show', '--colour', 'red'], 'unknown option'],
    [['org', 'show', '--dir'], 'needs a value'],
    [['org', 'show', '--dir='], 'needs a value'],
    [['org', 'show', '--dir', 'a', '--dir', 'b'], 'twice'],
    [['org', 'show', 'extra'], 'takes 0 arguments'],
    [['org', 'approve'], 'takes 1 argument'],
    [['org', 'remove', 'a', 'b'], 'takes 1 argument'],
  ])('refuses %j', (argv, message) => {
    expect(usageOf(argv)).toContain(message);
  });

  it.each(['0', '169', '1.5', '-1', 'ten', '1e2'])('refuses --valid-hours %s', (value) => {
    const parsed = parseArgv(['org', 'invite', '--valid-hours', value], COMMANDS);
    expect(() => integerOption(parsed, 'valid-hours', 24, 1, 168)).toThrow(CliError);
  });
});
