/**
 * docs/protocol.md's tables of error codes, close codes, limits and identifier sizes are kept
 * equal to the code, in both directions (as server/src/config.readme.test.ts does for the
 * README): a code, limit or size added, removed or changed on one side fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { CloseCode, ErrorCode, RETRYABLE_CODES } from './errors.js';
import * as limits from './limits.js';

const PROTOCOL_MD = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

// ---------------------------------------------------------------------------------------------
// A strict reader of GitHub-style Markdown tables

interface Table {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** The cells of a table line (`| a | b |`), or undefined for a line that is not one. An
 * escaped pipe (`\|`) stays inside its cell. */
function cellsOf(line: string): string[] | undefined {
  const text = line.trim();
  if (text.length < 2 || !text.startsWith('|') || !text.endsWith('|') || text.endsWith('\\|')) {
    return undefined;
  }
  return text
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim().replaceAll('\\|', '|'));
}

function isSeparator(cells: readonly string[]): boolean {
  return cells.length > 0 && cells.every((cell) => /^:?-+:?$/.test(cell));
}

/**
 * Every table in `markdown`: a header line, a separator line of dashes with as many cells, and
 * the table lines that follow. A body line with another number of cells throws.
 */
function markdownTables(markdown: string): Table[] {
  const lines = markdown.split('\n');
  const tables: Table[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    const header = cellsOf(lines[i]!);
    const separator = cellsOf(lines[i + 1]!);
    if (header === undefined || separator === undefined || !isSeparator(separator)) continue;
    if (separator.length !== header.length) {
      throw new Error(`table at line ${i + 1}: separator has ${separator.length} cells`);
    }
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length; j++) {
      const row = cellsOf(lines[j]!);
      if (row === undefined) break;
      if (row.length !== header.length) {
        throw new Error(`table at line ${i + 1}: line ${j + 1} has ${row.length} cells`);
      }
      rows.push(row);
    }
    tables.push({ header, rows });
    i = j - 1;
  }
  return tables;
}

/** The one table whose first header cell is `first`; none or several throws. */
function tableHeaded(markdown: string, first: string): Table {
  const found = markdownTables(markdown).filter((t) => t.header[0] === first);
  if (found.length !== 1) throw new Error(`${found.length} tables headed '${first}'`);
  return found[0]!;
}

/** Column `column` by the first cell of each row; a repeated key throws. */
function columnByKey(
  table: Table,
  column: number,
  key: (cell: string) => string,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const row of table.rows) {
    const k = key(row[0]!);
    if (out.has(k)) throw new Error(`'${k}' is listed twice`);
    out.set(k, row[column]!);
  }
  return out;
}

/** The name inside a code span of the given shape (`mailbox_full`, `MAX_ACK_IDS`). */
function codeSpan(shape: RegExp): (cell: string) => string {
  return (cell) => {
    const m = /^`([^`]+)`$/.exec(cell);
    if (m === null || !shape.test(m[1]!)) throw new Error(`not a code span of ${shape}: ${cell}`);
    return m[1]!;
  };
}

/** A non-negative integer as the docs write it: digits, thousands grouped by commas or not. */
function docInteger(cell: string): number {
  if (!/^(\d+|\d{1,3}(,\d{3})+)$/.test(cell)) throw new Error(`not an integer: '${cell}'`);
  return Number(cell.replaceAll(',', ''));
}

// ---------------------------------------------------------------------------------------------
// The comparisons, as lists of differences (empty when the document and the code agree)

function sorted<T>(xs: Iterable<T>): T[] {
  return [...xs].sort();
}

function setDifferences(what: string, documented: Iterable<unknown>, code: Iterable<unknown>) {
  const doc = new Set(documented);
  const real = new Set(code);
  return [
    ...sorted([...real].filter((x) => !doc.has(x))).map((x) => `${what} ${String(x)} undocumented`),
    ...sorted([...doc].filter((x) => !real.has(x))).map((x) => `${what} ${String(x)} not in code`),
  ];
}

function errorTableDifferences(markdown: string): string[] {
  const table = tableHeaded(markdown, 'code');
  expect(table.header[1]).toBe('retryable');
  const retryable = columnByKey(table, 1, codeSpan(/^[a-z_]+$/));
  const diffs = setDifferences('error code', retryable.keys(), Object.values(ErrorCode));
  for (const [code, cell] of retryable) {
    if (cell !== 'yes' && cell !== 'no') diffs.push(`error code ${code}: retryable '${cell}'`);
    const real = RETRYABLE_CODES.has(code as ErrorCode);
    if (Object.values<string>(ErrorCode).includes(code) && (cell === 'yes') !== real) {
      diffs.push(`error code ${code}: documented retryable '${cell}', code says ${real}`);
    }
  }
  return diffs;
}

function closeTableDifferences(markdown: string): string[] {
  const table = tableHeaded(markdown, 'close code');
  const codes = [...columnByKey(table, 0, (cell) => String(docInteger(cell))).keys()].map(Number);
  return setDifferences('close code', codes, Object.values(CloseCode));
}

/** Every `MAX_…` constant of limits.ts: the protocol's bounds. */
function codeLimits(): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, value] of Object.entries(limits)) {
    if (name.startsWith('MAX_') && typeof value === 'number') out.set(name, value);
  }
  return out;
}

function limitTableDifferences(markdown: string): string[] {
  const table = tableHeaded(markdown, 'constant');
  const documented = columnByKey(table, 1, codeSpan(/^MAX_[A-Z0-9_]+$/));
  const real = codeLimits();
  const diffs = setDifferences('limit', documented.keys(), real.keys());
  for (const [name, cell] of documented) {
    const value = real.get(name);
    if (value !== undefined && docInteger(cell) !== value) {
      diffs.push(`limit ${name}: documented ${cell}, code says ${value}`);
    }
  }
  return diffs;
}

const IDENTIFIER_BYTES: Readonly<Record<string, number>> = {
  'mailbox id': limits.MAILBOX_ID_BYTES,
  'message id': limits.MESSAGE_ID_BYTES,
  'challenge nonce': limits.AUTH_NONCE_BYTES,
  'blob id': limits.BLOB_ID_BYTES,
  'upload token': limits.BLOB_TOKEN_BYTES,
};

function identifierTableDifferences(markdown: string): string[] {
  const table = tableHeaded(markdown, 'name');
  expect(table.header[1]).toBe('bytes');
  const bytes = columnByKey(table, 1, (cell) => cell);
  const diffs = setDifferences('identifier', bytes.keys(), Object.keys(IDENTIFIER_BYTES));
  for (const [name, cell] of bytes) {
    const real = IDENTIFIER_BYTES[name];
    if (real !== undefined && docInteger(cell) !== real) {
      diffs.push(`identifier ${name}: documented ${cell} bytes, code says ${real}`);
    }
  }
  return diffs;
}

// ---------------------------------------------------------------------------------------------

describe('docs/protocol.md agrees with the code', () => {
  it('lists every error code with its retryability, and no other', () => {
    expect(errorTableDifferences(PROTOCOL_MD)).toEqual([]);
  });

  it('lists every close code, and no other', () => {
    expect(closeTableDifferences(PROTOCOL_MD)).toEqual([]);
  });

  it('lists every MAX_ limit with its value, and no other', () => {
    expect(limitTableDifferences(PROTOCOL_MD)).toEqual([]);
  });

  it('gives each identifier its size in bytes', () => {
    expect(identifierTableDifferences(PROTOCOL_MD)).toEqual([]);
  });
});

/** The document with one line replaced (the first that contains `find`). */
function edited(find: string, replace: (line: string) => string | undefined): string {
  const lines = PROTOCOL_MD.split('\n');
  const i = lines.findIndex((line) => line.includes(find));
  if (i < 0) throw new Error(`no line with ${find}`);
  const replacement = replace(lines[i]!);
  if (replacement === undefined) lines.splice(i, 1);
  else lines[i] = replacement;
  return lines.join('\n');
}

describe('the comparisons notice a document that drifted', () => {
  it('an error code left out, or one the code does not have', () => {
    expect(errorTableDifferences(edited('| `mailbox_full`', () => undefined))).toEqual([
      'error code mailbox_full undocumented',
    ]);
    expect(
      errorTableDifferences(
        edited('| `mailbox_full`', (l) => l.replace('mailbox_full', 'mailbox_ful')),
      ),
    ).toEqual(['error code mailbox_full undocumented', 'error code mailbox_ful not in code']);
  });

  it('an error code documented with the wrong retryability', () => {
    const doc = edited('| `bad_frame`', (l) => l.replace('| no ', '| yes'));
    expect(errorTableDifferences(doc)).toEqual([
      "error code bad_frame: documented retryable 'yes', code says false",
    ]);
    const vague = edited('| `internal`', (l) => l.replace('| yes', '| ?  '));
    expect(errorTableDifferences(vague)).toContain("error code internal: retryable '?'");
  });

  it('a close code left out, or one the relay never uses', () => {
    expect(closeTableDifferences(edited('| 1007 ', () => undefined))).toEqual([
      'close code 1007 undocumented',
    ]);
    expect(closeTableDifferences(edited('| 1007 ', (l) => l.replace('1007', '1011')))).toEqual([
      'close code 1007 undocumented',
      'close code 1011 not in code',
    ]);
  });

  it('a limit left out, documented with another value, or unknown', () => {
    expect(limitTableDifferences(edited('| `MAX_ACK_IDS`', () => undefined))).toEqual([
      'limit MAX_ACK_IDS undocumented',
    ]);
    expect(
      limitTableDifferences(edited('| `MAX_ACK_IDS`', (l) => l.replace('| 256 ', '| 255 '))),
    ).toEqual(['limit MAX_ACK_IDS: documented 255, code says 256']);
    expect(
      limitTableDifferences(edited('| `MAX_ACK_IDS`', (l) => l.replace('MAX_ACK_IDS', 'MAX_ACKS'))),
    ).toEqual(['limit MAX_ACK_IDS undocumented', 'limit MAX_ACKS not in code']);
  });

  it('an identifier with the wrong size', () => {
    const doc = edited('| message id ', (l) => l.replace('| 16 ', '| 17 '));
    expect(identifierTableDifferences(doc)).toEqual([
      'identifier message id: documented 17 bytes, code says 16',
    ]);
  });
});

describe('the table reader', () => {
  const TABLE = ['| a | b |', '| --- | :-: |', '| `x` | 1 |', '| y \\| z | 2,000 |', ''].join('\n');

  it('reads a header, a separator and rows, keeping an escaped pipe inside its cell', () => {
    expect(markdownTables(TABLE)).toEqual([
      {
        header: ['a', 'b'],
        rows: [
          ['`x`', '1'],
          ['y | z', '2,000'],
        ],
      },
    ]);
  });

  it('reads integers with and without thousands commas', () => {
    expect(docInteger('0')).toBe(0);
    expect(docInteger('98304')).toBe(98_304);
    expect(docInteger('98,304')).toBe(98_304);
    expect(docInteger('4,294,967,295')).toBe(4_294_967_295);
  });

  it('refuses a row with a cell too few or too many', () => {
    expect(() => markdownTables('| a | b |\n| --- | --- |\n| 1 |\n')).toThrow('1 cells');
    expect(() => markdownTables('| a | b |\n| --- | --- |\n| 1 | 2 | 3 |\n')).toThrow('3 cells');
  });

  it('refuses a separator with another number of cells than the header', () => {
    expect(() => markdownTables('| a | b |\n| --- |\n| 1 | 2 |\n')).toThrow('separator');
  });

  it('sees no table without a separator line of dashes', () => {
    expect(markdownTables('| a | b |\n| 1 | 2 |\n')).toEqual([]);
    expect(markdownTables('| a | b |\n| == | == |\n| 1 | 2 |\n')).toEqual([]);
    expect(markdownTables('| a | b |\n| :: | -- |\n| 1 | 2 |\n')).toEqual([]);
    expect(markdownTables('| a | b |\n| --- | x |\n')).toEqual([]);
    expect(markdownTables('a | b\n--- | ---\n')).toEqual([]);
  });

  it('ends a table at the first line that is not a table line', () => {
    const [table] = markdownTables('| a |\n| --- |\n| 1 |\ntext\n| 2 |\n');
    expect(table!.rows).toEqual([['1']]);
  });

  it('refuses a key listed twice', () => {
    const [table] = markdownTables('| k | v |\n| --- | --- |\n| `a` | 1 |\n| `a` | 2 |\n');
    expect(() => columnByKey(table!, 1, codeSpan(/^[a-z]+$/))).toThrow('listed twice');
  });

  it('refuses a missing table and a header that heads two tables', () => {
    expect(() => tableHeaded('| a |\n| --- |\n', 'b')).toThrow("0 tables headed 'b'");
    expect(() => tableHeaded('| a |\n| --- |\n\n| a |\n| --- |\n', 'a')).toThrow('2 tables');
  });

  it('refuses a key cell that is not a code span of the expected shape', () => {
    const key = codeSpan(/^[a-z_]+$/);
    expect(key('`bad_frame`')).toBe('bad_frame');
    for (const cell of ['bad_frame', '`BAD_FRAME`', '`bad frame`', '``', '`a`b`']) {
      expect(() => key(cell)).toThrow('not a code span');
    }
  });

  it('refuses numbers the docs do not write: decimals, misplaced commas, signs, hex, empty', () => {
    for (const cell of [
      '98.304',
      '98,30',
      '1,0000',
      ',100',
      '100,',
      '-1',
      '+1',
      '0x10',
      '',
      '1 000',
    ]) {
      expect(() => docInteger(cell)).toThrow('not an integer');
    }
  });
});
