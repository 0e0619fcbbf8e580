import { describe, expect, it } from '@jest/globals';
import { SHIFT_TRIPLE_WINDOW_MS, ShiftTriple, type KeyInput } from './quick-exit.js';

const down = (key: string, repeat = false): KeyInput => ({ type: 'keydown', key, repeat });
const up = (key: string): KeyInput => ({ type: 'keyup', key, repeat: false });

/** Feeds events one ms apart from `start`; returns which of them triggered. */
function run(events: readonly KeyInput[], start = 0, step = 1): number[] {
  const t = new ShiftTriple();
  const hits: number[] = [];
  events.forEach((e, i) => {
    if (t.feed(e, start + i * step)) hits.push(i);
  });
  return hits;
}

const press = [down('Shift'), up('Shift')];

describe('ShiftTriple', () => {
  it('triggers on the third press', () => {
    expect(run([...press, ...press, ...press])).toEqual([5]);
  });

  it('triggers again after three more presses', () => {
    expect(run([...press, ...press, ...press, ...press, ...press, ...press])).toEqual([5, 11]);
  });

  it('triggers when the presses fit in the window', () => {
    const step = Math.floor((SHIFT_TRIPLE_WINDOW_MS - 1) / 5);
    expect(run([...press, ...press, ...press], 0, step)).toEqual([5]);
  });

  it('does not trigger on two presses', () => {
    expect(run([...press, ...press])).toEqual([]);
  });

  it('does not count Shift held as a modifier (typing capitals)', () => {
    const capital = [down('Shift'), down('H'), up('H'), up('Shift')];
    expect(run([...capital, ...capital, ...capital])).toEqual([]);
  });

  it('does not count a modifier press between two plain ones', () => {
    const capital = [down('Shift'), down('A'), up('A'), up('Shift')];
    expect(run([...press, ...capital, ...press])).toEqual([]);
  });

  it('resets on any other key between presses', () => {
    expect(run([...press, ...press, down('a'), up('a'), ...press])).toEqual([]);
  });

  it('ignores auto-repeat of a held Shift', () => {
    expect(
      run([down('Shift'), down('Shift', true), down('Shift', true), up('Shift'), ...press]),
    ).toEqual([]);
  });

  it('ignores a keyup without its keydown', () => {
    expect(run([up('Shift'), up('Shift'), up('Shift')])).toEqual([]);
  });

  it('does not trigger when the presses are spread past the window', () => {
    const step = Math.ceil(SHIFT_TRIPLE_WINDOW_MS / 4);
    expect(run([...press, ...press, ...press], 0, step)).toEqual([]);
  });

  it('forgets everything on reset', () => {
    const t = new ShiftTriple();
    for (const e of [...press, ...press, down('Shift')]) t.feed(e, 0);
    t.reset();
    expect([up('Shift'), ...press].map((e) => t.feed(e, 1))).toEqual([false, false, false]);
  });
});
