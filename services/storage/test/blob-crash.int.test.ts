/**
 * Durability before the acknowledgement (DESIGN §2; docs/adr/0007 "Bodies in a blob store"): the
 * storage service as it runs (`services/storage/dist/main.js`, bodies in the filesystem store) is
 * killed with SIGKILL right after APPENDs were answered OK, some still in flight; after a restart
 * every message that got OK is there with its exact bytes.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryServiceClient, MailstoreServiceClient } from '@postmesh/contracts';
import {
  ManagedProcess,
  freePort,
  repoRoot,
  startTestEnvironment,
  type TestEnvironment,
} from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryApi } from './harness.js';
import { append, byPath, call, content, message } from './mailstore-helpers.js';

const main = join(repoRoot(), 'services/storage/dist/main.js');
let env: TestEnvironment;
let dir: string;

beforeAll(async () => {
  if (!existsSync(main))
    throw new Error(`${main} is missing: build the workspace first (npx nx run-many -t build)`);
  env = await startTestEnvironment();
  dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-crash-'));
  writeFileSync(join(dir, 'kek'), randomBytes(32).toString('base64'), { mode: 0o600 });
});

afterAll(async () => {
  await env?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function waitReady(opsPort: number, service: ManagedProcess): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (!service.running) throw new Error('storage exited before it was ready');
    const ready = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('storage did not become ready in 30 s');
}

describe('kill -9 of storage with bodies in the filesystem store', () => {
  it('keeps every acknowledged APPEND, byte for byte, across the crash', async () => {
    const grpcPort = await freePort();
    const opsPort = await freePort();
    const blobDir = join(dir, 'blobs');
    const start = (): ManagedProcess => {
      const service = new ManagedProcess({
        name: 'storage',
        command: process.execPath,
        args: [main],
        env: {
          PATH: process.env.PATH,
          LOG_LEVEL: 'info',
          ...env.serviceEnv,
          MONGODB_URI: env.mongoUri,
          POSTMESH_MONGODB_DB: env.database,
          POSTMESH_OPS_PORT: String(opsPort),
          POSTMESH_GRPC_PORT: String(grpcPort),
          POSTMESH_KEK_FILE: join(dir, 'kek'),
          POSTMESH_BLOB_STORE: 'fs',
          POSTMESH_BLOB_DIR: blobDir,
        },
        logFile: join(dir, 'storage.log'),
      });
      service.start();
      return service;
    };
    const target = `127.0.0.1:${grpcPort}`;
    const credentials = env.security('operator').grpcClientCredentials();
    const directory = directoryApi(new DirectoryServiceClient(target, credentials));
    const mailstore = new MailstoreServiceClient(target, credentials);
    let service = start();
    try {
      await waitReady(opsPort, service);
      await directory.createDomain({ name: 'crash.test', defaultQuotaBytes: 0 });
      const created = await directory.createUser({
        address: 'crash@crash.test',
        password: `Pw-${randomBytes(8).toString('hex')}-x`,
      });
      const userId = created.user?.id ?? '';

      // Bodies of several sizes: one record, several records, and a record boundary.
      const bodies = Array.from({ length: 24 }, (_, i) =>
        message([
          `Subject: crash ${i}`,
          '',
          randomBytes([300, 70_000, 65_536, 200_000][i % 4] ?? 300).toString('base64'),
        ]),
      );
      const acknowledged = new Map<number, Buffer>();
      // Acknowledged, then the kill with nothing in flight…
      for (const raw of bodies.slice(0, 12)) {
        acknowledged.set((await append(mailstore, userId, byPath('INBOX'), raw)).uid, raw);
      }
      // …and the kill right after the first OK of a concurrent wave, the others in flight.
      let killed: Promise<void> | undefined;
      await Promise.all(
        bodies.slice(12).map(async (raw) => {
          try {
            const res = await append(mailstore, userId, byPath('INBOX'), raw);
            acknowledged.set(res.uid, raw);
            killed ??= service.kill();
          } catch {
            // An APPEND cut by the kill got no OK: the client would retry it.
          }
        }),
      );
      expect(killed).toBeDefined();
      await killed;
      expect(acknowledged.size).toBeGreaterThan(12);
      // The directories hold finished bodies, and possibly temporary files of cut puts.
      expect(readdirSync(blobDir).length).toBeGreaterThan(0);

      service = start();
      await waitReady(opsPort, service);
      const mailboxId =
        (
          await call(mailstore.getMailboxStatus.bind(mailstore), {
            userId,
            mailbox: byPath('INBOX'),
            claimRecent: false,
          })
        ).status?.mailboxId ?? '';
      for (const [uid, raw] of acknowledged) {
        const read = await content(mailstore, { userId, mailboxId, uid });
        expect(read.bytes.equals(raw), `message ${uid}`).toBe(true);
      }
    } finally {
      mailstore.close();
      await service.stop(10_000).catch(() => service.kill());
    }
  });
});
