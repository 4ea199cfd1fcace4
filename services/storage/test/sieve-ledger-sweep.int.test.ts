/**
 * The Sieve ledger sweep and user removal (src/sieve/ledger-sweep.ts) against real FerretDB:
 * expired vacation records go and live ones stay; side-effect records go after their retention;
 * a failure notice goes only once old and its script version is gone; deleting a user (through
 * DeleteUser) removes their scripts and ledger records and nobody else's.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collections, type SieveLedgerDoc } from '../src/db/schema.js';
import { SieveLedgerSweep, SieveScripts } from '../src/sieve/index.js';
import { startStorageHarness, type StorageHarness } from './harness.js';

const DAY = 86_400_000;
const NOW = new Date('2026-12-06T12:00:00Z');

describe('Sieve ledger sweep', () => {
  let h: StorageHarness;
  let scripts: SieveScripts;
  const users: Record<string, string> = {};

  beforeAll(async () => {
    h = await startStorageHarness();
    const domain = await h.app.directory.createDomain({ name: 'ledger.test', defaultQuotaBytes: 0 });
    if (!domain.ok) throw new Error(domain.error.message);
    for (const name of ['kim', 'lou']) {
      const created = await h.app.directory.createUser({
        address: `${name}@ledger.test`,
        password: `Pw-${randomBytes(8).toString('hex')}-x`,
        displayName: name,
      });
      if (!created.ok || created.value.user === undefined) throw new Error('createUser failed');
      users[name] = created.value.user.id;
    }
    scripts = new SieveScripts(h.db);
  }, 90_000);

  afterAll(async () => {
    await h?.stop();
  });

  const ledger = () => h.db.collection<SieveLedgerDoc>(Collections.sieveLedger);
  const ids = async (prefix: string): Promise<string[]> =>
    (
      await ledger()
        .find({ _id: { $regex: new RegExp(`^${prefix}`) } })
        .toArray()
    )
      .map((d) => d._id)
      .sort();

  it('deletes only the records that no longer decide anything', async () => {
    const kim = users.kim ?? '';
    const put = await scripts.put(kim, 'main', 'require "fileinto";\r\nfileinto "Work";\r\n');
    expect(put.ok).toBe(true);
    const [live] = await h.db
      .collection(Collections.sieveScripts)
      .find({ userId: kim, name: 'main' })
      .toArray();
    const liveVersion = String(live?.version);
    const ago = (days: number): Date => new Date(NOW.getTime() - days * DAY);
    await ledger().insertMany([
      { _id: `vac:${kim}:expired`, at: ago(10), until: ago(3), spoolId: 's1' },
      { _id: `vac:${kim}:current`, at: ago(1), until: new Date(NOW.getTime() + 6 * DAY), spoolId: 's2' },
      { _id: `fx:s-old:${kim}:0`, at: ago(46) },
      { _id: `fx:s-recent:${kim}:0`, at: ago(44) },
      { _id: `notice:${kim}:old-version-gone`, at: ago(60) },
      { _id: `notice:${kim}:${liveVersion}`, at: ago(60) },
      { _id: `notice:${kim}:recent-version-gone`, at: ago(5) },
    ]);
    const sweep = new SieveLedgerSweep(h.db, h.logger, undefined, () => NOW);
    expect(await sweep.sweep()).toEqual({ vacation: 1, effects: 1, notices: 1 });
    expect(await ids(`vac:${kim}:`)).toEqual([`vac:${kim}:current`]);
    expect(await ids(`fx:`)).toEqual([`fx:s-recent:${kim}:0`]);
    // A script still broken never notifies twice: its notice stays, however old.
    expect(await ids(`notice:${kim}:`)).toEqual([
      `notice:${kim}:${liveVersion}`,
      `notice:${kim}:recent-version-gone`,
    ]);
    // Nothing left to do: a second pass deletes nothing.
    expect(await sweep.sweep()).toEqual({ vacation: 0, effects: 0, notices: 0 });
  });

  it("removes a deleted user's scripts and ledger records, and only theirs", async () => {
    const [kim, lou] = [users.kim ?? '', users.lou ?? ''];
    expect((await scripts.put(lou, 'lou-main', 'keep;\r\n')).ok).toBe(true);
    await ledger().insertMany([
      { _id: `vac:${lou}:a`, at: NOW, until: new Date(NOW.getTime() + DAY) },
      { _id: `fx:s-lou:${lou}:0`, at: NOW },
      { _id: `notice:${lou}:v1`, at: NOW },
    ]);
    const before = {
      kimScripts: await scripts.list(kim),
      kimLedger: [
        ...(await ids(`vac:${kim}:`)),
        ...(await ids(`notice:${kim}:`)),
        ...(await ids('fx:')),
      ].filter((id) => id.includes(kim)),
    };
    const deleted = await h.app.directory.deleteUser({ userId: lou, purgeData: false });
    expect(deleted.ok).toBe(true);
    expect(await scripts.list(lou)).toEqual([]);
    expect((await ledger().find({}).toArray()).map((d) => d._id).filter((id) => id.includes(lou))).toEqual(
      [],
    );
    // Kim's are untouched.
    expect(await scripts.list(kim)).toEqual(before.kimScripts);
    const kimLedger = (await ledger().find({}).toArray()).map((d) => d._id).filter((id) => id.includes(kim));
    expect(kimLedger.sort()).toEqual(before.kimLedger.sort());
    expect(kimLedger.length).toBeGreaterThan(0);
  });
});
