/**
 * The real mta-delivery process for admin tests, pointed at a remote MTA on 127.0.0.1 that answers
 * every recipient 451 (RFC 5321 §4.2.1: transient), so outbound mail stays deferred in its queue,
 * and a publisher of outbound jobs (as smtp-inbound publishes submitted mail).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, encodeOutboundJob, outboundJobMessageId, publishDurable, Subjects } from '@postmesh/bus';
import { createLogger } from '@postmesh/telemetry';
import { freePort, startService, FakeDnsServer, type RunningService } from '@postmesh/testing';
import type { AdminHarness } from './harness.js';

/** A remote MTA that accepts the sender and answers every recipient 451 (the message stays deferred). */
function deferringSink(): Server {
  return createServer((socket: Socket) => {
    socket.setEncoding('utf8');
    socket.write('220 sink.example.org ESMTP\r\n');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i).toUpperCase();
        buffer = buffer.slice(i + 2);
        if (line.startsWith('EHLO') || line.startsWith('HELO')) socket.write('250 sink.example.org\r\n');
        else if (line.startsWith('MAIL')) socket.write('250 2.1.0 ok\r\n');
        else if (line.startsWith('RCPT')) socket.write('451 4.7.1 try again later\r\n');
        else if (line.startsWith('QUIT')) socket.end('221 2.0.0 bye\r\n');
        else if (line.startsWith('RSET') || line.startsWith('NOOP')) socket.write('250 2.0.0 ok\r\n');
        else socket.write('503 5.5.1 bad sequence\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
}

export async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface DeferringMta {
  /** Publishes one outbound job from `from` to bob@example.org; returns its queue id `<spoolId>:example.org`. */
  queueOne(subject: string, from: string): Promise<string>;
  stop(): Promise<void>;
}

/** Starts the sink and mta-delivery (needs `services/mta-delivery/dist`) beside the admin harness. */
export async function startDeferringMta(h: AdminHarness): Promise<DeferringMta> {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-admin-mta-'));
  const smtpPort = await freePort();
  const sink = deferringSink();
  await new Promise<void>((resolve) => sink.listen(smtpPort, '127.0.0.1', resolve));
  const dns = await FakeDnsServer.start({
    MX: { 'example.org': [{ exchange: 'mx.example.org', priority: 10 }] },
    A: { 'mx.example.org': ['127.0.0.1'] },
  });
  let mta: RunningService | undefined;
  let bus: Bus | undefined;
  const stop = async (): Promise<void> => {
    await bus?.drain();
    await mta?.stop();
    await new Promise((r) => sink.close(r));
    await dns.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    mta = await startService('mta-delivery', {
      env: h.env,
      dir,
      vars: {
        POSTMESH_STORAGE_GRPC: h.storageGrpc,
        POSTMESH_MTA_DKIM: 'false',
        POSTMESH_HOSTNAME: 'mta.example.test',
        // Long enough that the entry stays deferred while the test looks at it.
        POSTMESH_MTA_RETRY_SCHEDULE_MS: '600000',
        POSTMESH_MTA_RETRY_JITTER_PCT: '0',
        POSTMESH_MTA_QUEUE_TICK_MS: '200',
        POSTMESH_MTA_CONNECT_TIMEOUT_MS: '2000',
        POSTMESH_DNS_SERVERS: dns.address,
        POSTMESH_MTA_SMTP_PORT: String(smtpPort),
      },
    });
    bus = await Bus.connect({
      ...h.env.busOptions('operator'),
      name: 'admin-queue-test',
      logger: createLogger('admin-queue-test', 'silent'),
      replicas: 1,
    });
  } catch (error) {
    await stop();
    throw error;
  }
  const connected = bus;
  return {
    async queueOne(subject, from) {
      const spoolId = `q${randomBytes(6).toString('hex')}`;
      const domain = from.slice(from.lastIndexOf('@') + 1);
      const body = Buffer.from(
        `From: ${from}\r\nTo: bob@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${spoolId}@${domain}>\r\n\r\nhello\r\n`,
      );
      const frame = encodeOutboundJob(
        {
          version: 1,
          spoolId,
          domain: 'example.org',
          envelope: { mailFrom: from, rcptTo: ['bob@example.org'] },
          body: { kind: 'inline', size: body.length },
          queuedAt: new Date().toISOString(),
          messageId: `${spoolId}@${domain}`,
          traceparent: '',
        },
        body,
      );
      await publishDurable(connected.js, Subjects.outbound('example.org'), frame, {
        msgId: outboundJobMessageId(spoolId, 'example.org'),
      });
      return `${spoolId}:example.org`;
    },
    stop,
  };
}
