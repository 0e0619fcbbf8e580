/**
 * Confirming a new codename by typing some of its words back (issue "The contact page", the
 * flow): the page asks for a few words at random positions, read with the codename list's own
 * rules (so a wrong keyboard layout, ё/е, capitals and look-alike letters are accepted exactly
 * as the resume screen accepts them). A word typed back proves the person has it written down
 * without asking for the whole codename a second time. No DOM here, so it is tested in Node.
 */
import { InvalidCodenameError, type CodenameWordList } from '@passage/shared/crypto/codename';

/** How many words the person types back. */
export const CONFIRM_WORDS = 3;

/**
 * `count` distinct positions (0-based, ascending) out of `total`, drawn uniformly with `random`
 * (which fills a buffer with random 32-bit values, as `crypto.getRandomValues` does).
 */
export function pickPositions(
  count: number,
  total: number,
  random: (buffer: Uint32Array<ArrayBuffer>) => void,
): number[] {
  if (!Number.isInteger(count) || !Number.isInteger(total) || count < 1 || count > total) {
    throw new RangeError('confirm: need 1 ≤ count ≤ total');
  }
  // A partial Fisher–Yates shuffle; rejection sampling keeps each draw uniform.
  const positions = Array.from({ length: total }, (_, i) => i);
  const one = new Uint32Array(1);
  for (let i = 0; i < count; i++) {
    const range = total - i;
    const limit = Math.floor(0x1_0000_0000 / range) * range;
    let r: number;
    do {
      random(one);
      r = one[0]!;
    } while (r >= limit);
    const j = i + (r % range);
    [positions[i], positions[j]] = [positions[j]!, positions[i]!];
  }
  return positions.slice(0, count).sort((a, b) => a - b);
}

export type ConfirmResult = 'ok' | 'count' | 'mismatch';

/**
 * Whether `typed` holds the codename's words at `positions`, in that order: `count` when it
 * holds another number of words (or nothing), `mismatch` when a word is not the one asked for
 * or not a word of the list at all.
 */
export function checkTypedWords(
  typed: string,
  list: CodenameWordList,
  words: readonly string[],
  positions: readonly number[],
): ConfirmResult {
  let read: string[];
  try {
    read = list.readWords(typed);
  } catch (error) {
    if (!(error instanceof InvalidCodenameError)) throw error;
    // Not all list words: a wrong word, unless the count is wrong too (that is said first).
    const tokens = typed.split(/\s+/u).filter((w) => w.length > 0);
    return tokens.length === positions.length ? 'mismatch' : 'count';
  }
  if (read.length !== positions.length) return 'count';
  return positions.every((p, i) => read[i] === words[p]) ? 'ok' : 'mismatch';
}
