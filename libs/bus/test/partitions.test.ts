import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_CLOSED_EPOCHS,
  PartitionedInbound,
  acquiredRecord,
  assignPartitions,
  confirmationOf,
  confirmedRecord,
  decodeRecord,
  encodeRecord,
  fnv1a32,
  isConfirmed,
  openedPointer,
  partitionOf,
  releasedRecord,
  splitRecipientsByPartition,
  type CommitPointer,
  type PartitionRecord,
} from '../src/index.js';

const P = 64;
const ids = (n: number, prefix = 'r'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

function loads(assignment: Map<number, string>): Map<string, number> {
  const count = new Map<string, number>();
  for (const owner of assignment.values()) count.set(owner, (count.get(owner) ?? 0) + 1);
  return count;
}

function moved(a: Map<number, string>, b: Map<number, string>): number {
  let n = 0;
  for (const [p, owner] of a) if (b.get(p) !== owner) n++;
  return n;
}

describe('partitionOf', () => {
  it('is FNV-1a 32 (the hash of nats-server subject partitioning) modulo the partition count', () => {
    // Published FNV-1a test vectors.
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    expect(partitionOf('foobar', 64)).toBe(0xbf9cf968 % 64);
  });

  it('hashes the UTF-8 bytes of a key beyond ASCII', () => {
    expect(fnv1a32('é')).toBe(0x1e9de8c1);
    expect(fnv1a32('user-ü-1')).toBe(0xed445664);
    expect(fnv1a32('日本')).toBe(0x9f26ee51);
  });

  it('spreads user ids over all partitions and keeps each user in one', () => {
    const counts = new Array<number>(P).fill(0);
    for (let i = 0; i < 6_400; i++) {
      const user = `6650${i.toString(16).padStart(20, '0')}`;
      const p = partitionOf(user, P);
      expect(partitionOf(user, P)).toBe(p);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    // 100 expected per partition; a hash that ignored part of the id would leave some empty.
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(Math.max(...counts)).toBeLessThan(160);
  });

  it('rejects a partition count that is not a positive integer', () => {
    expect(() => partitionOf('u', 0)).toThrow(RangeError);
    expect(() => partitionOf('u', 1.5)).toThrow(RangeError);
  });
});

describe('assignPartitions', () => {
  it('assigns every partition, at most ⌈P/n⌉ per replica, whatever the order of the live set', () => {
    for (let n = 1; n <= 9; n++) {
      const live = ids(n);
      const a = assignPartitions(P, live);
      expect(a.size).toBe(P);
      const perReplica = loads(a);
      expect(perReplica.size).toBe(Math.min(n, P));
      for (const count of perReplica.values()) expect(count).toBeLessThanOrEqual(Math.ceil(P / n));
      expect(assignPartitions(P, [...live].reverse())).toEqual(a);
    }
  });

  it('moves few partitions when a replica joins or leaves', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 6 }),
        (live) => {
          const before = assignPartitions(P, live);
          const joined = assignPartitions(P, [...live, 'newcomer']);
          // The newcomer takes about P/(n+1); the load bound may shift a few more.
          expect(moved(before, joined)).toBeLessThanOrEqual(2 * Math.ceil(P / (live.length + 1)) + 2);
          const left = assignPartitions(P, live.slice(1));
          const departed = [...before.values()].filter((o) => o === live[0]).length;
          expect(moved(before, left)).toBeLessThanOrEqual(2 * departed + 2);
          expect([...left.values()]).not.toContain(live[0]);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('assigns nothing when no replica is live', () => {
    expect(assignPartitions(P, []).size).toBe(0);
  });
});

describe('partition record', () => {
  it('round-trips through its encoding and rejects what is not a record', () => {
    const r = confirmedRecord(acquiredRecord(acquiredRecord(null, 'a', 'h:1'), 'b', 'h:2'), 7);
    expect(decodeRecord(encodeRecord(r))).toEqual(r);
    expect(() => decodeRecord(new TextEncoder().encode('{"owner":1}'))).toThrow(/shape/);
    expect(() => decodeRecord(new TextEncoder().encode('nope'))).toThrow(/JSON/);
  });

  it('reads a record as stored by an earlier release, drops fields it does not know, and names a bad field', () => {
    const stored =
      '{"owner":"storage-0","address":"10.0.0.5:7001","epoch":3,"seq":41,"closed":[{"epoch":2,"seq":9}],"note":"x"}';
    expect(decodeRecord(new TextEncoder().encode(stored))).toEqual({
      owner: 'storage-0',
      address: '10.0.0.5:7001',
      epoch: 3,
      seq: 41,
      closed: [{ epoch: 2, seq: 9 }],
    });
    const released = '{"owner":null,"address":"","epoch":3,"seq":41,"closed":[]}';
    expect(decodeRecord(new TextEncoder().encode(released)).owner).toBeNull();
    const bad = (json: string) => () => decodeRecord(new TextEncoder().encode(json));
    expect(bad('{"owner":1,"address":"","epoch":1,"seq":0,"closed":[]}')).toThrow(
      'partition record has an unexpected shape: owner: expected a string or null',
    );
    expect(bad('{"owner":null,"address":"","epoch":1.5,"seq":0,"closed":[]}')).toThrow(
      /: epoch: expected an integer$/,
    );
    expect(bad('{"owner":null,"address":"","epoch":1,"seq":-1,"closed":[]}')).toThrow(
      /: seq: must be at least 0$/,
    );
    expect(bad('{"owner":null,"address":"","epoch":1,"seq":0,"closed":[{"epoch":1}]}')).toThrow(
      /: closed\[0\]\.seq: is required$/,
    );
    expect(bad(`{"owner":null,"address":"","epoch":${2 ** 53},"seq":0,"closed":[]}`)).toThrow(
      /: epoch: must be at most 9007199254740991$/,
    );
  });

  it('refuses to move the commit pointer backwards', () => {
    const r = confirmedRecord(acquiredRecord(null, 'a', ''), 5);
    expect(() => confirmedRecord(r, 4)).toThrow(/behind/);
  });

  /**
   * A model of commit-then-confirm over a compare-and-set register (what KV does with a
   * revision): three replicas read, acquire with possibly stale reads, write batches, confirm and
   * release in any interleaving. Whatever happens, a written batch counts in the final record
   * exactly when its writer was told `confirmed`, and no epoch ever has two owners.
   */
  it('counts a batch exactly when its confirm succeeded, under any interleaving', () => {
    type Actor = {
      snapshot?: { record: PartitionRecord | null; revision: number };
      held?: { record: PartitionRecord; revision: number };
      written: number;
    };
    const command = fc.oneof(
      fc.record({ op: fc.constant('read' as const), actor: fc.nat(2) }),
      fc.record({ op: fc.constant('acquire' as const), actor: fc.nat(2) }),
      fc.record({ op: fc.constant('write' as const), actor: fc.nat(2) }),
      fc.record({ op: fc.constant('confirm' as const), actor: fc.nat(2) }),
      fc.record({ op: fc.constant('release' as const), actor: fc.nat(2) }),
    );
    fc.assert(
      fc.property(fc.array(command, { minLength: 10, maxLength: 80, size: 'max' }), (commands) => {
        let stored: PartitionRecord | null = null;
        let revision = 0;
        const cas = (expected: number, next: PartitionRecord): number | undefined => {
          if (expected !== revision) return undefined;
          stored = next;
          return ++revision;
        };
        const actors: Actor[] = [0, 1, 2].map(() => ({ written: 0 }));
        const batches: { epoch: number; seq: number; acked: boolean }[] = [];
        const ownerOfEpoch = new Map<number, number>();
        for (const { op, actor: i } of commands) {
          const a = actors[i] as Actor;
          switch (op) {
            case 'read':
              a.snapshot = { record: stored, revision };
              break;
            case 'acquire': {
              if (a.snapshot === undefined || a.held !== undefined) break;
              const next = acquiredRecord(a.snapshot.record, `r${i}`, '');
              const rev = cas(a.snapshot.revision, next);
              a.snapshot = undefined;
              if (rev === undefined) break;
              expect(ownerOfEpoch.has(next.epoch)).toBe(false);
              ownerOfEpoch.set(next.epoch, i);
              a.held = { record: next, revision: rev };
              a.written = 0;
              break;
            }
            case 'write':
              // The database write of a batch tagged (epoch, seq): it happens whatever the lease says.
              if (a.held === undefined) break;
              a.written++;
              batches.push({ epoch: a.held.record.epoch, seq: a.written, acked: false });
              break;
            case 'confirm': {
              if (a.held === undefined || a.written === a.held.record.seq) break;
              const next = confirmedRecord(a.held.record, a.written);
              const rev = cas(a.held.revision, next);
              if (rev === undefined) {
                a.held = undefined; // fenced: it learns it lost the partition
                break;
              }
              a.held = { record: next, revision: rev };
              for (const b of batches) if (b.epoch === next.epoch && b.seq <= next.seq) b.acked = true;
              break;
            }
            case 'release': {
              if (a.held === undefined) break;
              cas(a.held.revision, releasedRecord(a.held.record));
              a.held = undefined;
              break;
            }
          }
        }
        const final = stored as PartitionRecord | null;
        if (final === null) {
          expect(batches).toEqual([]);
          return;
        }
        for (const b of batches) {
          if (confirmationOf(final, b.epoch, b.seq) === 'before-history') continue;
          expect(isConfirmed(final, b.epoch, b.seq)).toBe(b.acked);
        }
        expect(final.closed.length).toBeLessThanOrEqual(MAX_CLOSED_EPOCHS);
      }),
      { numRuns: 500 },
    );
  });
});

describe('commit pointer in a pointer store', () => {
  it('starts at the opened epoch with nothing confirmed and no history', () => {
    expect(openedPointer(null, 1)).toEqual({ epoch: 1, seq: 0, closed: [] });
    // A store that is empty beside an older KV bucket opens at whatever epoch the lease took.
    expect(openedPointer(null, 7)).toEqual({ epoch: 7, seq: 0, closed: [] });
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
      expect(() => openedPointer(null, bad)).toThrow(/is not valid/);
    }
  });

  it('closes the stored epoch with its last confirmed sequence, most recent first', () => {
    const first = { epoch: 1, seq: 12, closed: [] };
    const second = openedPointer(first, 2);
    expect(second).toEqual({ epoch: 2, seq: 0, closed: [{ epoch: 1, seq: 12 }] });
    const third = openedPointer({ ...second, seq: 3 }, 3);
    expect(third).toEqual({
      epoch: 3,
      seq: 0,
      closed: [
        { epoch: 2, seq: 3 },
        { epoch: 1, seq: 12 },
      ],
    });
    // The previous pointer is a stored value: opening leaves it as it was.
    expect(second.closed).toEqual([{ epoch: 1, seq: 12 }]);
  });

  it('keeps at most MAX_CLOSED_EPOCHS ended epochs, dropping the oldest', () => {
    let pointer: CommitPointer = openedPointer(null, 1);
    for (let epoch = 2; epoch <= MAX_CLOSED_EPOCHS + 10; epoch++) {
      pointer = openedPointer({ ...pointer, seq: pointer.epoch * 10 }, epoch);
    }
    expect(pointer.epoch).toBe(MAX_CLOSED_EPOCHS + 10);
    expect(pointer.closed).toHaveLength(MAX_CLOSED_EPOCHS);
    expect(pointer.closed[0]).toEqual({ epoch: MAX_CLOSED_EPOCHS + 9, seq: (MAX_CLOSED_EPOCHS + 9) * 10 });
    expect(pointer.closed.at(-1)).toEqual({ epoch: 10, seq: 100 });
    expect(confirmationOf(pointer, 10, 100)).toBe('confirmed');
    expect(confirmationOf(pointer, 10, 101)).toBe('unconfirmed');
    expect(confirmationOf(pointer, 9, 1)).toBe('before-history');
  });

  it('refuses an epoch that is not after the stored one (another opener was first)', () => {
    const stored = { epoch: 4, seq: 9, closed: [{ epoch: 3, seq: 2 }] };
    expect(() => openedPointer(stored, 4)).toThrow(/epoch 4 does not follow the stored 4/);
    expect(() => openedPointer(stored, 3)).toThrow(/does not follow/);
    expect(() => openedPointer(stored, 1)).toThrow(/does not follow/);
  });

  it('reports the batches of a skipped epoch unconfirmed, and those older than the history before it', () => {
    // Epochs 4 and 5 took the lease in KV and never opened their pointer (died in between, or
    // found a newer epoch open): nothing of theirs was confirmed, so a rebuild drops their batches.
    const stored = { epoch: 3, seq: 7, closed: [{ epoch: 2, seq: 5 }] };
    const pointer = openedPointer(stored, 6);
    expect(pointer).toEqual({
      epoch: 6,
      seq: 0,
      closed: [
        { epoch: 3, seq: 7 },
        { epoch: 2, seq: 5 },
      ],
    });
    const table: [epoch: number, seq: number, expected: string][] = [
      [6, 1, 'unconfirmed'],
      [5, 1, 'unconfirmed'],
      [4, 1, 'unconfirmed'],
      [4, 1_000, 'unconfirmed'],
      [3, 7, 'confirmed'],
      [3, 8, 'unconfirmed'],
      [2, 1, 'confirmed'],
      [2, 5, 'confirmed'],
      [2, 6, 'unconfirmed'],
      [1, 1, 'before-history'],
      [1, 1_000, 'before-history'],
      [7, 1, 'unconfirmed'],
    ];
    for (const [epoch, seq, expected] of table) {
      expect(confirmationOf(pointer, epoch, seq), `(${epoch}, ${seq})`).toBe(expected);
    }
    expect(isConfirmed({ ...pointer, seq: 4 }, 6, 4)).toBe(true);
    expect(isConfirmed({ ...pointer, seq: 4 }, 6, 5)).toBe(false);
    // A first pointer opened at a later epoch has no history: the epochs before it are older.
    expect(confirmationOf(openedPointer(null, 5), 4, 1)).toBe('before-history');
    expect(confirmationOf(openedPointer(null, 5), 5, 1)).toBe('unconfirmed');
  });

  /**
   * The protocol of ownership.ts with a `CommitPointerStore`, as a model: the lease is a
   * compare-and-set register (KV), the pointer a store whose `open` and `advance` are each one
   * conditional write. Three replicas read, take leases with possibly stale reads (raising the
   * epoch above the store's), die between taking and opening, open, write batches, confirm and
   * release in any interleaving; the KV bucket may be made anew behind their backs. Whatever
   * happens, a written batch counts in the final pointer exactly when its writer was told `ok`,
   * and no epoch is opened twice.
   */
  it('counts a batch exactly when its advance succeeded, under any interleaving', () => {
    type Snapshot = { record: PartitionRecord | null; revision: number; pointer: CommitPointer | null };
    type Actor = {
      snapshot?: Snapshot;
      /** The lease taken in KV, not yet opened in the store. */
      taken?: { record: PartitionRecord; revision: number };
      /** The epoch open in the store (what the replica writes batches in) and its lease's revision. */
      held?: { record: PartitionRecord; revision: number; epoch: number; seq: number };
      written: number;
    };
    const weights = {
      read: 6,
      take: 6,
      open: 6,
      write: 8,
      confirm: 6,
      release: 2,
      abandon: 2,
      'new-bucket': 1,
    };
    const command = fc.oneof(
      ...(Object.keys(weights) as (keyof typeof weights)[]).map((op) => ({
        arbitrary: fc.record({ op: fc.constant(op), actor: fc.nat(2) }),
        weight: weights[op],
      })),
    );
    fc.assert(
      fc.property(fc.array(command, { minLength: 20, maxLength: 120, size: 'max' }), (commands) => {
        let record: PartitionRecord | null = null;
        // Revisions are never reused, also across a bucket made anew (JetStream's would restart,
        // which is the store's epoch check's business, not this model's).
        let revision = 0;
        let bucketRevision = 0;
        let pointer: CommitPointer | null = null;
        const cas = (expected: number, next: PartitionRecord): number | undefined => {
          if (expected !== bucketRevision) return undefined;
          record = next;
          bucketRevision = ++revision;
          return bucketRevision;
        };
        const open = (epoch: number): CommitPointer | 'fenced' => {
          if (pointer !== null && pointer.epoch >= epoch) return 'fenced';
          pointer = openedPointer(pointer, epoch);
          return pointer;
        };
        const advance = (epoch: number, seq: number): 'ok' | 'fenced' => {
          if (pointer === null || pointer.epoch !== epoch) return 'fenced';
          if (pointer.seq < seq) pointer = { ...pointer, seq };
          return 'ok';
        };
        const actors: Actor[] = [0, 1, 2].map(() => ({ written: 0 }));
        const batches: { epoch: number; seq: number; acked: boolean }[] = [];
        const openerOfEpoch = new Map<number, number>();
        for (const { op, actor: i } of commands) {
          const a = actors[i] as Actor;
          switch (op) {
            case 'read':
              a.snapshot = { record, revision: bucketRevision, pointer };
              break;
            case 'take': {
              if (a.snapshot === undefined || a.held !== undefined || a.taken !== undefined) break;
              let next = acquiredRecord(a.snapshot.record, `r${i}`, '');
              const stored = a.snapshot.pointer;
              if (stored !== null && next.epoch <= stored.epoch) next = { ...next, epoch: stored.epoch + 1 };
              const rev = cas(a.snapshot.revision, next);
              a.snapshot = undefined;
              if (rev !== undefined) a.taken = { record: next, revision: rev };
              break;
            }
            case 'open': {
              if (a.taken === undefined) break;
              const opened = open(a.taken.record.epoch);
              if (opened !== 'fenced') {
                expect(openerOfEpoch.has(opened.epoch)).toBe(false);
                openerOfEpoch.set(opened.epoch, i);
                a.held = { ...a.taken, epoch: opened.epoch, seq: opened.seq };
                a.written = 0;
              }
              a.taken = undefined;
              break;
            }
            case 'abandon':
              // Took the lease and died before opening: its epoch is skipped in the store.
              a.taken = undefined;
              break;
            case 'write':
              // The database write of a batch tagged (epoch, seq): it happens whatever the lease says.
              if (a.held === undefined) break;
              a.written++;
              batches.push({ epoch: a.held.epoch, seq: a.written, acked: false });
              break;
            case 'confirm': {
              if (a.held === undefined || a.written === a.held.seq) break;
              if (advance(a.held.epoch, a.written) === 'fenced') {
                a.held = undefined; // it learns it lost the partition
                break;
              }
              a.held = { ...a.held, seq: a.written };
              for (const b of batches) if (b.epoch === a.held.epoch && b.seq <= a.written) b.acked = true;
              break;
            }
            case 'release': {
              if (a.held === undefined) break;
              cas(a.held.revision, releasedRecord(a.held.record));
              a.held = undefined;
              break;
            }
            case 'new-bucket':
              // KV made anew beside the older database: the store is ahead of KV from now on.
              record = null;
              bucketRevision = ++revision;
              break;
          }
        }
        const final = pointer as CommitPointer | null;
        if (final === null) {
          expect(batches).toEqual([]);
          return;
        }
        for (const b of batches) {
          if (confirmationOf(final, b.epoch, b.seq) === 'before-history') continue;
          expect(isConfirmed(final, b.epoch, b.seq), `batch (${b.epoch}, ${b.seq})`).toBe(b.acked);
        }
        expect(final.closed.length).toBeLessThanOrEqual(MAX_CLOSED_EPOCHS);
      }),
      { numRuns: 500 },
    );
  });
});

describe('splitting a message by partition', () => {
  it('puts each recipient in the job of every partition of its users; unknown ones stay unpartitioned', () => {
    const users: Record<string, string[]> = {
      'ann@a.test': ['u-ann'],
      'team@a.test': ['u-ann', 'u-ben', 'u-cid'],
      'ben@a.test': ['u-ben'],
    };
    const split = splitRecipientsByPartition(
      ['ann@a.test', 'team@a.test', 'ben@a.test', 'new@a.test'],
      (rcpt) => users[rcpt],
      P,
    );
    const expected = new Map<number, string[]>();
    for (const rcpt of ['ann@a.test', 'team@a.test', 'ben@a.test']) {
      for (const p of new Set((users[rcpt] ?? []).map((u) => partitionOf(u, P)))) {
        expected.set(p, [...(expected.get(p) ?? []), rcpt]);
      }
    }
    expect([...split.byPartition.keys()]).toEqual([...expected.keys()].sort((a, b) => a - b));
    for (const [p, rcpts] of expected) expect(split.byPartition.get(p)).toEqual(rcpts);
    expect(split.unresolved).toEqual(['new@a.test']);
    expect([...split.users].sort()).toEqual(['u-ann', 'u-ben', 'u-cid']);
  });

  it('every user is reached through exactly the partition it belongs to', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.emailAddress(),
            fc.array(
              fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 1, maxLength: 24 }),
              { maxLength: 4 },
            ),
          ),
          {
            maxLength: 20,
          },
        ),
        (entries) => {
          const table = new Map(entries);
          const split = splitRecipientsByPartition([...table.keys()], (r) => table.get(r), 8);
          for (const [rcpt, ids] of table) {
            for (const id of ids) expect(split.byPartition.get(partitionOf(id, 8))).toContain(rcpt);
            if (ids.length === 0) expect(split.unresolved).toContain(rcpt);
          }
          for (const [p, rcpts] of split.byPartition) {
            for (const rcpt of rcpts)
              expect(table.get(rcpt)?.some((id) => partitionOf(id, 8) === p)).toBe(true);
          }
        },
      ),
    );
  });

  it('reads the partition of a job from its subject', () => {
    expect(PartitionedInbound.partitionOfSubject(PartitionedInbound.subject(7, 'abc123XYZ'))).toBe(7);
    expect(PartitionedInbound.partitionOfSubject('mail.inbound.abc123XYZ')).toBeUndefined();
    expect(PartitionedInbound.partitionOfSubject('mail.inbound.x.abc123XYZ')).toBeUndefined();
  });
});
