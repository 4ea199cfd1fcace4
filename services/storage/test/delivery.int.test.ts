/**
 * The `storage-deliver` consumer (DESIGN §2 steps 5–8) against real NATS JetStream and FerretDB:
 * exactly-once by (spoolId, recipient), one copy per user, Junk routing, trace events and
 * mailbox.changed, spool object removal, notices to the sender of mail over quota, and MAIL_DLQ for
 * jobs that cannot succeed.
 */
import { randomBytes } from 'node:crypto';
import {
  Bus,
  type BatchConsumerLoop,
  Streams,
  Subjects,
  decodeOutboundJob,
  encodeInboundJob,
  jobMessageId,
  openSpool,
  publishDurable,
  spoolObjectName,
  type InboundJob,
} from '@postmesh/bus';
import { NatsServer } from '@postmesh/testing';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryConsumer } from '../src/delivery/index.js';
import { noticeSpoolId } from '../src/delivery/over-quota.js';
import { Mailstore } from '../src/mailstore/index.js';
import { startStorageHarness, type StorageHarness } from './harness.js';

const DOMAIN = 'deliver.test';

function job(spoolId: string, rcptTo: string[], body: InboundJob['body'], junk = false): InboundJob {
  return {
    version: 1,
    spoolId,
    envelope: { mailFrom: 'sender@remote.test', rcptTo, remoteIp: '192.0.2.7', helo: 'remote.test' },
    authResults: {
      spf: 'pass',
      dkim: 'none',
      dmarc: junk ? 'fail' : 'pass',
      arc: 'none',
      dmarcPolicy: junk ? 'quarantine' : '',
      junk,
    },
    receivedAt: new Date().toISOString(),
    messageId: `${spoolId}@remote.test`,
    traceparent: '',
    body,
  };
}

const raw = (token: string) =>
  Buffer.from(`From: sender@remote.test\r\nTo: x@${DOMAIN}\r\nSubject: ${token}\r\n\r\nbody ${token}\r\n`);

describe('storage-deliver', () => {
  let h: StorageHarness;
  let nats: NatsServer;
  let bus: Bus;
  let consumer: BatchConsumerLoop;
  const users: Record<string, string> = {};

  beforeAll(async () => {
    [h, nats] = await Promise.all([startStorageHarness(), NatsServer.start()]);
    bus = await Bus.connect({ url: nats.url, name: 'delivery-test', logger: h.logger, replicas: 1 });
    const domain = await h.app.directory.createDomain({ name: DOMAIN, defaultQuotaBytes: 0 });
    if (!domain.ok) throw new Error(domain.error.message);
    for (const name of ['ann', 'ben', 'cat']) {
      const created = await h.app.directory.createUser({
        address: `${name}@${DOMAIN}`,
        password: `Pw-${randomBytes(8).toString('hex')}-x`,
        displayName: name,
        // cat's mailbox is full from the first byte: every copy for cat is over quota.
        ...(name === 'cat' ? { quotaBytes: 1 } : {}),
      });
      if (!created.ok || created.value.user === undefined) throw new Error('createUser failed');
      users[name] = created.value.user.id;
    }
    const alias = await h.app.directory.createAlias({
      address: `both@${DOMAIN}`,
      userIds: [users.ann ?? '', users.ben ?? ''],
    });
    if (!alias.ok) throw new Error(alias.error.message);
    consumer = createDeliveryConsumer({
      bus,
      mailstore: new Mailstore({
        db: h.db,
        runtime: h.app.mailstoreRuntime,
        blobs: h.app.blobs,
        keyring: h.app.keyring,
        logger: h.logger,
        onMailboxChanged: (id) => bus.nc.publish(Subjects.mailboxChanged(id)),
      }),
      directory: h.app.directory,
      logger: h.logger,
      traceStore: h.app.traceStore,
      maxDeliver: 3,
      backoffMs: [100],
      overQuota: { minRetryMs: 200, giveUpAfterMs: 3_600_000, reportingMta: 'mx.deliver.test' },
    });
    consumer.start();
  }, 90_000);

  afterAll(async () => {
    await consumer?.stop();
    await bus?.drain();
    await Promise.all([h?.stop(), nats?.stop()]);
  });

  const publish = (j: InboundJob, body?: Uint8Array, msgId = jobMessageId(j.spoolId, Streams.MAIL_INBOUND)) =>
    publishDurable(bus.js, Subjects.inbound(j.spoolId), encodeInboundJob(j, body), { msgId });

  async function stored(spoolId: string, expected: number, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const docs = await h.db.collection('messages').find({ spoolId }).toArray();
      if (docs.length >= expected || Date.now() > deadline) return docs;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function mailboxPath(mailboxId: unknown): Promise<string> {
    const box = await h.db.collection('mailboxes').findOne({ _id: new ObjectId(String(mailboxId)) });
    return String(box?.path);
  }

  it('delivers an inline job to INBOX, once per user (alias + primary), with trace events and mailbox.changed', async () => {
    const spoolId = `t${randomBytes(8).toString('hex')}`;
    const token = randomBytes(6).toString('hex');
    const changed = bus.nc.subscribe(Subjects.mailboxChanged('*'), { max: 2, timeout: 20_000 });
    const body = raw(token);
    await publish(
      job(spoolId, [`both@${DOMAIN}`, `ann@${DOMAIN}`, `BEN@${DOMAIN}`], {
        kind: 'inline',
        size: body.length,
      }),
      body,
    );
    const docs = await stored(spoolId, 2);
    expect(docs).toHaveLength(2);
    expect(new Set(docs.map((d) => String(d.userId)))).toEqual(new Set([users.ann, users.ben]));
    // One encrypted body shared by both copies (DESIGN §4 GridFS blobs).
    expect(new Set(docs.map((d) => String(d.blobId))).size).toBe(1);
    for (const d of docs) expect(await mailboxPath(d.mailboxId)).toBe('INBOX');
    const notified: string[] = [];
    for await (const m of changed) notified.push(m.subject);
    expect(notified.sort()).toEqual(
      [Subjects.mailboxChanged(users.ann ?? ''), Subjects.mailboxChanged(users.ben ?? '')].sort(),
    );
    // The trace events are written with the delivery, before the ack.
    const deadline = Date.now() + 20_000;
    let events: { kind: string; recipient?: string }[] = [];
    while (events.length < 2 && Date.now() < deadline) {
      events = await h.db
        .collection<{ kind: string; recipient?: string }>('events')
        .find({ queueId: spoolId })
        .toArray();
      if (events.length < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(events.map((e) => `${e.kind} ${e.recipient}`).sort()).toEqual([
      `delivered ann@${DOMAIN}`,
      `delivered ben@${DOMAIN}`,
    ]);
    const deliveries = await h.db.collection('deliveries').find({ spoolId }).toArray();
    expect(deliveries.map((d) => String(d.recipient)).sort()).toEqual([`ann@${DOMAIN}`, `ben@${DOMAIN}`]);
  });

  it('a redelivered job (same spoolId, published again) is a no-op that still acks', async () => {
    const spoolId = `t${randomBytes(8).toString('hex')}`;
    const body = raw(randomBytes(6).toString('hex'));
    const j = job(spoolId, [`ann@${DOMAIN}`], { kind: 'inline', size: body.length });
    await publish(j, body);
    expect(await stored(spoolId, 1)).toHaveLength(1);
    // As if storage crashed after storing and before acking: the job comes again.
    await publish(j, body, `${jobMessageId(spoolId, Streams.MAIL_INBOUND)}:again`);
    const deadline = Date.now() + 20_000;
    let pending = 1;
    while (pending > 0 && Date.now() < deadline) {
      const info = await bus.jsm.consumers.info(Streams.MAIL_INBOUND, 'storage-deliver');
      pending = info.num_pending + info.num_ack_pending;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(pending).toBe(0);
    expect(await stored(spoolId, 2, 500)).toHaveLength(1);
  });

  it('over quota: the others get their copy, a local sender a delay notice in INBOX, a remote sender one through MAIL_OUTBOUND', async () => {
    const body = raw(randomBytes(6).toString('hex'));
    const fromBen = {
      ...job(`t${randomBytes(8).toString('hex')}`, [`cat@${DOMAIN}`, `ann@${DOMAIN}`], {
        kind: 'inline',
        size: body.length,
      }),
    };
    const local: InboundJob = { ...fromBen, envelope: { ...fromBen.envelope, mailFrom: `ben@${DOMAIN}` } };
    await publish(local, body);
    const copies = await stored(local.spoolId, 1);
    expect(copies.map((d) => String(d.userId))).toEqual([users.ann]);
    // The delay notice (RFC 3464 action=delayed, 4.2.2) is an inbound job for ben, delivered once.
    const notices = await stored(noticeSpoolId(local.spoolId, 'delayed'), 1);
    expect(notices.map((d) => String(d.userId))).toEqual([users.ben]);
    expect(await mailboxPath(notices[0]?.mailboxId)).toBe('INBOX');

    const remote = job(`t${randomBytes(8).toString('hex')}`, [`cat@${DOMAIN}`], {
      kind: 'inline',
      size: body.length,
    });
    await publish(remote, body);
    const deadline = Date.now() + 20_000;
    let out: Awaited<ReturnType<typeof bus.jsm.streams.getMessage>> = null;
    while (out === null && Date.now() < deadline) {
      out = await bus.jsm.streams
        .getMessage(Streams.MAIL_OUTBOUND, { last_by_subj: Subjects.outbound('remote.test') })
        .catch(() => null);
      if (out === null) await new Promise((r) => setTimeout(r, 100));
    }
    const decoded = out === null ? null : decodeOutboundJob(out.data);
    expect(decoded?.ok).toBe(true);
    if (decoded?.ok !== true) return;
    expect(decoded.job.spoolId).toBe(noticeSpoolId(remote.spoolId, 'delayed'));
    expect(decoded.job.envelope).toEqual({ mailFrom: '', rcptTo: ['sender@remote.test'] });
    const text = new TextDecoder().decode(decoded.inlineBody);
    expect(text).toContain('Action: delayed');
    expect(text).toContain('Status: 4.2.2');
    // Nothing was stored for cat, and the job is still being retried, not dead-lettered.
    expect(await stored(remote.spoolId, 1, 300)).toHaveLength(0);
  });

  it('routes a DMARC quarantine verdict to Junk', async () => {
    const spoolId = `t${randomBytes(8).toString('hex')}`;
    const body = raw(randomBytes(6).toString('hex'));
    await publish(job(spoolId, [`ann@${DOMAIN}`], { kind: 'inline', size: body.length }, true), body);
    const docs = await stored(spoolId, 1);
    expect(docs).toHaveLength(1);
    expect(await mailboxPath(docs[0]?.mailboxId)).toBe('Junk');
  });

  it('reads a large message from the mail-spool object store and removes the object afterwards', async () => {
    const spoolId = `t${randomBytes(8).toString('hex')}`;
    const spool = await openSpool(bus.nc);
    const body = Buffer.concat([raw(randomBytes(6).toString('hex')), Buffer.from('z'.repeat(600_000))]);
    const info = await spool.putBlob({ name: spoolObjectName(spoolId) }, body);
    await publish(
      job(spoolId, [`ben@${DOMAIN}`], { kind: 'object', size: info.size, object: spoolObjectName(spoolId) }),
    );
    const docs = await stored(spoolId, 1);
    expect(docs[0]?.size).toBe(body.length);
    const deadline = Date.now() + 10_000;
    const gone = async () => (await spool.info(spoolObjectName(spoolId)))?.deleted ?? true;
    while (!(await gone()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await gone()).toBe(true);
    expect(await spool.get(spoolObjectName(spoolId))).toBeNull();
  });

  it('a job that always fails (its spool object is gone) ends in MAIL_DLQ with its error after max_deliver', async () => {
    const spoolId = `t${randomBytes(8).toString('hex')}`;
    await publish(
      job(spoolId, [`ann@${DOMAIN}`], { kind: 'object', size: 10, object: spoolObjectName(spoolId) }),
    );
    const deadline = Date.now() + 20_000;
    let dead: Awaited<ReturnType<typeof bus.jsm.streams.getMessage>> = null;
    while (dead === null && Date.now() < deadline) {
      dead = await bus.jsm.streams
        .getMessage(Streams.MAIL_DLQ, { last_by_subj: Subjects.dlq(Streams.MAIL_INBOUND) })
        .catch(() => null);
      if (dead !== null && !new TextDecoder().decode(dead.data).includes(spoolId)) dead = null;
      if (dead === null) await new Promise((r) => setTimeout(r, 200));
    }
    expect(dead).not.toBeNull();
    expect(dead?.header.get('Postmesh-Error')).toMatch(/spool object .* is missing \(after 3 attempts\)/);
    expect(dead?.header.get('Postmesh-Attempts')).toBe('3');
    expect(await stored(spoolId, 1, 200)).toHaveLength(0);
  });

  it('a malformed job goes to MAIL_DLQ at once', async () => {
    const id = randomBytes(6).toString('hex');
    await publishDurable(bus.js, Subjects.inbound(`bad${id}`), new TextEncoder().encode('not a job'), {
      msgId: `bad${id}`,
    });
    const deadline = Date.now() + 20_000;
    let found = false;
    while (!found && Date.now() < deadline) {
      const m = await bus.jsm.streams
        .getMessage(Streams.MAIL_DLQ, { last_by_subj: Subjects.dlq(Streams.MAIL_INBOUND) })
        .catch(() => null);
      found = m?.header.get('Postmesh-Original-Subject') === Subjects.inbound(`bad${id}`);
      if (!found) await new Promise((r) => setTimeout(r, 100));
    }
    expect(found).toBe(true);
  });
});
