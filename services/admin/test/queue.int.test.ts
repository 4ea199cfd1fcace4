/**
 * The outbound queue through the admin API with the real mta-delivery process: a message to a
 * host that answers 451 (RFC 5321 §4.2.1: transient) stays deferred; the API lists it with its
 * last error, retries it and cancels it; a domain-admin of another domain gets 403.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, encodeOutboundJob, outboundJobMessageId, publishDurable, Subjects } from '@postmesh/bus';
import { createLogger } from '@postmesh/telemetry';
import { freePort, ManagedProcess, repoRoot } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

const PASSWORD = 'queue test password 1';
let h: AdminHarness;
let owner: ApiClient;
let other: ApiClient;
let mta: ManagedProcess;
let sink: Server;
let bus: Bus;
const dir = mkdtempSync(join(tmpdir(), 'postmesh-admin-queue-'));

/** A remote MTA that accepts the sender and answers every recipient 451 (the message stays deferred). */
function deferringSink(): Server {
  return createServer((socket: Socket) => {
    socket.setEncoding('utf8');
    socket.write('220 sink.example.org ESMTP\r\n');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i).toUpperCase();
        buffer = buffer.slice(i + 2);
        if (line.startsWith('EHLO') || line.startsWith('HELO')) socket.write('250 sink.example.org\r\n');
        else if (line.startsWith('MAIL')) socket.write('250 2.1.0 ok\r\n');
        else if (line.startsWith('RCPT')) socket.write('451 4.7.1 try again later\r\n');
        else if (line.startsWith('QUIT')) socket.end('221 2.0.0 bye\r\n');
        else if (line.startsWith('RSET') || line.startsWith('NOOP')) socket.write('250 2.0.0 ok\r\n');
        else socket.write('503 5.5.1 bad sequence\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Listed {
  id: string;
  sender: string;
  attempts: number;
  nextAttemptAt: string;
  lastError: string;
}

beforeAll(async () => {
  h = await startAdminHarness();
  owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
  for (const name of ['alpha.test', 'beta.test'])
    expect((await owner.post('/api/v1/domains', { name })).status).toBeLessThan(300);
  expect(
    (
      await owner.post('/api/v1/admins', {
        email: 'beta-admin@example.test',
        password: PASSWORD,
        role: 'domain-admin',
        domains: ['beta.test'],
      })
    ).status,
  ).toBeLessThan(300);
  other = new ApiClient(h.baseUrl);
  expect((await other.login('beta-admin@example.test', PASSWORD)).status).toBe(200);

  const smtpPort = await freePort();
  sink = deferringSink();
  await new Promise<void>((resolve) => sink.listen(smtpPort, '127.0.0.1', resolve));
  const fixture = join(dir, 'dns.json');
  writeFileSync(
    fixture,
    JSON.stringify({
      MX: { 'example.org': [{ exchange: 'mx.example.org', priority: 10 }] },
      A: { 'mx.example.org': ['127.0.0.1'] },
    }),
  );
  const opsPort = await freePort();
  mta = new ManagedProcess({
    name: 'mta-delivery',
    command: process.execPath,
    args: [join(repoRoot(), 'services/mta-delivery/dist/main.js')],
    env: {
      ...process.env,
      NATS_URL: h.env.natsUrl,
      NATS_MONITOR_URL: h.env.natsMonitorUrl ?? '',
      POSTMESH_OPS_PORT: String(opsPort),
      POSTMESH_STORAGE_GRPC: h.storageGrpc,
      POSTMESH_MTA_DKIM: 'false',
      POSTMESH_HOSTNAME: 'mta.example.test',
      // Long enough that the entry stays deferred while the test looks at it.
      POSTMESH_MTA_RETRY_SCHEDULE_MS: '600000',
      POSTMESH_MTA_RETRY_JITTER_PCT: '0',
      POSTMESH_MTA_QUEUE_TICK_MS: '200',
      POSTMESH_MTA_CONNECT_TIMEOUT_MS: '2000',
      POSTMESH_DNS_FIXTURE_FILE: fixture,
      POSTMESH_MTA_SMTP_PORT: String(smtpPort),
      LOG_LEVEL: 'info',
    },
    logFile: join(dir, 'mta.log'),
  });
  mta.start();
  await until('mta-delivery ready', async () => {
    const r = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`).catch(() => undefined);
    return r?.status === 200 ? true : undefined;
  }).catch((error: unknown) => {
    throw new Error(`${String(error)}\n${readFileSync(join(dir, 'mta.log'), 'utf8').slice(-3000)}`);
  });
  bus = await Bus.connect({
    url: h.env.natsUrl,
    name: 'admin-queue-test',
    logger: createLogger('admin-queue-test', 'silent'),
    replicas: 1,
  });
}, 120_000);

afterAll(async () => {
  await bus?.drain();
  await mta?.stop();
  await new Promise((r) => (sink === undefined ? r(undefined) : sink.close(r)));
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function queueOne(subject: string): Promise<string> {
  const spoolId = `q${randomBytes(6).toString('hex')}`;
  const body = Buffer.from(
    `From: ann@alpha.test\r\nTo: bob@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${spoolId}@alpha.test>\r\n\r\nhello\r\n`,
  );
  const frame = encodeOutboundJob(
    {
      version: 1,
      spoolId,
      domain: 'example.org',
      envelope: { mailFrom: 'ann@alpha.test', rcptTo: ['bob@example.org'] },
      body: { kind: 'inline', size: body.length },
      queuedAt: new Date().toISOString(),
      messageId: `${spoolId}@alpha.test`,
      traceparent: '',
    },
    body,
  );
  await publishDurable(bus.js, Subjects.outbound('example.org'), frame, {
    msgId: outboundJobMessageId(spoolId, 'example.org'),
  });
  return `${spoolId}:example.org`;
}

const listed = async (client: ApiClient, id: string): Promise<Listed | undefined> => {
  const r = await client.get('/api/v1/queue?domain=alpha.test');
  return (r.body as { items?: Listed[] }).items?.find((e) => e.id === id);
};

describe('outbound queue through mta-delivery', () => {
  it('lists a deferred message with its last error, retries it and cancels it; another domain gets 403', async () => {
    const id = await queueOne('deferred');
    const entry = await until('the deferred entry', async () => {
      const e = await listed(owner, id);
      return e !== undefined && e.attempts >= 1 ? e : undefined;
    });
    expect(entry).toMatchObject({ sender: 'ann@alpha.test' });
    expect(entry.lastError).toMatch(/451/);
    expect(Date.parse(entry.nextAttemptAt)).toBeGreaterThan(Date.now());

    // A domain-admin of beta.test sees nothing of alpha's mail and may not touch it.
    const theirs = (await other.get('/api/v1/queue')).body as { items: Listed[] };
    expect(theirs.items.map((e) => e.id)).not.toContain(id);
    const path = `/api/v1/queue/${encodeURIComponent(id)}`;
    expect((await other.post(`${path}/retry`)).body).toMatchObject({
      error: { status: 403, code: 'permission_denied' },
    });
    expect((await other.delete(`${path}?dsn=false`)).status).toBe(403);

    const retried = await owner.post(`${path}/retry`);
    expect(retried.body).toMatchObject({ retried: true, id });
    // The retry runs within a tick and is deferred again: one more attempt.
    await until('a second attempt', async () => {
      const e = await listed(owner, id);
      return e !== undefined && e.attempts > entry.attempts ? e : undefined;
    });

    expect((await owner.delete(`${path}?dsn=false`)).body).toEqual({ cancelled: true, id, dsnSent: false });
    await until('the entry to leave the queue', async () =>
      (await listed(owner, id)) === undefined ? true : undefined,
    );
    expect((await owner.post(`${path}/retry`)).status).toBe(404);

    const audit = (await owner.get('/api/v1/audit?pageSize=100')).text;
    expect(audit).toContain('queue.write');
    expect(audit).toContain('denied');
  });
});
