/**
 * The storage service as the local stack runs it (`node services/storage/dist/main.js`, built by
 * `npm test` / `nx build` beforehand): it seeds the demo account, becomes ready only with MongoDB,
 * NATS and the gRPC server up, stores trace events from NATS, stops cleanly on SIGTERM, and
 * refuses to start without a KEK, naming the variable.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { Bus, Subjects, publishDurable } from '@postmesh/bus';
import {
  DirectoryServiceClient,
  MailstoreServiceClient,
  TraceServiceClient,
  directory,
} from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { startService, startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryApi, traceApi } from './harness.js';

let env: TestEnvironment;
let dir: string;
beforeAll(async () => {
  env = await startTestEnvironment();
  dir = mkdtempSync(join(tmpdir(), 'postmesh-storage-service-'));
});
afterAll(async () => {
  await env.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('storage service process', () => {
  it('seeds the demo account, serves gRPC and trace, and stops cleanly on SIGTERM', async () => {
    const service = await startService('storage', {
      env,
      dir,
      baseEnv: { PATH: process.env.PATH },
      vars: { POSTMESH_DEV_SEED: 'true', POSTMESH_DEV_PASSWORD: 'stack passphrase 42' },
      waitReady: false,
    });
    const target = service.address;
    const credentials = env.security('operator').grpcClientCredentials();
    const directoryClient = new DirectoryServiceClient(target, credentials);
    const traceClient = new TraceServiceClient(target, credentials);
    const bus = await Bus.connect({
      ...env.busOptions('operator'),
      name: 'storage-service-test',
      logger: createLogger('t', 'silent'),
      replicas: 1,
    });
    try {
      await service.ready(30_000);
      const auth = await directoryApi(directoryClient).authenticate({
        address: 'demo@example.test',
        password: 'stack passphrase 42',
        protocol: directory.Protocol.IMAP,
      });
      expect(auth.result?.$case).toBe('success');
      const userId = auth.result?.$case === 'success' ? (auth.result.value.user?.id ?? '') : '';

      // A stored message nudges IMAP sessions on core NATS (DESIGN §3 mailbox.changed.<userId>).
      const changed = bus.nc.subscribe(Subjects.mailboxChanged(userId), { max: 1, timeout: 10_000 });
      const raw = Buffer.from('From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n');
      const mailstoreClient = new MailstoreServiceClient(target, credentials);
      try {
        const stored = await new Promise<number>((resolve, reject) => {
          const stream = mailstoreClient.appendMessage(
            new Metadata(),
            { deadline: Date.now() + 30_000 },
            (error, res) => (error === null ? resolve(res.uid) : reject(error)),
          );
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
        expect(stored).toBe(1);
        let nudges = 0;
        for await (const _msg of changed) nudges += 1;
        expect(nudges).toBe(1);
      } finally {
        mailstoreClient.close();
      }

      const queueId = `q-${randomUUID()}`;
      const event = {
        eventId: randomUUID(),
        time: new Date().toISOString(),
        service: 'smtp-inbound',
        kind: 'received',
        queueId,
      };
      await publishDurable(
        bus.js,
        Subjects.events('received'),
        new TextEncoder().encode(JSON.stringify(event)),
        { msgId: event.eventId },
      );
      let found = 0;
      for (let attempt = 0; attempt < 100 && found === 0; attempt += 1) {
        found = (await traceApi(traceClient).queryEvents({ filter: { $case: 'queueId', value: queueId } }))
          .events.length;
        if (found === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(found).toBe(1);
    } finally {
      directoryClient.close();
      traceClient.close();
      await bus.drain();
      expect(await service.stop(15_000)).toBe(0);
    }
    const log = service.log();
    expect(log).toContain('dev seed: created the demo account');
    expect(log).toContain('stopped cleanly');
    // Secrets never reach the log.
    expect(log).not.toContain('stack passphrase 42');
    expect(log).not.toContain(readFileSync(service.vars.POSTMESH_KEK_FILE ?? '', 'utf8').trim());
  });

  it.each([
    ['without a KEK file', {}, 'POSTMESH_KEK_FILE'],
    ['with a KEK of the wrong size', { POSTMESH_KEK_FILE: 'short' }, 'POSTMESH_KEK_FILE'],
    [
      'seeding without a password',
      { POSTMESH_KEK_FILE: 'good', POSTMESH_DEV_SEED: 'true' },
      'POSTMESH_DEV_PASSWORD',
    ],
  ])(
    'refuses to start %s, naming the variable (exit 78)',
    async (_what, extra: Record<string, string>, variable) => {
      const files: Record<string, string> = {
        short: Buffer.from(randomBytes(16)).toString('base64'),
        good: randomBytes(32).toString('base64'),
      };
      const resolved: Record<string, string> = { ...extra };
      if (extra.POSTMESH_KEK_FILE !== undefined) {
        const path = join(dir, `kek-${randomUUID()}`);
        writeFileSync(path, files[extra.POSTMESH_KEK_FILE] ?? '');
        resolved.POSTMESH_KEK_FILE = path;
      }
      const service = await startService('storage', {
        env,
        dir,
        name: `refused-${randomUUID()}`,
        baseEnv: { PATH: process.env.PATH },
        vars: resolved,
        unset: extra.POSTMESH_KEK_FILE === undefined ? ['POSTMESH_KEK_FILE'] : [],
        waitReady: false,
      });
      const timer = setTimeout(() => void service.kill(), 30_000);
      const code = await service.proc.exited;
      clearTimeout(timer);
      expect(code).toBe(78);
      expect(service.log()).toContain(variable);
    },
  );
});
