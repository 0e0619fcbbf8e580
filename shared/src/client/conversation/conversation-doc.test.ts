/**
 * docs/conversation.md's tables of limits, error codes and message types are kept equal to the
 * code in both directions: a limit, code or type added, removed or changed on one side fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { ConversationErrorCode } from './errors.js';
import * as limits from './limits.js';
import { MESSAGE_TYPES, mayBeSentByContact, mayBeSentToContact } from './messages.js';

const DOC = readFileSync(new URL('../../../../docs/conversation.md', import.meta.url), 'utf8');

/** The rows (cells, trimmed, backticks removed) of the one table whose first header is `first`. */
function table(first: string): string[][] {
  const lines = DOC.split('\n');
  const found: string[][][] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    const cells = (line: string) =>
      line
        .trim()
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim().replaceAll('`', ''));
    if (!lines[i]!.trim().startsWith('|') || !/^\|[\s:|-]+\|$/.test(lines[i + 1]!.trim())) continue;
    if (cells(lines[i]!)[0] !== first) continue;
    const rows: string[][] = [];
    for (let j = i + 2; j < lines.length && lines[j]!.trim().startsWith('|'); j++) {
      rows.push(cells(lines[j]!));
    }
    found.push(rows);
  }
  if (found.length !== 1) throw new Error(`${found.length} tables headed '${first}'`);
  return found[0]!;
}

describe('docs/conversation.md', () => {
  it('lists every limit with its value, and nothing else', () => {
    const documented = new Map(table('limit').map(([name, value]) => [name!, value!]));
    const code = Object.entries(limits).filter(([, v]) => typeof v === 'number');
    expect([...documented.keys()].sort()).toEqual(code.map(([k]) => k).sort());
    for (const [name, value] of code) {
      expect([name, Number(documented.get(name)!.replaceAll(',', ''))]).toEqual([name, value]);
    }
  });

  it('lists every error code, and nothing else', () => {
    const documented = table('code').map(([c]) => c);
    expect(documented.sort()).toEqual(Object.values(ConversationErrorCode).sort());
  });

  it('lists every message type with who may send it to whom', () => {
    const rows = table('type');
    expect(rows.map(([t]) => t).sort()).toEqual([...MESSAGE_TYPES].sort());
    for (const [type, to, from] of rows) {
      const yes = (cell: string) => cell === 'yes';
      expect([type, yes(to!), yes(from!)]).toEqual([
        type,
        mayBeSentToContact(type!),
        mayBeSentByContact(type!),
      ]);
    }
  });
});
