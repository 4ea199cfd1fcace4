/**
 * Submission: real storage + NATS + FerretDB + smtp-inbound processes; clients
 * are nodemailer (AUTH over STARTTLS on the submission port and over implicit TLS on the
 * submissions port), swaks and a raw socket. Remote recipients are read back from MAIL_OUTBOUND.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import {
  Buckets,
  Streams,
  Subjects,
  decodeOutboundJob,
  openSpool,
  outboundJobMessageId,
  spoolObjectName,
} from '@postmesh/bus';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountKey } from '@postmesh/bus';
import { DEMO, DEMO_PASSWORD, Pipeline } from './pipeline.js';
import { WireClient } from './smtp-wire.js';

const run = promisify(execFile);
const LOCKOUT = 4;

describe('submission: AUTH, sender ownership, routing', () => {
  let p: Pipeline;
  let bob: { id: string; address: string; password: string };
  let demoAppPassword = '';
  const alias = `demo.alias.${randomBytes(3).toString('hex')}@example.test`;

  beforeAll(async () => {
    p = await Pipeline.start({
      smtpEnv: { POSTMESH_AUTH_LOCKOUT_ACCOUNT: String(LOCKOUT), POSTMESH_AUTH_BASE_DELAY_MS: '20' },
    });
    bob = await p.createUser(`bob.${randomBytes(3).toString('hex')}@example.test`);
    const demoId = await p.userId(DEMO);
    await p.createAlias(alias, [demoId]);
    demoAppPassword = await p.createAppPassword(demoId);
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  const starttls = (user: string, pass: string) =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: p.submissionPort,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user, pass },
      name: 'client.example.test',
    });
  const implicit = (user: string, pass: string) =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: p.submissionsPort,
      secure: true,
      // The LOGIN mechanism here (PLAIN is nodemailer's default, used on the other port).
      authMethod: 'LOGIN',
      tls: { rejectUnauthorized: false },
      auth: { user, pass },
      name: 'client.example.test',
    });
  const message = (from: string, to: string, token: string, extra: string[] = [], more = '') =>
    Buffer.from(
      [`From: ${from}`, `To: ${to}`, `Subject: submit ${token}`, ...extra, '', `Body ${token}`, more].join(
        '\r\n',
      ),
    );

  it('on the submission port: no AUTH before STARTTLS (not advertised, 530 5.7.0), MAIL without AUTH is 530 5.7.0', async () => {
    const { client, greeting } = await WireClient.open(p.submissionPort);
    expect(greeting.code).toBe(220);
    const ehlo = await client.command('EHLO client.example.test');
    expect(ehlo.code).toBe(250);
    expect(ehlo.text).toMatch(/STARTTLS/);
    expect(ehlo.text).not.toMatch(/AUTH/);
    const auth = await client.command(
      `AUTH PLAIN ${Buffer.from(`\0${DEMO}\0${DEMO_PASSWORD}`).toString('base64')}`,
    );
    expect(auth.code).toBe(530);
    expect(auth.text).toMatch(/^5\.7\.0 Must issue a STARTTLS command first/);
    const mail = await client.command(`MAIL FROM:<${DEMO}>`);
    expect(mail.code).toBe(530);
    expect(mail.text).toMatch(/^5\.7\.0 Authentication required/);
    client.close();

    // After TLS but still without AUTH (swaks): MAIL is refused with 530 5.7.0.
    const swaks = await run('swaks', [
      '--server',
      `127.0.0.1:${p.submissionPort}`,
      '--tls',
      '--hide-informational',
      '--from',
      DEMO,
      '--to',
      DEMO,
      '--helo',
      'client.example.test',
      '--timeout',
      '20',
    ]).catch((error: { stdout?: string; stderr?: string }) => ({
      stdout: error.stdout ?? '',
      stderr: error.stderr ?? '',
    }));
    const transcript = `${swaks.stdout}${swaks.stderr}`;
    expect(transcript).toMatch(/<~ +250[ -]AUTH PLAIN LOGIN/);
    // swaks prints the server's refusal on stderr.
    expect(transcript).toMatch(/<~\* +530 5\.7\.0 Authentication required/);
  }, 60_000);

  it('AUTH PLAIN over STARTTLS (587) and LOGIN over implicit TLS (465) deliver a local recipient to INBOX', async () => {
    const t1 = randomBytes(6).toString('hex');
    const info = await starttls(DEMO, DEMO_PASSWORD).sendMail({
      envelope: { from: DEMO, to: [bob.address] },
      raw: message(`Demo <${DEMO}>`, bob.address, t1, [
        `Message-ID: <${t1}@example.test>`,
        'Date: Fri, 27 Nov 2026 10:00:00 +0000',
      ]),
    });
    expect(info.response).toMatch(/^250 2\.0\.0 queued as /);
    const t2 = randomBytes(6).toString('hex');
    const info2 = await implicit(bob.address, bob.password).sendMail({
      envelope: { from: bob.address, to: [DEMO] },
      raw: message(bob.address, DEMO, t2, [
        `Message-ID: <${t2}@example.test>`,
        'Date: Fri, 27 Nov 2026 10:00:00 +0000',
      ]),
    });
    expect(info2.response).toMatch(/^250 2\.0\.0 queued as /);
    await p.waitForMessages(bob.address, (m) => m.some((x) => x.bytes.includes(t1)));
    await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(t2)));
    // The service logs each AUTH outcome with its mechanism: both were used.
    expect(p.smtp.log()).toMatch(/"outcome":"success-plain"/);
    expect(p.smtp.log()).toMatch(/"outcome":"success-login"/);
  }, 60_000);

  it('an app password works, and an alias is a valid sender', async () => {
    const token = randomBytes(6).toString('hex');
    const info = await starttls(DEMO, demoAppPassword).sendMail({
      envelope: { from: alias, to: [bob.address] },
      raw: message(alias, bob.address, token),
    });
    expect(info.response).toMatch(/^250 2\.0\.0/);
    await p.waitForMessages(bob.address, (m) => m.some((x) => x.bytes.includes(token)));
  }, 60_000);

  it('missing Message-ID and Date are added', async () => {
    const token = randomBytes(6).toString('hex');
    await implicit(DEMO, DEMO_PASSWORD).sendMail({
      envelope: { from: DEMO, to: [bob.address] },
      raw: message(DEMO, bob.address, token),
    });
    const messages = await p.waitForMessages(bob.address, (m) => m.some((x) => x.bytes.includes(token)));
    const stored = messages.find((x) => x.bytes.includes(token))?.bytes.toString('utf8') ?? '';
    expect(stored).toMatch(/^Message-ID: <[^<>@\s]+@mx\.example\.test>\r$/m);
    expect(stored).toMatch(
      /^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000\r$/m,
    );
  }, 60_000);

  it("sending as another user's address is refused at MAIL FROM and at the From: header (550 5.7.1)", async () => {
    await expect(
      starttls(bob.address, bob.password).sendMail({
        envelope: { from: DEMO, to: [bob.address] },
        raw: message(bob.address, bob.address, 'x'),
      }),
    ).rejects.toMatchObject({ response: expect.stringMatching(/^550 5\.7\.1/) as unknown });
    const token = randomBytes(6).toString('hex');
    await expect(
      starttls(bob.address, bob.password).sendMail({
        envelope: { from: bob.address, to: [bob.address] },
        raw: message(`"Demo" <${DEMO}>`, bob.address, token),
      }),
    ).rejects.toMatchObject({ response: expect.stringMatching(/^550 5\.7\.1/) as unknown });
    expect((await p.messages(bob.address)).some((m) => m.bytes.includes(token))).toBe(false);
  }, 60_000);

  it('a remote recipient becomes one MAIL_OUTBOUND job per domain, in the outbound-job format', async () => {
    const token = randomBytes(6).toString('hex');
    const info = await starttls(DEMO, DEMO_PASSWORD).sendMail({
      envelope: {
        from: DEMO,
        to: ['x@remote-one.test', 'y@remote-one.test', 'z@remote-two.test', bob.address],
      },
      raw: message(DEMO, 'x@remote-one.test', token, [`Message-ID: <${token}@example.test>`]),
    });
    const spoolId = /queued as ([A-Za-z0-9_-]+)/.exec(info.response)?.[1] ?? '';
    expect(spoolId).not.toBe('');
    await p.waitForMessages(bob.address, (m) => m.some((x) => x.bytes.includes(token)));
    const nc = await connect(p.natsOptions());
    try {
      const jsm = await jetstreamManager(nc);
      for (const [domain, rcpts] of [
        ['remote-one.test', ['x@remote-one.test', 'y@remote-one.test']],
        ['remote-two.test', ['z@remote-two.test']],
      ] as const) {
        const stored = await jsm.streams.getMessage(Streams.MAIL_OUTBOUND, {
          last_by_subj: Subjects.outbound(domain),
        });
        expect(stored).not.toBeNull();
        expect(stored?.header?.get('Nats-Msg-Id')).toBe(outboundJobMessageId(spoolId, domain));
        const decoded = decodeOutboundJob(stored?.data ?? new Uint8Array());
        expect(decoded.ok).toBe(true);
        if (!decoded.ok) continue;
        expect(decoded.job.domain).toBe(domain);
        expect(decoded.job.envelope).toEqual({ mailFrom: DEMO, rcptTo: rcpts });
        expect(decoded.job.messageId).toBe(`${token}@example.test`);
        expect(Buffer.from(decoded.inlineBody ?? new Uint8Array()).toString('utf8')).toContain(
          `Body ${token}`,
        );
      }
    } finally {
      await nc.close();
    }
  }, 60_000);

  it('a large message to local and remote recipients: the outbound jobs get their own spool object, kept after storage deletes the inbound one', async () => {
    const token = randomBytes(6).toString('hex');
    const filler = `${'x'.repeat(76)}\r\n`.repeat(4_000); // ~312 KB: above the inline limit
    const info = await starttls(DEMO, DEMO_PASSWORD).sendMail({
      envelope: { from: DEMO, to: ['x@remote-three.test', 'y@remote-four.test', bob.address] },
      raw: message(DEMO, bob.address, token, [], filler),
    });
    const spoolId = /queued as ([A-Za-z0-9_-]+)/.exec(info.response)?.[1] ?? '';
    expect(spoolId).not.toBe('');
    await p.waitForMessages(bob.address, (m) => m.some((x) => x.bytes.includes(token)));
    const nc = await connect(p.natsOptions());
    try {
      const jsm = await jetstreamManager(nc);
      const spool = await openSpool(nc);
      let size = 0;
      for (const domain of ['remote-three.test', 'remote-four.test']) {
        const stored = await jsm.streams.getMessage(Streams.MAIL_OUTBOUND, {
          last_by_subj: Subjects.outbound(domain),
        });
        const decoded = decodeOutboundJob(stored?.data ?? new Uint8Array());
        expect(decoded.ok && decoded.job.spoolId).toBe(spoolId);
        if (!decoded.ok) continue;
        expect(decoded.job.body).toMatchObject({
          kind: 'object',
          object: `out/${spoolId}`,
          sharedBy: ['remote-three.test', 'remote-four.test'],
        });
        size = decoded.job.body.size;
      }
      // Storage deletes the inbound object once the local copy is stored (DESIGN §2 step 7) ...
      const deadline = Date.now() + 20_000;
      let inbound = await spool.info(spoolObjectName(spoolId));
      while (inbound !== null && inbound.deleted !== true && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        inbound = await spool.info(spoolObjectName(spoolId));
      }
      expect(inbound === null || inbound.deleted).toBe(true);
      // ... and mta-delivery still finds the whole message in its own.
      const outbound = Buffer.from((await spool.getBlob(`out/${spoolId}`)) ?? new Uint8Array());
      expect(outbound.length).toBe(size);
      expect(outbound.length).toBeGreaterThan(300_000);
      expect(outbound.toString('latin1')).toContain(`Body ${token}`);
    } finally {
      await nc.close();
    }
  }, 60_000);

  it('a wrong password is 535 5.7.8 and counts in the shared auth-failures bucket; after the lockout even the right one is 454 4.7.0', async () => {
    const nc = await connect(p.natsOptions());
    try {
      const kv = await new Kvm(nc).open(Buckets.AUTH_FAILURES);
      for (let i = 1; i <= LOCKOUT; i++) {
        await expect(starttls(bob.address, 'wrong-password').verify()).rejects.toMatchObject({
          response: expect.stringMatching(/^535 5\.7\.8/) as unknown,
        });
        // One counter per account: keyed by the user id the login resolves to.
        const entry = await kv.get(accountKey(bob.id));
        expect(entry?.json<{ count: number }>().count).toBe(i);
      }
      await expect(starttls(bob.address, bob.password).verify()).rejects.toMatchObject({
        response: expect.stringMatching(/^454 4\.7\.0/) as unknown,
      });
    } finally {
      await nc.close();
    }
  }, 90_000);
});

describe('submission on the literal ports 587 and 465 (needs permission to bind ports below 1024)', () => {
  let p: Pipeline;
  beforeAll(async () => {
    // Haraka core answers 550 to MAIL without AUTH on exactly these port numbers, before any
    // hook: postmesh_submission's connect_init pre-check must answer first.
    p = await Pipeline.start({
      smtpEnv: { POSTMESH_SUBMISSION_PORT: '587', POSTMESH_SUBMISSIONS_PORT: '465' },
    });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it("MAIL without AUTH is 530 5.7.0 (RFC 4954 §6), not Haraka core's 550, on 587 and 465", async () => {
    const { client, greeting } = await WireClient.open(587);
    expect(greeting.code).toBe(220);
    expect((await client.command('EHLO client.example.test')).code).toBe(250);
    const mail = await client.command(`MAIL FROM:<${DEMO}>`);
    expect(`${mail.code} ${mail.text}`).toBe('530 5.7.0 Authentication required');
    client.close();

    for (const tls of [['--tls'], ['--tlsc']]) {
      const port = tls[0] === '--tlsc' ? '465' : '587';
      const swaks = await run('swaks', [
        '--server',
        `127.0.0.1:${port}`,
        ...tls,
        '--hide-informational',
        '--from',
        DEMO,
        '--to',
        DEMO,
        '--helo',
        'client.example.test',
        '--timeout',
        '20',
      ]).catch((error: { stdout?: string; stderr?: string }) => ({
        stdout: error.stdout ?? '',
        stderr: error.stderr ?? '',
      }));
      const transcript = `${swaks.stdout}${swaks.stderr}`;
      expect(transcript, port).toMatch(/<~\* +530 5\.7\.0 Authentication required/);
      expect(transcript, port).not.toMatch(/550 Authentication required/);
    }

    // An authenticated client on 465 still sends.
    const info = await nodemailer
      .createTransport({
        host: '127.0.0.1',
        port: 465,
        secure: true,
        tls: { rejectUnauthorized: false },
        auth: { user: DEMO, pass: DEMO_PASSWORD },
      })
      .sendMail({
        envelope: { from: DEMO, to: [DEMO] },
        raw: Buffer.from(`From: ${DEMO}\r\nSubject: on 465\r\n\r\nhello\r\n`),
      });
    expect(info.response).toMatch(/^250 2\.0\.0 queued as /);
  }, 60_000);
});

describe('submission: per-user sending limits', () => {
  let p: Pipeline;
  beforeAll(async () => {
    // Service defaults, for users without limits of their own.
    p = await Pipeline.start({
      smtpEnv: {
        POSTMESH_SUBMISSION_MESSAGES_PER_HOUR: '3',
        POSTMESH_SUBMISSION_RECIPIENTS_PER_MESSAGE: '3',
      },
    });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  const transport = (user: string, pass: string) =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: p.submissionsPort,
      secure: true,
      tls: { rejectUnauthorized: false },
      auth: { user, pass },
    });
  const raw = (from: string) => Buffer.from(`From: ${from}\r\nSubject: limits\r\n\r\nhello\r\n`);
  const tag = () => randomBytes(3).toString('hex');

  it("enforces the user's own limits from the Directory: a third recipient is 452 4.5.3, a third message 451 4.7.1", async () => {
    const carol = await p.createUser(`carol.${tag()}@example.test`);
    // Alice's own limits (CreateUser messages_per_hour / recipients_per_message) are below the defaults.
    const alice = await p.createUser(`alice.${tag()}@example.test`, {
      messagesPerHour: 2,
      recipientsPerMessage: 2,
    });
    const tooMany = await transport(alice.address, alice.password).sendMail({
      envelope: { from: alice.address, to: [carol.address, 'a@remote.test', 'b@remote.test'] },
      raw: raw(alice.address),
    });
    // RFC 5321 §4.5.3.1.10: the third RCPT gets 452; nodemailer sends to the accepted ones and
    // reports the refused one.
    expect(tooMany.accepted).toEqual([carol.address, 'a@remote.test']);
    expect(tooMany.rejected).toEqual(['b@remote.test']);
    expect((tooMany as { rejectedErrors?: { response?: string }[] }).rejectedErrors?.[0]?.response).toMatch(
      /^452 4\.5\.3/,
    );

    await transport(alice.address, alice.password).sendMail({
      envelope: { from: alice.address, to: [carol.address] },
      raw: raw(alice.address),
    });
    await expect(
      transport(alice.address, alice.password).sendMail({
        envelope: { from: alice.address, to: [carol.address] },
        raw: raw(alice.address),
      }),
    ).rejects.toMatchObject({ response: expect.stringMatching(/^451 4\.7\.1/) as unknown });

    // Bob has no limits of his own: the service defaults (3 and 3) apply, counted separately.
    const bob = await p.createUser(`bob.${tag()}@example.test`);
    const three = await transport(bob.address, bob.password).sendMail({
      envelope: { from: bob.address, to: [carol.address, 'c@remote.test', 'd@remote.test', 'e@remote.test'] },
      raw: raw(bob.address),
    });
    expect(three.accepted).toEqual([carol.address, 'c@remote.test', 'd@remote.test']);
    expect(three.rejected).toEqual(['e@remote.test']);
    for (let i = 0; i < 2; i++) {
      const info = await transport(bob.address, bob.password).sendMail({
        envelope: { from: bob.address, to: [carol.address] },
        raw: raw(bob.address),
      });
      expect(info.response).toMatch(/^250 2\.0\.0/); // his second and third: alice would be refused
    }
    await expect(
      transport(bob.address, bob.password).sendMail({
        envelope: { from: bob.address, to: [carol.address] },
        raw: raw(bob.address),
      }),
    ).rejects.toMatchObject({ response: expect.stringMatching(/^451 4\.7\.1/) as unknown });

    // A user may also have more than the default: dave sends five recipients and a fourth message.
    const dave = await p.createUser(`dave.${tag()}@example.test`, {
      messagesPerHour: 10,
      recipientsPerMessage: 5,
    });
    const five = await transport(dave.address, dave.password).sendMail({
      envelope: { from: dave.address, to: [carol.address, 'f@r.test', 'g@r.test', 'h@r.test', 'i@r.test'] },
      raw: raw(dave.address),
    });
    expect(five.rejected).toEqual([]);
    for (let i = 0; i < 3; i++) {
      await transport(dave.address, dave.password).sendMail({
        envelope: { from: dave.address, to: [carol.address] },
        raw: raw(dave.address),
      });
    }
    await p.waitForCount(carol.address, 2 + 3 + 4);
    expect(await p.count(carol.address)).toBe(9);
  }, 90_000);
});
