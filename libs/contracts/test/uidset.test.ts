// UID sets (RFC 9051 §9 sequence-set over UIDs, `last = 0` meaning `*`).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_UID,
  resolveUidSet,
  uidSetFromUids,
  uidSetHas,
  uidSetProblem,
  type UidSet,
} from '../src/index.js';

const set = (...ranges: [number, number][]): UidSet => ({
  ranges: ranges.map(([first, last]) => ({ first, last })),
});

describe('resolveUidSet', () => {
  it.each([
    { name: '1:* in a mailbox up to 10', input: set([1, 0]), highest: 10, expected: [[1, 10]] },
    { name: 'RFC 9051 §9: 4:2 equals 2:4', input: set([4, 2]), highest: 10, expected: [[2, 4]] },
    {
      name: 'n:* above the highest still includes it',
      input: set([50, 0]),
      highest: 10,
      expected: [[10, 50]],
    },
    { name: '* in an empty mailbox matches nothing', input: set([1, 0]), highest: 0, expected: [] },
    {
      name: 'overlapping and adjacent ranges merge, in order',
      input: set([7, 9], [1, 3], [4, 4], [8, 12]),
      highest: 100,
      expected: [
        [1, 4],
        [7, 12],
      ],
    },
    { name: 'the empty set', input: set(), highest: 5, expected: [] },
  ])('$name', ({ input, highest, expected }) => {
    expect(resolveUidSet(input, highest)).toEqual(expected);
  });

  it('agrees with uidSetFromUids for any list of UIDs', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 500 }), { maxLength: 60 }), (uids) => {
        const expected = [...new Set(uids)].sort((a, b) => a - b);
        const actual = resolveUidSet(uidSetFromUids(uids), 500).flatMap(([a, b]) =>
          Array.from({ length: b - a + 1 }, (_, i) => a + i),
        );
        expect(actual).toEqual(expected);
      }),
    );
  });

  it('uidSetHas matches the resolved intervals', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 60 })), {
          maxLength: 8,
        }),
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 1, max: 70 }),
        (ranges, highest, uid) => {
          const s = set(...ranges);
          const inside = ranges.some(([a, b]) => {
            if (b === 0 && highest === 0) return false;
            const end = b === 0 ? highest : b;
            return uid >= Math.min(a, end) && uid <= Math.max(a, end);
          });
          expect(uidSetHas(s, uid, highest)).toBe(inside);
        },
      ),
    );
  });
});

describe('uidSetFromUids', () => {
  it('compresses to the fewest ranges', () => {
    expect(uidSetFromUids([5, 1, 2, 3, 9, 10, 2])).toEqual(set([1, 3], [5, 5], [9, 10]));
  });
});

describe('uidSetProblem', () => {
  it('accepts * and rejects 0 or out-of-range UIDs', () => {
    expect(uidSetProblem(set([1, 0], [3, MAX_UID]))).toBeUndefined();
    expect(uidSetProblem(set([0, 5]))).toMatch(/ranges\[0\]\.first/);
    expect(uidSetProblem(set([1, 2], [3, MAX_UID + 1]))).toMatch(/ranges\[1\]\.last/);
    expect(uidSetProblem(set([1.5, 2]))).toMatch(/first/);
  });
});
