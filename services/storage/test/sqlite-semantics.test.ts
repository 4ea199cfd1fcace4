import {
  Binary,
  Decimal128,
  Long,
  MaxKey,
  MinKey,
  MongoServerError,
  ObjectId,
  Timestamp,
  type Document,
} from 'mongodb';
import { describe, expect, it } from 'vitest';
import {
  applyProjection,
  applyUpdate,
  compareValues,
  compileFilter,
  isReplacement,
  matches,
  sortComparator,
  upsertSeed,
  valuesAtPath,
  valuesEqual,
} from '../src/db/sqlite/semantics.js';

/** The ids of the documents that match, in order. */
function ids(docs: readonly Document[], filter: Document): unknown[] {
  return docs.filter((d) => matches(d, filter)).map((d) => d._id as unknown);
}

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(MongoServerError);
    return (error as MongoServerError).code as number;
  }
  return undefined;
}

describe('compareValues: the BSON order', () => {
  it('orders types MinKey < null < numbers < string < object < array < Binary < ObjectId < boolean < Date < Timestamp < RegExp < MaxKey', () => {
    const ordered = [
      new MinKey(),
      null,
      -5,
      'a',
      { a: 1 },
      [1],
      new Binary(Buffer.from('x')),
      new ObjectId('000000000000000000000001'),
      false,
      new Date(0),
      new Timestamp({ t: 1, i: 1 }),
      /x/,
      new MaxKey(),
    ];
    for (let i = 0; i < ordered.length; i++) {
      for (let j = 0; j < ordered.length; j++) {
        expect(Math.sign(compareValues(ordered[i], ordered[j])), `${i} vs ${j}`).toBe(Math.sign(i - j));
      }
    }
  });

  it('compares numbers across representations exactly', () => {
    expect(compareValues(1, Long.fromNumber(1))).toBe(0);
    expect(compareValues(Long.fromString('9007199254740993'), 9007199254740992)).toBe(1);
    expect(compareValues(2n ** 62n, Long.fromBigInt(2n ** 62n))).toBe(0);
    expect(compareValues(2.5, 2n)).toBe(1);
    expect(compareValues(-2.5, -2n)).toBe(-1);
    expect(compareValues(Decimal128.fromString('1.5'), 1.25)).toBe(1);
    expect(compareValues(NaN, -Infinity)).toBe(-1);
    expect(compareValues(NaN, NaN)).toBe(0);
    expect(compareValues(0, -0)).toBe(0);
  });

  it('compares strings by code point (UTF-8 order), not UTF-16 units', () => {
    expect(compareValues('\u{1F600}', '\uFFFF')).toBe(1);
    expect(compareValues('B', 'a')).toBe(-1);
    expect(compareValues('ab', 'abc')).toBe(-1);
  });

  it('compares documents field by field (type, then name, then value) and arrays element by element', () => {
    expect(compareValues({ a: 1 }, { a: 2 })).toBe(-1);
    expect(compareValues({ a: 1 }, { b: 0 })).toBe(-1);
    expect(compareValues({ b: 1 }, { a: 'x' })).toBe(-1); // number before string, whatever the names
    expect(compareValues({ a: 1 }, { a: 1, b: 1 })).toBe(-1);
    expect(compareValues([1, 2], [1, 3])).toBe(-1);
    expect(compareValues([2], [1, 5])).toBe(1);
  });

  it('compares Binary by length, then subtype, then bytes; Buffer counts as subtype 0', () => {
    expect(compareValues(new Binary(Buffer.from([9])), new Binary(Buffer.from([1, 1])))).toBe(-1);
    expect(compareValues(new Binary(Buffer.from([9]), 0), new Binary(Buffer.from([1]), 4))).toBe(-1);
    expect(compareValues(Buffer.from([1, 2]), new Binary(Buffer.from([1, 2])))).toBe(0);
  });
});

describe('valuesEqual', () => {
  it('sees ObjectId, Binary, Date, Long and nested documents by value', () => {
    expect(
      valuesEqual(new ObjectId('64b7f0c2a1b2c3d4e5f60718'), new ObjectId('64b7f0c2a1b2c3d4e5f60718')),
    ).toBe(true);
    expect(valuesEqual(new ObjectId('64b7f0c2a1b2c3d4e5f60718'), '64b7f0c2a1b2c3d4e5f60718')).toBe(false);
    expect(valuesEqual(new Binary(Buffer.from('ab')), Buffer.from('ab'))).toBe(true);
    expect(valuesEqual(new Date(5), new Date(5))).toBe(true);
    expect(valuesEqual(Long.fromNumber(7), 7)).toBe(true);
    expect(valuesEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true);
    expect(valuesEqual({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(false); // field order matters
    expect(valuesEqual('1', 1)).toBe(false);
    expect(valuesEqual(null, undefined)).toBe(true);
  });
});

describe('valuesAtPath', () => {
  it('walks documents and arrays of documents; an array at the end is returned whole', () => {
    const doc = { a: [{ b: 1 }, { b: [2, 3] }, { c: 1 }, 7], d: { e: 'x' }, f: [[{ b: 9 }]] };
    expect(valuesAtPath(doc, 'a.b')).toEqual([1, [2, 3]]);
    expect(valuesAtPath(doc, 'd.e')).toEqual(['x']);
    expect(valuesAtPath(doc, 'a.1.b')).toEqual([[2, 3]]);
    expect(valuesAtPath(doc, 'f.b')).toEqual([]); // arrays inside arrays are not entered by name
    expect(valuesAtPath(doc, 'nope')).toEqual([]);
    expect(valuesAtPath(doc, 'd')).toEqual([{ e: 'x' }]);
  });
});

describe('matches: equality', () => {
  const docs = [
    { _id: 1, a: 1 },
    { _id: 2, a: [1, 2] },
    { _id: 3, a: [[1, 2], 3] },
    { _id: 4, a: null },
    { _id: 5 },
    { _id: 6, a: '1' },
    { _id: 7, a: { b: 1 } },
    { _id: 8, a: [null, 5] },
    { _id: 9, a: [] },
  ];

  it('matches a value, or an array holding it (one level deep)', () => {
    expect(ids(docs, { a: 1 })).toEqual([1, 2]);
    expect(ids(docs, { a: { $eq: 1 } })).toEqual([1, 2]);
    expect(ids(docs, { a: 3 })).toEqual([3]);
  });

  it('matches a whole array, or an array holding that array', () => {
    expect(ids(docs, { a: [1, 2] })).toEqual([2, 3]);
    expect(ids(docs, { a: [2, 1] })).toEqual([]);
    expect(ids(docs, { a: [] })).toEqual([9]);
  });

  it('null matches null, missing and arrays holding null, never an empty array', () => {
    expect(ids(docs, { a: null })).toEqual([4, 5, 8]);
    expect(ids(docs, { a: { $ne: null } })).toEqual([1, 2, 3, 6, 7, 9]);
  });

  it('documents match only by equal fields in equal order', () => {
    expect(ids(docs, { a: { b: 1 } })).toEqual([7]);
    expect(ids([{ _id: 1, a: { b: 1, c: 2 } }], { a: { c: 2, b: 1 } })).toEqual([]);
  });

  it('$ne and $nin also match a missing field', () => {
    expect(ids(docs, { a: { $ne: 1 } })).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(ids(docs, { a: { $nin: [1, null] } })).toEqual([3, 6, 7, 9]);
  });

  it('compares ObjectId, Binary and Date by value and Long with numbers', () => {
    const oid = new ObjectId();
    const rows = [
      { _id: 1, o: oid, b: new Binary(Buffer.from('hi')), d: new Date(1000), n: Long.fromNumber(3) },
      { _id: 2, o: new ObjectId(), b: Buffer.from('ho'), d: new Date(2000), n: 3.5 },
    ];
    expect(ids(rows, { o: new ObjectId(oid.toHexString()) })).toEqual([1]);
    expect(ids(rows, { o: oid.toHexString() })).toEqual([]);
    expect(ids(rows, { b: Buffer.from('hi') })).toEqual([1]);
    expect(ids(rows, { b: new Binary(Buffer.from('ho')) })).toEqual([2]);
    expect(ids(rows, { d: new Date(1000) })).toEqual([1]);
    expect(ids(rows, { n: 3 })).toEqual([1]);
    expect(ids(rows, { n: { $gt: Long.fromNumber(3) } })).toEqual([2]);
  });
});

describe('matches: ranges', () => {
  const docs = [
    { _id: 1, a: 5 },
    { _id: 2, a: 10 },
    { _id: 3, a: 'x' },
    { _id: 4, a: [1, 20] },
    { _id: 5, a: null },
    { _id: 6 },
    { _id: 7, a: new Date(10) },
  ];

  it('brackets by type: a number bound never matches a string, null, missing or a date', () => {
    expect(ids(docs, { a: { $gt: 5 } })).toEqual([2, 4]);
    expect(ids(docs, { a: { $gte: 5 } })).toEqual([1, 2, 4]);
    expect(ids(docs, { a: { $lt: 5 } })).toEqual([4]);
    expect(ids(docs, { a: { $lte: 'z' } })).toEqual([3]);
    expect(ids(docs, { a: { $gt: new Date(0) } })).toEqual([7]);
  });

  it('applies each bound on its own over array elements', () => {
    // 20 > 10 and 1 < 5: one element may satisfy each operator (use $elemMatch for one element).
    expect(ids(docs, { a: { $gt: 10, $lt: 5 } })).toEqual([4]);
    expect(ids(docs, { a: { $elemMatch: { $gt: 10, $lt: 5 } } })).toEqual([]);
    expect(ids(docs, { a: { $elemMatch: { $gt: 10, $lt: 25 } } })).toEqual([4]);
  });

  it('$gte/$lte null match null and missing; $gt/$lt null match nothing', () => {
    expect(ids(docs, { a: { $gte: null } })).toEqual([5, 6]);
    expect(ids(docs, { a: { $lte: null } })).toEqual([5, 6]);
    expect(ids(docs, { a: { $gt: null } })).toEqual([]);
    expect(ids(docs, { a: { $lt: null } })).toEqual([]);
  });

  it('NaN equals only NaN, and compares false with every range bound except NaN under $gte/$lte', () => {
    const rows = [
      { _id: 1, n: NaN },
      { _id: 2, n: -Infinity },
      { _id: 3, n: [NaN, 2] },
    ];
    expect(ids(rows, { n: NaN })).toEqual([1, 3]);
    expect(ids(rows, { n: { $lt: 0 } })).toEqual([2]);
    expect(ids(rows, { n: { $gt: -Infinity } })).toEqual([3]);
    expect(ids(rows, { n: { $gte: NaN } })).toEqual([1, 3]);
    expect(ids(rows, { n: { $lt: NaN } })).toEqual([]);
    // In a sort NaN is the smallest number.
    expect([...rows].sort(sortComparator({ n: 1 })).map((d) => d._id)).toEqual([1, 3, 2]);
  });

  it('MinKey and MaxKey bounds take every type', () => {
    expect(ids(docs, { a: { $gt: new MinKey() } })).toEqual([1, 2, 3, 4, 5, 7]);
    expect(ids(docs, { a: { $lt: new MaxKey() } })).toEqual([1, 2, 3, 4, 5, 7]);
  });
});

describe('matches: $in, $exists, $regex, $all, $size, $type, $not, $mod', () => {
  const docs = [
    { _id: 1, s: 'Alpha', t: ['red', 'blue'], n: 4 },
    { _id: 2, s: 'beta', t: ['blue'], n: 4.5 },
    { _id: 3, s: 'gamma\nalpha', t: [], n: Long.fromNumber(9) },
    { _id: 4, t: 'red', n: null },
  ];

  it('$in takes values, null (missing) and regexes', () => {
    expect(ids(docs, { s: { $in: ['beta', 'Alpha'] } })).toEqual([1, 2]);
    expect(ids(docs, { s: { $in: [null] } })).toEqual([4]);
    expect(ids(docs, { s: { $in: [/^gam/] } })).toEqual([3]);
    expect(ids(docs, { t: { $in: ['red'] } })).toEqual([1, 4]);
    expect(ids(docs, { t: { $in: [] } })).toEqual([]);
  });

  it('$exists looks at presence, null included', () => {
    expect(ids(docs, { n: { $exists: true } })).toEqual([1, 2, 3, 4]);
    expect(ids(docs, { s: { $exists: false } })).toEqual([4]);
    expect(ids(docs, { 't.0': { $exists: true } })).toEqual([1, 2]);
  });

  it('$regex takes strings, RegExp values and $options, and matches array elements', () => {
    expect(ids(docs, { s: { $regex: '^alpha' } })).toEqual([]);
    expect(ids(docs, { s: { $regex: '^alpha', $options: 'i' } })).toEqual([1]);
    expect(ids(docs, { s: { $regex: '^alpha', $options: 'im' } })).toEqual([1, 3]);
    expect(ids(docs, { s: /^alpha/im })).toEqual([1, 3]);
    expect(ids(docs, { s: { $regex: /^ALPHA/, $options: 'i' } })).toEqual([1]);
    expect(ids(docs, { t: /^bl/ })).toEqual([1, 2]);
    expect(ids(docs, { s: { $regex: 'a l p h a # spaced', $options: 'xi' } })).toEqual([1, 3]);
    expect(ids(docs, { n: /4/ })).toEqual([]); // a regex never matches a number
  });

  it('$all, $size', () => {
    expect(ids(docs, { t: { $all: ['blue', 'red'] } })).toEqual([1]);
    expect(ids(docs, { t: { $all: ['red'] } })).toEqual([1, 4]);
    expect(ids(docs, { t: { $all: [] } })).toEqual([]);
    expect(ids(docs, { t: { $size: 0 } })).toEqual([3]);
    expect(ids(docs, { t: { $size: 1 } })).toEqual([2]);
  });

  it('$type by alias, number and list; elements of arrays count', () => {
    expect(ids(docs, { n: { $type: 'int' } })).toEqual([1]);
    expect(ids(docs, { n: { $type: 'double' } })).toEqual([2]);
    expect(ids(docs, { n: { $type: 'long' } })).toEqual([3]);
    expect(ids(docs, { n: { $type: 'number' } })).toEqual([1, 2, 3]);
    expect(ids(docs, { n: { $type: 10 } })).toEqual([4]);
    expect(ids(docs, { t: { $type: 'array' } })).toEqual([1, 2, 3]);
    expect(ids(docs, { t: { $type: ['string'] } })).toEqual([1, 2, 4]);
  });

  it('$not negates, so it also matches a missing field', () => {
    expect(ids(docs, { s: { $not: /^A/ } })).toEqual([2, 3, 4]);
    expect(ids(docs, { n: { $not: { $gt: 4 } } })).toEqual([1, 4]);
  });

  it('$mod', () => {
    expect(ids(docs, { n: { $mod: [2, 0] } })).toEqual([1, 2]); // 4.5 truncates to 4
  });
});

describe('matches: dotted paths, arrays of documents, $elemMatch', () => {
  const docs = [
    {
      _id: 1,
      a: [
        { b: 1, c: 'x' },
        { b: 2, c: 'y' },
      ],
    },
    { _id: 2, a: [{ b: 1, c: 'y' }] },
    { _id: 3, a: { b: [3, 4] } },
    { _id: 4, a: [{ c: 'z' }] },
    { _id: 5, a: [1, 2] },
    { _id: 6, a: 5 },
  ];

  it('a path reaches into every document of an array', () => {
    expect(ids(docs, { 'a.b': 1 })).toEqual([1, 2]);
    expect(ids(docs, { 'a.b': 4 })).toEqual([3]);
    expect(ids(docs, { 'a.c': 'y' })).toEqual([1, 2]);
    expect(ids(docs, { 'a.1.b': 2 })).toEqual([1]);
    expect(ids(docs, { 'a.0': 1 })).toEqual([5]);
  });

  it('null at a path matches documents in an array that lack the field, and scalars on the way', () => {
    expect(ids(docs, { 'a.b': null })).toEqual([4, 6]);
    expect(ids(docs, { 'a.b': { $exists: false } })).toEqual([4, 5, 6]);
    // $ne is the negation of $eq over every value the path reaches.
    expect(ids(docs, { 'a.c': { $ne: 'y' } })).toEqual([3, 4, 5, 6]);
  });

  it('$elemMatch holds all conditions on one element, unlike separate dotted conditions', () => {
    expect(ids(docs, { 'a.b': 1, 'a.c': 'y' })).toEqual([1, 2]);
    expect(ids(docs, { a: { $elemMatch: { b: 1, c: 'y' } } })).toEqual([2]);
    expect(ids(docs, { a: { $elemMatch: { $gte: 2 } } })).toEqual([5]);
    expect(ids(docs, { a: { $all: [{ $elemMatch: { b: 2 } }] } })).toEqual([1]);
  });
});

describe('matches: logic and errors', () => {
  const docs = [
    { _id: 1, a: 1, b: 1 },
    { _id: 2, a: 1, b: 2 },
    { _id: 3, a: 2, b: 2 },
  ];

  it('$and, $or, $nor, and an empty filter', () => {
    expect(ids(docs, { $and: [{ a: 1 }, { b: 2 }] })).toEqual([2]);
    expect(ids(docs, { $or: [{ a: 2 }, { b: 1 }] })).toEqual([1, 3]);
    expect(ids(docs, { $nor: [{ a: 2 }, { b: 1 }] })).toEqual([2]);
    expect(ids(docs, {})).toEqual([1, 2, 3]);
    expect(ids(docs, { a: 1, $comment: 'why' })).toEqual([1, 2]);
  });

  it('an unknown or malformed operator is BadValue (2), found even with no document to test', () => {
    expect(codeOf(() => compileFilter({ a: { $foo: 1 } }))).toBe(2);
    expect(codeOf(() => compileFilter({ $foo: [] }))).toBe(2);
    expect(codeOf(() => compileFilter({ $or: [] }))).toBe(2);
    expect(codeOf(() => compileFilter({ a: { $in: 5 } }))).toBe(2);
    expect(codeOf(() => compileFilter({ a: { $options: 'i' } }))).toBe(2);
    expect(codeOf(() => compileFilter({ a: { $type: 'nope' } }))).toBe(2);
    expect(codeOf(() => compileFilter({ a: { $size: 1.5 } }))).toBe(2);
    expect(codeOf(() => matches({}, { a: { $not: 5 } }))).toBe(2);
  });
});

describe('applyUpdate', () => {
  const base = { _id: 1, a: 1, s: 'x', arr: [1, 2, 3], sub: { n: 1 } };

  it('$set and $unset, dotted paths creating documents, never touching the input', () => {
    const input = structuredClone(base);
    const out = applyUpdate(
      input,
      { $set: { 'sub.m': 2, 'new.deep': true, a: 5 }, $unset: { s: '' } },
      false,
    );
    expect(out).toEqual({ _id: 1, a: 5, arr: [1, 2, 3], sub: { n: 1, m: 2 }, new: { deep: true } });
    expect(input).toEqual(base);
    expect(applyUpdate(base, { $unset: { nope: 1, 'arr.1': 1 } }, false).arr).toEqual([1, null, 3]);
    expect(applyUpdate(base, { $set: { 'arr.5': 9 } }, false).arr).toEqual([1, 2, 3, null, null, 9]);
  });

  it('adds new fields in lexicographic order, as MongoDB 5.0+ does', () => {
    expect(Object.keys(applyUpdate({ _id: 1 }, { $set: { z: 1, b: 1 }, $inc: { a: 1 } }, false))).toEqual([
      '_id',
      'a',
      'b',
      'z',
    ]);
  });

  it('$inc and $mul keep numeric types and refuse non-numbers with TypeMismatch (14)', () => {
    expect(
      applyUpdate(base, { $inc: { a: 2, fresh: 3 }, $mul: { 'sub.n': 4, zero: 5 } }, false),
    ).toMatchObject({
      a: 3,
      fresh: 3,
      sub: { n: 4 },
      zero: 0,
    });
    const long = applyUpdate({ _id: 1, n: Long.fromString('9007199254740993') }, { $inc: { n: 1 } }, false)
      .n as unknown;
    expect(long).toBeInstanceOf(Long);
    expect(String(long)).toBe('9007199254740994');
    expect(codeOf(() => applyUpdate(base, { $inc: { s: 1 } }, false))).toBe(14);
    expect(codeOf(() => applyUpdate(base, { $inc: { a: 'x' } }, false))).toBe(14);
  });

  it('$min and $max compare in BSON order and set a missing field', () => {
    const out = applyUpdate(base, { $max: { a: 7, m: 1 }, $min: { 'sub.n': 0 } }, false);
    expect(out).toMatchObject({ a: 7, m: 1, sub: { n: 0 } });
    expect(applyUpdate(base, { $max: { a: 0 } }, false).a).toBe(1);
    expect(applyUpdate(base, { $max: { a: 'str' } }, false).a).toBe('str'); // strings sort after numbers
  });

  it('$setOnInsert only when inserting', () => {
    expect(applyUpdate(base, { $setOnInsert: { c: 1 } }, false)).toEqual(base);
    expect(applyUpdate(base, { $setOnInsert: { c: 1 } }, true).c).toBe(1);
  });

  it('$push with $each/$position/$sort/$slice, $addToSet, $pull, $pullAll, $pop', () => {
    expect(applyUpdate(base, { $push: { arr: 4, fresh: 'a' } }, false)).toMatchObject({
      arr: [1, 2, 3, 4],
      fresh: ['a'],
    });
    expect(applyUpdate(base, { $push: { arr: { $each: [9, 0], $position: 1 } } }, false).arr).toEqual([
      1, 9, 0, 2, 3,
    ]);
    expect(applyUpdate(base, { $push: { arr: { $each: [0], $sort: -1, $slice: 2 } } }, false).arr).toEqual([
      3, 2,
    ]);
    expect(applyUpdate(base, { $push: { arr: [7] } }, false).arr).toEqual([1, 2, 3, [7]]);
    expect(applyUpdate(base, { $addToSet: { arr: { $each: [2, 4, 4] }, other: 1 } }, false)).toMatchObject({
      arr: [1, 2, 3, 4],
      other: [1],
    });
    expect(applyUpdate(base, { $pull: { arr: { $gte: 2 } } }, false).arr).toEqual([1]);
    expect(applyUpdate(base, { $pull: { arr: 2, nope: 1 } }, false)).toEqual({ ...base, arr: [1, 3] });
    const people = {
      _id: 1,
      p: [
        { n: 'a', k: 1 },
        { n: 'b', k: 2 },
      ],
    };
    expect(applyUpdate(people, { $pull: { p: { k: { $gt: 1 } } } }, false).p).toEqual([{ n: 'a', k: 1 }]);
    expect(applyUpdate(base, { $pullAll: { arr: [1, 3] } }, false).arr).toEqual([2]);
    expect(applyUpdate(base, { $pop: { arr: -1 } }, false).arr).toEqual([2, 3]);
    expect(codeOf(() => applyUpdate(base, { $push: { s: 1 } }, false))).toBe(2);
    expect(codeOf(() => applyUpdate(base, { $addToSet: { s: 1 } }, false))).toBe(2);
    expect(codeOf(() => applyUpdate(base, { $pull: { s: 1 } }, false))).toBe(2);
  });

  it('$pull on userIds, as the directory removes a user from addresses', () => {
    const oid = new ObjectId();
    const other = new ObjectId();
    const out = applyUpdate(
      { _id: 1, userIds: [oid, other] },
      { $pull: { userIds: new ObjectId(oid.toHexString()) } },
      false,
    );
    expect(out.userIds).toEqual([other]);
  });

  it('$currentDate and $rename', () => {
    const before = Date.now();
    const out = applyUpdate(
      base,
      { $currentDate: { at: true, ts: { $type: 'timestamp' } }, $rename: { s: 'sub.s' } },
      false,
    );
    expect((out.at as Date).getTime()).toBeGreaterThanOrEqual(before);
    expect(out.ts).toBeInstanceOf(Timestamp);
    expect(out.sub).toEqual({ n: 1, s: 'x' });
    expect(out).not.toHaveProperty('s');
    expect(applyUpdate(base, { $rename: { nope: 'x' } }, false)).toEqual(base);
  });

  it('a path through a scalar is PathNotViable (28) for $pop, $pull, $pullAll and $rename, a no-op for $unset', () => {
    const doc = { _id: 1, a: 5, arr: [1] };
    expect(codeOf(() => applyUpdate(doc, { $pop: { 'a.x': 1 } }, false))).toBe(28);
    expect(codeOf(() => applyUpdate(doc, { $pull: { 'a.x': 1 } }, false))).toBe(28);
    expect(codeOf(() => applyUpdate(doc, { $pullAll: { 'arr.x': [1] } }, false))).toBe(28);
    expect(codeOf(() => applyUpdate(doc, { $rename: { 'a.x': 'b' } }, false))).toBe(28);
    expect(applyUpdate(doc, { $unset: { 'a.x': 1 } }, false)).toEqual(doc);
    // A missing step is not a scalar: nothing to do.
    expect(applyUpdate(doc, { $pop: { 'm.x': 1 }, $rename: { 'm.y': 'z' } }, false)).toEqual(doc);
    expect(codeOf(() => applyUpdate({ _id: 1, a: [{ b: 1 }] }, { $rename: { 'a.0.b': 'c' } }, false))).toBe(
      2,
    );
  });

  it('$rename conflicts with other operators on either path and runs at its target', () => {
    expect(codeOf(() => applyUpdate(base, { $rename: { a: 'z' }, $inc: { a: 1 } }, false))).toBe(40);
    expect(codeOf(() => applyUpdate(base, { $rename: { a: 'z' }, $set: { 'z.q': 1 } }, false))).toBe(40);
    const out = applyUpdate({ _id: 1, a: 'x', c: 1 }, { $inc: { b: 2 }, $rename: { a: 'z' } }, false);
    expect(Object.keys(out)).toEqual(['_id', 'c', 'b', 'z']);
  });

  it('$push and $addToSet with an empty $each still create the array', () => {
    expect(
      applyUpdate({ _id: 1 }, { $push: { p: { $each: [] } }, $addToSet: { q: { $each: [] } } }, false),
    ).toEqual({
      _id: 1,
      p: [],
      q: [],
    });
  });

  it('conflicting paths are code 40, a field that cannot be made is 28, unknown modifiers 9', () => {
    expect(codeOf(() => applyUpdate(base, { $set: { a: 1 }, $inc: { a: 1 } }, false))).toBe(40);
    expect(codeOf(() => applyUpdate(base, { $set: { sub: {} }, $unset: { 'sub.n': 1 } }, false))).toBe(40);
    expect(codeOf(() => applyUpdate(base, { $set: { 'a.b': 1 } }, false))).toBe(28);
    expect(codeOf(() => applyUpdate(base, { $set: { 'arr.x': 1 } }, false))).toBe(28);
    expect(codeOf(() => applyUpdate(base, { $frob: { a: 1 } }, false))).toBe(9);
    expect(codeOf(() => applyUpdate(base, { $set: { a: 1 }, b: 2 }, false))).toBe(9);
    expect(codeOf(() => applyUpdate(base, { $set: 5 }, false))).toBe(9);
    expect(codeOf(() => applyUpdate(base, { $set: { 'a..b': 1 } }, false))).toBe(56);
  });

  it('_id cannot change (66), but may be set to its own value', () => {
    expect(codeOf(() => applyUpdate(base, { $set: { _id: 2 } }, false))).toBe(66);
    expect(codeOf(() => applyUpdate(base, { $unset: { _id: 1 } }, false))).toBe(66);
    expect(codeOf(() => applyUpdate(base, { _id: 2, a: 1 }, false))).toBe(66);
    expect(applyUpdate(base, { $set: { _id: 1, a: 2 } }, false).a).toBe(2);
    expect(Object.keys(applyUpdate({ a: 1 }, { $set: { _id: 5 } }, true))).toEqual(['_id', 'a']);
  });

  it('a replacement keeps _id first and drops every other field', () => {
    expect(isReplacement({ a: 1 })).toBe(true);
    expect(isReplacement({ $set: { a: 1 } })).toBe(false);
    const out = applyUpdate(base, { z: 1, _id: 1 }, false);
    expect(out).toEqual({ _id: 1, z: 1 });
    expect(Object.keys(out)).toEqual(['_id', 'z']);
  });
});

describe('upsertSeed', () => {
  it('takes plain values, $eq and $and equalities, expanding dotted paths', () => {
    const oid = new ObjectId();
    expect(
      upsertSeed({
        name: 'x',
        _id: oid,
        'a.b': 1,
        n: { $gt: 1 },
        e: { $eq: 2 },
        r: /x/,
        $and: [{ c: 3 }, { d: { $lt: 1 } }],
      }),
    ).toEqual({ _id: oid, name: 'x', a: { b: 1 }, e: 2, c: 3 });
    expect(Object.keys(upsertSeed({ a: 1, _id: 1 }))).toEqual(['_id', 'a']);
    expect(upsertSeed({ a: { $in: [5] }, $or: [{ b: 1 }] })).toEqual({ a: 5, b: 1 });
    expect(upsertSeed({ $or: [{ b: 1 }, { b: 2 }], a: { b: 1 } })).toEqual({ a: { b: 1 } });
  });

  it('refuses a path matched twice (54)', () => {
    expect(codeOf(() => upsertSeed({ $and: [{ a: 1 }, { a: 2 }] }))).toBe(54);
    expect(codeOf(() => upsertSeed({ a: 1, 'a.b': 2 }))).toBe(54);
  });
});

describe('applyProjection', () => {
  const doc = { _id: 1, a: 1, b: { c: 1, d: 2 }, e: [{ c: 1, d: 2 }, 5, { d: 3 }], f: 'x' };

  it('inclusion keeps the document order, _id unless excluded, and dotted paths into arrays', () => {
    expect(applyProjection(doc, { f: 1, a: true })).toEqual({ _id: 1, a: 1, f: 'x' });
    expect(Object.keys(applyProjection(doc, { f: 1, a: 1 }))).toEqual(['_id', 'a', 'f']);
    expect(applyProjection(doc, { 'b.c': 1, _id: 0 })).toEqual({ b: { c: 1 } });
    expect(applyProjection(doc, { 'e.c': 1 })).toEqual({ _id: 1, e: [{ c: 1 }, {}] });
    expect(applyProjection(doc, { 'a.z': 1 })).toEqual({ _id: 1 });
    expect(applyProjection(doc, { _id: 1 })).toEqual({ _id: 1 });
  });

  it('exclusion removes the paths and keeps scalars in arrays', () => {
    expect(applyProjection(doc, { b: 0, e: 0 })).toEqual({ _id: 1, a: 1, f: 'x' });
    expect(applyProjection(doc, { 'e.d': 0, _id: 0, a: false })).toEqual({
      b: { c: 1, d: 2 },
      e: [{ c: 1 }, 5, {}],
      f: 'x',
    });
    expect(applyProjection(doc, { _id: 0 })).toEqual({ a: 1, b: { c: 1, d: 2 }, e: doc.e, f: 'x' });
    expect(applyProjection(doc, undefined)).toEqual(doc);
    expect(applyProjection(doc, {})).toEqual(doc);
    expect(applyProjection(doc, { e: 0, b: 0, f: 0, _id: 1 })).toEqual({ _id: 1, a: 1 });
  });

  it('refuses mixing inclusion and exclusion, and colliding paths', () => {
    expect(codeOf(() => applyProjection(doc, { a: 1, b: 0 }))).toBe(31254);
    expect(codeOf(() => applyProjection(doc, { b: 1, 'b.c': 1 }))).toBe(31249);
  });
});

describe('sortComparator', () => {
  const docs = [
    { _id: 1, a: 3, b: 'x' },
    { _id: 2, a: [1, 9], b: 'y' },
    { _id: 3, b: 'x' },
    { _id: 4, a: null, b: 'z' },
    { _id: 5, a: 'str', b: 'y' },
    { _id: 6, a: [], b: 'x' },
  ];
  const order = (sort: Parameters<typeof sortComparator>[0]): unknown[] =>
    [...docs].sort(sortComparator(sort)).map((d) => d._id);

  it('missing sorts as null, the empty array before it, arrays by their min ascending and max descending', () => {
    expect(order({ a: 1, _id: 1 })).toEqual([6, 3, 4, 2, 1, 5]);
    expect(order({ a: -1, _id: 1 })).toEqual([5, 2, 1, 3, 4, 6]);
  });

  it('a dotted path into an array of documents sorts by the extreme value among them', () => {
    const rows = [
      { _id: 1, arr: [{ k: 1 }, { k: 2 }] },
      { _id: 2, arr: [{ k: 2 }] },
      { _id: 3, arr: [{ k: 3 }, { v: 0 }] },
      { _id: 4, arr: [{ k: 1 }, { k: 5 }] },
    ];
    const by = (sort: Document): unknown[] => [...rows].sort(sortComparator(sort)).map((d) => d._id);
    expect(by({ 'arr.k': -1, _id: 1 })).toEqual([4, 3, 1, 2]);
    // A document in the array without `k` gives null, the smallest key ascending.
    expect(by({ 'arr.k': 1, _id: 1 })).toEqual([3, 1, 4, 2]);
  });

  it('takes the driver spec forms: document, list of pairs, one pair, a name, and asc/desc', () => {
    expect(
      order([
        ['b', -1],
        ['_id', 1],
      ]),
    ).toEqual([4, 2, 5, 1, 3, 6]);
    expect(order({ b: 'desc', _id: 'asc' })).toEqual([4, 2, 5, 1, 3, 6]);
    expect(order(['b', -1])).toEqual([4, 2, 5, 1, 3, 6]);
    expect(order('_id')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(sortComparator(undefined)).toBeUndefined();
    expect(sortComparator({})).toBeUndefined();
  });
});
