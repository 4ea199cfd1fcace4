/**
 * mta-delivery as a process against a real nats-server, local SMTP sinks (smtp-server) and a DNS
 * fixture: MX/A/null-MX routing, retries on a compressed schedule, bounces as DSN jobs for the
 * sender, MTA-STS enforcement, queue operations, relay mode with AUTH after STARTTLS.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  QueueSubjects,
  Streams,
  Subjects,
  decodeInboundJob,
  encodeOutboundJob,
  openSpool,
  spoolObjectName,
  outboundJobMessageId,
  publishDurable,
  type QueueListResponse,
  type QueueCancelResponse,
  type QueueRetryResponse,
} from '@postmesh/bus';
import {
  freePort,
  startService,
  startTestEnvironment,
  type ManagedProcess,
  type TestEnvironment,
  FakeDnsServer,
} from '@postmesh/testing';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokenStartTlsSink, SmtpSink } from './sink.js';

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function message(from: string, to: string, subject: string): Uint8Array {
  return new TextEncoder().encode(
    `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@example.test>\r\nDate: Fri, 27 Nov 2026 19:00:00 +0000\r\n\r\n${'x'.repeat(200)}\r\n`,
  );
}

interface TraceEvent {
  readonly kind: string;
  readonly service: string;
  readonly queueId: string;
  readonly recipient: string;
  readonly detail: string;
  readonly attributes: Record<string, string>;
}

describe('mta-delivery', () => {
  const events: TraceEvent[] = [];
  let env: TestEnvironment;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let sink: SmtpSink;
  let dns: FakeDnsServer | undefined;
  let relaySink: SmtpSink;
  let brokenTls: BrokenStartTlsSink;
  let policyServer: Server;
  const procs: ManagedProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-mta-test-'));

  async function startMta(extra: Record<string, string>): Promise<ManagedProcess> {
    const opsPort = await freePort();
    const { proc } = await startService('mta-delivery', {
      env,
      dir,
      name: `mta-${opsPort}`,
      opsPort,
      vars: {
        POSTMESH_STORAGE_GRPC: '127.0.0.1:1',
        POSTMESH_MTA_DKIM: 'false',
        POSTMESH_HOSTNAME: 'mta.example.test',
        POSTMESH_MTA_RETRY_SCHEDULE_MS: '300,600',
        POSTMESH_MTA_RETRY_JITTER_PCT: '0',
        POSTMESH_MTA_QUEUE_TICK_MS: '200',
        POSTMESH_MTA_CONNECT_TIMEOUT_MS: '2000',
        POSTMESH_MTA_COMMAND_TIMEOUT_MS: '5000',
        ...extra,
      },
      readyTimeoutMs: 30_000,
    });
    procs.push(proc);
    return proc;
  }

  let published = 0;
  async function send(
    domain: string,
    rcpts: string[],
    subject: string,
    mailFrom = 'alice@example.test',
  ): Promise<string> {
    published += 1;
    const spoolId = `t${published}${randomBytes(6).toString('hex')}`;
    const body = message(mailFrom || 'daemon@example.test', rcpts[0] ?? '', subject);
    const frame = encodeOutboundJob(
      {
        version: 1,
        spoolId,
        domain,
        envelope: { mailFrom, rcptTo: rcpts },
        body: { kind: 'inline', size: body.length },
        queuedAt: new Date().toISOString(),
        messageId: `${subject}@example.test`,
        traceparent: '',
      },
      body,
    );
    await publishDurable(js, Subjects.outbound(domain), frame, {
      msgId: outboundJobMessageId(spoolId, domain),
    });
    return spoolId;
  }

  /** DSN jobs published to MAIL_INBOUND (no storage runs in this suite, so they stay there). */
  async function dsns(): Promise<{ rcpt: string; text: string; raw: Buffer }[]> {
    const info = await jsm.streams.info(Streams.MAIL_INBOUND);
    const out: { rcpt: string; text: string; raw: Buffer }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(Streams.MAIL_INBOUND, { seq }).catch(() => null);
      if (!m) continue;
      const decoded = decodeInboundJob(m.data);
      if (!decoded.ok || decoded.inlineBody === undefined) continue;
      const raw = Buffer.from(decoded.inlineBody);
      out.push({ rcpt: decoded.job.envelope.rcptTo[0] ?? '', text: raw.toString('utf8'), raw });
    }
    return out;
  }

  async function request<T>(subject: string, body: unknown): Promise<T> {
    const reply = await nc.request(subject, new TextEncoder().encode(JSON.stringify(body)), {
      timeout: 5_000,
    });
    return reply.json<T>();
  }

  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    const smtpPort = await freePort();
    sink = new SmtpSink({
      port: smtpPort,
      rcpt: (address, count) => {
        if (address.startsWith('unknown@')) return { code: 550, message: '5.1.1 no such user' };
        if (address.startsWith('later@') && count <= 2)
          return { code: 451, message: '4.7.1 try again later' };
        if (address.startsWith('never@')) return { code: 451, message: '4.3.0 mailbox busy' };
        return undefined;
      },
    });
    await sink.listen();
    // Same port, another loopback address: the MX whose STARTTLS handshake always fails.
    brokenTls = new BrokenStartTlsSink({ port: smtpPort, host: '127.0.0.3' });
    await brokenTls.listen();
    const policyPort = await freePort();
    policyServer = createServer((req, res) => {
      if (req.url === '/sts.test/.well-known/mta-sts.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n');
      } else if (req.url === '/brokensts.test/.well-known/mta-sts.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('version: STSv1\r\nmode: enforce\r\nmx: mx.broken.test\r\nmax_age: 86400\r\n');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => policyServer.listen(policyPort, '127.0.0.1', resolve));
    dns = await FakeDnsServer.start({
      MX: {
        'one.test': [{ exchange: 'mx.one.test', priority: 10 }],
        // The preferred MX refuses connections (nothing listens on 127.0.0.2): the next one is used.
        'two.test': [
          { exchange: 'dead.two.test', priority: 5 },
          { exchange: 'mx.two.test', priority: 10 },
        ],
        'nullmx.test': [{ exchange: '', priority: 0 }],
        'sts.test': [{ exchange: 'mx.sts.test', priority: 10 }],
        // Two domains served by the same MX with a broken STARTTLS: one without a policy,
        // one with an MTA-STS enforce policy.
        'brokentls.test': [{ exchange: 'mx.broken.test', priority: 10 }],
        'brokensts.test': [{ exchange: 'mx.broken.test', priority: 10 }],
      },
      A: {
        'mx.one.test': ['127.0.0.1'],
        'dead.two.test': ['127.0.0.2'],
        'mx.two.test': ['127.0.0.1'],
        'aonly.test': ['127.0.0.1'],
        'mx.sts.test': ['127.0.0.1'],
        'mx.broken.test': ['127.0.0.3'],
      },
      TXT: {
        '_mta-sts.sts.test': ['v=STSv1; id=20261127'],
        '_mta-sts.brokensts.test': ['v=STSv1; id=20261127b'],
      },
    });
    nc = await connect(env.natsOptions('operator'));
    nc.subscribe('mail.events.>', {
      callback: (_error, msg) => {
        events.push(msg.json<TraceEvent>());
      },
    });
    await startMta({
      POSTMESH_DNS_SERVERS: dns.address,
      POSTMESH_MTA_SMTP_PORT: String(smtpPort),
      POSTMESH_MTA_STS_FETCH_BASE: `http://127.0.0.1:${policyPort}`,
    });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop(5_000)));
    await nc?.close();
    await sink?.close();
    await dns?.stop();
    await relaySink?.close();
    await brokenTls?.close();
    await new Promise((r) => policyServer?.close(r));
    await env?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers to two MX domains (falling back past a dead MX) and to an A-only domain, over STARTTLS', async () => {
    await send('one.test', ['bob@one.test', 'carol@one.test'], 'two-rcpts');
    await send('two.test', ['dave@two.test'], 'fallback');
    await send('aonly.test', ['erin@aonly.test'], 'a-only');
    await until(
      'three deliveries',
      () =>
        ['bob@one.test', 'dave@two.test', 'erin@aonly.test'].every((r) => sink.for(r).length > 0) ||
        undefined,
    );
    const one = sink.for('bob@one.test');
    expect(one).toHaveLength(1);
    expect(one[0]?.to).toEqual(['bob@one.test', 'carol@one.test']);
    expect(one[0]?.from).toBe('alice@example.test');
    expect(one[0]?.secure).toBe(true);
    expect(one[0]?.data.toString()).toContain('Subject: two-rcpts');
    expect(sink.for('dave@two.test')).toHaveLength(1);
    expect(sink.for('erin@aonly.test')).toHaveLength(1);
    const delivered = await until('the delivered trace event', () =>
      events.find((e) => e.kind === 'delivered' && e.recipient === 'carol@one.test'),
    );
    expect(delivered.service).toBe('mta-delivery');
    expect(delivered.detail).toMatch(/^250 /);
    expect(delivered.attributes.remote_mta).toBe('mx.one.test');
    expect(delivered.attributes.tls).toMatch(/^TLSv1\.[23]$/);
    expect(events.some((e) => e.kind === 'queued' && e.recipient === 'carol@one.test')).toBe(true);
  });

  it('delivers a large message kept in the mail-spool object store', async () => {
    const spool = await openSpool(nc);
    const spoolId = `big${randomBytes(8).toString('hex')}`;
    const line = 'y'.repeat(998) + '\r\n';
    const big = Buffer.from(
      `From: <alice@example.test>\r\nTo: <big@one.test>\r\nSubject: big\r\n\r\n${line.repeat(400)}`,
    );
    await spool.putBlob({ name: spoolObjectName(spoolId) }, new Uint8Array(big));
    await publishDurable(
      js,
      Subjects.outbound('one.test'),
      encodeOutboundJob({
        version: 1,
        spoolId,
        domain: 'one.test',
        envelope: { mailFrom: 'alice@example.test', rcptTo: ['big@one.test'] },
        body: { kind: 'object', size: big.length, object: spoolObjectName(spoolId) },
        queuedAt: new Date().toISOString(),
        messageId: '',
        traceparent: '',
      }),
      { msgId: outboundJobMessageId(spoolId, 'one.test') },
    );
    await until('the large delivery', () => (sink.for('big@one.test').length > 0 ? true : undefined));
    const got = sink.for('big@one.test')[0]?.data ?? Buffer.alloc(0);
    expect(got.length).toBeGreaterThanOrEqual(big.length);
    expect(got.subarray(got.length - big.length).equals(big)).toBe(true);
  });

  it('deletes a spool object shared by two domain jobs once both are final (one delivered, one cancelled), not before', async () => {
    const spool = await openSpool(nc);
    const spoolId = `shared${randomBytes(8).toString('hex')}`;
    const object = `out/${spoolId}`;
    const big = Buffer.from(
      `From: <alice@example.test>\r\nTo: <shared@one.test>\r\nSubject: shared\r\n\r\n${'z'.repeat(998)}\r\n`,
    );
    await spool.putBlob({ name: object }, new Uint8Array(big));
    const sharedBy = ['one.test', 'two.test'];
    const publish = (domain: string, rcpt: string) =>
      publishDurable(
        js,
        Subjects.outbound(domain),
        encodeOutboundJob({
          version: 1,
          spoolId,
          domain,
          envelope: { mailFrom: 'alice@example.test', rcptTo: [rcpt] },
          body: { kind: 'object', size: big.length, object, sharedBy },
          queuedAt: new Date().toISOString(),
          messageId: '',
          traceparent: '',
        }),
        { msgId: outboundJobMessageId(spoolId, domain) },
      );
    await publish('one.test', 'shared@one.test');
    await publish('two.test', 'never@two.test'); // always 451: stays in the queue
    await until('the one.test delivery', () => (sink.for('shared@one.test').length > 0 ? true : undefined));
    const owner = { actor: 'admin-1', role: 'owner', domains: [] };
    const listed = await until('the deferred two.test job', async () => {
      const r = await request<QueueListResponse>(QueueSubjects.list, { caller: owner });
      return r.ok ? r.items.find((i) => i.spoolId === spoolId && i.domain === 'two.test') : undefined;
    });
    const refs = await new Kvm(nc).open('mta-spool-refs');
    await until('one.test recorded final', async () =>
      (await refs.get(`${spoolId}.one.test`))?.operation === 'PUT' ? true : undefined,
    );
    // One job is final, the other still needs the body: the object stays.
    expect((await spool.info(object))?.deleted ?? true).toBe(false);
    expect(Buffer.from((await spool.getBlob(object)) ?? new Uint8Array()).equals(big)).toBe(true);

    const cancel = await request<QueueCancelResponse>(QueueSubjects.cancel, {
      caller: owner,
      id: listed.id,
      dsn: false,
    });
    expect(cancel.ok).toBe(true);
    await until('the object deleted', async () => {
      const info = await spool.info(object);
      return info === null || info.deleted ? true : undefined;
    });
    expect((await refs.get(`${spoolId}.two.test`))?.operation).toBe('PUT');
    expect(sink.for('never@two.test')).toHaveLength(0);
  });

  it('bounces a null-MX domain at once, and a 550 recipient, with a DSN for the sender', async () => {
    const nullSpool = await send('nullmx.test', ['x@nullmx.test'], 'nullmx');
    await send('one.test', ['unknown@one.test', 'frank@one.test'], 'half-bounce');
    const found = await until('two DSNs', async () => {
      const all = await dsns();
      const a = all.find((d) => d.text.includes('x@nullmx.test'));
      const b = all.find((d) => d.text.includes('unknown@one.test'));
      return a && b ? { a, b } : undefined;
    });
    expect(sink.for('x@nullmx.test')).toHaveLength(0);
    expect(found.a.rcpt).toBe('alice@example.test');
    expect(found.a.text).toContain('Status: 5.1.10');
    expect(found.a.text).toContain(`X-Postmesh-Queue-ID: ${nullSpool}`);
    const parsed = await simpleParser(found.b.raw);
    expect(parsed.text).toContain('Final-Recipient: rfc822; unknown@one.test');
    expect(parsed.text).toContain('Status: 5.1.1');
    expect(parsed.text).toContain('Diagnostic-Code: smtp; 550 5.1.1 no such user');
    expect(parsed.text).not.toContain('frank@one.test');
    const headers = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers');
    expect(headers?.content.toString()).toContain('Subject: half-bounce');
    expect(sink.for('frank@one.test')).toHaveLength(1);
    const bounced = await until('the bounced trace event', () =>
      events.find((e) => e.kind === 'bounced' && e.recipient === 'unknown@one.test'),
    );
    expect(bounced.detail).toBe('550 5.1.1 no such user');
  });

  it('never sends a DSN to the null sender', async () => {
    const before = (await dsns()).length;
    await send('one.test', ['unknown@one.test'], 'null-sender-bounce', '');
    await until('the bounce attempt', () =>
      (sink.rcptCounts.get('unknown@one.test') ?? 0) >= 2 ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect((await dsns()).length).toBe(before);
  });

  it('retries 4xx on the schedule and delivers on the third attempt', async () => {
    const started = Date.now();
    await send('one.test', ['later@one.test'], 'greylisted');
    await until('delivery after two 451s', () => (sink.for('later@one.test').length > 0 ? true : undefined));
    expect(sink.rcptCounts.get('later@one.test')).toBe(3);
    // 300 ms then 600 ms (no jitter): the third attempt cannot come before 900 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(sink.for('later@one.test')).toHaveLength(1);
    const deferred = events.filter((e) => e.kind === 'deferred' && e.recipient === 'later@one.test');
    expect(deferred.map((e) => e.detail)).toEqual(['451 4.7.1 try again later', '451 4.7.1 try again later']);
    expect(deferred.map((e) => e.attributes.attempt)).toEqual(['1', '2']);
  });

  it('defers an MTA-STS enforce domain whose MX has no valid certificate, never in plaintext; queue ops see it', async () => {
    const spoolId = await send('sts.test', ['gina@sts.test'], 'sts');
    const owner = { actor: 'admin-1', role: 'owner', domains: [] };
    const listed = await until('the deferred entry', async () => {
      const r = await request<QueueListResponse>(QueueSubjects.list, { caller: owner });
      return r.ok ? r.items.find((i) => i.spoolId === spoolId) : undefined;
    });
    expect(listed.id).toBe(`${spoolId}:sts.test`);
    expect(listed.recipients).toEqual(['gina@sts.test']);
    expect(listed.lastError).toMatch(/^451 4\.4\.1 mx\.sts\.test \[127\.0\.0\.1\]/);
    expect(sink.for('gina@sts.test')).toHaveLength(0);
    expect(sink.rcptCounts.get('gina@sts.test')).toBeUndefined();
    // RFC 8460: the failure is kept for the TLS report.
    const reports = await new Kvm(nc).open('mta-tls-reports');
    const keys: string[] = [];
    for await (const key of await reports.keys()) keys.push(key);
    const stsKey = keys.find((k) => k.includes('.sts.test.'));
    expect(stsKey, JSON.stringify(keys)).toBeDefined();
    const report = (await reports.get(stsKey ?? ''))?.json<{
      resultType: string;
      receivingMxHostname: string;
    }>();
    expect(report).toMatchObject({
      resultType: 'certificate-not-trusted',
      receivingMxHostname: 'mx.sts.test',
    });

    const other = await request<QueueListResponse>(QueueSubjects.list, {
      caller: { actor: 'da', role: 'domain-admin', domains: ['other.test'] },
    });
    expect(other.ok && other.items.some((i) => i.spoolId === spoolId)).toBe(false);
    const helpdesk = await request<QueueListResponse>(QueueSubjects.list, {
      caller: { actor: 'hd', role: 'helpdesk', domains: ['example.test'] },
    });
    expect(helpdesk).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    // A request that does not match its schema is refused with the field that is wrong.
    const unknownRole = await request<QueueListResponse>(QueueSubjects.list, {
      caller: { actor: 'x', role: 'root', domains: [] },
    });
    expect(unknownRole).toEqual({
      ok: false,
      error: {
        code: 'invalid',
        message: 'caller.role: expected one of owner, domain-admin, helpdesk, auditor, user',
      },
    });
    const noDsn = await request<QueueCancelResponse>(QueueSubjects.cancel, { caller: owner, id: listed.id });
    expect(noDsn).toEqual({ ok: false, error: { code: 'invalid', message: 'dsn: is required' } });
    const auditorRetry = await request<QueueRetryResponse>(QueueSubjects.retry, {
      caller: { actor: 'au', role: 'auditor', domains: [] },
      id: listed.id,
    });
    expect(auditorRetry).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const retry = await request<QueueRetryResponse>(QueueSubjects.retry, {
      caller: { actor: 'da', role: 'domain-admin', domains: ['example.test'] },
      id: listed.id,
    });
    expect(retry.ok).toBe(true);

    const cancel = await request<QueueCancelResponse>(QueueSubjects.cancel, {
      caller: owner,
      id: listed.id,
      dsn: true,
    });
    expect(cancel).toEqual({ ok: true, id: listed.id, dsnSent: true });
    await until('the cancel DSN', async () =>
      (await dsns()).find((d) => d.text.includes('gina@sts.test')) ? true : undefined,
    );
    await until('the entry gone', async () => {
      const r = await request<QueueListResponse>(QueueSubjects.list, { caller: owner });
      return r.ok && !r.items.some((i) => i.spoolId === spoolId) ? true : undefined;
    });
    expect(sink.for('gina@sts.test')).toHaveLength(0);
  });

  interface TlsReportRecord {
    resultType: string;
    receivingMxHostname: string;
    receivingIp: string;
    detail: string;
  }
  /** TLS-RPT records (RFC 8460) kept for a policy domain. */
  async function tlsReportsFor(policyDomain: string): Promise<TlsReportRecord[]> {
    const reports = await new Kvm(nc).open('mta-tls-reports');
    const out: TlsReportRecord[] = [];
    for await (const key of await reports.keys(`*.${policyDomain}.*`)) {
      const entry = await reports.get(key);
      if (entry !== null) out.push(entry.json());
    }
    return out;
  }

  it('an MX whose STARTTLS handshake fails gets the mail in plaintext without a policy (RFC 7435 §4), the failure kept for TLS-RPT', async () => {
    const before = brokenTls.startTlsAttempts;
    await send('brokentls.test', ['hal@brokentls.test'], 'broken-tls');
    await until('the plaintext delivery', () =>
      brokenTls.for('hal@brokentls.test').length > 0 ? true : undefined,
    );
    const got = brokenTls.for('hal@brokentls.test');
    expect(got).toHaveLength(1);
    expect(got[0]?.secure).toBe(false);
    expect(got[0]?.from).toBe('alice@example.test');
    expect(got[0]?.data.toString()).toContain('Subject: broken-tls');
    // STARTTLS was tried first: the plaintext session is the fallback, not the first choice.
    expect(brokenTls.startTlsAttempts).toBeGreaterThan(before);
    expect(sink.for('hal@brokentls.test')).toHaveLength(0);
    const reports = await until('the TLS failure record', async () => {
      const r = await tlsReportsFor('brokentls.test');
      return r.length > 0 ? r : undefined;
    });
    expect(reports[0]).toMatchObject({ receivingMxHostname: 'mx.broken.test' });
    // RFC 8460 §4.3: a handshake failing for no more specific reason is a `validation-failure`.
    expect(reports[0]).toMatchObject({ resultType: 'validation-failure', receivingIp: '127.0.0.3' });
    expect(reports[0]?.detail).toMatch(/wrong version number|SSL|TLS/i);
    const delivered = await until('the delivered trace event', () =>
      events.find((e) => e.kind === 'delivered' && e.recipient === 'hal@brokentls.test'),
    );
    expect(delivered.attributes.remote_mta).toBe('mx.broken.test');
    expect(delivered.attributes.tls ?? '').not.toMatch(/^TLS/);
  });

  it('the same MX under an MTA-STS enforce policy: deferred, never in plaintext (RFC 8461 §5)', async () => {
    const spoolId = await send('brokensts.test', ['ivan@brokensts.test'], 'broken-sts');
    const owner = { actor: 'admin-1', role: 'owner', domains: [] };
    const listed = await until('the deferred entry', async () => {
      const r = await request<QueueListResponse>(QueueSubjects.list, { caller: owner });
      return r.ok ? r.items.find((i) => i.spoolId === spoolId && i.attempts >= 2) : undefined;
    });
    expect(listed.lastError).toMatch(/^451 4\.4\.1 mx\.broken\.test \[127\.0\.0\.3\]/);
    expect(brokenTls.for('ivan@brokensts.test')).toHaveLength(0);
    const reports = await until('the TLS failure record', async () => {
      const r = await tlsReportsFor('brokensts.test');
      return r.some((x) => x.receivingMxHostname === 'mx.broken.test') ? r : undefined;
    });
    expect(reports.length).toBeGreaterThan(0);
    const cancel = await request<QueueCancelResponse>(QueueSubjects.cancel, {
      caller: owner,
      id: listed.id,
      dsn: false,
    });
    expect(cancel).toEqual({ ok: true, id: listed.id, dsnSent: false });
    expect(brokenTls.for('ivan@brokensts.test')).toHaveLength(0);
  });

  it('relays everything through a smart host with AUTH after STARTTLS', async () => {
    const certDir = mkdtempSync(join(dir, 'cert-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=relay.test',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(certDir, 'key.pem'),
        '-out',
        join(certDir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const relayPort = await freePort();
    relaySink = new SmtpSink({
      port: relayPort,
      auth: { user: 'relay-user', pass: 'relay-secret' },
      cert: {
        key: readFileSync(join(certDir, 'key.pem'), 'utf8'),
        cert: readFileSync(join(certDir, 'cert.pem'), 'utf8'),
      },
    });
    await relaySink.listen();
    // A second mta-delivery in relay mode takes over the consumer from the first.
    await Promise.all(procs.map((p) => p.stop(5_000)));
    await startMta({
      POSTMESH_RELAY_HOST: '127.0.0.1',
      POSTMESH_RELAY_PORT: String(relayPort),
      POSTMESH_RELAY_USER: 'relay-user',
      POSTMESH_RELAY_PASSWORD: 'relay-secret',
      POSTMESH_MTA_TLS_CA_FILE: join(certDir, 'cert.pem'),
    });
    await send('anywhere.example', ['henry@anywhere.example'], 'relayed');
    await until('relay delivery', () =>
      relaySink.for('henry@anywhere.example').length > 0 ? true : undefined,
    );
    const got = relaySink.for('henry@anywhere.example')[0];
    expect(got?.secure).toBe(true);
    expect(got?.user).toBe('relay-user');
  });
});
