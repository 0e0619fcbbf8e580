/**
 * docs/protocol.md's tables of the organization profile's refusal codes and limits are kept
 * equal to the code, in both directions.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { OrgErrorCode } from './errors.js';
import * as limits from './limits.js';

const PROTOCOL_MD = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

/** The first cells (code spans) and second cells of the table whose header starts `first`. */
function table(markdown: string, first: string): Map<string, string> {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^\\|\\s*${first}\\s*\\|`).test(l));
  if (start < 0) throw new Error(`no table headed ${first}`);
  const rows = new Map<string, string>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
    if (name === undefined) throw new Error(`not a code span: ${line}`);
    rows.set(name, cells[2] ?? '');
  }
  return rows;
}

describe('docs/protocol.md agrees with the organization profile code', () => {
  it('lists every profile refusal code, and no other', () => {
    expect([...table(PROTOCOL_MD, 'profile code').keys()].sort()).toEqual(
      Object.values(OrgErrorCode).sort(),
    );
  });

  it('lists every MAX_ profile limit with its value, and no other', () => {
    const documented = table(PROTOCOL_MD, 'profile limit');
    const real = Object.entries(limits).filter(([name]) => name.startsWith('MAX_'));
    expect([...documented.keys()].sort()).toEqual(real.map(([name]) => name).sort());
    for (const [name, value] of real) {
      expect(Number(documented.get(name)!.replaceAll(',', ''))).toBe(value);
    }
  });

  it('notices a table that drifted', () => {
    const dropped = PROTOCOL_MD.replace(/^\| `profile_expired`.*\n/m, '');
    expect([...table(dropped, 'profile code').keys()]).not.toContain('profile_expired');
    expect(() => table('text', 'profile code')).toThrow('no table');
  });
});
