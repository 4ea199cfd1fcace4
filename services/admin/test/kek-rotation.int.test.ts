/**
 * KEK rotation end to end with the real storage and admin processes (DESIGN §5, docs/adr/0002,
 * docs/operations.md §8): an owner with TOTP, a user and a DKIM key under KEK 1; storage restarted
 * with KEK 2 and KEK 1 as the previous key; the owner sees what still needs KEK 1 and re-wraps it
 * from the API; storage restarted with KEK 2 alone — TOTP sign-in still works, and the user and
 * the DKIM key are served as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, totp, type AdminHarness } from './harness.js';

let h: AdminHarness;
beforeAll(async () => {
  h = await startAdminHarness();
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

interface KekStatus {
  currentKekId: string;
  remaining: { userKeys: number; dkimKeys: number; totpSeeds: number };
  lastRewrap: { kekId: string; finishedAt: string | null; error: string } | null;
}

describe('KEK rotation with TOTP', () => {
  it('re-wraps everything under the new KEK, after which the previous KEK can go', async () => {
    const owner = new ApiClient(h.baseUrl);
    expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
    const begun = (await owner.post('/api/v1/me/totp')).body as { secretBase32: string };
    const enrolledAt = Date.now();
    const confirmed = await owner.post('/api/v1/me/totp/confirm', {
      code: totp(begun.secretBase32, enrolledAt),
    });
    expect(confirmed.body).toMatchObject({ totpEnabled: true });
    expect((await owner.post('/api/v1/domains', { name: 'kek.test' })).status).toBe(201);
    const user = await owner.post('/api/v1/users', {
      address: 'kim@kek.test',
      password: 'kek test password 1',
    });
    expect(user.status, user.text).toBe(201);
    const dkim = await owner.post('/api/v1/domains/kek.test/dkim', { selector: 'k1', activate: true });
    expect(dkim.status, dkim.text).toBe(201);
    const kek1 = ((await owner.get('/api/v1/keys/kek')).body as KekStatus).currentKekId;

    // KEK 2 in use, KEK 1 still there to unwrap. The owner's session survives the restart.
    const kek2File = h.newKekFile('kek2.b64');
    await h.restartStorage({ POSTMESH_KEK_FILE: kek2File, POSTMESH_KEK_PREVIOUS_FILE: h.kekFile });
    const before = (await owner.get('/api/v1/keys/kek')).body as KekStatus;
    expect(before.currentKekId).not.toBe(kek1);
    expect(before.remaining).toEqual({ userKeys: 1, dkimKeys: 1, totpSeeds: 1 });

    const started = await owner.post('/api/v1/keys/kek/rewrap');
    expect(started.status, started.text).toBe(202);
    let after: KekStatus | undefined;
    for (let i = 0; i < 100; i += 1) {
      after = (await owner.get('/api/v1/keys/kek')).body as KekStatus;
      if (after.lastRewrap?.finishedAt) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(after?.lastRewrap).toMatchObject({ kekId: before.currentKekId, error: '' });
    expect(after?.remaining).toEqual({ userKeys: 0, dkimKeys: 0, totpSeeds: 0 });

    // KEK 1 removed.
    await h.restartStorage({ POSTMESH_KEK_FILE: kek2File });
    const fresh = new ApiClient(h.baseUrl);
    const needCode = await fresh.login(OWNER.email, OWNER.password);
    expect(needCode.body).toMatchObject({ error: { status: 401, field: 'totp' } });
    // The confirming step was used; the next step's code (one step of drift, RFC 6238 §5.2) signs in.
    const signedIn = await fresh.login(
      OWNER.email,
      OWNER.password,
      totp(begun.secretBase32, enrolledAt + 30_000),
    );
    expect(signedIn.status, signedIn.text + h.logs()).toBe(200);
    // Storage serves the user and the DKIM key as before (content keys opening under the new KEK
    // alone is storage's crypto-keyring.int.test.ts).
    expect((await fresh.get('/api/v1/users?domain=kek.test')).body).toMatchObject({
      items: [{ address: 'kim@kek.test', usage: { usedBytes: 0, messages: 0 } }],
    });
    expect((await fresh.get('/api/v1/domains/kek.test/dkim')).body).toMatchObject({
      items: [{ selector: 'k1', status: 'active' }],
    });
  }, 120_000);
});
