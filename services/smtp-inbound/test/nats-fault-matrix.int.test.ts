/**
 * DESIGN §2 step 4 with NATS failing at every step of an SMTP transaction, on the MX port and on
 * the literal submission ports 587 (STARTTLS + AUTH) and 465 (implicit TLS + AUTH; binding them
 * needs root or CAP_NET_BIND_SERVICE, as CI has). nats-server is paused (SIGSTOP: requests hang
 * until their timeout) or killed (-9: the connection drops) during one step, or from after RCPT
 * to the end of DATA. Whatever the timing, a client either hears a 4xx/5xx or a 250, and every
 * message that got a 250 is delivered exactly once (counted by content); a refused one at most
 * once (its PubAck may have been lost after the server stored it). Nothing may go through
 * Haraka's own outbound queue (`$HARAKA/queue`), which answers 250 for mail not in JetStream.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, DEMO_PASSWORD, Pipeline } from './pipeline.js';
import { WireClient, type Reply } from './smtp-wire.js';

const STEPS = ['connect', 'ehlo', 'auth', 'mail', 'rcpt', 'data', 'end'] as const;
type Step = (typeof STEPS)[number];
type Fault = 'pause' | 'kill';
type Port = 'mx' | '587' | '465';
const PORTS: readonly Port[] = ['mx', '587', '465'];

interface Outcome {
  readonly port: Port;
  readonly token: string;
  /** The reply that ended the transaction (0: the connection closed without one). */
  readonly code: number;
  readonly text: string;
  readonly at: Step;
}

/** One session, step by step; `beforeStep` runs before each step is sent. */
async function session(
  port: Port,
  numbers: { mx: number },
  token: string,
  beforeStep: (step: Step) => Promise<void>,
  afterStep: (step: Step) => Promise<void>,
): Promise<Outcome> {
  let client: WireClient | undefined;
  let text = '';
  const end = (code: number, at: Step): Outcome => {
    client?.close();
    return { port, token, code, text, at };
  };
  const step = async (name: Step, run: () => Promise<Reply>): Promise<number> => {
    await beforeStep(name);
    let code: number;
    try {
      const reply = await run();
      code = reply.code;
      text = reply.text;
    } catch {
      code = 0; // closed or no reply in time: never a 250
      text = '';
    }
    await afterStep(name);
    return code;
  };
  const ok = (code: number) => code >= 200 && code < 400;
  let code = await step('connect', async () => {
    const opened = await WireClient.open(port === 'mx' ? numbers.mx : Number(port), {
      implicitTls: port === '465',
      timeoutMs: 30_000,
    });
    client = opened.client;
    return opened.greeting;
  });
  if (!ok(code) || client === undefined) return end(code, 'connect');
  const c = client;
  code = await step('ehlo', async () => {
    const ehlo = await c.command('EHLO client.example.test', 30_000);
    if (port !== '587' || ehlo.code !== 250) return ehlo;
    const starttls = await c.command('STARTTLS', 30_000);
    if (starttls.code !== 220) return starttls;
    await c.upgradeToTls();
    return c.command('EHLO client.example.test', 30_000);
  });
  if (!ok(code)) return end(code, 'ehlo');
  code = await step('auth', async () =>
    port === 'mx'
      ? { code: 250, lines: [], text: 'no AUTH on the MX port' }
      : c.command(`AUTH PLAIN ${Buffer.from(`\0${DEMO}\0${DEMO_PASSWORD}`).toString('base64')}`, 30_000),
  );
  if (!ok(code)) return end(code, 'auth');
  const from = port === 'mx' ? 'sender@remote.test' : DEMO;
  code = await step('mail', () => c.command(`MAIL FROM:<${from}>`, 30_000));
  if (!ok(code)) return end(code, 'mail');
  code = await step('rcpt', () => c.command(`RCPT TO:<${DEMO}>`, 30_000));
  if (!ok(code)) return end(code, 'rcpt');
  code = await step('data', () => c.command('DATA', 30_000));
  if (code !== 354) return end(code, 'data');
  code = await step('end', () => {
    c.write(
      `From: ${from}\r\nTo: ${DEMO}\r\nSubject: fault ${token}\r\nMessage-ID: <${token}@client.example.test>\r\n` +
        `Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n\r\nbody ${token}\r\n.\r\n`,
    );
    return c.reply(60_000);
  });
  return end(code, 'end');
}

describe('NATS paused or killed at every step of an SMTP transaction, on 25 (MX), 587 and 465', () => {
  let p: Pipeline;
  let tmp = '';
  beforeAll(async () => {
    // smtp-inbound puts its Haraka root (and so Haraka's queue dir) under TMPDIR.
    tmp = join(process.env.TMPDIR ?? '/tmp', `postmesh-fault-matrix-${randomBytes(4).toString('hex')}`);
    mkdirSync(tmp, { recursive: true });
    p = await Pipeline.start({
      smtpEnv: {
        POSTMESH_SUBMISSION_PORT: '587',
        POSTMESH_SUBMISSIONS_PORT: '465',
        POSTMESH_SMTP_QUEUE_TIMEOUT_MS: '1500',
        TMPDIR: tmp,
      },
    });
  }, 120_000);
  afterAll(async () => {
    const pid = p?.env.nats?.process.pid;
    if (pid !== undefined && p?.env.nats?.process.running === true) process.kill(pid, 'SIGCONT');
    await p?.stop();
  });

  function harakaQueueFiles(): string[] {
    return readdirSync(tmp)
      .filter((d) => d.startsWith('postmesh-haraka-'))
      .flatMap((d) => {
        try {
          return readdirSync(join(tmp, d, 'queue')).map((f) => join(d, 'queue', f));
        } catch {
          return [];
        }
      });
  }

  it('never a 250 for mail that is not in JetStream; every 250 delivered exactly once', async () => {
    const nats = p.env.nats;
    if (nats === undefined) throw new Error('needs the local nats-server');
    let paused = false;
    const fail = async (fault: Fault): Promise<void> => {
      if (fault === 'pause') {
        process.kill(nats.process.pid ?? 0, 'SIGSTOP');
        paused = true;
      } else {
        await nats.process.kill();
      }
    };
    const recover = async (fault: Fault): Promise<void> => {
      if (fault === 'pause') {
        if (paused) process.kill(nats.process.pid ?? 0, 'SIGCONT');
        paused = false;
      } else if (!nats.process.running) {
        await nats.restart();
      }
    };

    // Each round: the three ports at once; the fault starts before step `from` of every session
    // and ends once every session has had its reply to step `to` (or ended earlier).
    const rounds: { from: Step; to: Step; fault: Fault }[] = [
      ...STEPS.map((s, i): { from: Step; to: Step; fault: Fault } => ({
        from: s,
        to: s,
        fault: i % 2 === 0 ? 'pause' : 'kill',
      })),
      // The reproduced loss: NATS gone between RCPT and the end of DATA.
      { from: 'data', to: 'end', fault: 'pause' },
      { from: 'data', to: 'end', fault: 'kill' },
    ];
    const outcomes: (Outcome & { round: string })[] = [];
    for (const round of rounds) {
      const label = `${round.fault} ${round.from}..${round.to}`;
      let failing: Promise<void> | undefined;
      let done = 0;
      let recovered: Promise<void> | undefined;
      const recoverOnce = () => (recovered ??= recover(round.fault));
      const arrived = new Set<Port>();
      let release: () => void = () => undefined;
      const allArrived = new Promise<void>((resolve) => (release = resolve));
      const sessions = PORTS.map((port) => {
        const token = `${label.replace(/\W+/g, '-')}-${port}-${randomBytes(4).toString('hex')}`;
        return session(
          port,
          { mx: p.smtpPort },
          token,
          async (step) => {
            if (step !== round.from) return;
            // Every session reaches the fault's first step before NATS fails.
            arrived.add(port);
            if (arrived.size === PORTS.length) release();
            await allArrived;
            await (failing ??= fail(round.fault));
          },
          async (step) => {
            if (step !== round.to) return;
            done += 1;
            if (done === PORTS.length) await recoverOnce();
          },
        ).then((outcome) => {
          // A session that ended before the fault's first step must not hold the others back.
          if (!arrived.has(port)) {
            arrived.add(port);
            if (arrived.size === PORTS.length) release();
          }
          if (STEPS.indexOf(outcome.at) < STEPS.indexOf(round.to)) {
            done += 1;
            if (done === PORTS.length) void recoverOnce();
          }
          return outcome;
        });
      });
      const results = await Promise.all(sessions);
      await recoverOnce();
      outcomes.push(...results.map((r) => ({ ...r, round: label })));
      // The next round starts with NATS back and smtp-inbound reconnected.
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const res = await fetch(`http://127.0.0.1:${p.smtp.opsPort}/healthz/ready`).catch(() => undefined);
        if (res?.status === 200) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    // Every reply that ended a transaction is a well-formed SMTP code or a closed connection.
    for (const o of outcomes) {
      expect(o.code === 0 || (o.code >= 200 && o.code < 600), `${o.round} ${o.port}: ${o.code}`).toBe(true);
      if (o.code >= 200 && o.code < 300) expect(o.at, `${o.round} ${o.port}`).toBe('end');
    }
    const accepted = outcomes.filter((o) => o.code === 250);
    const refused = outcomes.filter((o) => o.code !== 250);
    // The matrix exercised both answers (a fault that is over before the end lets mail through).
    expect(accepted.length).toBeGreaterThan(0);
    const refusedAtEnd = refused.filter((o) => o.at === 'end');
    expect(refusedAtEnd.length).toBeGreaterThan(0);
    // A queue failure is `451 4.3.0` on every port (not Haraka's 450, not its outbound's 250).
    expect(
      refusedAtEnd
        .filter((o) => o.code !== 451 || !o.text.startsWith('4.3.0 '))
        .map((o) => `${o.round} ${o.port}`),
    ).toEqual([]);
    // The reproduced case: NATS gone from RCPT to the end of DATA never answers 250, on any port.
    expect(outcomes.filter((o) => o.round.endsWith('data..end') && o.code === 250)).toEqual([]);

    // Every 250 is in JetStream: storage delivers it, exactly once.
    await p.waitForMessages(
      DEMO,
      (m) => accepted.every((o) => m.some((x) => x.bytes.includes(`body ${o.token}`))),
      { timeoutMs: 60_000 },
    );
    await new Promise((r) => setTimeout(r, 2_000));
    const inbox = await p.messages(DEMO);
    const copies = (token: string) => inbox.filter((x) => x.bytes.includes(`body ${token}`)).length;
    expect(accepted.filter((o) => copies(o.token) !== 1).map((o) => `${o.round} ${o.port}`)).toEqual([]);
    expect(refused.filter((o) => copies(o.token) > 1).map((o) => `${o.round} ${o.port}`)).toEqual([]);
    // Haraka's own outbound never took a message.
    expect(harakaQueueFiles()).toEqual([]);
    expect(p.smtp.log()).not.toMatch(/Message Queued/);
  }, 240_000);
});
