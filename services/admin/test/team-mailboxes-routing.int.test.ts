/**
 * admin's Mailstore calls with two storage replicas and partition ownership on (ADR 0007,
 * Routing): admin is configured with the first replica's address only, yet team mailboxes and
 * Sieve scripts work for every user, those whose partition the second replica owns included,
 * because admin reads the ownership map and calls the owner. Without the map the second
 * replica's users would get 503 (the first replica answers "not owner").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness, type ApiResponse } from './harness.js';

const PARTITIONS = 4;
const OWNERSHIP = {
  POSTMESH_STORAGE_OWNERSHIP: 'true',
  POSTMESH_STORAGE_PARTITIONS: String(PARTITIONS),
};
const STORAGE = { ...OWNERSHIP, POSTMESH_STORAGE_LEASE_TTL_MS: '3000', POSTMESH_STREAM_REPLICAS: '1' };
/** Enough users that both replicas own some of them (each is in one of 4 partitions). */
const USERS = 16;

let h: AdminHarness;
let second: RunningService;
const dir = mkdtempSync(join(tmpdir(), 'postmesh-admin-routing-'));
let owner: ApiClient;
const userIds: string[] = [];

async function ok(response: Promise<ApiResponse>): Promise<Record<string, unknown>> {
  const r = await response;
  if (r.status >= 300) throw new Error(`${r.status} ${r.text}`);
  return r.body as Record<string, unknown>;
}

/** `postmesh_storage_partitions_owned` of a replica, from its metrics. */
async function owned(opsPort: number): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${opsPort}/metrics`).then((r) => r.text());
  const match = /^postmesh_storage_partitions_owned(?:\{[^}]*\})? (\d+)$/m.exec(text);
  return Number(match?.[1] ?? 0);
}

beforeAll(async () => {
  h = await startAdminHarness({ storageEnv: STORAGE, adminEnv: OWNERSHIP });
  owner = new ApiClient(h.baseUrl);
  await owner.login(OWNER.email, OWNER.password);
  await ok(owner.post('/api/v1/domains', { name: 'routing.test' }));
  for (let i = 0; i < USERS; i++) {
    const created = await ok(
      owner.post('/api/v1/users', { address: `u${i}@routing.test`, password: 'routing password 2026' }),
    );
    userIds.push(String(created.id));
  }
  // The second replica shares the database and the KEK; the first hands it half the partitions.
  second = await startService('storage', {
    env: h.env,
    dir,
    name: 'storage-2',
    vars: { ...STORAGE, POSTMESH_KEK_FILE: h.kekFile },
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [first, other] = [await owned(h.storageOpsPort), await owned(second.opsPort)];
    if (first > 0 && other > 0 && first + other === PARTITIONS) break;
    if (Date.now() > deadline) throw new Error(`partitions not shared: ${first} and ${other}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}, 180_000);

afterAll(async () => {
  await second?.stop(10_000).catch(() => second.kill());
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("admin's Mailstore calls reach the owner's replica", () => {
  it('creates and reads team mailboxes and Sieve scripts for users of both replicas', async () => {
    const failures: string[] = [];
    for (const id of userIds) {
      const created = await owner.post(`/api/v1/users/${id}/team-mailboxes`, {
        path: 'Team',
        members: [{ identifier: 'anyone', rights: 'lr' }],
      });
      if (created.status !== 201) failures.push(`create ${id}: ${created.status} ${created.text}`);
      const acl = await owner.get(`/api/v1/users/${id}/team-mailboxes/acl?path=Team`);
      if (acl.status !== 200) failures.push(`acl ${id}: ${acl.status} ${acl.text}`);
      const sieve = await owner.post(`/api/v1/users/${id}/sieve-scripts`, { name: 'keep', content: 'keep;' });
      if (sieve.status !== 200) failures.push(`sieve ${id}: ${sieve.status} ${sieve.text}`);
    }
    expect(failures).toEqual([]);
    // Both replicas still own partitions: the calls really were spread over them.
    expect(await owned(second.opsPort)).toBeGreaterThan(0);
  });
});
