/**
 * `npm start` with POSTMESH_STACK_STORAGE_REPLICAS=2: two storage-imap replicas split the
 * partitions, imap-proxy serves the public IMAP port and splices each login to its user's owner
 * (whose Mailstore calls then stay in-process), a message submitted over SMTP lands for users of
 * both replicas (which share the one SQLite file), the status and stack.json list every process,
 * and Ctrl-C leaves nothing running.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, describe, expect, it } from 'vitest';
import {
  alive,
  consoleSession,
  freeStackPorts,
  stackImap,
  uidBySubject,
  withLocalStack,
  type LocalStack,
} from './local-stack.js';

const PASSWORD = `Stack-${randomBytes(9).toString('base64url')}-pw2`;
const REPLICAS = ['storage-imap-1', 'storage-imap-2'] as const;

/**
 * A plain ManageSieve session (RFC 5804; the stack allows it without TLS on loopback): after the
 * greeting, each command and the lines up to its OK, NO or BYE. 20 s in all.
 */
async function manageSieve(port: number, commands: readonly string[]): Promise<string[]> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.setEncoding('utf8');
  let buffer = '';
  let closed = false;
  socket.on('data', (text: string) => (buffer += text));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  const deadline = Date.now() + 20_000;
  const lines: string[] = [];
  const untilStatus = async (): Promise<void> => {
    for (;;) {
      const end = buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        lines.push(line);
        if (/^(OK|NO|BYE)\b/.test(line)) return;
        continue;
      }
      if (closed || Date.now() > deadline) throw new Error(`ManageSieve: ${lines.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await untilStatus();
    for (const command of commands) {
      socket.write(`${command}\r\n`);
      await untilStatus();
    }
  } finally {
    socket.destroy();
  }
  return lines.slice(lines.findIndex((l) => /^OK/.test(l)) + 1);
}

describe('npm start with two storage-imap replicas behind imap-proxy', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'postmesh-stack-replicas-'));
  chmodSync(dataDir, 0o755);
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('splits the partitions, serves each user at its owner through the proxy, delivers mail, and stops cleanly', async () => {
    const ports = await freeStackPorts(['IMAP_PROXY_OPS_PORT', 'STACK_REPLICA_PORT_BASE']);
    await withLocalStack(
      {
        dataDir,
        ports,
        env: {
          POSTMESH_DEV_PASSWORD: PASSWORD,
          POSTMESH_STACK_STORAGE_REPLICAS: '2',
          // Mail is not what this test filters; the one-replica test covers rspamd.
          POSTMESH_STACK_RSPAMD: 'false',
        },
      },
      checkStack,
    );

    async function checkStack(stack: LocalStack): Promise<void> {
      const info = await stack.untilUp(150_000);

      // The processes, each ready; the status lists them.
      expect(info.ops.map((o) => o.process).sort()).toEqual([
        'admin',
        'imap-proxy',
        'mta-delivery',
        'smtp-inbound',
        ...REPLICAS,
      ]);
      for (const o of info.ops) {
        expect((await fetch(o.ready)).status, `${o.process} ready`).toBe(200);
        expect(stack.output()).toMatch(new RegExp(`^  ${o.process} +http://127\\.0\\.0\\.1:${o.port}`, 'm'));
      }
      expect(info.ops.find((o) => o.process === 'storage-imap-1')?.port).toBe(
        Number(ports.POSTMESH_STORAGE_OPS_PORT),
      );
      expect(info.ops.find((o) => o.process === 'imap-proxy')?.port).toBe(
        Number(ports.POSTMESH_IMAP_PROXY_OPS_PORT),
      );
      expect(stack.output()).toContain('IMAP is served by 2 storage-imap replicas behind imap-proxy');
      const pids = info.processes.map((p) => p.pid);
      expect(info.processes.map((p) => p.name)).toEqual(
        expect.arrayContaining(['nats-server', 'imap-proxy', ...REPLICAS, 'admin']),
      );
      expect(pids.every(alive)).toBe(true);
      // Both replicas open the one SQLite file (ADR 0011; SQLite locks it across processes).
      expect(info.database).toEqual({
        kind: 'sqlite',
        file: join(dataDir, 'storage', 'postmesh.sqlite'),
        process: REPLICAS.join(', '),
      });
      expect(info.processes.map((p) => p.name)).not.toContain('ferretdb');

      // The public IMAP ports are the proxy's; ManageSieve and the configured gRPC are replica 1's.
      const endpoint = (name: string) => info.endpoints.find((e) => e.name === name);
      for (const name of ['IMAP (STARTTLS)', 'IMAPS (TLS)'])
        expect(endpoint(name)).toMatchObject({ process: 'imap-proxy', listening: true });
      expect(endpoint('ManageSieve (STARTTLS)')).toMatchObject({
        process: 'storage-imap-1',
        listening: true,
      });
      expect(endpoint('Storage gRPC')).toMatchObject({ process: 'storage-imap-1', listening: true });
      expect(endpoint('Storage gRPC (storage-imap-2)')).toMatchObject({
        process: 'storage-imap-2',
        listening: true,
      });

      // Both replicas own partitions, together all 64, as reported.
      const metricsOf = async (process: string): Promise<string> =>
        (await fetch(info.ops.find((o) => o.process === process)?.metrics ?? '')).text();
      const metric = async (process: string, pattern: RegExp): Promise<number> =>
        Number(pattern.exec(await metricsOf(process))?.[1] ?? 0);
      const owned = (process: string) =>
        metric(process, /^postmesh_storage_partitions_owned(?:\{[^}]*\})? (\d+)$/m);
      const calls = (process: string, path: string) =>
        metric(
          process,
          new RegExp(`^postmesh_imap_storage_calls_total\\{[^}]*path="${path}"[^}]*\\} (\\d+)$`, 'm'),
        );
      const split = info.partitions ?? {};
      expect(Object.keys(split).sort()).toEqual([...REPLICAS]);
      for (const replica of REPLICAS) {
        expect(split[replica], `${replica} owns partitions`).toBeGreaterThan(0);
        expect(await owned(replica)).toBe(split[replica]);
      }
      expect((split['storage-imap-1'] ?? 0) + (split['storage-imap-2'] ?? 0)).toBe(64);
      expect(stack.output()).toMatch(
        /partitions: storage-imap-1 owns \d+, storage-imap-2 owns \d+ \(of 64\)/,
      );

      // New users through the admin API until each replica has one: each user's IMAP session,
      // through the proxy's public port, runs in-process at exactly one replica (its owner).
      const { api, auth } = await consoleSession(ports.POSTMESH_HTTP_PORT, PASSWORD);
      const userOf: Partial<Record<(typeof REPLICAS)[number], string>> = {};
      const imap = (user: string) => stackImap(ports, user, PASSWORD);
      for (
        let i = 0;
        i < 24 && (userOf['storage-imap-1'] === undefined || userOf['storage-imap-2'] === undefined);
        i++
      ) {
        const address = `split${i}-${randomBytes(3).toString('hex')}@example.test`;
        const created = await fetch(`${api}/api/v1/users`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth },
          body: JSON.stringify({ address, password: PASSWORD }),
        });
        expect(created.status, `creating ${address}`).toBe(201);
        const before = await Promise.all(REPLICAS.map((r) => calls(r, 'in-process')));
        const grpcBefore = await Promise.all(REPLICAS.map((r) => calls(r, 'grpc')));
        const client = imap(address);
        await client.connect();
        try {
          const status = await client.status('INBOX', { messages: true });
          expect(status === false ? undefined : status.messages).toBe(0);
        } finally {
          await client.logout().catch(() => undefined);
        }
        const after = await Promise.all(REPLICAS.map((r) => calls(r, 'in-process')));
        const served = REPLICAS.filter((_, k) => (after[k] ?? 0) > (before[k] ?? 0));
        expect(served, `${address} served in-process by exactly one replica`).toHaveLength(1);
        expect(await Promise.all(REPLICAS.map((r) => calls(r, 'grpc')))).toEqual(grpcBefore);
        const replica = served[0];
        if (replica !== undefined) userOf[replica] ??= address;
      }
      const users = REPLICAS.map((r) => userOf[r]);
      expect(
        users.every((u) => u !== undefined),
        `a user on each replica: ${JSON.stringify(userOf)}`,
      ).toBe(true);

      // One message over SMTP submission to a user of each replica lands in both INBOXes.
      const token = `replicas-${Date.now().toString(36)}`;
      const smtp = nodemailer.createTransport({
        host: '127.0.0.1',
        port: Number(ports.POSTMESH_SUBMISSION_PORT),
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: 'demo@example.test', pass: PASSWORD },
      });
      try {
        await smtp.sendMail({
          from: 'demo@example.test',
          to: users as string[],
          subject: token,
          text: `delivered to two replicas: ${token}`,
        });
      } finally {
        smtp.close();
      }
      for (const user of users as string[]) {
        const client = imap(user);
        await client.connect();
        try {
          const lock = await client.getMailboxLock('INBOX');
          try {
            const uid = await uidBySubject(client, token);
            expect(uid, `the message in ${user}'s INBOX`).toBeDefined();
          } finally {
            lock.release();
          }
        } finally {
          await client.logout().catch(() => undefined);
        }
      }

      // ManageSieve is storage-imap-1's: a user of replica 2 stores a script there, which goes
      // over gRPC to its owner.
      const grpcBefore = await calls('storage-imap-1', 'grpc');
      const sieveUser = users[1] as string;
      const script = 'require "fileinto";\r\nif header :contains "subject" "x" { fileinto "INBOX"; }\r\n';
      const transcript = await manageSieve(Number(ports.POSTMESH_MANAGESIEVE_PORT), [
        `AUTHENTICATE "PLAIN" "${Buffer.from(`\0${sieveUser}\0${PASSWORD}`).toString('base64')}"`,
        `PUTSCRIPT "replicas" {${Buffer.byteLength(script)}+}\r\n${script}`,
        'LISTSCRIPTS',
        'LOGOUT',
      ]);
      expect(
        transcript.filter((line) => /^OK/.test(line)),
        transcript.join('\n'),
      ).toHaveLength(4);
      expect(transcript).toContain('"replicas"');
      expect(await calls('storage-imap-1', 'grpc')).toBeGreaterThan(grpcBefore);

      stack.interrupt();
      expect(await stack.exited).toBe(0);
      expect(stack.output()).toContain('stopped; nothing left running');
      expect(pids.filter(alive)).toEqual([]);
    }
  }, 300_000);
});
