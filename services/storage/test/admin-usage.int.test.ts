/**
 * AdminService GetStorageStats and GetUserUsage over real gRPC and FerretDB: the database's own
 * size accounting (dbStats, $collStats) and per-user usage that matches Mailstore GetQuota.
 */
import { AdminServiceClient, ErrorReason, errorDetailOf } from '@postmesh/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collections } from '../src/db/schema.js';
import { call, callError } from './harness.js';
import {
  append,
  byPath,
  createUser,
  message,
  startMailstoreHarness,
  type MailstoreHarness,
} from './mailstore-helpers.js';

let m: MailstoreHarness;
let client: AdminServiceClient;

beforeAll(async () => {
  m = await startMailstoreHarness({ logLevel: 'silent' });
  client = new AdminServiceClient(m.h.target, m.h.clientCredentials);
});
afterAll(async () => {
  client.close();
  await m.stop();
});

const raw = (n: number) =>
  message(['From: a@example.test', 'To: b@example.test', `Subject: usage ${n}`, '', 'x'.repeat(2_000 * n)]);

describe('GetUserUsage', () => {
  it('reports bytes and messages per user as GetQuota does, in request order, leaving unknown ids out', async () => {
    const busy = await createUser(m.h, 10_000_000);
    const idle = await createUser(m.h);
    await append(m.client, busy, byPath('INBOX'), raw(1));
    await append(m.client, busy, byPath('INBOX'), raw(2));
    await append(m.client, busy, byPath('Sent'), raw(3));

    const unknown = '0123456789abcdef01234567';
    const { usage } = await call(client.getUserUsage.bind(client), {
      userIds: [idle, unknown, 'not-an-id', busy, idle],
    });
    expect(usage.map((u) => u.userId)).toEqual([idle, busy]);
    const quota = await call(m.client.getQuota.bind(m.client), { userId: busy });
    expect(quota.usedBytes).toBeGreaterThan(12_000);
    expect(usage[1]).toEqual({
      userId: busy,
      usedBytes: quota.usedBytes,
      quotaBytes: 10_000_000,
      messages: 3,
    });
    expect(usage[0]).toEqual({ userId: idle, usedBytes: 0, quotaBytes: 0, messages: 0 });
  });

  it('refuses more than 1000 ids', async () => {
    const ids = Array.from({ length: 1001 }, (_, i) => i.toString(16).padStart(24, '0'));
    const error = await callError(call(client.getUserUsage.bind(client), { userIds: ids }));
    expect(errorDetailOf(error)).toMatchObject({ reason: ErrorReason.INVALID_ARGUMENT, field: 'user_ids' });
  });
});

describe('GetStorageStats', () => {
  it("reports the database's size with one row per collection, and grows when mail is stored", async () => {
    const before = await call(client.getStorageStats.bind(client), {});
    expect(before.database).toBe(m.h.db.databaseName);
    expect(before.documents).toBeGreaterThan(0);
    expect(before.totalBytes).toBeGreaterThan(0);
    const names = before.collections.map((c) => c.name);
    expect(names).toEqual(
      expect.arrayContaining([Collections.users, Collections.mailboxes, Collections.messages]),
    );
    const sizes = before.collections.map((c) => c.storageBytes + c.indexBytes);
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a));

    const user = await createUser(m.h);
    for (let i = 0; i < 20; i += 1) await append(m.client, user, byPath('INBOX'), raw(20));
    const after = await call(client.getStorageStats.bind(client), {});
    const messagesAfter = after.collections.find((c) => c.name === Collections.messages);
    const messagesBefore = before.collections.find((c) => c.name === Collections.messages);
    expect(messagesAfter?.documents).toBe((messagesBefore?.documents ?? 0) + 20);
    expect(after.documents).toBeGreaterThan(before.documents);
    expect(after.dataBytes).toBeGreaterThan(before.dataBytes);
  });
});
