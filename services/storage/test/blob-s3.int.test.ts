/**
 * The S3 blob store (src/blob/s3-store.ts) against a local S3-compatible server (moto in server
 * mode, from libs/testing): the common contract, multipart uploads of large bodies (and their
 * abort when the body fails midway), and the mailstore storing, reading and deleting bodies in a
 * bucket. AWS itself is not reachable here; moto implements the same S3 API the SDK speaks.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { mailstore } from '@postmesh/contracts';
import { MotoServer } from '@postmesh/testing';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PART_BYTES, S3BlobStore, type S3BlobStoreOptions } from '../src/blob/s3-store.js';
import type { MessageRecord } from '../src/mailstore/index.js';
import { bodyRefId } from '../src/mailstore/blob-store.js';
import { blobIdAt, describeBlobStore } from './blob-contract.js';
import {
  ALL_UIDS,
  byPath,
  call,
  content,
  createUser,
  message,
  startMailstoreHarness,
  type MailstoreHarness,
} from './mailstore-helpers.js';

/** moto is installed on first use (pip), which can take minutes on a fresh machine. */
const INSTALL_MS = 15 * 60_000;
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

let moto: MotoServer | undefined;
async function s3Options(bucket: string): Promise<S3BlobStoreOptions> {
  moto ??= await MotoServer.start();
  const client = new S3Client({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return {
    bucket,
    prefix: 'bodies/',
    endpoint: moto.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
  };
}

afterAll(async () => {
  await moto?.stop();
});

describeBlobStore(
  'S3',
  async () => {
    const store = new S3BlobStore(await s3Options('contract'));
    return { store, close: () => store.close() };
  },
  INSTALL_MS,
);

describe('S3 blob store with large bodies', () => {
  let store: S3BlobStore;
  let options: S3BlobStoreOptions;
  beforeAll(async () => {
    options = await s3Options('large');
    store = new S3BlobStore(options);
  }, INSTALL_MS);
  afterAll(async () => {
    await store?.close();
  });

  it('uploads a body larger than a part in parts, and aborts the upload when the body fails midway', async () => {
    const big = randomBytes(PART_BYTES * 2 + 12_345);
    const id = blobIdAt();
    async function* pieces(): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < big.length; at += 1_000_000)
        yield await Promise.resolve(big.subarray(at, at + 1_000_000));
    }
    expect((await store.put(id, pieces())).size).toBe(big.length);
    expect((await store.stat(id))?.size).toBe(big.length);
    const start = PART_BYTES - 100;
    expect(await store.read(id, { start, end: start + 300 })).toEqual(big.subarray(start, start + 300));
    expect(await store.read(id, { start: big.length - 10, end: big.length + 10 })).toEqual(big.subarray(-10));

    const failed = blobIdAt();
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield await Promise.resolve(big.subarray(0, PART_BYTES + 1));
      throw new Error('client went away');
    }
    await expect(store.put(failed, failing())).rejects.toThrow('client went away');
    expect(await store.stat(failed)).toBeNull();
    const client = new S3Client({
      endpoint: options.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials,
    });
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: options.bucket }));
    client.destroy();
    expect(uploads.Uploads ?? []).toEqual([]);
  });
});

describe('the mailstore on the S3 blob store', () => {
  let m: MailstoreHarness;
  beforeAll(async () => {
    m = await startMailstoreHarness({ blobStore: { kind: 's3', s3: await s3Options('mail') } });
  }, INSTALL_MS);
  afterAll(async () => {
    await m?.stop();
  });

  it('stores a delivery once in the bucket, reads it for each recipient, and deletes it with the last copy', async () => {
    const [alice, bob] = [await createUser(m.h), await createUser(m.h)];
    const raw = message(['Subject: to the bucket', '', 'y'.repeat(200_000)]);
    await m.store.deliverToMailboxes('spool-s3-1', raw, [
      { recipient: 'a@example.test', userId: alice },
      { recipient: 'b@example.test', userId: bob },
    ]);
    const doc = (await m.h.db
      .collection<MessageRecord>('messages')
      .findOne({ spoolId: 'spool-s3-1' })) as MessageRecord;
    expect(doc.blob?.store).toBe('s3');
    // The object: the pack of the delivery's batch (here of this body alone).
    const blobId = bodyRefId(doc.blobId, doc.blob).toHexString();
    expect(doc.blob?.offset).toBe(0);
    const store = m.h.app.blobs.primary;
    expect((await store.stat(blobId))?.size).toBe(doc.blob?.length);
    expect(
      (await store.read(blobId, { start: 0, end: 1_000_000 })).includes(Buffer.from('to the bucket')),
    ).toBe(false);
    expect(await m.h.db.collection('blobs.files').countDocuments({ _id: new ObjectId(blobId) })).toBe(0);

    for (const userId of [alice, bob]) {
      const mailboxId = (
        await call(m.client.getMailboxStatus.bind(m.client), {
          userId,
          mailbox: byPath('INBOX'),
          claimRecent: false,
        })
      ).status?.mailboxId as string;
      expect((await content(m.client, { userId, mailboxId, uid: 1 })).bytes).toEqual(raw);
      const part = await content(m.client, {
        userId,
        mailboxId,
        uid: 1,
        section: 'TEXT',
        partial: { offset: 70_000, length: 10 },
      });
      expect(part.bytes.toString()).toBe('y'.repeat(10));
      await call(m.client.storeFlags.bind(m.client), {
        userId,
        mailboxId,
        uids: ALL_UIDS,
        mode: mailstore.StoreMode.ADD,
        flags: [mailstore.Flag.DELETED],
        keywords: [],
        unchangedSince: undefined,
      });
      await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
      // Bodies go when the expunge records are compacted (ADR 0007), normally in the background.
      await m.store.compactChanges();
      expect(await store.stat(blobId)).toEqual(userId === alice ? expect.anything() : null);
    }
  });
});
