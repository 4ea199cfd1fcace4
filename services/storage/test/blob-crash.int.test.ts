/**
 * Durability before the acknowledgement (DESIGN §2; docs/adr/0007 "Bodies in a blob store"): the
 * storage service as it runs (`services/storage/dist/main.js`, bodies in the filesystem store) is
 * killed with SIGKILL right after APPENDs were answered OK, some still in flight; after a restart
 * every message that got OK is there with its exact bytes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryServiceClient, MailstoreServiceClient } from '@postmesh/contracts';
import { startService, startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryApi } from './harness.js';
import { append, byPath, call, content, message } from './mailstore-helpers.js';

let env: TestEnvironment;
let dir: string;

beforeAll(async () => {
  env = await startTestEnvironment();
  dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-crash-'));
});

afterAll(async () => {
  await env?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('kill -9 of storage with bodies in the filesystem store', () => {
  it('keeps every acknowledged APPEND, byte for byte, across the crash', async () => {
    const service = await startService('storage', {
      env,
      dir,
      baseEnv: { PATH: process.env.PATH },
      vars: { POSTMESH_BLOB_STORE: 'fs' },
      readyTimeoutMs: 30_000,
    });
    const blobDir = join(dir, 'blobs');
    const credentials = env.security('operator').grpcClientCredentials();
    const directory = directoryApi(new DirectoryServiceClient(service.address, credentials));
    const mailstore = new MailstoreServiceClient(service.address, credentials);
    try {
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

      await service.restart();
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
