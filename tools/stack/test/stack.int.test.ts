import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@postmesh/testing';
import {
  alive,
  consoleSession,
  freeStackPorts,
  stackImap,
  uidBySubject,
  withLocalStack,
  type LocalStack,
} from './local-stack.js';

/** Whether anything accepts a connection on 127.0.0.1:`port`. */
const listening = (port: number): Promise<boolean> =>
  new Promise((done) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });

/** The parts of the console's GET /api/v1/health this suite reads. */
interface HealthReport {
  services: { service: string; ready: boolean }[];
  storage: {
    database: string;
    storageBytes: number;
    collections: { name: string; documents: number }[];
  } | null;
}

const DEMO_USER = 'demo@example.test';
const DEMO_PASSWORD = `Stack-${randomBytes(9).toString('base64url')}-pw1`;

describe('npm start (the local stack)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'postmesh-stack-'));
  // rspamd and Redis run as unprivileged users (when we are root): they must reach the data dir.
  chmodSync(dataDir, 0o755);
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('starts everything, reports ready endpoints in stack.json, delivers mail to IMAP, and Ctrl-C leaves nothing running', async () => {
    const ports = await freeStackPorts(['RSPAMD_PORT', 'RSPAMD_CONTROLLER_PORT', 'RSPAMD_REDIS_PORT']);
    await withLocalStack(
      {
        dataDir,
        ports,
        env: {
          POSTMESH_DEV_PASSWORD: DEMO_PASSWORD,
          // rspamd's compiled rules are shared with the suites' rspamd (compiled once per machine).
          POSTMESH_RSPAMD_CACHE_DIR: join(repoRoot(), '.tmp', 'rspamd-cache'),
        },
      },
      checkStack,
    );

    /** GET /api/v1/health as the console's owner (admin@example.test, the stack's dev password). */
    async function adminHealth(): Promise<HealthReport> {
      const { api, auth } = await consoleSession(ports.POSTMESH_HTTP_PORT, DEMO_PASSWORD);
      const response = await fetch(`${api}/api/v1/health`, {
        headers: auth,
      });
      expect(response.status, 'GET /api/v1/health').toBe(200);
      return (await response.json()) as HealthReport;
    }

    async function checkStack(stack: LocalStack): Promise<void> {
      const info = await stack.untilUp(90_000);
      const output = stack.output();
      expect(output).toContain('Postmesh is running. Connect to:');
      expect(output).toContain(`SMTP (MX)`);
      expect(info.endpoints.find((e) => e.name === 'SMTP (MX)')?.port).toBe(Number(ports.POSTMESH_SMTP_PORT));
      expect(info.endpoints.find((e) => e.name === 'NATS')).toMatchObject({ listening: true });
      // imap runs inside storage's process by default (ADR 0010): one process, storage's ops port.
      expect(info.ops.map((o) => o.process).sort()).toEqual([
        'admin',
        'mta-delivery',
        'smtp-inbound',
        'storage-imap',
      ]);
      expect(info.ops.find((o) => o.process === 'storage-imap')).toMatchObject({
        services: ['storage', 'imap'],
        port: Number(ports.POSTMESH_STORAGE_OPS_PORT),
      });
      for (const name of ['IMAP (STARTTLS)', 'IMAPS (TLS)', 'ManageSieve (STARTTLS)', 'Storage gRPC']) {
        expect(info.endpoints.find((e) => e.name === name)).toMatchObject({
          process: 'storage-imap',
          listening: true,
        });
      }
      expect(output).toMatch(/storage-imap +http:\/\/127\.0\.0\.1:\d+ +\(storage and imap in one process\)/);
      expect(output).toContain('IMAP and ManageSieve are served by storage-imap');
      for (const o of info.ops.filter((o) => o.services.length === 1)) {
        expect(o.port).toBe(Number(ports[`POSTMESH_${o.process.toUpperCase().replace('-', '_')}_OPS_PORT`]));
      }
      for (const o of info.ops) {
        const response = await fetch(o.ready);
        expect(response.status, `${o.process} ready`).toBe(200);
      }
      const pids = info.processes.map((p) => p.pid);
      expect(info.processes.map((p) => p.name)).toEqual(
        expect.arrayContaining(['nats-server', 'redis', 'rspamd', 'storage-imap', 'admin']),
      );
      // The database is a SQLite file in storage's process (ADR 0011): no FerretDB, no MongoDB port.
      const sqliteFile = join(dataDir, 'storage', 'postmesh.sqlite');
      expect(info.database).toEqual({ kind: 'sqlite', file: sqliteFile, process: 'storage-imap' });
      expect(existsSync(sqliteFile), sqliteFile).toBe(true);
      expect(info.processes.map((p) => p.name)).not.toContain('ferretdb');
      expect(info.endpoints.map((e) => e.name)).not.toContain('MongoDB (FerretDB)');
      expect(output).toContain(`Database: SQLite file ${sqliteFile} (inside storage-imap;`);
      expect(await listening(Number(ports.POSTMESH_MONGO_PORT)), 'nothing on the MongoDB port').toBe(false);
      expect(info.processes.map((p) => p.name)).not.toContain('imap');
      expect(info.processes.map((p) => p.name)).not.toContain('storage');
      expect(pids.every(alive)).toBe(true);

      // One owner per mailbox is on by default (ADR 0007): the one storage replica owns every
      // partition, submission queues on the user's partition and IMAP reads from its owner.
      const storageOps = info.ops.find((o) => o.process === 'storage-imap');
      const metricsText = async (): Promise<string> => (await fetch(storageOps?.metrics ?? '')).text();
      const imapCalls = async (path: string): Promise<number> =>
        Number(
          new RegExp(`^postmesh_imap_storage_calls_total\\{[^}]*path="${path}"[^}]*\\} (\\d+)$`, 'm').exec(
            await metricsText(),
          )?.[1] ?? 0,
        );
      expect(await metricsText()).toMatch(/^postmesh_storage_partitions_owned(\{[^}]*\})? 64$/m);
      const callsBefore = await imapCalls('in-process');
      const token = `stack-${Date.now().toString(36)}`;
      const smtp = nodemailer.createTransport({
        host: '127.0.0.1',
        port: Number(ports.POSTMESH_SUBMISSION_PORT),
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: DEMO_USER, pass: DEMO_PASSWORD },
      });
      try {
        await smtp.sendMail({
          from: DEMO_USER,
          to: DEMO_USER,
          subject: token,
          text: `delivered through the local stack: ${token}`,
        });
      } finally {
        smtp.close();
      }
      const imap = stackImap(ports, DEMO_USER, DEMO_PASSWORD);
      await imap.connect();
      try {
        const lock = await imap.getMailboxLock('INBOX');
        try {
          const uid = await uidBySubject(imap, token);
          expect(uid, 'the submitted message in INBOX').toBeDefined();
          // A flag change answered OK is what a later session sees.
          expect(await imap.messageFlagsAdd(String(uid), ['\\Flagged'], { uid: true })).toBe(true);
          const fetched = await imap.fetchOne(String(uid), { flags: true }, { uid: true });
          expect(fetched && [...(fetched.flags ?? [])]).toContain('\\Flagged');
        } finally {
          lock.release();
        }
      } finally {
        await imap.logout().catch(() => undefined);
      }
      // The session's Mailstore calls ran in storage's process: the one replica owns every user.
      expect(await imapCalls('in-process')).toBeGreaterThan(callsBefore);
      expect(await imapCalls('grpc')).toBe(0);

      // The console's health page lists the processes the stack runs, each ready.
      const { services: health, storage: size } = await adminHealth();
      expect(health.map((h) => h.service).sort()).toEqual([
        'admin',
        'mta-delivery',
        'smtp-inbound',
        'storage-imap',
      ]);
      expect(health.filter((h) => !h.ready)).toEqual([]);
      // Its storage table: the SQLite database's own accounting, the delivered message counted.
      expect(size?.database).toBe('postmesh');
      expect(size?.storageBytes).toBeGreaterThan(0);
      expect(size?.collections.find((c) => c.name === 'messages')?.documents).toBeGreaterThanOrEqual(1);

      stack.interrupt();
      expect(await stack.exited).toBe(0);
      expect(stack.output()).toContain('stopped; nothing left running');
      expect(pids.filter(alive)).toEqual([]);
    }
  });

  it('with POSTMESH_STACK_DB=ferretdb still runs storage on FerretDB, and Ctrl-C stops it too', async () => {
    const ferretDir = mkdtempSync(join(tmpdir(), 'postmesh-stack-ferretdb-'));
    try {
      const ports = await freeStackPorts();
      await withLocalStack(
        {
          dataDir: ferretDir,
          ports,
          env: {
            POSTMESH_DEV_PASSWORD: DEMO_PASSWORD,
            POSTMESH_STACK_DB: 'ferretdb',
            // Mail filtering is the other test's; this one is about the database.
            POSTMESH_STACK_RSPAMD: 'false',
          },
        },
        async (stack) => {
          const info = await stack.untilUp(90_000);
          const mongoPort = Number(ports.POSTMESH_MONGO_PORT);
          expect(info.database).toEqual({
            kind: 'ferretdb',
            backend: 'sqlite',
            url: `mongodb://127.0.0.1:${mongoPort}/`,
            port: mongoPort,
            process: 'ferretdb',
          });
          expect(info.endpoints.find((e) => e.name === 'MongoDB (FerretDB)')).toMatchObject({
            port: mongoPort,
            listening: true,
          });
          expect(info.processes.map((p) => p.name)).toEqual(
            expect.arrayContaining(['nats-server', 'ferretdb', 'storage-imap']),
          );
          expect(existsSync(join(ferretDir, 'storage', 'postmesh.sqlite'))).toBe(false);
          expect(stack.output()).toContain('Database: FerretDB on SQLite at mongodb://127.0.0.1:');
          for (const o of info.ops) expect((await fetch(o.ready)).status, `${o.process} ready`).toBe(200);
          // The demo user, seeded into FerretDB, logs in over IMAP and has an INBOX.
          const imap = stackImap(ports, DEMO_USER, DEMO_PASSWORD);
          await imap.connect();
          try {
            const status = await imap.status('INBOX', { messages: true });
            expect(status === false ? undefined : status.messages).toBe(0);
          } finally {
            await imap.logout().catch(() => undefined);
          }
          const pids = info.processes.map((p) => p.pid);
          stack.interrupt();
          expect(await stack.exited).toBe(0);
          expect(stack.output()).toContain('stopping services, then FerretDB, its database and NATS');
          expect(pids.filter(alive)).toEqual([]);
        },
      );
    } finally {
      rmSync(ferretDir, { recursive: true, force: true });
    }
  });
});
