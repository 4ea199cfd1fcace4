/**
 * mta-delivery with the real storage process (Directory DKIM keys, DSNs into the sender's INBOX),
 * nats-server and FerretDB from @postmesh/testing, and an smtp-server sink as the remote MX.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subjects, encodeOutboundJob, outboundJobMessageId, publishDurable } from '@postmesh/bus';
import { DirectoryServiceClient, MailstoreServiceClient, directory, mailstore } from '@postmesh/contracts';
import {
  freePort,
  startService,
  startTestEnvironment,
  type RunningService,
  type ServiceName,
  type TestEnvironment,
  FakeDnsServer,
} from '@postmesh/testing';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpSink } from './sink.js';

const DEMO = 'demo@example.test';

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

function call<Req, Res>(method: Unary<Req, Res>, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, new Metadata(), { deadline: Date.now() + 10_000 }, (error, response) => {
      if (error === null) resolve(response);
      else reject(error);
    });
  });
}

describe('mta-delivery with storage', () => {
  let env: TestEnvironment;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let sink: SmtpSink;
  let dns: FakeDnsServer | undefined;
  let dirClient: DirectoryServiceClient;
  let store: MailstoreServiceClient;
  /** The DNS records the Directory publishes for the domain's active keys: name → TXT value. */
  const dkimRecords = new Map<string, string>();
  const procs: RunningService[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-mta-storage-'));

  async function spawn(service: ServiceName, vars: Record<string, string>): Promise<RunningService> {
    const running = await startService(service, { env, dir, vars, readyTimeoutMs: 40_000 });
    procs.push(running);
    return running;
  }

  async function inbox(address: string): Promise<Buffer[]> {
    const user = await call(
      dirClient.getUser.bind(dirClient),
      directory.GetUserRequest.fromPartial({ selector: { $case: 'address', value: address } }),
    );
    const userId = user.user?.id ?? '';
    const boxes = await call(
      store.listMailboxes.bind(store),
      mailstore.ListMailboxesRequest.fromPartial({ userId, pattern: '*' }),
    );
    const mailboxId = boxes.mailboxes.find((m) => m.path === 'INBOX')?.id ?? '';
    const uids: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = store.fetchMessages(
        mailstore.FetchMessagesRequest.fromPartial({
          userId,
          mailboxId,
          uids: { ranges: [{ first: 1, last: 0 }] },
        }),
      );
      s.on('data', (r: mailstore.FetchMessagesResponse) => r.message && uids.push(r.message.uid));
      s.on('error', reject);
      s.on('end', resolve);
    });
    const out: Buffer[] = [];
    for (const uid of uids) {
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = store.getMessageContent(
          mailstore.GetMessageContentRequest.fromPartial({ userId, mailboxId, uid, section: '' }),
        );
        s.on(
          'data',
          (r: mailstore.GetMessageContentResponse) =>
            r.part?.$case === 'chunk' && chunks.push(Buffer.from(r.part.value)),
        );
        s.on('error', reject);
        s.on('end', resolve);
      });
      out.push(Buffer.concat(chunks));
    }
    return out;
  }

  async function send(rcpt: string, subject: string): Promise<void> {
    const spoolId = `s${randomBytes(8).toString('hex')}`;
    const domain = rcpt.slice(rcpt.indexOf('@') + 1);
    const body = new TextEncoder().encode(
      `From: Demo <${DEMO}>\r\nTo: <${rcpt}>\r\nSubject: ${subject}\r\nDate: Fri, 27 Nov 2026 19:00:00 +0000\r\nMessage-ID: <${spoolId}@example.test>\r\n\r\nHello  there,\r\nsigned  body.\r\n`,
    );
    await publishDurable(
      js,
      Subjects.outbound(domain),
      encodeOutboundJob(
        {
          version: 1,
          spoolId,
          domain,
          envelope: { mailFrom: DEMO, rcptTo: [rcpt] },
          body: { kind: 'inline', size: body.length },
          queuedAt: new Date().toISOString(),
          messageId: `${spoolId}@example.test`,
          traceparent: '',
        },
        body,
      ),
      { msgId: outboundJobMessageId(spoolId, domain) },
    );
  }

  beforeAll(async () => {
    env = await startTestEnvironment();
    const { address: storageAddress } = await spawn('storage', {
      POSTMESH_DEV_SEED: 'true',
      POSTMESH_DEV_PASSWORD: 'Correct-Horse-Battery-9',
    });
    dirClient = new DirectoryServiceClient(storageAddress, env.security('operator').grpcClientCredentials());
    store = new MailstoreServiceClient(storageAddress, env.security('operator').grpcClientCredentials());
    const domain = await call(
      dirClient.getDomain.bind(dirClient),
      directory.GetDomainRequest.fromPartial({ selector: { $case: 'name', value: 'example.test' } }),
    );
    // Dual DKIM (RFC 8463 §3): an RSA and an Ed25519 key, both active.
    for (const [selector, algorithm] of [
      ['pm2026a', directory.DkimAlgorithm.RSA2048],
      ['pm2026e', directory.DkimAlgorithm.ED25519],
    ] as const) {
      const generated = await call(
        dirClient.generateDkimKey.bind(dirClient),
        directory.GenerateDkimKeyRequest.fromPartial({
          domainId: domain.domain?.id ?? '',
          selector,
          algorithm,
        }),
      );
      await call(
        dirClient.activateDkimKey.bind(dirClient),
        directory.ActivateDkimKeyRequest.fromPartial({ keyId: generated.key?.id ?? '' }),
      );
      dkimRecords.set(generated.key?.dnsName ?? '', generated.key?.dnsTxtValue ?? '');
    }

    const smtpPort = await freePort();
    sink = new SmtpSink({
      port: smtpPort,
      rcpt: (address) =>
        address.startsWith('unknown@') ? { code: 550, message: '5.1.1 no such user here' } : undefined,
    });
    await sink.listen();
    dns = await FakeDnsServer.start({
      MX: { 'remote.test': [{ exchange: 'mx.remote.test', priority: 10 }] },
      A: { 'mx.remote.test': ['127.0.0.1'] },
    });
    await spawn('mta-delivery', {
      POSTMESH_STORAGE_GRPC: storageAddress,
      POSTMESH_DNS_SERVERS: dns.address,
      POSTMESH_MTA_SMTP_PORT: String(smtpPort),
      POSTMESH_HOSTNAME: 'mta.example.test',
    });
    nc = await connect(env.natsOptions('operator'));
    js = jetstream(nc);
  });

  afterAll(async () => {
    await Promise.all([...procs].reverse().map((p) => p.stop(5_000)));
    dirClient?.close();
    store?.close();
    await nc?.close();
    await sink?.close();
    await dns?.stop();
    await env?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs with both Directory keys (Ed25519 and RSA); each signature verifies against the record the Directory publishes', async () => {
    expect([...dkimRecords.keys()].sort()).toEqual([
      'pm2026a._domainkey.example.test',
      'pm2026e._domainkey.example.test',
    ]);
    await send('ivy@remote.test', 'signed');
    const deadline = Date.now() + 20_000;
    while (sink.for('ivy@remote.test').length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    const got = sink.for('ivy@remote.test')[0];
    expect(got).toBeDefined();
    const result = await dkimVerify(got?.data ?? Buffer.alloc(0), {
      resolver: (name: string, type: string) => {
        const txt = dkimRecords.get(name);
        if (type === 'TXT' && txt !== undefined) return Promise.resolve([[txt]]);
        return Promise.reject(Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
      },
    });
    expect(result.results.map((r) => [r.signingDomain, r.selector, r.status.result])).toEqual([
      ['example.test', 'pm2026e', 'pass'],
      ['example.test', 'pm2026a', 'pass'],
    ]);
    const headerSection = got?.data.toString().split('\r\n\r\n')[0] ?? '';
    expect(headerSection.match(/^DKIM-Signature: [^\r]*c=relaxed\/relaxed/gm)).toHaveLength(2);
    expect(headerSection).toMatch(
      /^DKIM-Signature: [^\r]*a=ed25519-sha256[^]*\r\nDKIM-Signature: [^\r]*a=rsa-sha256/,
    );
  });

  it('puts a DSN for a 550 into the sender INBOX, readable by a mail parser', async () => {
    const before = (await inbox(DEMO)).length;
    await send('unknown@remote.test', 'will-bounce');
    let messages: Buffer[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      messages = await inbox(DEMO);
      if (messages.length > before) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const dsn = messages.find((m) => m.toString().includes('multipart/report'));
    expect(dsn).toBeDefined();
    const parsed = await simpleParser(dsn ?? Buffer.alloc(0));
    expect(parsed.subject).toBe('Undelivered Mail Returned to Sender');
    expect(parsed.from?.value[0]?.address).toBe('MAILER-DAEMON@mta.example.test');
    expect(parsed.text).toContain('Final-Recipient: rfc822; unknown@remote.test');
    expect(parsed.text).toContain('Action: failed');
    expect(parsed.text).toContain('Status: 5.1.1');
    expect(parsed.text).toContain('Diagnostic-Code: smtp; 550 5.1.1 no such user here');
    expect(parsed.text).toContain('Remote-MTA: dns; mx.remote.test');
    const original = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers');
    expect(original?.content.toString()).toContain('Subject: will-bounce');
    // The DSN carries the original headers as sent by the user, not our signature.
    expect(original?.content.toString()).not.toContain('DKIM-Signature');
  });
});
