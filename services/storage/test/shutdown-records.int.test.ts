/**
 * The storage service stopping right after flag changes and expunges, with ownership on (ADR
 * 0007): SIGTERM hands the partitions over, which re-reads the appended records in the background
 * while gRPC and the database client shut down. That work must end before the client closes, or
 * fail without an unhandled rejection (which ends the process with code 1 and a fatal log line
 * instead of "stopped cleanly").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryServiceClient, MailstoreServiceClient, mailstore } from '@postmesh/contracts';
import { startService, startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, directoryApi } from './harness.js';
import { append, message } from './mailstore-helpers.js';

let env: TestEnvironment;
let dir: string;
beforeAll(async () => {
  env = await startTestEnvironment();
  dir = mkdtempSync(join(tmpdir(), 'postmesh-storage-shutdown-'));
}, 60_000);
afterAll(async () => {
  await env?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('storage shutdown after writes', () => {
  it('exits 0 without an unhandled rejection when SIGTERM follows flag changes and expunges', async () => {
    const credentials = env.security('operator').grpcClientCredentials();
    let domainCreated = false;
    for (let round = 0; round < 3; round++) {
      const service = await startService('storage', {
        env,
        dir,
        name: `storage-${round}`,
        vars: {
          POSTMESH_STORAGE_OWNERSHIP: 'true',
          POSTMESH_STORAGE_PARTITIONS: '8',
          POSTMESH_STREAM_REPLICAS: '1',
        },
      });
      const directoryClient = new DirectoryServiceClient(service.address, credentials);
      const client = new MailstoreServiceClient(service.address, credentials);
      try {
        const api = directoryApi(directoryClient);
        if (!domainCreated) await api.createDomain({ name: 'example.test', defaultQuotaBytes: 0 });
        domainCreated = true;
        const created = await api.createUser({
          address: `u${round}@example.test`,
          password: 'Pw-shutdown-1',
        });
        const userId = created.user?.id ?? '';
        const inbox = { selector: { $case: 'path' as const, value: 'INBOX' } };
        for (let i = 0; i < 20; i++)
          await append(client, userId, inbox, message([`Subject: m${i}`, '', 'x']));
        const status = await call(client.getMailboxStatus.bind(client), {
          userId,
          mailbox: inbox,
          claimRecent: false,
        });
        const mailboxId = status.status?.mailboxId ?? '';
        // One record per change: flags on each message, then expunges.
        for (let uid = 1; uid <= 20; uid++) {
          await call(client.storeFlags.bind(client), {
            userId,
            mailboxId,
            uids: { ranges: [{ first: uid, last: uid }] },
            mode: mailstore.StoreMode.ADD,
            flags: [uid <= 10 ? mailstore.Flag.DELETED : mailstore.Flag.SEEN],
            keywords: [],
          });
        }
        await call(client.expunge.bind(client), { userId, mailboxId, uids: undefined, actingUserId: '' });
      } finally {
        directoryClient.close();
        client.close();
      }
      // At once: the records were just written, compaction has not folded them yet.
      const code = await service.stop(20_000);
      const fatal = service
        .log()
        .split('\n')
        .filter((line) => line.includes('"level":"fatal"'));
      expect(fatal).toEqual([]);
      expect(code).toBe(0);
      expect(service.log()).toContain('stopped cleanly');
    }
  }, 180_000);
});
