/**
 * A thin argument parser: `passage org <command> [argument] [--option value | --option=value]`.
 * Each command declares its options and how many arguments it takes; anything else (an unknown
 * option, a missing value, an option twice, an extra argument) is a usage error, never ignored.
 */
import { CliError, CliErrorCode } from './errors.js';

/** What a command accepts. */
export interface CommandSpec {
  /** Option names (without `--`) that take a value. */
  readonly options: readonly string[];
  /** Option names that are flags (no value). */
  readonly flags?: readonly string[];
  /** How many positional arguments: exactly this many. */
  readonly args: number;
}

export interface ParsedCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly options: ReadonlyMap<string, string>;
  readonly flags: ReadonlySet<string>;
}

function usage(message: string): CliError {
  return new CliError(CliErrorCode.USAGE, message);
}

/**
 * Parses `argv` (without node and the script) against `specs`, the commands of `group`
 * (`passage org <command>` by default; `passage device <command>`).
 */
export function parseArgv(
  argv: readonly string[],
  specs: Readonly<Record<string, CommandSpec>>,
  group = 'org',
): ParsedCommand {
  const [first, name, ...rest] = argv;
  if (first !== group || name === undefined) throw usage(`expected: passage ${group} <command>`);
  const spec = specs[name];
  if (spec === undefined) throw usage(`unknown command: ${group} ${name}`);
  const args: string[] = [];
  const options = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i]!;
    if (!word.startsWith('--')) {
      args.push(word);
      continue;
    }
    const eq = word.indexOf('=');
    const key = word.slice(2, eq < 0 ? undefined : eq);
    if (spec.flags?.includes(key) === true) {
      if (eq >= 0) throw usage(`--${key} takes no value`);
      if (flags.has(key)) throw usage(`--${key} given twice`);
      flags.add(key);
      continue;
    }
    if (!spec.options.includes(key)) {
      throw usage(`unknown option for ${group} ${name}: --${key}`);
    }
    if (options.has(key)) throw usage(`--${key} given twice`);
    let value: string | undefined;
    if (eq >= 0) value = word.slice(eq + 1);
    else {
      value = rest[i + 1];
      i++;
    }
    if (value === undefined || value === '') throw usage(`--${key} needs a value`);
    options.set(key, value);
  }
  if (args.length !== spec.args) {
    throw usage(`${group} ${name} takes ${spec.args} argument${spec.args === 1 ? '' : 's'}`);
  }
  return { command: name, args, options, flags };
}

/** An option as a positive integer in [min, max], or `fallback` when absent. */
export function integerOption(
  parsed: ParsedCommand,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = parsed.options.get(name);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw usage(`--${name} must be an integer from ${min} to ${max}`);
  }
  return Number(text);
}
