/**
 * Batched delivery (`storage-deliver` commits many jobs with one bulk write per collection)
 * against real NATS JetStream and FerretDB: a poisoned job fails alone and is dead-lettered while
 * the others of its batch are delivered; a process killed between the bulk write and the ack
 * duplicates nothing when its jobs come back, and their trace events (written with the batch,
 * not published) are all there; the in-memory index equals the database after batches; UIDs
 * keep ascending across the restart.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  BatchConsumerLoop,
  Bus,
  Consumers,
  Streams,
  Subjects,
  encodeInboundJob,
  jobMessageId,
  mailEvent,
  publishDurable,
  type InboundJob,
} from '@postmesh/bus';
import { MAX_UID } from '@postmesh/contracts';
import { NatsServer } from '@postmesh/testing';
import type { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InboundDelivery, createDeliveryConsumer } from '../src/delivery/index.js';
import { sharedMailboxIndex } from '../src/mailstore/mailbox-index.js';
import { Mailstore } from '../src/mailstore/index.js';
import { startStorageHarness, type StorageHarness } from './harness.js';

const DOMAIN = 'batch.test';

function job(spoolId: string, rcptTo: string[], size: number): InboundJob {
  return {
    version: 1,
    spoolId,
    envelope: { mailFrom: 'sender@remote.test', rcptTo, remoteIp: '192.0.2.7', helo: 'remote.test' },
    authResults: { spf: 'pass', dkim: 'none', dmarc: 'pass', arc: 'none', dmarcPolicy: '', junk: false },
    receivedAt: new Date().toISOString(),
    messageId: `${spoolId}@remote.test`,
    traceparent: '',
    body: { kind: 'inline', size },
    queuedEvent: mailEvent({
      eventId: `${spoolId}:queued`,
      service: 'smtp-inbound',
      kind: 'queued',
      queueId: spoolId,
      detail: `250 2.0.0 queued as ${spoolId}`,
    }),
  };
}

const raw = (token: string) =>
  Buffer.from(`From: sender@remote.test\r\nTo: x@${DOMAIN}\r\nSubject: ${token}\r\n\r\nbody ${token}\r\n`);

describe('batched delivery', () => {
  let h: StorageHarness;
  let nats: NatsServer;
  let bus: Bus;
  const users: Record<string, string> = {};

  beforeAll(async () => {
    [h, nats] = await Promise.all([startStorageHarness(), NatsServer.start()]);
    bus = await Bus.connect({ url: nats.url, name: 'delivery-batch-test', logger: h.logger, replicas: 1 });
    const domain = await h.app.directory.createDomain({ name: DOMAIN, defaultQuotaBytes: 0 });
    if (!domain.ok) throw new Error(domain.error.message);
    for (const name of ['ann', 'ben', 'full', 'cid', 'eve']) {
      const created = await h.app.directory.createUser({
        address: `${name}@${DOMAIN}`,
        password: `Pw-${randomBytes(8).toString('hex')}-x`,
        displayName: name,
      });
      if (!created.ok || created.value.user === undefined) throw new Error('createUser failed');
      users[name] = created.value.user.id;
    }
    // Redelivery of a crashed worker's jobs in seconds, not the production minute.
    await bus.jsm.consumers.update(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER, {
      ack_wait: 2_000_000_000,
    });
  }, 90_000);

  afterAll(async () => {
    await bus?.drain();
    await Promise.all([h?.stop(), nats?.stop()]);
  });

  const mailstore = () =>
    new Mailstore({
      db: h.db,
      runtime: h.app.mailstoreRuntime,
      blobs: h.app.blobs,
      keyring: h.app.keyring,
      logger: h.logger,
    });

  const publish = async (spoolId: string, rcpt: string, token: string) => {
    const body = raw(token);
    await publishDurable(
      bus.js,
      Subjects.inbound(spoolId),
      encodeInboundJob(job(spoolId, [rcpt], body.length), body),
      { msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND) },
    );
  };

  /** Messages of `userId` by subject token, read from the database past every cache. */
  const stored = async (userId: string) => {
    const docs = await h.db
      .collection<{ uid: number; modseq: number; flags: string[]; size: number; spoolId?: string }>(
        'messages',
      )
      .find({ userId })
      .sort({ uid: 1 })
      .toArray();
    return docs;
  };

  const consumerIdle = async (timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await bus.jsm.consumers.info(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER);
      if (info.num_pending === 0 && info.num_ack_pending === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`jobs still pending: ${info.num_pending} waiting, ${info.num_ack_pending} unacked`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const inboxOf = async (userId: string) => {
    const box = await h.db.collection('mailboxes').findOne({ userId, path: 'INBOX' });
    if (box === null) throw new Error('no INBOX');
    return box as unknown as { _id: ObjectId; uidNext: number; highestModseq: number };
  };

  it('a poisoned job fails alone: the others of its batch are delivered, it ends in MAIL_DLQ', async () => {
    // A mailbox out of UIDs refuses every new message: a failure inside the batch's commit that
    // no retry cures.
    const full = await inboxOf(users.full ?? '');
    await h.db.collection('mailboxes').updateOne({ _id: full._id }, { $set: { uidNext: MAX_UID + 1 } });
    const run = randomBytes(4).toString('hex');
    const good = Array.from({ length: 6 }, (_, i) => `g${run}${i}`);
    const poisoned = `p${run}000`;
    for (const [i, spoolId] of good.entries()) {
      await publish(spoolId, `${i % 2 === 0 ? 'ann' : 'ben'}@${DOMAIN}`, `${run}-${i}`);
      if (i === 2) await publish(poisoned, `full@${DOMAIN}`, `${run}-poison`);
    }
    const batches: string[][] = [];
    const delivery = new InboundDelivery({
      bus,
      mailstore: mailstore(),
      directory: h.app.directory,
      logger: h.logger,
      traceStore: h.app.traceStore,
    });
    const loop = new BatchConsumerLoop({
      js: bus.js,
      stream: Streams.MAIL_INBOUND,
      consumer: Consumers.STORAGE_DELIVER,
      logger: h.logger,
      maxBatch: 64,
      maxWaitMs: 500,
      maxDeliver: 3,
      backoffMs: [100],
      handler: (msgs) => {
        batches.push(msgs.map((m) => m.subject.split('.').pop() ?? ''));
        return delivery.handleBatch(msgs);
      },
    });
    loop.start();
    try {
      await consumerIdle(30_000);
    } finally {
      await loop.stop();
    }
    // All seven were in the first batch; the poisoned one came back alone until max_deliver.
    expect(new Set(batches[0])).toEqual(new Set([...good, poisoned]));
    expect(batches.slice(1)).toEqual([[poisoned], [poisoned]]);
    const spools = [...(await stored(users.ann ?? '')), ...(await stored(users.ben ?? ''))].map(
      (d) => d.spoolId,
    );
    expect(spools.filter((s) => s?.includes(run)).sort()).toEqual([...good].sort());
    expect(await stored(users.full ?? '')).toHaveLength(0);
    const dead = await bus.jsm.streams.getMessage(Streams.MAIL_DLQ, {
      last_by_subj: Subjects.dlq(Streams.MAIL_INBOUND),
    });
    expect(dead?.header.get('Postmesh-Original-Subject')).toBe(Subjects.inbound(poisoned));
    expect(dead?.header.get('Postmesh-Error')).toContain('ran out of UIDs');
    expect(dead?.header.get('Postmesh-Attempts')).toBe('3');
  }, 60_000);

  it('a crash between the bulk write and the ack redelivers and duplicates nothing; UIDs keep ascending', async () => {
    const userId = users.cid ?? '';
    const run = randomBytes(4).toString('hex');
    const first = Array.from({ length: 20 }, (_, i) => `c${run}${String(i).padStart(2, '0')}`);
    for (const spoolId of first) await publish(spoolId, `cid@${DOMAIN}`, `${spoolId}-token`);

    const worker = spawn(
      process.execPath,
      [join(import.meta.dirname, 'fixtures', 'crash-after-commit.mjs')],
      {
        env: {
          ...process.env,
          NATS_URL: nats.url,
          MONGODB_URI: h.env.mongoUri,
          POSTMESH_MONGODB_DB: h.env.database,
          POSTMESH_KEK_FILE: h.kekFile,
          POSTMESH_BLOB_DIR: h.blobDir,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let output = '';
    worker.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
      worker.once('exit', (_, s) => resolve(s)),
    );
    expect(signal).toBe('SIGKILL');
    expect(output).toMatch(/committed 20/);
    // Written before the crash, never acked.
    const written = await stored(userId);
    expect(written.map((d) => d.spoolId).sort()).toEqual([...first].sort());
    const info = await bus.jsm.consumers.info(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER);
    expect(info.num_ack_pending + info.num_pending).toBe(20);
    // Redelivery in seconds, not the production minute (set after the worker's own start, which
    // applies the production consumer settings).
    await bus.jsm.consumers.update(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER, {
      ack_wait: 2_000_000_000,
    });

    // A fresh consumer (the restarted storage) gets the 20 jobs back, then 10 new ones.
    sharedMailboxIndex.drop((await inboxOf(userId))._id.toHexString());
    const consumer = createDeliveryConsumer({
      bus,
      mailstore: mailstore(),
      directory: h.app.directory,
      logger: h.logger,
      traceStore: h.app.traceStore,
    });
    consumer.start();
    try {
      await consumerIdle(30_000);
      const before = Math.max(...written.map((d) => d.uid));
      const second = Array.from({ length: 10 }, (_, i) => `d${run}${String(i).padStart(2, '0')}`);
      for (const spoolId of second) await publish(spoolId, `cid@${DOMAIN}`, `${spoolId}-token`);
      await consumerIdle(30_000);
      const all = await stored(userId);
      // Exactly once each, counted by content.
      const counts = new Map<string, number>();
      for (const d of all) counts.set(d.spoolId ?? '', (counts.get(d.spoolId ?? '') ?? 0) + 1);
      expect([...counts.keys()].sort()).toEqual([...first, ...second].sort());
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      const records = await h.db.collection('deliveries').countDocuments({ userId });
      expect(records).toBe(30);
      // New messages after the restart only get UIDs above every UID used before it.
      const later = all.filter((d) => second.includes(d.spoolId ?? ''));
      expect(Math.min(...later.map((d) => d.uid))).toBeGreaterThan(before);
      expect(new Set(all.map((d) => d.uid)).size).toBe(30);
      // The crash came before the batch's trace events: the jobs that came back stored them, so
      // every message has its `queued` hop (carried by the job) and its `delivered` one, each
      // once, in the event store, and none went through MAIL_EVENTS.
      const events = await h.db
        .collection<{ queueId?: string; kind: string }>('events')
        .find({ queueId: { $in: [...first, ...second] } })
        .toArray();
      const hops = new Map<string, string[]>();
      for (const e of events) hops.set(e.queueId ?? '', [...(hops.get(e.queueId ?? '') ?? []), e.kind]);
      expect([...hops.keys()].sort()).toEqual([...first, ...second].sort());
      for (const kinds of hops.values()) expect(kinds.sort()).toEqual(['delivered', 'queued']);
      const published = await bus.jsm.streams.info(Streams.MAIL_EVENTS, {
        subjects_filter: 'mail.events.>',
      });
      const subjects = Object.keys(published.state.subjects ?? {});
      expect(subjects).not.toContain(Subjects.events('delivered'));
      expect(subjects).not.toContain(Subjects.events('queued'));
    } finally {
      await consumer.stop();
    }
  }, 90_000);

  it('the mailbox index equals the database after batches to several mailboxes', async () => {
    const store = mailstore();
    const inboxes = await Promise.all(['ann', 'ben'].map((n) => inboxOf(users[n] ?? '')));
    // Build both entries first, so batches must patch them.
    for (const [i, box] of inboxes.entries()) {
      const userId = users[['ann', 'ben'][i] ?? ''] ?? '';
      // What an IDLE wake-up asks (RFC 7162 CHANGEDSINCE): answered from, and so builds, the entry.
      await store.getChanges(userId, box._id.toHexString(), 0, 0, undefined);
      const now = await inboxOf(userId);
      expect(sharedMailboxIndex.get(box._id.toHexString(), now.highestModseq)).toBeDefined();
    }
    for (let round = 0; round < 3; round++) {
      const batch = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const spoolId = `i${randomBytes(6).toString('hex')}`;
          const who = i % 3 === 0 ? ['ann', 'ben'] : [i % 2 === 0 ? 'ann' : 'ben'];
          return {
            spoolId,
            body: await store.prepareDelivery(raw(spoolId)),
            recipients: who.map((n) => ({ recipient: `${n}@${DOMAIN}`, userId: users[n] ?? '' })),
            receivedAt: new Date(),
          };
        }),
      );
      const results = await store.commitDeliveries(batch);
      expect(results.every((r) => r.ok)).toBe(true);
    }
    for (const name of ['ann', 'ben']) {
      const userId = users[name] ?? '';
      const box = await inboxOf(userId);
      const entry = sharedMailboxIndex.get(box._id.toHexString(), box.highestModseq);
      // Patched in place by every batch, not dropped.
      expect(entry).toBeDefined();
      const fromIndex = (entry?.select([[1, MAX_UID]]) ?? []).map((m) => ({
        uid: m.uid,
        modseq: m.modseq,
        flags: [...m.flags],
        size: m.size,
      }));
      const fromDb = (await stored(userId)).map((d) => ({
        uid: d.uid,
        modseq: d.modseq,
        flags: d.flags,
        size: d.size,
      }));
      expect(fromIndex).toEqual(fromDb);
      expect(box.uidNext).toBeGreaterThan(Math.max(...fromDb.map((d) => d.uid)));
    }
  }, 60_000);

  it('an index rebuilt from the database raises a UIDNEXT left below its messages, so no UID is reused', async () => {
    const store = mailstore();
    const userId = users.eve ?? '';
    const deliver = async () => {
      const spoolId = `u${randomBytes(6).toString('hex')}`;
      const [result] = await store.commitDeliveries([
        {
          spoolId,
          body: await store.prepareDelivery(raw(spoolId)),
          recipients: [{ recipient: `eve@${DOMAIN}`, userId }],
          receivedAt: new Date(),
        },
      ]);
      const outcome = result?.ok === true ? result.outcomes[0] : undefined;
      if (outcome?.status !== 'delivered') throw new Error(`not delivered: ${JSON.stringify(outcome)}`);
      return outcome.uid;
    };
    const uids = [await deliver(), await deliver(), await deliver()];
    // Counters persisted after their messages and lost in a crash (an owner allocating in memory).
    const box = await inboxOf(userId);
    await h.db.collection('mailboxes').updateOne({ _id: box._id }, { $set: { uidNext: 1 } });
    sharedMailboxIndex.drop(box._id.toHexString());
    await store.getChanges(userId, box._id.toHexString(), 0, 0, undefined);
    expect((await inboxOf(userId)).uidNext).toBe(Math.max(...uids) + 1);
    expect(await deliver()).toBe(Math.max(...uids) + 1);
  }, 60_000);
});
