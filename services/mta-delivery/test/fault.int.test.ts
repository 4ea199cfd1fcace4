/**
 * Faults and the clock: `kill -9` of mta-delivery in the middle of a batch (every message is
 * delivered after a restart; duplicates bounded by the jobs in flight), and a recipient that
 * never accepts (delay notice, then the failure DSN when the queue lifetime runs out).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  Consumers,
  Streams,
  Subjects,
  decodeInboundJob,
  encodeOutboundJob,
  outboundJobMessageId,
  publishDurable,
} from '@postmesh/bus';
import {
  freePort,
  startService,
  startTestEnvironment,
  type ManagedProcess,
  type TestEnvironment,
  FakeDnsServer,
} from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpSink } from './sink.js';

const CONCURRENCY = 16;
const DOMAINS = Array.from({ length: 10 }, (_, i) => `d${i}.test`);

describe('mta-delivery faults', () => {
  let env: TestEnvironment;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let sink: SmtpSink;
  let smtpPort = 0;
  let dns: FakeDnsServer | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-mta-fault-'));
  const procs: ManagedProcess[] = [];

  const dnsAddress = (): string => {
    if (dns === undefined) throw new Error('the fake DNS server is not started');
    return dns.address;
  };

  async function startMta(extra: Record<string, string> = {}): Promise<ManagedProcess> {
    const opsPort = await freePort();
    const { proc } = await startService('mta-delivery', {
      env,
      dir,
      name: `mta-${opsPort}`,
      opsPort,
      vars: {
        POSTMESH_STORAGE_GRPC: '127.0.0.1:1',
        POSTMESH_MTA_DKIM: 'false',
        POSTMESH_DNS_SERVERS: dnsAddress(),
        POSTMESH_MTA_SMTP_PORT: String(smtpPort),
        POSTMESH_MTA_CONCURRENCY: String(CONCURRENCY),
        POSTMESH_MTA_QUEUE_TICK_MS: '200',
        POSTMESH_MTA_RETRY_JITTER_PCT: '0',
        ...extra,
      },
      readyTimeoutMs: 30_000,
    });
    procs.push(proc);
    return proc;
  }

  async function publish(rcpt: string, mailFrom = 'alice@example.test'): Promise<string> {
    const domain = rcpt.slice(rcpt.indexOf('@') + 1);
    const spoolId = `f${randomBytes(8).toString('hex')}`;
    const body = new TextEncoder().encode(
      `From: <alice@example.test>\r\nTo: <${rcpt}>\r\nSubject: ${rcpt}\r\n\r\nbody\r\n`,
    );
    await publishDurable(
      js,
      Subjects.outbound(domain),
      encodeOutboundJob(
        {
          version: 1,
          spoolId,
          domain,
          envelope: { mailFrom, rcptTo: [rcpt] },
          body: { kind: 'inline', size: body.length },
          queuedAt: new Date().toISOString(),
          messageId: '',
          traceparent: '',
        },
        body,
      ),
      { msgId: outboundJobMessageId(spoolId, domain) },
    );
    return spoolId;
  }

  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    smtpPort = await freePort();
    sink = new SmtpSink({
      port: smtpPort,
      rcpt: (address) =>
        address.startsWith('never@') ? { code: 452, message: '4.2.2 mailbox full' } : undefined,
      dataDelayMs: 20,
    });
    await sink.listen();
    dns = await FakeDnsServer.start({
      MX: Object.fromEntries(DOMAINS.map((d) => [d, [{ exchange: `mx.${d}`, priority: 10 }]])),
      A: Object.fromEntries(DOMAINS.map((d) => [`mx.${d}`, ['127.0.0.1']])),
    });
    nc = await connect(env.natsOptions('operator'));
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop(5_000)));
    await nc?.close();
    await sink?.close();
    await dns?.stop();
    await env?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('kill -9 in the middle of a batch: every message is delivered after a restart, duplicates at most the jobs in flight', async () => {
    const first = await startMta();
    const total = 300;
    const rcpts = Array.from({ length: total }, (_, i) => `m${i}@${DOMAINS[i % DOMAINS.length] ?? ''}`);
    for (const rcpt of rcpts) await publish(rcpt);
    const deadline = Date.now() + 30_000;
    while (sink.received.length < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await first.kill();
    const atKill = sink.received.length;
    expect(atKill).toBeGreaterThanOrEqual(100);
    expect(atKill).toBeLessThan(total);

    await startMta();
    // Jobs the dead process held come back after ack_wait (5 min in the topology); shorten it so
    // the test does not wait. The restarted process re-applied the topology, so set it now.
    await jsm.consumers.update(Streams.MAIL_OUTBOUND, Consumers.MTA_DELIVERY, { ack_wait: 2_000_000_000 });
    const end = Date.now() + 60_000;
    const count = (r: string): number => sink.for(r).length;
    while (!rcpts.every((r) => count(r) >= 1) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 100));
    const missing = rcpts.filter((r) => count(r) === 0);
    expect(missing).toEqual([]);
    const duplicates = rcpts.reduce((n, r) => n + count(r) - 1, 0);
    // The window: a remote 250 seen, the ack not yet sent — one transaction per job in flight.
    expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
    // Every job is acknowledged in the end (redelivered duplicates included).
    let unsettled = -1;
    const settleBy = Date.now() + 30_000;
    while (unsettled !== 0 && Date.now() < settleBy) {
      const info = await jsm.consumers.info(Streams.MAIL_OUTBOUND, Consumers.MTA_DELIVERY);
      unsettled = info.num_ack_pending + info.num_pending;
      if (unsettled !== 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(unsettled).toBe(0);
  });

  it('sends a delay notice, then a failure DSN when the queue lifetime runs out', async () => {
    // Only this test's process may consume (the previous test's may still run if it failed).
    await Promise.all(procs.map((p) => p.stop(5_000)));
    await startMta({
      POSTMESH_MTA_RETRY_SCHEDULE_MS: '200',
      POSTMESH_MTA_DELAY_NOTICE_MS: '500',
      POSTMESH_MTA_QUEUE_LIFETIME_MS: '2500',
    });
    const spoolId = await publish('never@d1.test');
    const dsns = async (): Promise<string[]> => {
      const info = await jsm.streams.info(Streams.MAIL_INBOUND);
      const out: string[] = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const m = await jsm.streams.getMessage(Streams.MAIL_INBOUND, { seq }).catch(() => null);
        const decoded = m ? decodeInboundJob(m.data) : undefined;
        if (decoded?.ok && decoded.inlineBody) {
          const text = Buffer.from(decoded.inlineBody).toString();
          if (text.includes(`X-Postmesh-Queue-ID: ${spoolId}`)) out.push(text);
        }
      }
      return out;
    };
    const deadline = Date.now() + 20_000;
    let found: string[] = [];
    while (Date.now() < deadline) {
      found = await dsns();
      if (found.some((t) => t.includes('Action: failed'))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const delayed = found.filter((t) => t.includes('Action: delayed'));
    const failed = found.filter((t) => t.includes('Action: failed'));
    expect(delayed).toHaveLength(1);
    expect(delayed[0]).toContain('Status: 4.2.2');
    expect(delayed[0]).toContain('Will-Retry-Until:');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain('Status: 4.4.7');
    expect(failed[0]).toContain('452 4.2.2 mailbox full');
    expect(sink.for('never@d1.test')).toHaveLength(0);
  });
});
