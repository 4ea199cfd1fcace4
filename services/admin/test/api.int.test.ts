/**
 * The admin REST API end to end against real storage, NATS and FerretDB: sign-in (with TOTP and
 * as a mail user), the main features, DLQ re-drive over JetStream, pagination, one error format.
 */
import { Metadata } from '@grpc/grpc-js';
import { MailstoreServiceClient } from '@postmesh/contracts';
import { Bus, publishDurable, Streams, Subjects } from '@postmesh/bus';
import { createLogger } from '@postmesh/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, totp, type AdminHarness } from './harness.js';

let h: AdminHarness;
let owner: ApiClient;
const PASSWORD = 'api test password 1';

beforeAll(async () => {
  h = await startAdminHarness();
  owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
});
afterAll(async () => {
  await h?.stop();
});

/** Stores one message in the user's INBOX through Mailstore AppendMessage (as IMAP APPEND does). */
function appendToInbox(userId: string, raw: Buffer): Promise<void> {
  const client = new MailstoreServiceClient(
    h.storageGrpc,
    h.env.security('operator').grpcClientCredentials(),
  );
  return new Promise<void>((resolve, reject) => {
    const stream = client.appendMessage(new Metadata(), { deadline: Date.now() + 15_000 }, (error) => {
      client.close();
      if (error === null) resolve();
      else reject(error);
    });
    stream.write({
      part: {
        $case: 'header',
        value: {
          userId,
          mailbox: { selector: { $case: 'path', value: 'INBOX' } },
          flags: [],
          keywords: [],
          size: raw.length,
        },
      },
    });
    stream.write({ part: { $case: 'chunk', value: raw } });
    stream.end();
  });
}

describe('domains, users and aliases', () => {
  it('creates, reads, pages, updates and deletes', async () => {
    expect(
      (await owner.post('/api/v1/domains', { name: 'Alpha.TEST', defaultQuotaBytes: 1000 })).body,
    ).toMatchObject({ name: 'alpha.test', status: 'active', defaultQuotaBytes: 1000 });
    expect((await owner.post('/api/v1/domains', { name: 'alpha.test' })).body).toMatchObject({
      error: { status: 409, code: 'conflict' },
    });
    for (const name of ['ann', 'ben', 'cat']) {
      const r = await owner.post('/api/v1/users', {
        address: `${name}@alpha.test`,
        password: PASSWORD,
        displayName: name,
      });
      expect(r.status, r.text).toBe(201);
      expect(r.body).toMatchObject({ quotaBytes: 1000 });
    }
    const first = (await owner.get('/api/v1/users?domain=alpha.test&pageSize=2')).body as {
      items: { address: string; id: string }[];
      nextPageToken: string;
    };
    expect(first.items.map((u) => u.address)).toEqual(['ann@alpha.test', 'ben@alpha.test']);
    const second = (
      await owner.get(
        `/api/v1/users?domain=alpha.test&pageSize=2&pageToken=${encodeURIComponent(first.nextPageToken)}`,
      )
    ).body as { items: { address: string }[]; nextPageToken: string };
    expect(second).toEqual({
      items: [expect.objectContaining({ address: 'cat@alpha.test' })],
      nextPageToken: '',
    });
    expect(
      ((await owner.get('/api/v1/users?domain=alpha.test&q=b')).body as { items: unknown[] }).items,
    ).toHaveLength(1);

    const ann = first.items[0]?.id ?? '';
    expect(
      (await owner.patch(`/api/v1/users/${ann}`, { quotaBytes: 5000, status: 'disabled' })).body,
    ).toMatchObject({ quotaBytes: 5000, status: 'disabled' });
    expect((await owner.post(`/api/v1/users/${ann}/unlock`)).body).toMatchObject({ status: 'active' });
    const alias = await owner.post('/api/v1/aliases', { address: 'sales@alpha.test', userIds: [ann] });
    expect(alias.body).toMatchObject({ address: 'sales@alpha.test', kind: 'alias', targets: [ann] });
    expect((await owner.get(`/api/v1/users/${ann}`)).body).toMatchObject({
      addresses: expect.arrayContaining([
        expect.objectContaining({ address: 'sales@alpha.test' }),
      ]) as unknown,
    });
    const app = await owner.post(`/api/v1/users/${ann}/app-passwords`, {
      label: 'phone',
      protocols: ['imap'],
    });
    expect(app.body).toMatchObject({
      label: 'phone',
      protocols: ['imap'],
      secret: expect.stringMatching(/^[a-z2-7-]{26,}$/) as unknown,
    });
    expect((await owner.get(`/api/v1/users/${ann}/app-passwords`)).text).not.toContain(
      (app.body as { secret: string }).secret,
    );

    const ben = first.items[1]?.id ?? '';
    expect((await owner.delete(`/api/v1/users/${ben}?purge=true`)).body).toEqual({
      deleted: true,
      purged: true,
    });
    expect((await owner.get(`/api/v1/users/${ben}`)).status).toBe(404);
    expect((await owner.delete('/api/v1/domains/alpha.test')).body).toMatchObject({ error: { status: 409 } });
  });

  it('shows the DNS records to publish, with DKIM after generating a key', async () => {
    await owner.post('/api/v1/domains', { name: 'dns.test' });
    const key = await owner.post('/api/v1/domains/dns.test/dkim', { selector: 'pm1', activate: true });
    expect(key.body).toMatchObject({
      selector: 'pm1',
      algorithm: 'ed25519',
      status: 'active',
      dnsName: 'pm1._domainkey.dns.test',
    });
    const dns = (await owner.get('/api/v1/domains/dns.test/dns')).body as {
      records: { type: string; name: string; value: string }[];
    };
    expect(dns.records.map((r) => `${r.type} ${r.name}`)).toEqual([
      'MX dns.test',
      'TXT dns.test',
      'TXT pm1._domainkey.dns.test',
      'TXT _dmarc.dns.test',
      'TXT _mta-sts.dns.test',
      'CNAME mta-sts.dns.test',
      'TXT _smtp._tls.dns.test',
    ]);
    expect(dns.records[2]?.value).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    // The live check answers for each record even when DNS is unreachable (here it is).
    const checked = (await owner.get('/api/v1/domains/dns.test/dns?check=true')).body as {
      records: { status: string }[];
    };
    expect(checked.records.every((r) => ['ok', 'missing', 'different', 'error'].includes(r.status))).toBe(
      true,
    );

    // Dual signing (RFC 8463 §3): an RSA key activated beside the Ed25519 one; both publish, and a
    // newer Ed25519 key replaces only the older Ed25519 one.
    await owner.post('/api/v1/domains/dns.test/dkim', {
      selector: 'pm2',
      algorithm: 'rsa2048',
      activate: true,
    });
    await owner.post('/api/v1/domains/dns.test/dkim', { selector: 'pm3', activate: true });
    const keys = (await owner.get('/api/v1/domains/dns.test/dkim')).body as {
      items: { selector: string; algorithm: string; status: string }[];
    };
    expect(Object.fromEntries(keys.items.map((k) => [k.selector, `${k.algorithm} ${k.status}`]))).toEqual({
      pm1: 'ed25519 retired',
      pm2: 'rsa2048 active',
      pm3: 'ed25519 active',
    });
    const both = (await owner.get('/api/v1/domains/dns.test/dns')).body as { records: { name: string }[] };
    expect(both.records.map((r) => r.name).filter((n) => n.includes('_domainkey'))).toEqual(
      expect.arrayContaining(['pm2._domainkey.dns.test', 'pm3._domainkey.dns.test']),
    );
    expect(both.records.map((r) => r.name)).not.toContain('pm1._domainkey.dns.test');
  });
});

describe('quota usage', () => {
  it('shows each user the bytes and messages they store against their quota, in the list and one by one', async () => {
    await owner.post('/api/v1/domains', { name: 'usage.test' });
    const created = await owner.post('/api/v1/users', {
      address: 'uma@usage.test',
      password: PASSWORD,
      quotaBytes: 1_000_000,
    });
    expect(created.status, created.text).toBe(201);
    const uma = (created.body as { id: string }).id;
    const idle = await owner.post('/api/v1/users', { address: 'ivo@usage.test', password: PASSWORD });
    expect(idle.status, idle.text).toBe(201);

    const raw = (subject: string) =>
      Buffer.from(
        [`From: a@example.test`, 'To: uma@usage.test', `Subject: ${subject}`, '', 'z'.repeat(3_000)].join(
          '\r\n',
        ),
      );
    await appendToInbox(uma, raw('one'));
    await appendToInbox(uma, raw('two'));

    const one = (await owner.get(`/api/v1/users/${uma}`)).body as {
      usage: { usedBytes: number; quotaBytes: number; messages: number };
    };
    expect(one.usage.messages).toBe(2);
    expect(one.usage.usedBytes).toBeGreaterThanOrEqual(6_000);
    expect(one.usage.quotaBytes).toBe(1_000_000);

    const list = (await owner.get('/api/v1/users?domain=usage.test')).body as {
      items: { address: string; usage: { usedBytes: number; messages: number } | null }[];
    };
    expect(list.items).toEqual([
      expect.objectContaining({
        address: 'ivo@usage.test',
        usage: { usedBytes: 0, quotaBytes: 0, messages: 0, quotaMessages: 0 },
      }),
      expect.objectContaining({ address: 'uma@usage.test', usage: one.usage }),
    ]);
  });
});

describe('sending limits', () => {
  it("sets, reads and changes a user's submission limits; 0 returns to the service default; bad values are 400", async () => {
    await owner.post('/api/v1/domains', { name: 'limits.test' });
    const created = await owner.post('/api/v1/users', {
      address: 'lea@limits.test',
      password: PASSWORD,
      limits: { messagesPerHour: 120, recipientsPerMessage: 25 },
    });
    expect(created.status, created.text).toBe(201);
    const lea = created.body as { id: string; limits: unknown };
    expect(lea.limits).toEqual({ messagesPerHour: 120, recipientsPerMessage: 25 });
    expect((await owner.get(`/api/v1/users/${lea.id}`)).body).toMatchObject({
      limits: { messagesPerHour: 120, recipientsPerMessage: 25 },
    });

    // One member changes, the other stays; other fields are untouched.
    const changed = await owner.patch(`/api/v1/users/${lea.id}`, { limits: { recipientsPerMessage: 5 } });
    expect(changed.body).toMatchObject({ limits: { messagesPerHour: 120, recipientsPerMessage: 5 } });
    expect((await owner.patch(`/api/v1/users/${lea.id}`, { displayName: 'Lea' })).body).toMatchObject({
      displayName: 'Lea',
      limits: { messagesPerHour: 120, recipientsPerMessage: 5 },
    });
    const reset = await owner.patch(`/api/v1/users/${lea.id}`, { limits: { messagesPerHour: 0 } });
    expect(reset.body).toMatchObject({ limits: { messagesPerHour: 0, recipientsPerMessage: 5 } });
    const listed = (await owner.get('/api/v1/users?domain=limits.test')).body as {
      items: { address: string; limits: unknown }[];
    };
    expect(listed.items).toEqual([
      expect.objectContaining({
        address: 'lea@limits.test',
        limits: { messagesPerHour: 0, recipientsPerMessage: 5 },
      }),
    ]);

    // A user created without limits has the service defaults (0).
    const plain = await owner.post('/api/v1/users', { address: 'max@limits.test', password: PASSWORD });
    expect((plain.body as { limits: unknown }).limits).toEqual({
      messagesPerHour: 0,
      recipientsPerMessage: 0,
    });

    for (const [limits, field] of [
      [{ messagesPerHour: -1 }, 'limits.messagesPerHour'],
      [{ recipientsPerMessage: 'many' }, 'limits.recipientsPerMessage'],
      [{ perDay: 5 }, 'limits.perDay'],
      [[1, 2], 'limits'],
    ] as const) {
      const r = await owner.patch(`/api/v1/users/${lea.id}`, { limits });
      expect(r.body, JSON.stringify(limits)).toMatchObject({
        error: { status: 400, code: 'invalid_argument', field },
      });
    }
    expect((await owner.get(`/api/v1/users/${lea.id}`)).body).toMatchObject({
      limits: { messagesPerHour: 0, recipientsPerMessage: 5 },
    });

    // The OpenAPI document describes the field.
    const doc = (await owner.get('/api/docs')).body as {
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    expect(doc.paths['/api/v1/users/{id}']?.patch?.requestBody).toMatchObject({
      content: {
        'application/json': {
          schema: { properties: { limits: { properties: { recipientsPerMessage: { type: 'integer' } } } } },
        },
      },
    });
    expect(JSON.stringify(doc.paths['/api/v1/users']?.post?.requestBody)).toContain('messagesPerHour');
  });
});

describe('key-encryption key', () => {
  it('shows the KEK id and what is still under another KEK, and re-wraps on request (audited)', async () => {
    const before = (await owner.get('/api/v1/keys/kek')).body as {
      currentKekId: string;
      remaining: Record<string, number>;
      running: boolean;
    };
    expect(before.currentKekId).toMatch(/^local:[0-9a-f]{16}$/);
    expect(before.remaining).toEqual({ userKeys: 0, dkimKeys: 0, totpSeeds: 0 });

    const started = await owner.post('/api/v1/keys/kek/rewrap');
    expect(started.status, started.text).toBe(202);
    expect(started.body).toMatchObject({ started: true, currentKekId: before.currentKekId });
    let last: { lastRewrap: { kekId: string; finishedAt: string | null; error: string } | null } | undefined;
    for (let i = 0; i < 100; i += 1) {
      last = (await owner.get('/api/v1/keys/kek')).body as typeof last;
      if (last?.lastRewrap?.finishedAt) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(last?.lastRewrap).toMatchObject({ kekId: before.currentKekId, error: '' });
    expect(Date.parse(last?.lastRewrap?.finishedAt ?? '')).toBeGreaterThan(0);
    const audit = (await owner.get('/api/v1/audit?action=keys.write')).body as {
      items: { action: string; result: string }[];
    };
    expect(audit.items[0]).toMatchObject({ action: 'keys.write', result: 'success' });
  });
});

describe('sign-in', () => {
  it('supports TOTP for administrators', async () => {
    await owner.post('/api/v1/admins', { email: 'totp@example.test', password: PASSWORD, role: 'auditor' });
    const a = new ApiClient(h.baseUrl);
    await a.login('totp@example.test', PASSWORD);
    const begun = (await a.post('/api/v1/me/totp')).body as { secretBase32: string };
    expect((await a.post('/api/v1/me/totp/confirm', { code: totp(begun.secretBase32) })).body).toMatchObject({
      totpEnabled: true,
    });
    const b = new ApiClient(h.baseUrl);
    const needCode = await b.login('totp@example.test', PASSWORD);
    expect(needCode.body).toMatchObject({ error: { status: 401, field: 'totp' } });
    // The confirming code was used; the next step's code signs in.
    await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 100));
    expect((await b.login('totp@example.test', PASSWORD, totp(begun.secretBase32))).status).toBe(200);
  }, 60_000);

  it('lets a mail user sign in to their own account only (role user)', async () => {
    await owner.post('/api/v1/domains', { name: 'users.test' });
    const dan = (await owner.post('/api/v1/users', { address: 'dan@users.test', password: PASSWORD }))
      .body as { id: string };
    const eve = (await owner.post('/api/v1/users', { address: 'eve@users.test', password: PASSWORD }))
      .body as { id: string };
    const u = new ApiClient(h.baseUrl);
    const login = await u.login('dan@users.test', PASSWORD);
    expect(login.body).toMatchObject({ kind: 'user', role: 'user', user: { address: 'dan@users.test' } });
    expect((await u.get(`/api/v1/users/${dan.id}`)).status).toBe(200);
    expect((await u.get(`/api/v1/users/${eve.id}`)).status).toBe(403);
    expect(
      ((await u.get('/api/v1/users')).body as { items: { id: string }[] }).items.map((x) => x.id),
    ).toEqual([dan.id]);
    // Their own password: only with the current one.
    expect((await u.post(`/api/v1/users/${dan.id}/password`, { password: 'a new password 2' })).status).toBe(
      400,
    );
    expect(
      (
        await u.post(`/api/v1/users/${dan.id}/password`, {
          password: 'a new password 2',
          currentPassword: PASSWORD,
        })
      ).status,
    ).toBe(200);
    expect((await u.get('/api/v1/domains')).status).toBe(403);
  });
});

describe('dead-letter queue', () => {
  it('lists an entry with its error, re-drives it to the original subject and discards another', async () => {
    const logger = createLogger('admin-test', 'silent');
    const bus = await Bus.connect({
      ...h.env.busOptions('operator'),
      name: 'admin-test',
      logger,
      replicas: 1,
    });
    try {
      const headers = {
        'Postmesh-Error': 'mailbox store failed (after 10 attempts)',
        'Postmesh-Original-Subject': 'mail.outbound.example_net',
        'Postmesh-Original-Stream': Streams.MAIL_OUTBOUND,
        'Postmesh-Original-Seq': '7',
        'Postmesh-Attempts': '10',
      };
      const job = new TextEncoder().encode(
        JSON.stringify({
          spoolId: 'spool0001',
          envelope: { mailFrom: 'a@x.test', rcptTo: ['b@example.net'] },
        }),
      );
      const one = await publishDurable(bus.js, Subjects.dlq(Streams.MAIL_OUTBOUND), job, {
        msgId: 'dlq-test-1',
        headers,
      });
      const two = await publishDurable(bus.js, Subjects.dlq(Streams.MAIL_OUTBOUND), job, {
        msgId: 'dlq-test-2',
        headers,
      });
      const list = (await owner.get('/api/v1/dlq')).body as {
        items: { seq: number; error: string; originalSubject: string; attempts: number; sender: string }[];
      };
      expect(list.items.find((e) => e.seq === one.seq)).toMatchObject({
        error: 'mailbox store failed (after 10 attempts)',
        originalSubject: 'mail.outbound.example_net',
        attempts: 10,
        sender: 'a@x.test',
      });
      const before = await bus.jsm.streams.info(Streams.MAIL_OUTBOUND);
      const redriven = await owner.post(`/api/v1/dlq/${one.seq}/redrive`);
      expect(redriven.body).toMatchObject({ redriven: true, subject: 'mail.outbound.example_net' });
      const after = await bus.jsm.streams.info(Streams.MAIL_OUTBOUND);
      expect(after.state.last_seq).toBe(before.state.last_seq + 1);
      expect((await owner.delete(`/api/v1/dlq/${two.seq}`)).body).toEqual({ deleted: true });
      const left = (await owner.get('/api/v1/dlq')).body as { items: { seq: number }[] };
      expect(left.items.map((e) => e.seq)).not.toContain(one.seq);
      expect(left.items.map((e) => e.seq)).not.toContain(two.seq);
      expect((await owner.post(`/api/v1/dlq/${one.seq}/redrive`)).status).toBe(404);
      // The outbound queue is mta-delivery's; it is not running here, so the API says so (503).
      expect((await owner.get('/api/v1/queue')).body).toMatchObject({
        error: {
          status: 503,
          code: 'unavailable',
          message: expect.stringMatching(/mta-delivery/) as unknown,
        },
      });
      expect((await owner.post('/api/v1/queue/spool0001:example.net/retry')).body).toMatchObject({
        error: { status: 503, code: 'unavailable' },
      });
    } finally {
      await bus.drain();
    }
  });

  it('reports each service, each stream and the storage size on the health page', async () => {
    const health = (await owner.get('/api/v1/health')).body as {
      services: { service: string; ready: boolean }[];
      streams: { name: string }[];
      storage: {
        database: string;
        documents: number;
        dataBytes: number;
        totalBytes: number;
        collections: { name: string; documents: number; storageBytes: number }[];
      } | null;
    };
    expect(health.storage?.database).toMatch(/^postmesh/);
    expect(health.storage?.documents).toBeGreaterThan(0);
    expect(health.storage?.dataBytes).toBeGreaterThan(0);
    expect(health.storage?.totalBytes).toBeGreaterThan(0);
    expect(health.storage?.collections).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'admins', documents: expect.any(Number) as unknown }),
        expect.objectContaining({ name: 'audit' }),
      ]),
    );
    expect(health.storage?.collections.find((c) => c.name === 'audit')?.documents).toBeGreaterThan(0);
    expect(health.services).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ service: 'storage', ready: true }),
        expect.objectContaining({ service: 'admin', ready: true }),
      ]),
    );
    expect(health.streams.map((s) => s.name)).toEqual([
      'MAIL_INBOUND',
      'MAIL_OUTBOUND',
      'MAIL_EVENTS',
      'MAIL_DLQ',
      'SPAM_LEARN',
    ]);
  });
});
