/**
 * The mailbox index's data structure (ADR 0006): UID order under any insertion order, flag and
 * MODSEQ updates, removals, UID-set and CHANGEDSINCE selection, \Recent and first-unseen answers,
 * stamp checks and the bound on messages held. Checked against a plain list model with fast-check.
 * Also the message cache's byte bound.
 */
import fc from 'fast-check';
import { Binary } from 'mongodb';
import { describe, expect, it } from 'vitest';
import {
  MAX_SUMMARY_BYTES,
  MailboxIndex,
  MailboxIndexEntry,
  summaryBytes,
  type IndexedMessage,
  type MessageSummary,
} from '../src/mailstore/mailbox-index.js';
import { MessageCache } from '../src/mailstore/message-cache.js';
import type { MessageRecord } from '../src/mailstore/types.js';

const msg = (uid: number, modseq = uid, flags: string[] = []): IndexedMessage => ({
  uid,
  modseq,
  flags,
  size: uid * 10,
  internalDate: new Date(uid * 1000),
});

describe('MailboxIndexEntry', () => {
  it('keeps UID order, updates flags, removes, selects by UID set and CHANGEDSINCE', () => {
    const e = new MailboxIndexEntry('u', 10);
    e.add([msg(5), msg(1, 1, ['\\Seen']), msg(3)]);
    e.add([msg(9, 9, ['\\Seen'])]);
    expect(e.select([[1, 100]]).map((m) => m.uid)).toEqual([1, 3, 5, 9]);
    e.setFlags(3, ['\\Seen', '\\Flagged'], 11);
    e.setFlags(4, ['\\Deleted'], 12); // not there: ignored
    expect(e.select([[3, 3]])[0]).toMatchObject({
      uid: 3,
      modseq: 11,
      flags: ['\\Seen', '\\Flagged'],
      size: 30,
    });
    expect(e.select([[1, 100]], 9).map((m) => m.uid)).toEqual([3]);
    expect(e.firstWithout('\\Seen')).toBe(5);
    expect(e.countFrom(4)).toBe(2);
    e.remove([1, 5, 77], 12);
    expect(e.removedUpTo).toBe(12);
    expect(e.select([[1, 100]]).map((m) => m.uid)).toEqual([3, 9]);
    expect(e.firstWithout('\\Seen')).toBe(0);
    expect(
      e
        .select([
          [1, 3],
          [8, 9],
        ])
        .map((m) => m.uid),
    ).toEqual([3, 9]);
  });

  it('knows the UIDs removed since it was built, and says when it does not', () => {
    const e = new MailboxIndexEntry('u', 10);
    e.add([msg(1), msg(2), msg(3), msg(4)]);
    expect(e.removedSince(10)).toEqual([]);
    e.remove([2], 11);
    e.setFlags(3, ['\\Seen'], 12);
    e.remove([3, 4], 13);
    expect(e.removedSince(9)).toBeUndefined(); // before the build: only the tombstones know
    expect(e.removedSince(10)).toEqual([2, 3, 4]);
    expect(e.removedSince(11)).toEqual([3, 4]);
    expect(e.removedSince(12)).toEqual([3, 4]);
    expect(e.removedSince(13)).toEqual([]);
    // Bounded: the oldest removals are forgotten, and asking for them says so.
    let modseq = 13;
    for (let uid = 100; uid < 100 + 5_000; uid++) e.remove([uid], ++modseq);
    expect(e.removedSince(10)).toBeUndefined();
    expect(e.removedSince(modseq - 3)).toEqual([5_097, 5_098, 5_099]);
  });

  it('matches a plain list under random operations', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('add' as const),
        uid: fc.integer({ min: 1, max: 60 }),
        seen: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('flag' as const),
        uid: fc.integer({ min: 1, max: 60 }),
        seen: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('remove' as const), uid: fc.integer({ min: 1, max: 60 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.integer({ min: 1, max: 60 }), (ops, probe) => {
        const e = new MailboxIndexEntry('u', 0);
        const model = new Map<number, { seen: boolean; modseq: number }>();
        const removed: { uid: number; modseq: number }[] = [];
        let modseq = 0;
        for (const o of ops) {
          modseq++;
          if (o.kind === 'add') {
            e.add([msg(o.uid, modseq, o.seen ? ['\\Seen'] : [])]);
            model.set(o.uid, { seen: o.seen, modseq });
          } else if (o.kind === 'flag') {
            e.setFlags(o.uid, o.seen ? ['\\Seen'] : [], modseq);
            const cur = model.get(o.uid);
            if (cur !== undefined) model.set(o.uid, { seen: o.seen, modseq });
          } else {
            e.remove([o.uid], modseq);
            model.delete(o.uid);
            removed.push({ uid: o.uid, modseq });
          }
        }
        const uids = [...model.keys()].sort((a, b) => a - b);
        expect(e.select([[1, 60]]).map((m) => m.uid)).toEqual(uids);
        expect(e.size).toBe(uids.length);
        expect(e.countFrom(probe)).toBe(uids.filter((u) => u >= probe).length);
        expect(e.firstWithout('\\Seen')).toBe(uids.find((u) => model.get(u)?.seen === false) ?? 0);
        const since = Math.floor(modseq / 2);
        expect(e.select([[1, 60]], since).map((m) => m.uid)).toEqual(
          uids.filter((u) => (model.get(u)?.modseq ?? 0) > since),
        );
        // What tombstones would say vanished since then (every removal writes one).
        expect(e.removedSince(since)).toEqual(removed.filter((r) => r.modseq > since).map((r) => r.uid));
      }),
      { numRuns: 200 },
    );
  });

  it('answers a poll (CHANGEDSINCE) from its change log as a scan would, for any since and UID set', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), uid: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('flag' as const), uid: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('remove' as const), uid: fc.integer({ min: 1, max: 40 }) }),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { maxLength: 20 }),
        fc.array(op, { maxLength: 60 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 45 }), { minLength: 2, maxLength: 6 }),
        (built, ops, bounds) => {
          // Built from the database at HIGHESTMODSEQ 20 (messages at or below it), then patched.
          const e = new MailboxIndexEntry('u', 20);
          const model = new Map<number, number>();
          built.forEach((uid, i) => model.set(uid, i + 1));
          e.add(built.map((uid) => msg(uid, model.get(uid))));
          let modseq = 20;
          for (const o of ops) {
            modseq++;
            if (o.kind === 'add') {
              e.add([msg(o.uid, modseq)]);
              model.set(o.uid, modseq);
            } else if (o.kind === 'flag') {
              e.setFlags(o.uid, ['\\Seen'], modseq);
              if (model.has(o.uid)) model.set(o.uid, modseq);
            } else {
              e.remove([o.uid], modseq);
              model.delete(o.uid);
            }
          }
          const sorted = [...bounds].sort((a, b) => a - b);
          const intervals: [number, number][] = [];
          for (let i = 0; i + 1 < sorted.length; i += 2) intervals.push([sorted[i]!, sorted[i + 1]!]);
          const inSet = (uid: number): boolean => intervals.some(([a, b]) => uid >= a && uid <= b);
          for (let since = 0; since <= modseq + 1; since++) {
            const want = [...model]
              .filter(([uid, m]) => m > since && inSet(uid))
              .map(([uid]) => uid)
              .sort((a, b) => a - b);
            const got = e.select(intervals, since);
            expect(got.map((m) => m.uid)).toEqual(want);
            for (const m of got) expect(m.modseq).toBe(model.get(m.uid));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('polls from before what its change log keeps by looking at every message', () => {
    const e = new MailboxIndexEntry('u', 0);
    e.add(Array.from({ length: 100 }, (_, i) => msg(i + 1, i + 1)));
    // 10,000 flag changes, far more than the log keeps: the oldest are forgotten.
    for (let m = 101; m <= 10_100; m++) e.setFlags(1 + (m % 100), ['\\Seen'], m);
    expect(e.select([[1, 1_000]], 10_100)).toEqual([]);
    expect(e.select([[1, 1_000]], 10_098).map((m) => m.uid)).toEqual([1, 100]);
    // Every message changed after 1,000 (the last of them at 10,001..10,100).
    expect(e.select([[1, 1_000]], 1_000)).toHaveLength(100);
    expect(e.select([[50, 52]], 10_000).map((m) => [m.uid, m.modseq])).toEqual([
      [50, 10_049],
      [51, 10_050],
      [52, 10_051],
    ]);
  });
});

describe('MailboxIndex', () => {
  it('serves an entry only at its stamp and drops it when a patch finds another', () => {
    const index = new MailboxIndex(1000);
    const e = new MailboxIndexEntry('u', 7);
    e.add([msg(1)]);
    index.set('a', e);
    expect(index.get('a', 7)).toBe(e);
    expect(index.get('a', 8)).toBeUndefined();
    index.patch('a', 7, 8, (x) => x.add([msg(2)]));
    expect(index.get('a', 8)?.size).toBe(2);
    // A change this process did not see (stamp 8 → 9 elsewhere) then ours from 9: dropped.
    index.patch('a', 9, 10, (x) => x.add([msg(3)]));
    expect(index.get('a', 10)).toBeUndefined();
    expect(index.get('a', 8)).toBeUndefined();
  });

  it('replays the changes made while an entry was built, and refuses one that missed a change', () => {
    const index = new MailboxIndex(1000);
    // The read saw messages 1 and 2; meanwhile 3 was added and 1 flagged (recorded patches).
    const a = index.beginBuild('a', 'u', 5);
    if (a === undefined) throw new Error('no build');
    expect(index.beginBuild('a', 'u', 5)).toBeUndefined(); // one build per mailbox at a time
    index.patch('a', 5, 6, (x) => x.add([msg(3, 6)]));
    index.patch('a', 6, 7, (x) => x.setFlags(1, ['\\Seen'], 7));
    const built = new MailboxIndexEntry('u', 5);
    built.add([msg(1), msg(2), msg(3, 6)]); // the read happened to see 3 already: harmless
    expect(index.finishBuild(a, built, 7)).toBe(true);
    expect(index.finishBuild(a, built, 7)).toBe(false); // only once
    expect(
      index
        .get('a', 7)
        ?.select([[1, 10]])
        .map((m) => [m.uid, m.modseq, m.flags]),
    ).toEqual([
      [1, 7, ['\\Seen']],
      [2, 2, []],
      [3, 6, []],
    ]);
    // A change this process did not record (HIGHESTMODSEQ moved past the last patch): refused.
    const b = index.beginBuild('b', 'u', 1);
    if (b === undefined) throw new Error('no build');
    index.patch('b', 1, 2, (x) => x.add([msg(9, 2)]));
    expect(index.finishBuild(b, new MailboxIndexEntry('u', 1), 3)).toBe(false);
    expect(index.get('b', 3)).toBeUndefined();
    // Dropped (RENAME of INBOX, DELETE) while building: refused.
    const c = index.beginBuild('c', 'u', 1);
    if (c === undefined) throw new Error('no build');
    index.drop('c');
    expect(index.finishBuild(c, new MailboxIndexEntry('u', 1), 1)).toBe(false);
  });

  it('holds at most maxMessages, dropping the least recently used mailbox; 0 turns it off', () => {
    const index = new MailboxIndex(5);
    const entry = (userId: string, n: number) => {
      const e = new MailboxIndexEntry(userId, 1);
      e.add(Array.from({ length: n }, (_, i) => msg(i + 1)));
      return e;
    };
    index.set('a', entry('u1', 2));
    index.set('b', entry('u1', 2));
    expect(index.get('a', 1)).toBeDefined(); // a is now the most recently used
    index.set('c', entry('u2', 2));
    expect(index.get('b', 1)).toBeUndefined();
    expect(index.get('a', 1)).toBeDefined();
    expect(index.messages).toBe(4);
    index.set('huge', entry('u3', 6)); // larger than the bound: not kept
    expect(index.get('huge', 1)).toBeUndefined();
    index.dropUser('u1');
    expect(index.get('a', 1)).toBeUndefined();
    expect(index.get('c', 1)).toBeDefined();
    const off = new MailboxIndex(0);
    off.set('a', entry('u1', 1));
    expect(off.get('a', 1)).toBeUndefined();
  });
});

describe('message summaries in the index', () => {
  const summary = (uid: number, pad = 0): MessageSummary => ({
    envelopeJson: `{"subject":"message ${uid}${'x'.repeat(pad)}"}`,
    sentDay: 20261206,
    subject: `message ${uid}`,
    from: `<sender${uid}@example.test>`,
    to: '',
    cc: '',
    bcc: '',
  });
  const entry = (n: number) => {
    const e = new MailboxIndexEntry('u', 1);
    e.add(Array.from({ length: n }, (_, i) => msg(i + 1)));
    return e;
  };
  const keep = (index: MailboxIndex, id: string, e: MailboxIndexEntry, uids: number[]) =>
    index.keepSummaries(
      id,
      e,
      uids.map((uid) => ({ uid, summary: summary(uid) })),
    );

  it('keeps summaries with their messages through flag changes, adds and removals, counting bytes', () => {
    const index = new MailboxIndex(100, 1_000_000);
    const e = entry(3);
    index.set('a', e);
    expect(keep(index, 'a', e, [1, 2, 3])).toBe(true);
    const each = summaryBytes(summary(1));
    expect(e.summaryBytes).toBe(3 * each);
    e.setFlags(2, ['\\Seen'], 5);
    e.add([msg(2, 6, ['\\Flagged'])]); // the same UID again (a rebuild's replay): summary stays
    e.add([msg(4)]);
    expect(e.select([[1, 10]]).map((m) => m.summary?.subject)).toEqual([
      'message 1',
      'message 2',
      'message 3',
      undefined,
    ]);
    e.remove([1, 3], 7);
    expect(e.summaryBytes).toBe(each);
    expect(e.select([[1, 10]]).map((m) => [m.uid, m.summary?.from])).toEqual([
      [2, '<sender2@example.test>'],
      [4, undefined],
    ]);
    // A UID the entry does not hold, or an entry that is not the mailbox's current one: not kept.
    expect(keep(index, 'a', e, [9])).toBe(false);
    expect(keep(index, 'a', entry(1), [1])).toBe(false);
    // One message's summary larger than the per-message bound: made each time, never kept.
    const large = summary(4, MAX_SUMMARY_BYTES);
    expect(index.keepSummaries('a', e, [{ uid: 4, summary: large }])).toBe(false);
    expect(e.select([[4, 4]])[0]?.summary).toBeUndefined();
  });

  it("holds at most maxSummaryBytes, dropping the least recently used mailboxes' summaries first", () => {
    const each = summaryBytes(summary(1));
    const index = new MailboxIndex(100, 5 * each);
    const a = entry(2);
    const b = entry(2);
    const c = entry(4);
    index.set('a', a);
    index.set('b', b);
    keep(index, 'a', a, [1, 2]);
    keep(index, 'b', b, [1, 2]);
    expect(index.summaryBytes).toBe(4 * each);
    index.get('a', 1); // a is now the most recently used
    index.set('c', c);
    expect(keep(index, 'c', c, [1, 2])).toBe(true); // b's summaries go, not a's
    expect(b.summaryBytes).toBe(0);
    expect(a.summaryBytes).toBe(2 * each);
    expect(b.select([[1, 2]]).map((m) => m.uid)).toEqual([1, 2]); // the entry itself stays
    expect(index.summaryBytes).toBeLessThanOrEqual(5 * each);
    // More than the bound for one mailbox alone: none kept.
    const big = new MailboxIndex(100, 2 * each);
    const d = entry(3);
    big.set('d', d);
    expect(keep(big, 'd', d, [1, 2, 3])).toBe(false);
    expect(d.summaryBytes).toBe(0);
    const off = new MailboxIndex(100, 0);
    off.set('d', d);
    expect(keep(off, 'd', d, [1])).toBe(false);
  });
});

describe('MessageCache', () => {
  it('holds about maxBytes of documents, least recently used out first; 0 turns it off', () => {
    const doc = (n: number) => ({ meta: new Binary(Buffer.alloc(n)) }) as unknown as MessageRecord;
    const cache = new MessageCache(3 * (512 + 1000));
    cache.put('a', doc(1000));
    cache.put('b', doc(1000));
    cache.put('c', doc(1000));
    expect(cache.bytes).toBe(3 * 1512);
    expect(cache.get('a')).toBeDefined(); // a is now the most recently used
    cache.put('d', doc(1000));
    expect(cache.has('b')).toBe(false);
    expect(cache.has('a') && cache.has('c') && cache.has('d')).toBe(true);
    cache.setBlob('a', {
      blobId: {} as never,
      storedLength: 5,
      baseNonce: new Uint8Array(),
      store: 'fs',
    });
    expect(cache.get('a')?.blob?.storedLength).toBe(5);
    const off = new MessageCache(0);
    off.put('a', doc(10));
    expect(off.has('a')).toBe(false);
  });

  it('gives a read entry one second chance per pass, and counts what is kept with an opened message', () => {
    const doc = (n: number) => ({ meta: new Binary(Buffer.alloc(n)) }) as unknown as MessageRecord;
    const cache = new MessageCache(4 * 1512);
    for (const id of ['a', 'b', 'c', 'd']) cache.put(id, doc(1000));
    cache.get('a');
    cache.get('b');
    cache.put('e', doc(1000)); // c goes: a and b were read, moved back once
    expect(['a', 'b', 'c', 'd', 'e'].filter((id) => cache.has(id))).toEqual(['a', 'b', 'd', 'e']);
    cache.put('f', doc(1000)); // d, the oldest unread
    expect(cache.has('d')).toBe(false);
    cache.put('g', doc(1000)); // e (put after a and b were moved back)
    expect(cache.has('e')).toBe(false);
    cache.put('h', doc(1000)); // a and b spent their chance: a, now the oldest, goes
    expect(['a', 'b', 'f', 'g', 'h'].filter((id) => cache.has(id))).toEqual(['b', 'f', 'g', 'h']);
    expect(cache.bytes).toBe(4 * 1512);
    const room = new MessageCache(10 * 1512);
    room.put('b', doc(1000));
    const opened = { key: new Uint8Array(), meta: {} as never };
    room.setOpened('b', opened);
    expect(room.bytes).toBe(1512 + 2000);
    room.grew('b', { key: new Uint8Array(), meta: {} as never }, 300); // not b's: not counted
    room.grew('zz', opened, 300);
    expect(room.bytes).toBe(1512 + 2000);
    room.grew('b', opened, 300);
    expect(room.bytes).toBe(1512 + 2300);
    const big = new MessageCache(3 * 1512 + 2000 + 300);
    for (const id of ['a', 'b', 'c']) big.put(id, doc(1000));
    big.setOpened('a', opened);
    big.grew('a', opened, 300);
    expect(big.bytes).toBe(3 * 1512 + 2300);
    big.grew('a', opened, 1); // over the bound: the oldest unread goes (a was never read)
    expect(big.has('a')).toBe(false);
    expect(big.bytes).toBe(2 * 1512);
  });
});
