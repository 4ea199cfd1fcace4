/**
 * The KMS key provider against a local KMS-compatible server (moto in server mode, installed by
 * `npm run deps` into .bin/python) on 127.0.0.1, with real FerretDB: the KEK material comes from
 * KMS once and is stored only KMS-encrypted, every later start (another replica) gets the same
 * KEK back, and a move from a file KEK to KMS re-wraps every user data key.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { ManagedProcess, freePort, pythonTool, waitForPort } from '@postmesh/testing';
import { createLogger } from '@postmesh/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoUserKeyring, loadKmsKeyProvider, regionOf, rotateKek } from '../src/crypto/index.js';
import { directoryApi, startStorageHarness, type StorageHarness } from './harness.js';

const logger = createLogger('kms-test', 'silent');
const dir = mkdtempSync(join(tmpdir(), 'postmesh-kms-'));
let moto: ManagedProcess;
let endpoint = '';
let client: KMSClient;
let keyId = '';
let h: StorageHarness;
const userIds: string[] = [];

beforeAll(async () => {
  const port = await freePort();
  moto = new ManagedProcess({
    name: 'moto',
    command: pythonTool('moto_server'),
    args: ['-H', '127.0.0.1', '-p', String(port)],
    logFile: join(dir, 'moto.log'),
  });
  moto.start();
  await waitForPort(port, '127.0.0.1', 60_000, () => moto.running);
  endpoint = `http://127.0.0.1:${port}`;
  // moto accepts any credentials; the SDK's default chain reads them from the environment.
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  client = new KMSClient({ region: 'eu-west-1', endpoint });
  const created = await client.send(new CreateKeyCommand({ Description: 'postmesh test KEK' }));
  keyId = created.KeyMetadata?.Arn ?? '';
  // Users made under a file KEK, as before the move to KMS.
  h = await startStorageHarness();
  const d = directoryApi(h.directory);
  await d.createDomain({ name: 'kms.test' });
  for (let i = 0; i < 3; i += 1) {
    const { user } = await d.createUser({ address: `u${i}@kms.test`, password: 'kms passphrase one' });
    if (user !== undefined) userIds.push(user.id);
  }
}, 180_000);
afterAll(async () => {
  await h?.stop();
  await moto?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe('KMS key provider', () => {
  it('takes the region from the key ARN', () => {
    expect(regionOf('arn:aws:kms:eu-west-1:111122223333:key/abc')).toBe('eu-west-1');
    expect(regionOf('alias/postmesh')).toBeUndefined();
  });

  it('generates the KEK once, stores only its KMS-encrypted copy, and gives every start the same KEK', async () => {
    const first = await loadKmsKeyProvider({ db: h.db, keyId, client });
    const stored = await h.db.collection('keyring').findOne({ _id: `kms-kek:${keyId}` as never });
    expect(stored).not.toBeNull();
    // A second replica, with its own client built from region and endpoint.
    const second = await loadKmsKeyProvider({ db: h.db, keyId, region: 'eu-west-1', endpoint });
    expect(second.currentKekId).toBe(first.currentKekId);
    const wrapped = await first.wrap(new Uint8Array(randomBytes(32)), 'ctx');
    expect(await second.unwrap(wrapped, 'ctx')).toHaveLength(32);
  });

  it('moves from the file KEK to KMS by re-wrapping every user data key', async () => {
    const fileKek = h.kekFile;
    const keyring = new MongoUserKeyring({ db: h.db, keyProvider: h.keyProvider });
    const contentKey = new Uint8Array(randomBytes(32));
    const before = await keyring.wrapForUser(userIds[0] ?? '', contentKey, 'message:1');

    const moving = await loadKmsKeyProvider({ db: h.db, keyId, client, previousKekFile: fileKek });
    expect(moving.knownKekIds).toEqual([moving.currentKekId, h.keyProvider.currentKekId]);
    await rotateKek({ db: h.db, keyProvider: moving, logger });
    // With KMS alone (the file gone) every user key still opens and old content keys too.
    const kmsOnly = await loadKmsKeyProvider({ db: h.db, keyId, client });
    const after = new MongoUserKeyring({ db: h.db, keyProvider: kmsOnly });
    expect(await after.unwrapForUser(userIds[0] ?? '', before, 'message:1')).toEqual(contentKey);
    for (const id of userIds) {
      await after.wrapForUser(id, contentKey, 'message:2');
    }
    // And the file KEK alone no longer opens them.
    const fileOnly = new MongoUserKeyring({ db: h.db, keyProvider: h.keyProvider });
    await expect(fileOnly.unwrapForUser(userIds[1] ?? '', before, 'message:1')).rejects.toThrow();
  });
});
