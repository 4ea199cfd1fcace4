/**
 * mta-delivery as a process with a small body budget (POSTMESH_MTA_BODY_BUDGET_BYTES) and a slow
 * remote MTA: jobs for five domains that could all be attempted at once are attempted one at a
 * time (each costs more than half the budget), a message larger than the whole budget is still
 * sent (alone), and every message arrives exactly once (waiting jobs stay in progress, they are
 * not redelivered).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  Subjects,
  encodeOutboundJob,
  openSpool,
  outboundJobMessageId,
  publishDurable,
  type OutboundJob,
} from '@postmesh/bus';
import {
  freePort,
  startService,
  startTestEnvironment,
  type RunningService,
  type TestEnvironment,
  FakeDnsServer,
} from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpSink } from './sink.js';

const DOMAINS = Array.from({ length: 5 }, (_, i) => `b${i}.test`);
const BUDGET = 600 * 1024;
const DATA_DELAY_MS = 400;

describe('mta-delivery body budget', () => {
  let env: TestEnvironment;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let sink: SmtpSink;
  let dns: FakeDnsServer | undefined;
  let mta: RunningService | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-mta-budget-'));

  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    const smtpPort = await freePort();
    sink = new SmtpSink({ port: smtpPort, dataDelayMs: DATA_DELAY_MS });
    await sink.listen();
    const dnsServer = await FakeDnsServer.start({
      MX: Object.fromEntries(DOMAINS.map((d) => [d, [{ exchange: `mx.${d}`, priority: 10 }]])),
      A: Object.fromEntries(DOMAINS.map((d) => [`mx.${d}`, ['127.0.0.1']])),
    });
    dns = dnsServer;
    nc = await connect(env.natsOptions());
    js = jetstream(nc);
    mta = await startService('mta-delivery', {
      env,
      dir,
      vars: {
        POSTMESH_STORAGE_GRPC: '127.0.0.1:1',
        POSTMESH_MTA_DKIM: 'false',
        POSTMESH_DNS_SERVERS: dnsServer.address,
        POSTMESH_MTA_SMTP_PORT: String(smtpPort),
        POSTMESH_MTA_BODY_BUDGET_BYTES: String(BUDGET),
      },
      readyTimeoutMs: 30_000,
    });
  }, 60_000);

  afterAll(async () => {
    await mta?.stop(5_000);
    await nc?.close();
    await sink?.close();
    await dns?.stop();
    await env?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('attempts no more bodies at once than the budget holds; a larger one runs alone', async () => {
    const run = randomBytes(4).toString('hex');
    const body = (domain: string, size: number) =>
      Buffer.from(
        `From: <alice@example.test>\r\nTo: <bob@${domain}>\r\nSubject: ${run} ${domain}\r\n\r\n` +
          `${'y'.repeat(998)}\r\n`.repeat(Math.ceil(size / 1000)),
      );
    const job = (domain: string, spoolId: string, jobBody: OutboundJob['body']): OutboundJob => ({
      version: 1,
      spoolId,
      domain,
      envelope: { mailFrom: 'alice@example.test', rcptTo: [`bob@${domain}`] },
      body: jobBody,
      queuedAt: new Date().toISOString(),
      messageId: '',
      traceparent: '',
    });
    // Four inline jobs of ~200 KB (each costs ~400 KB of the 600 KB budget: one at a time) ...
    for (const domain of DOMAINS.slice(0, 4)) {
      const spoolId = `b${randomBytes(8).toString('hex')}`;
      const raw = body(domain, 200_000);
      await publishDurable(
        js,
        Subjects.outbound(domain),
        encodeOutboundJob(job(domain, spoolId, { kind: 'inline', size: raw.length }), raw),
        { msgId: outboundJobMessageId(spoolId, domain) },
      );
    }
    // ... and one object job of ~1 MB, more than the whole budget.
    const bigDomain = DOMAINS[4] ?? '';
    const bigId = `b${randomBytes(8).toString('hex')}`;
    const big = body(bigDomain, 1_000_000);
    const store = await openSpool(nc);
    await store.putBlob({ name: `out/${bigId}` }, big);
    await publishDurable(
      js,
      Subjects.outbound(bigDomain),
      encodeOutboundJob(job(bigDomain, bigId, { kind: 'object', size: big.length, object: `out/${bigId}` })),
      { msgId: outboundJobMessageId(bigId, bigDomain) },
    );

    const deadline = Date.now() + 30_000;
    const mine = () => sink.received.filter((r) => r.data.includes(`Subject: ${run} `));
    while (mine().length < DOMAINS.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const got = mine();
    // Every message exactly once.
    expect(got.map((r) => r.to[0]).sort()).toEqual(DOMAINS.map((d) => `bob@${d}`).sort());
    // No two transactions overlapped: each end of data came after the previous reply.
    const times = got.map((r) => r.at).sort((a, b) => a - b);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(DATA_DELAY_MS - 50);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(mine()).toHaveLength(DOMAINS.length);
  }, 60_000);
});
