import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { CONFIG_VARIABLES } from './config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The README's configuration table, as name → default cell. */
function readmeTable(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readme.split('\n')) {
    const m = /^\| `([A-Z0-9_]+)` +\| ([^|]+?) +\|/.exec(line);
    if (m) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

describe('README configuration table', () => {
  it('documents every variable the relay reads, with its default', () => {
    const table = readmeTable();
    for (const v of CONFIG_VARIABLES) {
      expect(table.has(v.name)).toBe(true);
      expect(table.get(v.name)).toBe(v.default === '' ? '(unset)' : `\`${v.default}\``);
    }
  });

  it('documents no variable the relay does not read', () => {
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    const extra = [...readmeTable().keys()].filter((name) => !known.has(name));
    expect(extra).toEqual([]);
  });
});
