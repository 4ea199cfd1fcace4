/**
 * Users' Sieve scripts at delivery (docs/sieve.md) against real NATS JetStream and FerretDB, with
 * the real `storage-deliver` consumer: fileinto and imap4flags, fileinto a missing mailbox,
 * vacation once per sender per :days and never to a list or a bounce, reject as a DSN through
 * MAIL_OUTBOUND, redirect, a broken script delivering to INBOX with one notice, and a
 * redelivered job sending no second reply.
 */
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import {
  Bus,
  type BatchConsumerLoop,
  Streams,
  Subjects,
  decodeOutboundJob,
  encodeInboundJob,
  jobMessageId,
  publishDurable,
  type InboundJob,
  type OutboundJob,
} from '@postmesh/bus';
import { MailstoreServiceClient, mailstore as contracts } from '@postmesh/contracts';
import { status } from '@grpc/grpc-js';
import { NatsServer, pkiSecurity } from '@postmesh/testing';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryConsumer } from '../src/delivery/index.js';
import { Mailstore } from '../src/mailstore/index.js';
import { SieveDelivery } from '../src/sieve/index.js';
import { call, callError, startStorageHarness, type StorageHarness } from './harness.js';

const DOMAIN = 'sieve.test';

describe('Sieve at delivery', () => {
  let h: StorageHarness;
  let nats: NatsServer;
  let bus: Bus;
  let consumer: BatchConsumerLoop;
  let sieve: SieveDelivery;
  let store: Mailstore;
  const users: Record<string, string> = {};

  beforeAll(async () => {
    [h, nats] = await Promise.all([startStorageHarness(), NatsServer.start()]);
    bus = await Bus.connect({ url: nats.url, name: 'sieve-test', logger: h.logger, replicas: 1 });
    const domain = await h.app.directory.createDomain({ name: DOMAIN, defaultQuotaBytes: 0 });
    if (!domain.ok) throw new Error(domain.error.message);
    for (const name of ['fay', 'gus', 'hal', 'ivy', 'jon']) {
      const created = await h.app.directory.createUser({
        address: `${name}@${DOMAIN}`,
        password: `Pw-${randomBytes(8).toString('hex')}-x`,
        displayName: name,
      });
      if (!created.ok || created.value.user === undefined) throw new Error('createUser failed');
      users[name] = created.value.user.id;
    }
    store = new Mailstore({
      db: h.db,
      runtime: h.app.mailstoreRuntime,
      blobs: h.app.blobs,
      keyring: h.app.keyring,
      logger: h.logger,
    });
    await store.createMailbox(users.fay ?? '', 'Work', contracts.SpecialUse.UNSPECIFIED, true);
    sieve = new SieveDelivery({
      db: h.db,
      bus,
      directory: h.app.directory,
      logger: h.logger,
      reportingMta: 'mx.sieve.test',
    });
    consumer = createDeliveryConsumer({
      bus,
      mailstore: store,
      directory: h.app.directory,
      traceStore: h.app.traceStore,
      logger: h.logger,
      maxDeliver: 3,
      backoffMs: [100],
      sieve,
    });
    consumer.start();
  }, 90_000);

  afterAll(async () => {
    await consumer?.stop();
    await bus?.drain();
    await Promise.all([h?.stop(), nats?.stop()]);
  });

  async function activate(user: string, script: string): Promise<void> {
    const put = await sieve.scripts.put(users[user] ?? '', 'main', script);
    if (!put.ok) throw new Error(put.message);
    expect(await sieve.scripts.setActive(users[user] ?? '', 'main')).toBe(true);
  }

  function send(
    rcpt: string,
    headers: string,
    opts: { mailFrom?: string; spoolId?: string; msgId?: string } = {},
  ): Promise<InboundJob> {
    const spoolId = opts.spoolId ?? `s${randomBytes(8).toString('hex')}`;
    const body = Buffer.from(`${headers}\r\nMessage-ID: <${spoolId}@remote.test>\r\n\r\nHello\r\n`);
    const j: InboundJob = {
      version: 1,
      spoolId,
      envelope: {
        mailFrom: opts.mailFrom ?? 'sender@remote.test',
        rcptTo: [rcpt],
        remoteIp: '192.0.2.7',
        helo: 'remote.test',
      },
      authResults: { spf: 'pass', dkim: 'none', dmarc: 'pass', arc: 'none', dmarcPolicy: '', junk: false },
      receivedAt: new Date().toISOString(),
      messageId: `${spoolId}@remote.test`,
      traceparent: '',
      body: { kind: 'inline', size: body.length },
    };
    return publishDurable(bus.js, Subjects.inbound(spoolId), encodeInboundJob(j, body), {
      msgId: opts.msgId ?? jobMessageId(spoolId, Streams.MAIL_INBOUND),
    }).then(() => j);
  }

  /** Waits until the consumer has nothing pending (every job settled). */
  async function settled(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const info = await bus.jsm.consumers.info(Streams.MAIL_INBOUND, 'storage-deliver');
      if (info.num_pending + info.num_ack_pending === 0) return;
      if (Date.now() > deadline) throw new Error('delivery did not settle');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function copies(spoolId: string): Promise<{ path: string; flags: string[]; userId: string }[]> {
    const docs = await h.db.collection('messages').find({ spoolId }).toArray();
    return Promise.all(
      docs.map(async (d) => {
        const box = await h.db.collection('mailboxes').findOne({ _id: new ObjectId(String(d.mailboxId)) });
        return {
          path: String(box?.path),
          flags: (d.flags as string[]).slice().sort(),
          userId: String(d.userId),
        };
      }),
    );
  }

  /** Every job in MAIL_OUTBOUND with the given recipient, decoded, with its body text. */
  async function outbound(rcpt: string): Promise<{ job: OutboundJob; text: string }[]> {
    const info = await bus.jsm.streams.info(Streams.MAIL_OUTBOUND);
    const out: { job: OutboundJob; text: string }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await bus.jsm.streams.getMessage(Streams.MAIL_OUTBOUND, { seq }).catch(() => null);
      if (m === null) continue;
      const decoded = decodeOutboundJob(m.data);
      if (!decoded.ok) throw new Error(decoded.problem);
      if (decoded.job.envelope.rcptTo.includes(rcpt))
        out.push({
          job: decoded.job,
          text: Buffer.from(decoded.inlineBody ?? new Uint8Array()).toString('utf8'),
        });
    }
    return out;
  }

  it('fileinto with :flags and imap4flags files into an existing mailbox; a missing one falls back to INBOX', async () => {
    await activate(
      'fay',
      `require ["fileinto", "imap4flags"];
       if header :contains "subject" "report" { addflag "$Report"; fileinto :flags ["\\\\Flagged", "$Work"] "Work"; }
       elsif header :contains "subject" "nowhere" { fileinto "Does/Not/Exist"; }
       else { setflag "\\\\Seen"; }`,
    );
    const report = await send(
      `fay@${DOMAIN}`,
      'From: boss@remote.test\r\nTo: fay@sieve.test\r\nSubject: weekly report',
    );
    const missing = await send(
      `fay@${DOMAIN}`,
      'From: boss@remote.test\r\nTo: fay@sieve.test\r\nSubject: going nowhere',
    );
    const plain = await send(`fay@${DOMAIN}`, 'From: boss@remote.test\r\nTo: fay@sieve.test\r\nSubject: hi');
    await settled();
    expect(await copies(report.spoolId)).toEqual([
      { path: 'Work', flags: ['$Work', '\\Flagged'], userId: users.fay },
    ]);
    expect(await copies(missing.spoolId)).toEqual([{ path: 'INBOX', flags: [], userId: users.fay }]);
    expect(await copies(plain.spoolId)).toEqual([{ path: 'INBOX', flags: ['\\Seen'], userId: users.fay }]);
  });

  it('fileinto :copy and keep store two copies, once each even when the job is redelivered', async () => {
    await activate('fay', 'require ["fileinto", "copy"]; fileinto :copy "Work";');
    const j = await send(`fay@${DOMAIN}`, 'From: boss@remote.test\r\nTo: fay@sieve.test\r\nSubject: twice');
    await settled();
    await send(`fay@${DOMAIN}`, 'x', { spoolId: j.spoolId, msgId: `${j.spoolId}:again` });
    await settled();
    const found = await copies(j.spoolId);
    expect(found.map((c) => c.path).sort()).toEqual(['INBOX', 'Work']);
  });

  it('vacation replies once per sender within :days, never to a list or a bounce, and not again on redelivery', async () => {
    await activate('gus', 'require "vacation"; vacation :days 3 :subject "Away" "I am away until Monday.";');
    const to = 'To: Gus <gus@sieve.test>';
    // Every publish attempt, as core NATS sees it: JetStream's duplicate window would hide a
    // second publish of the same reply from the stream, but not from this subscription.
    const published: string[] = [];
    const sub = bus.nc.subscribe(Subjects.outbound('remote.test'));
    void (async () => {
      for await (const m of sub) {
        const decoded = decodeOutboundJob(m.data);
        if (decoded.ok) published.push(...decoded.job.envelope.rcptTo);
      }
    })();
    const lunch = `From: pat@remote.test\r\n${to}\r\nSubject: lunch?`;
    const first = await send(`gus@${DOMAIN}`, lunch, { mailFrom: 'pat@remote.test' });
    await settled();
    // The same job again (a redelivery after a crash before the ack), and a second message.
    await send(`gus@${DOMAIN}`, lunch, {
      spoolId: first.spoolId,
      msgId: `${first.spoolId}:again`,
      mailFrom: 'pat@remote.test',
    });
    await send(`gus@${DOMAIN}`, `From: pat@remote.test\r\n${to}\r\nSubject: lunch tomorrow?`, {
      mailFrom: 'pat@remote.test',
    });
    await send(
      `gus@${DOMAIN}`,
      `From: list@lists.remote.test\r\n${to}\r\nList-Id: <dev.lists.remote.test>\r\nSubject: [dev] x`,
      {
        mailFrom: 'dev-bounces@lists.remote.test',
      },
    );
    await send(`gus@${DOMAIN}`, `From: MAILER-DAEMON@remote.test\r\n${to}\r\nSubject: Undelivered Mail`, {
      mailFrom: '',
    });
    await send(
      `gus@${DOMAIN}`,
      `From: bot@remote.test\r\n${to}\r\nAuto-Submitted: auto-generated\r\nSubject: ping`,
      {
        mailFrom: 'bot@remote.test',
      },
    );
    await send(`gus@${DOMAIN}`, `From: kim@remote.test\r\nTo: someone-else@remote.test\r\nSubject: bcc`, {
      mailFrom: 'kim@remote.test',
    });
    await settled();

    const replies = await outbound('pat@remote.test');
    expect(replies).toHaveLength(1);
    const reply = replies[0];
    // RFC 5230 §5 / RFC 3834: null reverse-path, Auto-Submitted, threaded to the original.
    expect(reply?.job.envelope.mailFrom).toBe('');
    const parsed = await simpleParser(Buffer.from(reply?.text ?? ''));
    expect(parsed.subject).toBe('Away');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-replied (vacation)');
    expect(parsed.inReplyTo).toBe(`<${first.spoolId}@remote.test>`);
    expect(parsed.text?.trim()).toBe('I am away until Monday.');
    for (const other of ['dev-bounces@lists.remote.test', 'bot@remote.test', 'kim@remote.test'])
      expect(await outbound(other), other).toHaveLength(0);
    await bus.nc.flush();
    expect(published.filter((r) => r === 'pat@remote.test')).toHaveLength(1);
    sub.unsubscribe();

    // Once :days has passed (the record expires), the next message is answered again.
    await h.db
      .collection('sieve_ledger')
      .updateMany({ _id: { $regex: `^vac:${users.gus}:` } as never }, { $set: { until: new Date(0) } });
    await send(`gus@${DOMAIN}`, `From: pat@remote.test\r\n${to}\r\nSubject: back yet?`, {
      mailFrom: 'pat@remote.test',
    });
    await settled();
    // A job that met a transient error is retried after a delay, during which the consumer may
    // count it neither pending nor unacknowledged: wait for the reply itself, bounded.
    const deadline = Date.now() + 30_000;
    while ((await outbound('pat@remote.test')).length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await outbound('pat@remote.test')).toHaveLength(2);
  });

  it('reject stores nothing and sends a DSN (5.7.1) to the envelope sender through MAIL_OUTBOUND', async () => {
    await activate(
      'hal',
      'require "reject"; if address :domain "from" "spam.remote.test" { reject "I do not want this."; }',
    );
    const j = await send(
      `hal@${DOMAIN}`,
      'From: ad@spam.remote.test\r\nTo: hal@sieve.test\r\nSubject: offer',
      {
        mailFrom: 'ad@spam.remote.test',
      },
    );
    const kept = await send(`hal@${DOMAIN}`, 'From: ok@remote.test\r\nTo: hal@sieve.test\r\nSubject: fine');
    await settled();
    expect(await copies(j.spoolId)).toEqual([]);
    expect(await copies(kept.spoolId)).toHaveLength(1);
    const dsns = await outbound('ad@spam.remote.test');
    expect(dsns).toHaveLength(1);
    expect(dsns[0]?.job.envelope.mailFrom).toBe('');
    expect(dsns[0]?.text).toMatch(/Status: 5\.7\.1/);
    expect(dsns[0]?.text).toMatch(/rejected by the recipient's filter: I do not want this\./);
    expect(dsns[0]?.text).toMatch(/Subject: offer/);
  });

  it('redirect sends the message on (local recipients get it in their INBOX) and discards the local copy', async () => {
    await activate('jon', `require "copy"; redirect "hal@${DOMAIN}"; redirect :copy "far@elsewhere.test";`);
    const j = await send(
      `jon@${DOMAIN}`,
      'From: pat@remote.test\r\nTo: jon@sieve.test\r\nSubject: pass it on',
    );
    await settled();
    expect(await copies(j.spoolId)).toEqual([]);
    const remote = await outbound('far@elsewhere.test');
    expect(remote).toHaveLength(1);
    expect(remote[0]?.job.envelope.mailFrom).toBe(`jon@${DOMAIN}`);
    expect(remote[0]?.text).toContain('Subject: pass it on');
    const local = await h.db
      .collection('messages')
      .countDocuments({ userId: users.hal, spoolId: { $regex: '^sv' } });
    expect(local).toBe(1);
  });

  it('two users redirecting to each other do not loop: the message comes back once and is kept', async () => {
    await activate('gus', `redirect "ivy@${DOMAIN}";`);
    await activate('ivy', `redirect "gus@${DOMAIN}";`);
    const j = await send(
      `gus@${DOMAIN}`,
      'From: pat@remote.test\r\nTo: gus@sieve.test\r\nSubject: ping pong',
    );
    // gus → ivy → gus, who already redirected it once: kept in gus's INBOX.
    const deadline = Date.now() + 30_000;
    let kept = 0;
    while (Date.now() < deadline) {
      await settled();
      kept = await h.db
        .collection('messages')
        .countDocuments({ userId: users.gus, spoolId: { $regex: '^sv' } });
      if (kept > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await settled();
    expect(kept).toBe(1);
    expect(await copies(j.spoolId)).toEqual([]);
    expect(
      await h.db.collection('messages').countDocuments({ userId: users.ivy, spoolId: { $regex: '^sv' } }),
    ).toBe(0);
    await activate('gus', 'keep;');
    await activate('ivy', 'keep;');
  });

  it('a broken script delivers to INBOX and tells the user once per script version', async () => {
    // Stored directly: the store refuses invalid scripts, but one written by an older version
    // (or a runtime error) must still not lose mail.
    await h.db.collection('sieve_scripts').insertOne({
      userId: users.ivy,
      name: 'broken',
      content: 'require "fileinto";\nif header :contains "subject" "x" {\n  fileinto "A"\n}',
      version: 'v1',
      active: true,
      updatedAt: new Date(),
    });
    const a = await send(`ivy@${DOMAIN}`, 'From: pat@remote.test\r\nTo: ivy@sieve.test\r\nSubject: one');
    const b = await send(`ivy@${DOMAIN}`, 'From: pat@remote.test\r\nTo: ivy@sieve.test\r\nSubject: two');
    await settled();
    await settled();
    expect(await copies(a.spoolId)).toEqual([{ path: 'INBOX', flags: [], userId: users.ivy }]);
    expect(await copies(b.spoolId)).toEqual([{ path: 'INBOX', flags: [], userId: users.ivy }]);
    const notices = await h.db
      .collection('messages')
      .find({ userId: users.ivy, spoolId: { $regex: '^sn' } })
      .toArray();
    expect(notices).toHaveLength(1);

    // An over-budget run (a runtime error) of a valid script: also INBOX, and one notice more.
    await activate('ivy', `if header :matches "subject" "*${'a'.repeat(300)}b" { discard; }`);
    const c = await send(
      `ivy@${DOMAIN}`,
      `From: pat@remote.test\r\nTo: ivy@sieve.test\r\nSubject: ${'a'.repeat(2000)}`,
    );
    await settled();
    await settled();
    expect(await copies(c.spoolId)).toEqual([{ path: 'INBOX', flags: [], userId: users.ivy }]);
    expect(
      await h.db.collection('messages').countDocuments({ userId: users.ivy, spoolId: { $regex: '^sn' } }),
    ).toBe(2);
  });

  it('refuses an invalid script with its line and column, and keeps one active script per user', async () => {
    const userId = users.jon ?? '';
    expect(await sieve.scripts.put(userId, 'bad', 'require "fileinto";\nfileinto "x"')).toEqual({
      ok: false,
      code: 'invalid',
      message: 'line 2, column 13: expected ";" after the "fileinto" command, found end of script',
    });
    expect((await sieve.scripts.put(userId, 'other', 'keep;')).ok).toBe(true);
    expect(await sieve.scripts.setActive(userId, 'other')).toBe(true);
    expect(await sieve.scripts.list(userId)).toEqual([
      { name: 'main', active: false },
      { name: 'other', active: true },
    ]);
    expect(await sieve.scripts.delete(userId, 'other')).toBe('active');
    expect(await sieve.scripts.delete(userId, 'main')).toBe('deleted');
  });

  it('IMAP (the imap identity) manages scripts over storage gRPC: put, check, list, activate, get, delete', async () => {
    const client = new MailstoreServiceClient(
      h.target,
      pkiSecurity(h.env.pki, 'imap').grpcClientCredentials(),
    );
    const userId = users.hal ?? '';
    try {
      const bad = await callError(
        call(client.putSieveScript.bind(client), {
          userId,
          name: 'x',
          content: 'if true { stop }',
          checkOnly: true,
        }),
      );
      expect(bad.code).toBe(status.INVALID_ARGUMENT);
      expect(bad.details).toBe('line 1, column 16: expected ";" after the "stop" command, found "}"');
      const content = 'require "fileinto";\r\nfileinto "Work";\r\n';
      await call(client.putSieveScript.bind(client), { userId, name: 'grpc', content, checkOnly: false });
      await call(client.setActiveSieveScript.bind(client), { userId, name: 'grpc' });
      const listed = await call(client.listSieveScripts.bind(client), { userId });
      expect(listed.scripts.find((s) => s.name === 'grpc')).toEqual({ name: 'grpc', active: true });
      expect(listed.scripts.filter((s) => s.active)).toHaveLength(1);
      expect((await call(client.getSieveScript.bind(client), { userId, name: 'grpc' })).content).toBe(
        content,
      );
      const active = await callError(call(client.deleteSieveScript.bind(client), { userId, name: 'grpc' }));
      expect(active.message).toMatch(/active script cannot be deleted/);
      expect(active.code).toBe(status.FAILED_PRECONDITION);
      await call(client.setActiveSieveScript.bind(client), { userId, name: '' });
      await call(client.deleteSieveScript.bind(client), { userId, name: 'grpc' });
      const gone = await callError(call(client.getSieveScript.bind(client), { userId, name: 'grpc' }));
      expect(gone.message).toMatch(/no such script/);
      expect(gone.code).toBe(status.NOT_FOUND);
    } finally {
      client.close();
    }
  });
});
