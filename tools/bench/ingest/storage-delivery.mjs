/**
 * Storage's side of ingest alone, in one process, for profiling: N inbound jobs of SIZE bytes
 * (like smtp-source's) are published to MAIL_INBOUND first, then the real storage app (built
 * code, services/storage/dist) is started against its own nats-server and FerretDB and drains
 * them. Prints the rate and this process's CPU per delivered message (the delivery consumer and
 * the trace-event consumer, nothing else of smtp-inbound's). FerretDB and NATS are separate
 * processes; their CPU is printed too (from /proc).
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof tools/bench/ingest/storage-delivery.mjs [N] [SIZE]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Bus,
  Consumers,
  Streams,
  Subjects,
  encodeInboundJob,
  jobMessageId,
  publishDurable,
} from '@postmesh/bus';
import { createLogger } from '@postmesh/telemetry';
import { startTestEnvironment } from '@postmesh/testing';
import { ServerCredentials } from '@grpc/grpc-js';
import { MongoClient } from 'mongodb';
import { createStorageApp } from '../../../services/storage/dist/app.js';
import { loadLocalKeyProvider } from '../../../services/storage/dist/crypto/index.js';

const N = Number(process.argv[2] ?? 2000);
const SIZE = Number(process.argv[3] ?? 10240);
const TICK = 100; // USER_HZ on Linux

/**
 * CPU seconds of a process and its live descendants, each with its reaped children (PostgreSQL
 * runs a backend process per connection under its postmaster).
 */
function cpuOf(pid) {
  if (pid === undefined) return 0;
  let raw;
  try {
    raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  let total = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICK;
  let children = '';
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    // gone in between
  }
  for (const child of children.split(' ').filter(Boolean)) total += cpuOf(Number(child));
  return total;
}

function body(i) {
  const lines = [
    'From: sender@outside.test',
    'To: demo@example.test',
    `Subject: load ${i}`,
    `Message-ID: <${i}.${randomBytes(4).toString('hex')}@outside.test>`,
    'Date: Sun, 6 Dec 2026 10:00:00 +0000',
    '',
  ];
  let text = lines.join('\r\n') + '\r\n';
  const line = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 the quick brown fox\r\n';
  while (text.length < SIZE) text += line;
  return Buffer.from(text);
}

const logger = createLogger('storage-delivery-bench', 'warn');
const env = await startTestEnvironment({ nats: true });
const dir = mkdtempSync(join(tmpdir(), 'storage-delivery-bench-'));
const kekFile = join(dir, 'kek');
writeFileSync(kekFile, randomBytes(32).toString('base64'), { mode: 0o600 });
const mongo = new MongoClient(env.mongoUri, { writeConcern: { w: 'majority', journal: true } });
await mongo.connect();
const db = mongo.db(env.database);
const bus = await Bus.connect({ ...env.busOptions(), name: 'storage-delivery-bench', logger, replicas: 1 });
const publisher = await Bus.connect({ ...env.busOptions(), name: 'bench-publisher', logger, replicas: 1 });
try {
  // The user first (the app seeds nothing here), through a throw-away app without a bus.
  const keyProvider = loadLocalKeyProvider({ kekFile });
  // Bodies in the filesystem blob store, as the local stack keeps them.
  const blobStore = { kind: 'fs', dir: join(dir, 'blobs') };
  // No gRPC caller here: plaintext on a random port of 127.0.0.1.
  const grpcCredentials = { insecure: true, server: ServerCredentials.createInsecure() };
  const setup = await createStorageApp({ db, keyProvider, logger, grpcPort: 0, blobStore, grpcCredentials });
  await setup.directory.createDomain({ name: 'example.test', defaultQuotaBytes: 0 });
  const user = await setup.directory.createUser({
    address: 'demo@example.test',
    password: `Pw-${randomBytes(8).toString('hex')}-x`,
    displayName: 'demo',
  });
  if (!user.ok) throw new Error('createUser failed');
  await setup.stop(0);

  const started = Date.now();
  await Promise.all(
    Array.from({ length: 16 }, async (_, w) => {
      for (let i = w; i < N; i += 16) {
        const spoolId = `b${String(i).padStart(8, '0')}${randomBytes(4).toString('hex')}`;
        const raw = body(i);
        const job = {
          version: 1,
          spoolId,
          envelope: {
            mailFrom: 'sender@outside.test',
            rcptTo: ['demo@example.test'],
            remoteIp: '127.0.0.1',
            helo: 'x',
          },
          authResults: {
            spf: 'none',
            dkim: 'none',
            dmarc: 'none',
            arc: 'none',
            dmarcPolicy: '',
            junk: false,
          },
          receivedAt: new Date().toISOString(),
          messageId: `${i}@outside.test`,
          traceparent: '',
          body: { kind: 'inline', size: raw.length },
        };
        await publishDurable(publisher.js, Subjects.inbound(spoolId), encodeInboundJob(job, raw), {
          msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND),
        });
      }
    }),
  );
  process.stdout.write(`published ${N} jobs in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

  const pids = {
    ferretdb: env.ferret?.process.pid,
    // FerretDB's own PostgreSQL cluster, with POSTMESH_DB_BACKEND=postgresql.
    ...(env.ferret?.postgres === undefined ? {} : { postgresql: env.ferret.postgres.process.pid }),
    'nats-server': env.nats?.process.pid,
  };
  const before = {
    self: process.cpuUsage(),
    ...Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuOf(p)])),
  };
  const t0 = Date.now();
  const app = await createStorageApp({
    db,
    keyProvider,
    logger,
    bus,
    grpcPort: 0,
    blobStore,
    grpcCredentials,
  });
  const messages = db.collection('messages');
  for (;;) {
    const info = await bus.jsm.consumers.info(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER);
    if (info.num_pending === 0 && info.num_ack_pending === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const seconds = (Date.now() - t0) / 1000;
  const self = process.cpuUsage(before.self);
  const after = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuOf(p)]));
  await app.stop(2_000);
  const stored = await messages.countDocuments({});
  const ms = (s) => ((1000 * s) / stored).toFixed(2);
  process.stdout.write(
    `stored ${stored} of ${N} in ${seconds.toFixed(1)} s: ${(stored / seconds).toFixed(1)} msg/s\n` +
      `storage (this process) ${ms((self.user + self.system) / 1e6)} ms CPU/msg\n` +
      Object.keys(pids)
        .map((k) => `${k} ${ms(after[k] - before[k])} ms CPU/msg`)
        .join('\n') +
      '\n',
  );
} finally {
  await bus.drain();
  await publisher.drain();
  await mongo.close();
  await env.stop();
  rmSync(dir, { recursive: true, force: true });
}
