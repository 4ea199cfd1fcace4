/**
 * KEK rotation re-wraps administrator TOTP seeds (DESIGN §5, docs/adr/0002): after a rotation and
 * with the previous KEK removed, an administrator with TOTP still signs in with a code from the
 * same authenticator, and a pending enrollment can still be confirmed. Real FerretDB.
 */
import { randomBytes } from 'node:crypto';
import { admin, AdminServiceClient } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminStore } from '../src/administrators/index.js';
import { base32Decode, totpCode } from '../src/totp/index.js';
import { KeyIntegrityError, LocalKeyProvider, rotateKek } from '../src/crypto/index.js';
import { Collections } from '../src/db/schema.js';
import { call, startStorageHarness, type StorageHarness } from './harness.js';

let h: StorageHarness;
beforeAll(async () => {
  h = await startStorageHarness({ logLevel: 'silent' });
});
afterAll(async () => {
  await h.stop();
});

const logger = createLogger('totp-rotation-test', 'silent');
const PASSWORD = 'rotation test password';

function value<T>(result: { ok: true; value: T } | { ok: false; error: unknown }): T {
  if (!result.ok) throw new Error(`unexpected failure: ${JSON.stringify(result.error)}`);
  return result.value;
}

async function oldKek(): Promise<Uint8Array> {
  const { readFile } = await import('node:fs/promises');
  return new Uint8Array(Buffer.from((await readFile(h.kekFile, 'utf8')).trim(), 'base64'));
}

describe('rotateKek and administrator TOTP seeds', () => {
  it('re-wraps confirmed and pending seeds, so TOTP sign-in and enrollment work with only the new KEK', async () => {
    const start = new Date();
    const before = new AdminStore({ db: h.db, keyProvider: h.keyProvider, logger, now: () => start });
    const enrolled = value(
      await before.createAdmin(
        admin.CreateAdminRequest.fromPartial({
          email: 'totp-rotation@example.test',
          password: PASSWORD,
          role: admin.AdminRole.OWNER,
        }),
      ),
    ).admin;
    const pending = value(
      await before.createAdmin(
        admin.CreateAdminRequest.fromPartial({
          email: 'totp-pending@example.test',
          password: PASSWORD,
          role: admin.AdminRole.AUDITOR,
        }),
      ),
    ).admin;
    const enrolledId = enrolled?.id ?? '';
    const pendingId = pending?.id ?? '';
    const seed = base32Decode(value(await before.beginTotpEnrollment({ adminId: enrolledId })).secretBase32);
    value(await before.confirmTotpEnrollment({ adminId: enrolledId, code: totpCode(seed, start) }));
    const pendingSeed = base32Decode(
      value(await before.beginTotpEnrollment({ adminId: pendingId })).secretBase32,
    );

    // Two minutes later, only the new KEK is configured.
    const later = new Date(start.getTime() + 120_000);
    const newKek = new Uint8Array(randomBytes(32));
    const onlyNew = new LocalKeyProvider(newKek);
    const after = new AdminStore({ db: h.db, keyProvider: onlyNew, logger, now: () => later });
    const login = (code: string) =>
      after.authenticateAdmin({
        email: 'totp-rotation@example.test',
        password: PASSWORD,
        totpCode: code,
        remoteIp: '127.0.0.1',
      });

    // Without the re-wrap the seed is unreadable under the new KEK alone.
    await expect(login(totpCode(seed, later))).rejects.toBeInstanceOf(KeyIntegrityError);

    // The console's operation (AdminService StartKekRewrap / GetKekStatus): a failed run says why…
    const rotating = new LocalKeyProvider(newKek, [await oldKek()]);
    const failing = new AdminStore({
      db: h.db,
      keyProvider: {
        ...rotating,
        currentKekId: rotating.currentKekId,
        wrap: () => Promise.reject(new Error('KMS unavailable')),
        unwrap: (w, c) => rotating.unwrap(w, c),
      },
      logger,
    });
    expect((await failing.kek.start()).started).toBe(true);
    await failing.kek.idle();
    expect(await failing.kek.status()).toMatchObject({
      running: false,
      remainingTotpSeeds: 2,
      lastError: 'KMS unavailable',
    });

    // …and a good one re-wraps everything.
    const rotatingStore = new AdminStore({ db: h.db, keyProvider: rotating, logger });
    expect(await rotatingStore.kek.status()).toMatchObject({
      currentKekId: onlyNew.currentKekId,
      remainingTotpSeeds: 2,
      running: false,
    });
    expect((await rotatingStore.kek.start()).started).toBe(true);
    await rotatingStore.kek.idle();
    const done = await rotatingStore.kek.status();
    expect(done).toMatchObject({
      remainingUserKeys: 0,
      remainingDkimKeys: 0,
      remainingTotpSeeds: 0,
      running: false,
      lastKekId: onlyNew.currentKekId,
      rewrappedTotpSeeds: 2,
      lastError: '',
    });
    expect(done.finishTime).toBeInstanceOf(Date);
    // Over gRPC, the harness's storage (still on the old KEK) sees both seeds under another KEK.
    const client = new AdminServiceClient(h.target, h.clientCredentials);
    try {
      const { status } = await call(client.getKekStatus.bind(client), {});
      expect(status).toMatchObject({ currentKekId: h.keyProvider.currentKekId, remainingTotpSeeds: 2 });
    } finally {
      client.close();
    }
    const docs = await h.db
      .collection<{ email: string; totpSecret?: { by: string }; pendingTotpSecret?: { by: string } }>(
        Collections.admins,
      )
      .find({ email: { $in: ['totp-rotation@example.test', 'totp-pending@example.test'] } })
      .toArray();
    expect(docs.map((d) => d.totpSecret?.by ?? d.pendingTotpSecret?.by)).toEqual([
      onlyNew.currentKekId,
      onlyNew.currentKekId,
    ]);
    const progress = await h.db.collection(Collections.keyring).findOne({ _id: 'kek-rotation' as never });
    expect(progress).toMatchObject({ adminTotpSeeds: 2 });

    // The same authenticator app keeps working; a wrong code is still refused.
    const wrong = value(await login(totpCode(seed, new Date(later.getTime() + 600_000))));
    expect(wrong.result).toMatchObject({
      $case: 'failure',
      value: { reason: admin.AdminAuthFailureReason.TOTP_INVALID },
    });
    const good = value(await login(totpCode(seed, later)));
    expect(good.result).toMatchObject({ $case: 'success', value: { id: enrolledId, totpEnabled: true } });

    const confirmed = value(
      await after.confirmTotpEnrollment({ adminId: pendingId, code: totpCode(pendingSeed, later) }),
    );
    expect(confirmed.admin?.totpEnabled).toBe(true);

    // A second run has nothing left to do.
    expect(await rotateKek({ db: h.db, keyProvider: onlyNew, logger })).toMatchObject({ adminTotpSeeds: 0 });
  });
});
