/**
 * Content filtering with a real rspamd (Debian's package, offline configuration from
 * libs/testing): GTUBE is refused before the 250, a message rspamd scores for "add header" or
 * "rewrite subject" goes to Junk with X-Spam-* headers, a clean one reaches INBOX, forged X-Spam
 * headers are replaced, submissions are scanned too, and an rspamd outage loses nothing
 * (accepted with "not scanned", or 451 when the operator chose tempfail).
 *
 * The "add header" and "rewrite subject" scores come from two test rules, as an operator would
 * add a multimap rule: rspamd's own rules cannot be made to land between the thresholds reliably.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mailstore } from '@postmesh/contracts';
import { FakeDnsServer, RspamdServer } from '@postmesh/testing';
import { DEMO, DEMO_PASSWORD, Pipeline, call } from './pipeline.js';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

const TEST_RULES = {
  'multimap.conf': `
POSTMESH_TEST_SPAMMY {
  type = "header";
  header = "X-Postmesh-Test";
  map = "$LOCAL_CONFDIR/local.d/spammy.map";
  score = 7.0;
  description = "Test rule: lands between add_header and rewrite_subject";
}
POSTMESH_TEST_VERY_SPAMMY {
  type = "header";
  header = "X-Postmesh-Test";
  map = "$LOCAL_CONFDIR/local.d/very-spammy.map";
  score = 11.0;
  description = "Test rule: lands between rewrite_subject and reject";
}
`,
  'spammy.map': 'spammy\n',
  'very-spammy.map': 'very-spammy\n',
  'actions.conf': 'greylist = null;\nrewrite_subject = 10;\nsubject = "[SPAM] %s";\n',
};

function message(token: string, body: string, extra: string[] = [], subject = `filter ${token}`): Buffer {
  return Buffer.from(
    [
      ...extra,
      'From: Sender <sender@elsewhere.test>',
      `To: ${DEMO}`,
      `Subject: ${subject}`,
      `Message-ID: <${token}@elsewhere.test>`,
      'Date: Fri, 27 Nov 2026 10:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      body,
      `token ${token}`,
      '',
    ].join('\r\n'),
  );
}

describe('content filtering with rspamd', () => {
  let rspamd: RspamdServer;
  let p: Pipeline;
  let dns: FakeDnsServer | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-filter-'));

  beforeAll(async () => {
    rspamd = await RspamdServer.start({ localFiles: TEST_RULES });
    // An empty zone: sender authentication answers "none" at once (no network here).
    dns = await FakeDnsServer.start({});
    p = await Pipeline.start({
      smtpEnv: { POSTMESH_RSPAMD_URL: rspamd.url, POSTMESH_DNS_SERVERS: dns.address },
      storageEnv: { POSTMESH_RSPAMD_CONTROLLER_URL: rspamd.controllerUrl },
    });
  }, 660_000);
  afterAll(async () => {
    await p?.stop();
    await rspamd?.stop();
    await dns?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function send(raw: Buffer, port = p.smtpPort): Promise<{ code: number; response: string }> {
    try {
      const info = await nodemailer
        .createTransport({
          host: '127.0.0.1',
          port,
          secure: false,
          ignoreTLS: true,
          name: 'mta.elsewhere.test',
        })
        .sendMail({ envelope: { from: 'sender@elsewhere.test', to: [DEMO] }, raw });
      return { code: Number(info.response.slice(0, 3)), response: info.response };
    } catch (error) {
      const e = error as { responseCode?: number; response?: string };
      return { code: e.responseCode ?? 0, response: e.response ?? String(error) };
    }
  }

  async function stored(token: string, path: string): Promise<string> {
    const list = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)), { path });
    return list.find((x) => x.bytes.includes(token))?.bytes.toString('latin1') ?? '';
  }

  const headerOf = (raw: string): string => raw.slice(0, raw.indexOf('\r\n\r\n'));

  it('a clean message reaches INBOX, marked as scanned and not spam', async () => {
    const token = randomBytes(6).toString('hex');
    const reply = await send(message(token, 'Lunch tomorrow at noon? The usual place.'));
    expect(reply.code).toBe(250);
    const header = headerOf(await stored(token, 'INBOX'));
    expect(header).toMatch(/^X-Spam-Status: No, score=-?\d+\.\d\d \/ 15\.00 by mx\.example\.test$/m);
    expect(header).not.toMatch(/^X-Spam: Yes/m);
  });

  it('GTUBE is refused with 550 5.7.1 before the 250, and nothing is stored', async () => {
    const token = randomBytes(6).toString('hex');
    const reply = await send(message(token, GTUBE));
    expect(reply.code).toBe(550);
    expect(reply.response).toMatch(/5\.7\.1/);
    await new Promise((r) => setTimeout(r, 500));
    expect((await p.messages(DEMO)).some((m) => m.bytes.includes(token))).toBe(false);
    expect((await p.messages(DEMO, 'Junk')).some((m) => m.bytes.includes(token))).toBe(false);
    // The refusal is a hop of the trace (and what the spam-rejected webhook is made of).
    const nc = await connect(p.natsOptions());
    try {
      const jsm = await jetstreamManager(nc);
      const deadline = Date.now() + 10_000;
      let event: { kind?: string; attributes?: Record<string, string>; recipient?: string } = {};
      while (Date.now() < deadline) {
        const m = await jsm.streams
          .getMessage('MAIL_EVENTS', { last_by_subj: 'mail.events.rejected' })
          .catch(() => null);
        event = m === null ? {} : m.json<typeof event>();
        if (event.attributes?.spam_action === 'reject') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(event.kind).toBe('rejected');
      expect(event.recipient).toBe(DEMO);
      expect(event.attributes).toMatchObject({ spam_action: 'reject', recipient_domains: 'example.test' });
    } finally {
      await nc.close();
    }
  });

  it('"add header" delivers to Junk with the verdict and the symbols; a forged X-Spam-Status is replaced', async () => {
    const token = randomBytes(6).toString('hex');
    const raw = message(token, 'Buy now.', ['X-Postmesh-Test: spammy', 'X-Spam-Status: No, forged']);
    expect((await send(raw)).code).toBe(250);
    const header = headerOf(await stored(token, 'Junk'));
    expect(header).toMatch(/^X-Spam: Yes$/m);
    expect(header).toMatch(/^X-Spam-Status: Yes, score=\d+\.\d\d \/ 15\.00, action=add header/m);
    expect(header).toMatch(/^X-Spam-Symbols: .*POSTMESH_TEST_SPAMMY/m);
    expect(header).not.toMatch(/forged/);
    expect((await p.messages(DEMO)).some((m) => m.bytes.includes(token))).toBe(false);
  });

  it('"rewrite subject" delivers to Junk with the subject rspamd proposes', async () => {
    const token = randomBytes(6).toString('hex');
    const raw = message(token, 'Buy now!', ['X-Postmesh-Test: very-spammy'], `offer ${token}`);
    expect((await send(raw)).code).toBe(250);
    const header = headerOf(await stored(token, 'Junk'));
    expect(header).toMatch(new RegExp(`^Subject: \\[SPAM\\] offer ${token}$`, 'm'));
    expect(header.match(/^Subject:/gm)).toHaveLength(1);
    expect(header).toMatch(/action=rewrite subject/);
  });

  it('a submission is scanned too: GTUBE from an authenticated user is refused', async () => {
    const token = randomBytes(6).toString('hex');
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: p.submissionPort,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: DEMO, pass: DEMO_PASSWORD },
      name: 'client.example.test',
    });
    const raw = Buffer.from(
      [`From: ${DEMO}`, `To: ${DEMO}`, `Subject: s ${token}`, '', GTUBE, token, ''].join('\r\n'),
    );
    const error = await transport.sendMail({ envelope: { from: DEMO, to: [DEMO] }, raw }).then(
      () => undefined,
      (e: unknown) => e as { responseCode?: number; response?: string },
    );
    expect(error?.responseCode).toBe(550);
    expect(error?.response).toMatch(/5\.7\.1/);
  });

  /** Bayes revisions by class from rspamd's controller (`/stat`). */
  async function learnedCounts(): Promise<{ spam: number; ham: number }> {
    const stat = (await (await fetch(`${rspamd.controllerUrl}/stat`)).json()) as {
      statfiles?: { symbol: string; revision: number }[];
    };
    const of = (symbol: string): number => stat.statfiles?.find((f) => f.symbol === symbol)?.revision ?? 0;
    return { spam: of('BAYES_SPAM'), ham: of('BAYES_HAM') };
  }

  async function waitForLearned(want: { spam: number; ham: number }): Promise<void> {
    // The learning consumer hands a lesson to rspamd within a second (storage logs "content filter
    // learned from the user"), but `/stat` reports the Redis backend's revisions as rspamd last
    // synced them, which lags by seconds on a quiet machine and by up to a minute on a loaded CI
    // machine: 100 s, still bounded.
    const deadline = Date.now() + 100_000;
    for (;;) {
      const now = await learnedCounts();
      if (now.spam >= want.spam && now.ham >= want.ham) return;
      if (Date.now() > deadline)
        throw new Error(`rspamd learned ${JSON.stringify(now)}, expected ${JSON.stringify(want)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  it('moving a message into Junk teaches rspamd spam, moving it back out teaches ham (through JetStream)', async () => {
    const token = randomBytes(6).toString('hex');
    expect((await send(message(token, 'A newsletter nobody asked for, with offers.'))).code).toBe(250);
    const inbox = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
    const uid = inbox.find((x) => x.bytes.includes(token))?.uid ?? 0;
    const userId = await p.userId(DEMO);
    const inboxId = await p.mailboxId(userId, 'INBOX');
    const junkId = await p.mailboxId(userId, 'Junk');
    const before = await learnedCounts();
    const move = (from: string, to: string, one: number) =>
      call(
        p.mailstore.moveMessages.bind(p.mailstore),
        mailstore.MoveMessagesRequest.fromPartial({
          userId,
          mailboxId: from,
          uids: { ranges: [{ first: one, last: one }] },
          destination: { selector: { $case: 'id', value: to } },
        }),
      );
    const moved = await move(inboxId, junkId, uid);
    const junkUid = moved.mappings[0]?.destinationUid ?? 0;
    expect(junkUid).toBeGreaterThan(0);
    await waitForLearned({ spam: before.spam + 1, ham: before.ham });
    await move(junkId, inboxId, junkUid);
    await waitForLearned({ spam: before.spam + 1, ham: before.ham + 1 });
  }, 240_000);

  it('rspamd down: mail is accepted and says it was not scanned; with tempfail it gets 451', async () => {
    await rspamd.process.stop(10_000);
    try {
      const token = randomBytes(6).toString('hex');
      expect((await send(message(token, 'while the filter is down'))).code).toBe(250);
      const header = headerOf(await stored(token, 'INBOX'));
      expect(header).toMatch(
        /^X-Spam-Status: Unknown, not scanned by mx\.example\.test \(scanner unavailable\)$/m,
      );

      // The operator's other choice: refuse temporarily, so the sender retries later.
      await p.smtp.proc.stop(10_000);
      await p.startSmtp({ POSTMESH_RSPAMD_ON_FAILURE: 'tempfail' });
      const second = randomBytes(6).toString('hex');
      const reply = await send(message(second, 'while the filter is down, tempfail'));
      expect(reply.code).toBe(451);
      expect(reply.response).toMatch(/4\.7\.0/);
    } finally {
      await rspamd.restart();
    }
  }, 180_000);
});
