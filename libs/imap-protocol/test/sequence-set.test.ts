import { describe, expect, it } from 'vitest';
import {
  expandSequenceSet,
  formatNumberSet,
  formatSequenceSet,
  resolveSequenceSet,
  sequenceSetHas,
  type SequenceSet,
} from '../src/index.js';
import { parseOk } from './helpers.js';

function setOf(text: string): SequenceSet {
  const command = parseOk(`a FETCH ${text} FLAGS\r\n`);
  if (command.name !== 'FETCH') throw new Error('not FETCH');
  return command.set;
}

describe('sequence sets (RFC 9051 §9 sequence-set)', () => {
  it.each([
    ['1:*', 5, [1, 2, 3, 4, 5]],
    ['*', 5, [5]],
    ['*:3', 5, [3, 4, 5]],
    ['4:2', 9, [2, 3, 4]],
    ['2,4:5,1,4', 9, [1, 2, 4, 5]],
    ['7:9', 5, []],
    ['1:*', 0, []],
  ])('%s with max %i expands to %j', (text, max, expected) => {
    expect([...expandSequenceSet(setOf(text), max)]).toEqual(expected);
  });

  it('keeps the last UID in a range past it (RFC 9051 §6.4.8: 559:* includes the largest UID)', () => {
    expect(resolveSequenceSet(setOf('559:*'), 500)).toEqual([[500, 500]]);
    expect(sequenceSetHas(setOf('559:*'), 500, 500)).toBe(true);
    expect(sequenceSetHas(setOf('559:*'), 499, 500)).toBe(false);
  });

  it('merges overlapping and adjacent ranges', () => {
    expect(resolveSequenceSet(setOf('1:3,4,6:8,7:10,20'), 100)).toEqual([
      [1, 4],
      [6, 10],
      [20, 20],
    ]);
  });

  it('tests membership without expanding', () => {
    const set = setOf('1:1000000,*');
    expect(sequenceSetHas(set, 999_999, 2_000_000)).toBe(true);
    expect(sequenceSetHas(set, 1_500_000, 2_000_000)).toBe(false);
    expect(sequenceSetHas(set, 2_000_000, 2_000_000)).toBe(true);
    expect(sequenceSetHas(set, 0, 2_000_000)).toBe(false);
  });

  it('resolves "$" against the saved result (RFC 5182)', () => {
    expect(
      resolveSequenceSet(setOf('$'), 10, [
        [3, 4],
        [12, 13],
        [1, 1],
        [9, 11],
      ]),
    ).toEqual([
      [1, 1],
      [3, 4],
      [9, 10],
    ]);
    expect(() => sequenceSetHas(setOf('$'), 1, 10)).toThrow(TypeError);
  });

  it('formats sets compactly', () => {
    expect(formatNumberSet([11, 2, 10, 3, 4, 20])).toBe('2:4,10:11,20');
    expect(formatNumberSet([])).toBe('');
    expect(formatSequenceSet(setOf('1:*,5,$'.replace(',$', '')))).toBe('1:*,5');
    expect(formatSequenceSet({ kind: 'saved' })).toBe('$');
  });
});
