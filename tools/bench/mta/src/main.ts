/**
 * Outbound benchmark: messages per second delivered by the real
 * mta-delivery process (`services/mta-delivery/dist/main.js`) to local SMTP sinks across D
 * destination domains, with every delivery acknowledged durably (JetStream `sync_interval:
 * always`; a job counts only once the consumer has no pending and no unacknowledged message).
 *
 *   npm run build && node tools/bench/mta/bin/mta.mjs --n 10000 --size 10240 --domains 10
 *
 * Setup: a private nats-server (libs/testing, fsync before every ack), a fake DNS server giving each
 * domain `d<i>.bench.test` the MX `mx.d<i>.bench.test` → 127.0.0.1, and a minimal SMTP sink on
 * 127.0.0.1 (250 to everything, PIPELINING, optional STARTTLS off) so the sink costs little CPU
 * next to the MTA. The N jobs are queued first; the clock runs from the first message the sink
 * receives to the moment the consumer has acknowledged all N.
 *
 * Options: --n (10000), --size bytes (10240), --domains (10), --concurrency jobs in flight (256),
 * --domain-concurrency per destination (20), --dkim rsa|ed25519|both|none (rsa: every message is
 * signed with an RSA-2048 key served by a stand-in Directory that answers GetSigningKey; both:
 * two signatures, Ed25519 and RSA, RFC 8463 §3), --json.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Server } from '@grpc/grpc-js';
import { DirectoryServiceDefinition, directory, type DirectoryServiceServer } from '@postmesh/contracts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import {
  Consumers,
  Streams,
  Subjects,
  encodeOutboundJob,
  outboundJobMessageId,
  publishDurable,
} from '@postmesh/bus';
import {
  ManagedProcess,
  freePort,
  repoRoot,
  startTestEnvironment,
  type TestEnvironment,
  FakeDnsServer,
} from '@postmesh/testing';

const { values: opts } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    size: { type: 'string', default: '10240' },
    domains: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '256' },
    'domain-concurrency': { type: 'string', default: '20' },
    dkim: { type: 'string', default: 'rsa' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(opts.n);
const SIZE = Number(opts.size);
const D = Number(opts.domains);

/** RFC 5321 server side, just enough for a sink: every command 250, data until `.`. */
function startSink(
  port: number,
  onMessage: (rcpts: readonly string[]) => void,
): Promise<() => Promise<void>> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    let buffer = '';
    let inData = false;
    let rcpts: string[] = [];
    socket.write('220 sink ESMTP\r\n');
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const out: string[] = [];
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) {
            // Keep only a tail long enough to find the terminator across chunks.
            if (buffer.length > 8) buffer = buffer.slice(-8);
            break;
          }
          buffer = buffer.slice(end + 5);
          inData = false;
          onMessage(rcpts);
          rcpts = [];
          out.push('250 2.0.0 Ok: queued');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) break;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') out.push('250-sink', '250-PIPELINING', '250-8BITMIME', '250 SIZE 52428800');
        else if (verb === 'RCPT') {
          rcpts.push(/<([^>]*)>/.exec(line)?.[1]?.toLowerCase() ?? '');
          out.push('250 2.1.5 Ok');
        } else if (verb === 'DATA') {
          inData = true;
          out.push('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'QUIT') {
          socket.end('221 2.0.0 Bye\r\n');
          return;
        } else if (verb === 'RSET') {
          rcpts = [];
          out.push('250 2.0.0 Ok');
        } else out.push('250 2.0.0 Ok');
      }
      if (out.length > 0) socket.write(out.join('\r\n') + '\r\n');
    });
  });
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () =>
      resolve(async () => {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      }),
    ),
  );
}

function body(i: number, domain: string): Uint8Array {
  const head = `From: <bench@example.test>\r\nTo: <r${i}@${domain}>\r\nSubject: bench ${i}\r\nMessage-ID: <b${i}@example.test>\r\nDate: Fri, 27 Nov 2026 19:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n`;
  const line = 'The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstu\r\n';
  let text = head;
  while (text.length + line.length <= SIZE) text += line;
  return new TextEncoder().encode(text.padEnd(SIZE - 2, 'x') + '\r\n');
}

/** A stand-in Directory: only GetSigningKey, with a key made here (the rest answers UNIMPLEMENTED). */
async function startDirectory(
  kind: 'rsa' | 'ed25519' | 'both',
  env: TestEnvironment,
): Promise<{ target: string; stop: () => void }> {
  const keyOf = (algorithm: 'rsa' | 'ed25519') => {
    const { privateKey } =
      algorithm === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
    return directory.SigningKey.fromPartial({
      domain: 'example.test',
      selector: `bench-${algorithm}`,
      algorithm: algorithm === 'rsa' ? directory.DkimAlgorithm.RSA2048 : directory.DkimAlgorithm.ED25519,
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      keyId: `bench-${algorithm}`,
    });
  };
  // As storage answers: every active key, Ed25519 first; `key` is the RSA one when there is one.
  const keys = kind === 'both' ? [keyOf('ed25519'), keyOf('rsa')] : [keyOf(kind)];
  const key = keys[keys.length - 1];
  const server = new Server();
  const impl: Partial<DirectoryServiceServer> = {
    getSigningKey: (_call, callback) => callback(null, { key, keys }),
  };
  server.addService(DirectoryServiceDefinition, impl as DirectoryServiceServer);
  const port = await freePort();
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, env.security('storage').grpcServerCredentials(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  return { target: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

const DKIM = opts.dkim === 'rsa' || opts.dkim === 'ed25519' || opts.dkim === 'both' ? opts.dkim : undefined;
const env = await startTestEnvironment({ mongo: false });
const dirServer = DKIM === undefined ? undefined : await startDirectory(DKIM, env);
const dir = mkdtempSync(join(tmpdir(), 'postmesh-bench-mta-'));
let mta: ManagedProcess | undefined;
let dns: FakeDnsServer | undefined;
let stopSink: (() => Promise<void>) | undefined;
try {
  const domains = Array.from({ length: D }, (_, i) => `d${i}.bench.test`);
  const dnsServer = await FakeDnsServer.start({
    MX: Object.fromEntries(domains.map((d) => [d, [{ exchange: `mx.${d}`, priority: 10 }]])),
    A: Object.fromEntries(domains.map((d) => [`mx.${d}`, ['127.0.0.1']])),
  });
  dns = dnsServer;
  const received = new Map<string, number>();
  let firstAt = 0;
  let total = 0;
  const smtpPort = await freePort();
  stopSink = await startSink(smtpPort, (rcpts) => {
    if (firstAt === 0) firstAt = performance.now();
    total += 1;
    for (const r of rcpts) received.set(r, (received.get(r) ?? 0) + 1);
  });

  // Queue every job first (the topology comes from a first mta-delivery start).
  const opsPort = await freePort();
  const start = (): ManagedProcess => {
    const p = new ManagedProcess({
      name: 'mta-delivery',
      command: process.execPath,
      args: [join(repoRoot(), 'services', 'mta-delivery', 'dist', 'main.js')],
      env: {
        ...process.env,
        ...env.serviceEnv,
        POSTMESH_OPS_PORT: String(opsPort),
        POSTMESH_STORAGE_GRPC: dirServer?.target ?? '127.0.0.1:1',
        POSTMESH_MTA_DKIM: String(dirServer !== undefined),
        POSTMESH_DNS_SERVERS: dnsServer.address,
        POSTMESH_MTA_SMTP_PORT: String(smtpPort),
        POSTMESH_MTA_CONCURRENCY: String(opts.concurrency),
        POSTMESH_MTA_DOMAIN_CONCURRENCY: String(opts['domain-concurrency']),
        POSTMESH_MTA_IDLE_CONNECTION_MS: '10000',
        LOG_LEVEL: 'warn',
      },
      logFile: join(dir, 'mta.log'),
    });
    p.start();
    return p;
  };
  const waitReady = async (): Promise<void> => {
    for (let i = 0; i < 300; i++) {
      const ok = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`mta-delivery not ready:\n${readFileSync(join(dir, 'mta.log'), 'utf8')}`);
  };
  mta = start();
  await waitReady();
  await mta.stop();

  const nc = await connect(env.natsOptions('operator'));
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const run = randomBytes(4).toString('hex');
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < N) {
        const i = next++;
        const domain = domains[i % D] ?? '';
        const data = body(i, domain);
        const spoolId = `b${run}${String(i).padStart(7, '0')}`;
        await publishDurable(
          js,
          Subjects.outbound(domain),
          encodeOutboundJob(
            {
              version: 1,
              spoolId,
              domain,
              envelope: { mailFrom: 'bench@example.test', rcptTo: [`r${i}@${domain}`] },
              body: { kind: 'inline', size: data.length },
              queuedAt: new Date().toISOString(),
              messageId: `b${i}@example.test`,
              traceparent: '',
            },
            data,
          ),
          { msgId: outboundJobMessageId(spoolId, domain) },
        );
      }
    }),
  );
  process.stderr.write(`queued ${N} jobs of ${SIZE} bytes to ${D} domains; starting mta-delivery\n`);

  mta = start();
  const deadline = Date.now() + 30 * 60_000;
  let doneAt = 0;
  while (Date.now() < deadline) {
    const info = await jsm.consumers.info(Streams.MAIL_OUTBOUND, Consumers.MTA_DELIVERY);
    if (info.num_pending === 0 && info.num_ack_pending === 0 && received.size >= N) {
      doneAt = performance.now();
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (doneAt === 0) throw new Error(`not finished: ${received.size}/${N} delivered`);
  const seconds = (doneAt - firstAt) / 1000;
  // CPU the mta-delivery process used (utime + stime from /proc, clock ticks of 10 ms).
  const stat =
    readFileSync(`/proc/${mta.pid ?? 0}/stat`, 'utf8')
      .split(') ')[1]
      ?.split(' ') ?? [];
  const cpuSeconds = (Number(stat[11] ?? 0) + Number(stat[12] ?? 0)) / 100;
  const result = {
    messages: N,
    sizeBytes: SIZE,
    domains: D,
    concurrency: Number(opts.concurrency),
    domainConcurrency: Number(opts['domain-concurrency']),
    dkim: DKIM ?? 'none',
    seconds: Number(seconds.toFixed(2)),
    msgPerSecond: Number((N / seconds).toFixed(1)),
    deliveredDistinct: received.size,
    duplicates: total - received.size,
    mtaCpuSeconds: cpuSeconds,
  };
  process.stdout.write(
    `delivered ${result.deliveredDistinct}/${N} (${result.duplicates} duplicates, DKIM ${result.dkim}) in ${result.seconds} s: ` +
      `${result.msgPerSecond} msg/s, all acknowledged; mta-delivery used ${cpuSeconds} s CPU\n`,
  );
  if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  await nc.close();
} finally {
  await mta?.stop();
  await stopSink?.();
  await dns?.stop();
  await env.stop();
  dirServer?.stop();
  rmSync(dir, { recursive: true, force: true });
}
