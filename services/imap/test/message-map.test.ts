import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageMap } from '../src/message-map.js';

describe('MessageMap (RFC 9051 §2.3.1.2 sequence numbers)', () => {
  it('numbers UIDs in ascending order and finds them both ways', () => {
    const map = new MessageMap();
    for (const uid of [3, 7, 8, 20]) expect(map.append(uid, uid * 10)).toBe(true);
    expect(map.append(5, 1)).toBe(false); // not above the highest known UID
    expect(map.size).toBe(4);
    expect(map.maxUid).toBe(20);
    expect([map.msnOf(3), map.msnOf(8), map.msnOf(20), map.msnOf(4)]).toEqual([1, 3, 4, 0]);
    expect([map.uidAt(1), map.uidAt(4), map.uidAt(5)]).toEqual([3, 20, undefined]);
    expect(map.uidsInMsnRange(2, 3)).toEqual([7, 8]);
    expect(map.uidsInUidRange(4, 19)).toEqual([7, 8]);
    expect(map.modseqOf(8)).toBe(80);
  });

  it('announces expunges highest first so every number is valid when it is sent', () => {
    const map = new MessageMap();
    for (let uid = 1; uid <= 6; uid++) map.append(uid, 1);
    expect(map.removeMany([2, 5, 99])).toEqual([5, 2]);
    expect(map.uidsInMsnRange(1, 10)).toEqual([1, 3, 4, 6]);
    expect(map.remove(3)).toBe(2);
    expect(map.remove(3)).toBe(0);
  });

  it('matches a plain sorted array under any sequence of appends and expunges', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.record({ add: fc.integer({ min: 1, max: 5 }) }), fc.record({ drop: fc.nat(40) })),
          {
            maxLength: 80,
          },
        ),
        (ops) => {
          const map = new MessageMap();
          let model: number[] = [];
          let next = 1;
          for (const op of ops) {
            if ('add' in op) {
              next += op.add;
              map.append(next, next);
              model.push(next);
            } else {
              const uid = model[op.drop % Math.max(1, model.length)];
              if (uid === undefined) continue;
              const msn = map.remove(uid);
              expect(msn).toBe(model.indexOf(uid) + 1);
              model = model.filter((u) => u !== uid);
            }
          }
          expect(map.size).toBe(model.length);
          model.forEach((uid, i) => expect(map.msnOf(uid)).toBe(i + 1));
        },
      ),
    );
  });
});
