/**
 * Webhooks end to end (docs/webhooks.md) with the storage service as it runs
 * (`services/storage/dist/main.js`), real NATS JetStream and FerretDB, and an HTTP receiver on
 * 127.0.0.1 (allowed by POSTMESH_WEBHOOK_ALLOW_ADDRESSES): each event reaches each subscribed
 * endpoint exactly once across a restart of storage, signed with that endpoint's secret; a
 * failing endpoint is retried with backoff without repeating the event where it already
 * arrived, and given up with an alert after the configured attempts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import {
  Bus,
  Streams,
  mailEvent,
  parseMailEvent,
  publishMailEvent,
  type MailEvent,
  type MailEventFields,
} from '@postmesh/bus';
import type { directory } from '@postmesh/contracts';
import { DirectoryServiceClient, isServiceError } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { freePort, startService, startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '../src/webhooks/signature.js';

interface Received {
  readonly path: string;
  readonly eventId: string;
  readonly headerEventId: string | undefined;
  readonly type: string;
  readonly attempt: string | undefined;
  readonly signature: string | undefined;
  readonly body: string;
  readonly answered: number;
}

let env: TestEnvironment;
let dir: string;
let receiver: Server;
let receiverPort: number;
let bus: Bus;
const received: Received[] = [];
/** Requests a path answers with 500 before it answers 200, by path and event id. */
const failFirst = new Map<string, number>();

beforeAll(async () => {
  env = await startTestEnvironment();
  dir = mkdtempSync(join(tmpdir(), 'postmesh-webhooks-'));
  receiverPort = await freePort();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const payload = JSON.parse(body) as { id: string; type: string };
      const path = req.url ?? '';
      const key = `${path} ${payload.id}`;
      const failures = failFirst.get(path) ?? 0;
      const earlier = received.filter((r) => `${r.path} ${r.eventId}` === key).length;
      const answered = earlier < failures ? 500 : 200;
      received.push({
        path,
        eventId: payload.id,
        headerEventId: req.headers['postmesh-event-id'] as string | undefined,
        type: payload.type,
        attempt: req.headers['postmesh-delivery-attempt'] as string | undefined,
        signature: req.headers['postmesh-signature'] as string | undefined,
        body,
        answered,
      });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(receiverPort, '127.0.0.1', resolve));
  bus = await Bus.connect({
    ...env.busOptions('operator'),
    name: 'webhooks-test',
    logger: createLogger('t', 'silent'),
    replicas: 1,
  });
}, 60_000);

afterAll(async () => {
  await bus?.drain();
  await new Promise((resolve) => receiver?.close(resolve));
  await env?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function rpc<Req, Res>(
  method: (
    req: Req,
    md: Metadata,
    opts: { deadline: number },
    cb: (e: Error | null, r: Res) => void,
  ) => unknown,
  request: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, new Metadata(), { deadline: Date.now() + 20_000 }, (error, response) =>
      error === null ? resolve(response) : reject(error),
    );
  });
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}; received: ${received.map((r) => `${r.path} ${r.type} ${r.eventId} ${r.answered}`).join('; ')}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

const at = (path: string, event: MailEvent) =>
  received.filter((r) => r.path === path && r.eventId === event.eventId);

describe('webhooks', () => {
  it('sends each event once per endpoint across a restart, signed, retrying failures', async () => {
    const storage = await startService('storage', {
      env,
      dir,
      baseEnv: { PATH: process.env.PATH },
      vars: {
        POSTMESH_WEBHOOK_ALLOW_ADDRESSES: '127.0.0.1',
        POSTMESH_WEBHOOK_RETRY_BASE_MS: '200',
        POSTMESH_WEBHOOK_MAX_ATTEMPTS: '4',
        POSTMESH_WEBHOOK_TIMEOUT_MS: '2000',
      },
      readyTimeoutMs: 30_000,
    });
    const client = new DirectoryServiceClient(
      storage.address,
      env.security('operator').grpcClientCredentials(),
    );
    try {
      const hooks = (
        await rpc(client.createDomain.bind(client), { name: 'hooks.test', defaultQuotaBytes: 0 })
      ).domain as directory.Domain;
      const other = (
        await rpc(client.createDomain.bind(client), { name: 'other.test', defaultQuotaBytes: 0 })
      ).domain as directory.Domain;
      const url = (path: string) => `http://127.0.0.1:${receiverPort}${path}`;
      const create = (domainId: string, path: string, events: string[], enabled = true) =>
        rpc(client.createWebhook.bind(client), { domainId, url: url(path), events, enabled });

      // SSRF: an internal address not on the allow-list, and other schemes, are refused.
      for (const bad of ['http://10.0.0.1/hook', 'ftp://127.0.0.1/hook', 'http://[::1]/hook']) {
        const refused = await rpc(client.createWebhook.bind(client), {
          domainId: hooks.id,
          url: bad,
          events: ['delivered'],
          enabled: true,
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isServiceError(refused) ? refused.code : 'succeeded', bad).toBe(status.INVALID_ARGUMENT);
      }

      const a = await create(hooks.id, '/a', ['delivered', 'bounced', 'received']);
      const b = await create(hooks.id, '/b', ['delivered']);
      await create(hooks.id, '/disabled', ['delivered', 'bounced'], false);
      const d = await create(other.id, '/d', ['delivered']);
      expect(a.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      const listed = await rpc(client.listWebhooks.bind(client), { domainId: hooks.id });
      expect(listed.webhooks.map((w) => w.url)).toEqual([url('/a'), url('/b'), url('/disabled')]);
      // The secret is shown once: it is in no other answer.
      expect(JSON.stringify(listed)).not.toContain(a.secret);

      failFirst.set('/b', 2);
      const event = (fields: MailEventFields): MailEvent => mailEvent(fields);
      const delivered = event({
        service: 'storage',
        kind: 'delivered',
        recipient: 'bob@hooks.test',
        queueId: 'q1',
      });
      const bounced = event({ service: 'mta-delivery', kind: 'bounced', sender: 'alice@hooks.test' });
      const deferred = event({ service: 'mta-delivery', kind: 'deferred', sender: 'alice@hooks.test' });
      const elsewhere = event({ service: 'storage', kind: 'delivered', recipient: 'carol@other.test' });
      const received1 = event({
        service: 'smtp-inbound',
        kind: 'queued',
        sender: 'someone@example.org',
        attributes: { recipient_domains: 'hooks.test' },
      });
      for (const e of [delivered, bounced, deferred, elsewhere, received1]) await publishMailEvent(bus.js, e);

      await until(
        'the first deliveries',
        () => at('/a', delivered).length === 1 && at('/b', delivered).length >= 1,
      );
      // Restart while /b still fails: the retry must come from the durable consumer.
      expect(await storage.stop(15_000)).toBe(0);
      const whileDown = event({ service: 'storage', kind: 'delivered', recipient: 'dave@hooks.test' });
      await publishMailEvent(bus.js, whileDown);
      await storage.restart();

      await until(
        'retries and the event published while storage was down',
        () =>
          at('/b', delivered).some((r) => r.answered === 200) &&
          at('/a', whileDown).length === 1 &&
          at('/b', whileDown).some((r) => r.answered === 200) &&
          at('/a', bounced).length === 1 &&
          at('/a', received1).length === 1 &&
          at('/d', elsewhere).length === 1,
      );
      // Long enough for a wrongly repeated delivery to show up (retries are 200 ms apart).
      await new Promise((r) => setTimeout(r, 1_500));

      // Exactly once per endpoint that took it; /b saw its two failures, then one success.
      expect(at('/a', delivered)).toHaveLength(1);
      expect(at('/b', delivered).map((r) => r.answered)).toEqual([500, 500, 200]);
      expect(at('/b', delivered).map((r) => r.attempt)).toEqual(['1', '2', '3']);
      expect(at('/a', whileDown)).toHaveLength(1);
      expect(at('/b', whileDown).map((r) => r.answered)).toEqual([500, 500, 200]);
      expect(at('/a', bounced)).toHaveLength(1);
      expect(at('/b', bounced)).toHaveLength(0);
      expect(received.filter((r) => r.eventId === deferred.eventId)).toHaveLength(0);
      expect(received.filter((r) => r.path === '/disabled')).toHaveLength(0);
      expect(received.filter((r) => r.eventId === elsewhere.eventId).map((r) => r.path)).toEqual(['/d']);
      expect(at('/a', received1).map((r) => r.type)).toEqual(['received']);

      // Every request is signed with its endpoint's secret, and only with it.
      for (const r of received) {
        const secret = { '/a': a.secret, '/b': b.secret, '/d': d.secret }[r.path] ?? '';
        expect(verifyWebhookSignature(secret, r.signature, r.body).ok, r.path).toBe(true);
        expect(r.headerEventId).toBe(r.eventId);
      }
      const sample = at('/a', delivered)[0] as Received;
      expect(verifyWebhookSignature(b.secret, sample.signature, sample.body)).toEqual({
        ok: false,
        problem: 'mismatch',
      });
      expect(verifyWebhookSignature(a.secret, sample.signature, sample.body.replace('bob@', 'eve@'))).toEqual(
        {
          ok: false,
          problem: 'mismatch',
        },
      );
      expect(JSON.parse(sample.body)).toEqual({
        id: delivered.eventId,
        type: 'delivered',
        time: delivered.time,
        domain: 'hooks.test',
        data: {
          kind: 'delivered',
          service: 'storage',
          queueId: 'q1',
          recipient: 'bob@hooks.test',
          attributes: {},
        },
      });

      // An endpoint that never succeeds is tried MAX_ATTEMPTS times, then given up with an alert.
      failFirst.set('/down', 1_000);
      const down = await create(hooks.id, '/down', ['bounced']);
      const lost = event({ service: 'mta-delivery', kind: 'bounced', sender: 'alice@hooks.test' });
      await publishMailEvent(bus.js, lost);
      const alertId = `alert:webhook:${down.webhook?.id ?? ''}:${lost.eventId}`;
      let alert: MailEvent | undefined;
      await until(
        'the alert',
        () => {
          void bus.jsm.streams
            .getMessage(Streams.MAIL_EVENTS, { last_by_subj: 'mail.events.alert' })
            .then((m) => {
              const parsed = m === null ? undefined : parseMailEvent(m.data);
              if (parsed?.ok === true && parsed.event.eventId === alertId) alert = parsed.event;
            })
            .catch(() => undefined);
          return alert !== undefined;
        },
        20_000,
      );
      await new Promise((r) => setTimeout(r, 1_000));
      expect(at('/down', lost).map((r) => r.attempt)).toEqual(['1', '2', '3', '4']);
      expect(at('/a', lost)).toHaveLength(1);
      expect(alert?.attributes).toMatchObject({
        alert: 'webhook-failed',
        domain: 'hooks.test',
        event_type: 'bounced',
      });
    } finally {
      client.close();
      expect(await storage.stop(15_000)).toBe(0);
    }
  }, 120_000);
});
