/** The local stack's dev seed: example.test and demo@example.test, idempotently. */
import { directory } from '@postmesh/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collections } from '../src/db/schema.js';
import { DEV_DOMAIN, DEV_USER, DevSeedError, seedDevData } from '../src/seed.js';
import { directoryApi, startStorageHarness, type StorageHarness } from './harness.js';

let h: StorageHarness;
beforeAll(async () => {
  h = await startStorageHarness();
});
afterAll(async () => {
  await h.stop();
});

describe('dev seed', () => {
  it('creates the demo domain and user once, who can then log in', async () => {
    const first = await seedDevData(h.app.directory, 'seeded passphrase 2026', h.logger);
    expect(first).toEqual({ createdDomain: true, createdUser: true });
    const second = await seedDevData(h.app.directory, 'another password 2026', h.logger);
    expect(second).toEqual({ createdDomain: false, createdUser: false });

    expect(await h.db.collection(Collections.domains).countDocuments({ name: DEV_DOMAIN })).toBe(1);
    expect(await h.db.collection(Collections.users).countDocuments({ addressKey: DEV_USER })).toBe(1);
    const d = directoryApi(h.directory);
    const ok = await d.authenticate({
      address: DEV_USER,
      password: 'seeded passphrase 2026',
      protocol: directory.Protocol.IMAP,
    });
    expect(ok.result?.$case).toBe('success');
    // A second run does not reset the password.
    const again = await d.authenticate({
      address: DEV_USER,
      password: 'another password 2026',
      protocol: directory.Protocol.IMAP,
    });
    expect(again.result?.$case).toBe('failure');
    expect(await h.db.collection(Collections.mailboxes).countDocuments({ path: 'INBOX' })).toBe(1);
  });

  it('requires a password that meets the policy', async () => {
    await expect(seedDevData(h.app.directory, 'demo-demo-demo', h.logger)).rejects.toThrow(
      /POSTMESH_DEV_PASSWORD is refused by the password policy/,
    );
    await expect(seedDevData(h.app.directory, undefined, h.logger)).rejects.toBeInstanceOf(DevSeedError);
    await expect(seedDevData(h.app.directory, '', h.logger)).rejects.toThrow(/POSTMESH_DEV_PASSWORD/);
  });
});
