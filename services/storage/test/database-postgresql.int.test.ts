/**
 * Storage on FerretDB with the PostgreSQL backend, chosen the way operators choose it
 * (POSTMESH_DB_BACKEND=postgresql through libs/testing, as `npm start` does through tools/stack;
 * docs/adr/0008-embedded-database.md): the storage service as it runs (`dist/main.js`) delivers an
 * inbound job and takes an APPEND, both are read back, then storage, FerretDB and PostgreSQL are
 * all restarted and both messages are read again, byte for byte. The rows are checked in
 * PostgreSQL itself, so a FerretDB that silently fell back to SQLite would fail here.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  Bus,
  Streams,
  Subjects,
  encodeInboundJob,
  jobMessageId,
  publishDurable,
  type InboundJob,
} from '@postmesh/bus';
import { DirectoryServiceClient, MailstoreServiceClient } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import {
  ManagedProcess,
  freePort,
  postgresBinDir,
  repoRoot,
  startTestEnvironment,
  type TestEnvironment,
} from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryApi } from './harness.js';
import { append, byPath, call, content, fetchMessages, message } from './mailstore-helpers.js';

const run = promisify(execFile);
const main = join(repoRoot(), 'services/storage/dist/main.js');
let env: TestEnvironment;
let dir: string;

beforeAll(async () => {
  if (!existsSync(main))
    throw new Error(`${main} is missing: build the workspace first (npx nx run-many -t build)`);
  env = await startTestEnvironment({ dbBackend: 'postgresql' });
  dir = mkdtempSync(join(tmpdir(), 'postmesh-storage-pg-'));
  writeFileSync(join(dir, 'kek'), randomBytes(32).toString('base64'), { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  const ferret = env?.ferret;
  await env?.stop();
  rmSync(dir, { recursive: true, force: true });
  // Nothing is left behind: both servers stopped, their temporary data removed.
  if (ferret !== undefined) {
    expect(ferret.process.running).toBe(false);
    expect(ferret.postgres?.process.running).toBe(false);
    expect(existsSync(ferret.dataDir)).toBe(false);
  }
}, 60_000);

async function waitReady(opsPort: number, service: ManagedProcess): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (!service.running) throw new Error(`storage exited before it was ready; see ${dir}/storage.log`);
    const ready = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('storage did not become ready in 60 s');
}

/** One number from PostgreSQL itself, over the cluster's Unix socket (psql as the cluster's role). */
async function sql(query: string): Promise<number> {
  const postgres = env.ferret?.postgres;
  const bin = postgresBinDir();
  if (postgres === undefined || bin === undefined) throw new Error('no PostgreSQL behind this FerretDB');
  const { stdout } = await run(join(bin, 'psql'), [
    '-h',
    postgres.clusterDir,
    '-U',
    'postgres',
    '-d',
    'ferretdb',
    '-tAc',
    query,
  ]);
  return Number(stdout.trim());
}

describe('storage on FerretDB with the PostgreSQL backend', () => {
  it('delivers and appends, reads back, and reads the same after storage, FerretDB and PostgreSQL restart', async () => {
    const ferret = env.ferret;
    expect(ferret?.backend).toBe('postgresql');
    expect(ferret?.postgres?.process.running).toBe(true);
    // FerretDB's SQLite directory is never made with the PostgreSQL backend.
    expect(existsSync(join(ferret?.dataDir ?? '', 'sqlite'))).toBe(false);

    const grpcPort = await freePort();
    const opsPort = await freePort();
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
          POSTMESH_BLOB_DIR: join(dir, 'blobs'),
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
    const bus = await Bus.connect({
      ...env.busOptions('operator'),
      name: 'postgresql-test',
      logger: createLogger('postgresql-test', 'silent'),
      replicas: 1,
    });
    let service = start();
    try {
      await waitReady(opsPort, service);
      await directory.createDomain({ name: 'pg.test', defaultQuotaBytes: 0 });
      const created = await directory.createUser({
        address: 'pg@pg.test',
        password: `Pw-${randomBytes(8).toString('hex')}-x`,
      });
      const userId = created.user?.id ?? '';
      expect(userId).not.toBe('');

      // Delivery: an inbound job as smtp-inbound publishes it, consumed by storage.
      const token = randomBytes(6).toString('hex');
      const delivered = message([
        'From: sender@remote.test',
        'To: pg@pg.test',
        `Subject: delivered ${token}`,
        '',
        `delivered body ${token}`,
      ]);
      const spoolId = `pg${randomBytes(8).toString('hex')}`;
      const job: InboundJob = {
        version: 1,
        spoolId,
        envelope: {
          mailFrom: 'sender@remote.test',
          rcptTo: ['pg@pg.test'],
          remoteIp: '192.0.2.9',
          helo: 'remote.test',
        },
        authResults: { spf: 'pass', dkim: 'none', dmarc: 'pass', arc: 'none', dmarcPolicy: '', junk: false },
        receivedAt: new Date().toISOString(),
        messageId: `${spoolId}@remote.test`,
        traceparent: '',
        body: { kind: 'inline', size: delivered.length },
      };
      await publishDurable(bus.js, Subjects.inbound(spoolId), encodeInboundJob(job, delivered), {
        msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND),
      });

      const status = () =>
        call(mailstore.getMailboxStatus.bind(mailstore), {
          userId,
          mailbox: byPath('INBOX'),
          claimRecent: false,
        });
      const deadline = Date.now() + 30_000;
      while ((await status()).status?.messages !== 1) {
        if (Date.now() > deadline) throw new Error('the delivery did not reach INBOX within 30 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      const mailboxId = (await status()).status?.mailboxId ?? '';

      // APPEND over the Mailstore API, as IMAP does.
      const appended = message(['Subject: appended', '', `appended body ${token}`]);
      const appendedUid = (await append(mailstore, userId, byPath('INBOX'), appended)).uid;

      const readBoth = async (): Promise<void> => {
        const list = await fetchMessages(mailstore, { userId, mailboxId });
        expect(list.map((m) => m.uid).sort((a, b) => a - b)).toEqual([1, appendedUid].sort((a, b) => a - b));
        const first = await content(mailstore, { userId, mailboxId, uid: 1 });
        expect(first.bytes.toString()).toContain(`delivered body ${token}`);
        // Delivery prepends its own headers (Return-Path, Received); the body is unchanged.
        expect(first.bytes.subarray(first.bytes.length - delivered.length).equals(delivered)).toBe(true);
        const second = await content(mailstore, { userId, mailboxId, uid: appendedUid });
        expect(second.bytes.equals(appended)).toBe(true);
      };
      await readBoth();

      // The documents are rows in PostgreSQL: FerretDB keeps each MongoDB database as a schema
      // of the `ferretdb` database.
      expect(
        await sql(`SELECT count(*) FROM information_schema.tables WHERE table_schema = '${env.database}'`),
      ).toBeGreaterThan(0);

      // Restart everything below the API: storage, FerretDB and PostgreSQL (fast shutdown).
      await service.stop(10_000);
      await ferret?.process.stop();
      await ferret?.postgres?.process.stop();
      expect(ferret?.postgres?.process.running).toBe(false);
      await ferret?.restart();
      expect(ferret?.postgres?.process.running).toBe(true);
      service = start();
      await waitReady(opsPort, service);
      await readBoth();
      expect((await status()).status?.messages).toBe(2);
    } finally {
      mailstore.close();
      await bus.drain();
      await service.stop(10_000).catch(() => service.kill());
    }
  }, 120_000);
});
