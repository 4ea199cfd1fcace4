/**
 * Hostile SMTP input over real sockets to the real smtp-inbound (and storage behind it), generated
 * with fast-check from a fixed seed so a failure replays: random and mutated commands, lines over
 * 512 octets, bare LF, NUL, pipelined junk, 150 RCPTs, 8-bit octets in the envelope, broken MIME
 * bodies, DATA without its final dot followed by a disconnect. After each session: every octet the
 * server sent is a well-formed SMTP reply line (RFC 5321 §4.2: three digits 2xx-5xx, then SP or
 * "-", CRLF), the process is alive and a new session is served at once (no hang), and at the end
 * no message was stored twice and every 250 was stored.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, Pipeline } from './pipeline.js';
import { WireClient } from './smtp-wire.js';

/** One piece of a session; each write is sent as is (no CRLF added), after the previous reply. */
interface Action {
  readonly writes: readonly Buffer[];
  /** A message body was sent with this token (its final dot may be missing). */
  readonly token?: string;
}

const latin1 = (s: string) => Buffer.from(s, 'latin1');
const octets = fc.uint8Array({ minLength: 0, maxLength: 40 }).map((a) => Buffer.from(a));
const word = fc.stringMatching(/^[A-Za-z0-9.@<>:=_+-]{0,30}$/);
const verb = fc.constantFrom(
  'EHLO',
  'HELO',
  'MAIL FROM:',
  'RCPT TO:',
  'DATA',
  'RSET',
  'NOOP',
  'VRFY',
  'EXPN',
  'HELP',
  'BDAT',
  'AUTH PLAIN',
  'XCLIENT',
  'mail from:',
  '',
);
const terminator = fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r', '\0\r\n');

const command: fc.Arbitrary<Action> = fc
  .tuple(
    verb,
    fc.oneof(
      word,
      octets.map((b) => b.toString('latin1')),
    ),
    terminator,
  )
  .map(([v, arg, end]) => ({ writes: [latin1(`${v}${v === '' ? '' : ' '}${arg}${end}`)] }));
const longLine: fc.Arbitrary<Action> = fc
  .integer({ min: 500, max: 4_000 })
  .map((n) => ({ writes: [latin1(`MAIL FROM:<${'a'.repeat(n)}@remote.test>\r\n`)] }));
const envelope8bit: fc.Arbitrary<Action> = octets.map((b) => ({
  writes: [
    Buffer.concat([
      latin1('MAIL FROM:<'),
      b,
      latin1('\xfc@remote.test> SMTPUTF8\r\n'),
      latin1(`RCPT TO:<${DEMO}>\r\n`),
    ]),
  ],
}));
const manyRcpts: fc.Arbitrary<Action> = fc.integer({ min: 101, max: 150 }).map((n) => ({
  writes: [latin1(`MAIL FROM:<a@remote.test>\r\n${`RCPT TO:<${DEMO}>\r\n`.repeat(n)}`)],
}));
const pipelinedJunk: fc.Arbitrary<Action> = fc
  .array(
    fc.oneof(
      command,
      octets.map((b) => ({ writes: [b] })),
    ),
    { minLength: 2, maxLength: 8 },
  )
  .map((parts) => ({ writes: [Buffer.concat(parts.flatMap((p) => p.writes))] }));
const mimeBody = fc.constantFrom(
  'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nno end boundary\r\n',
  'Content-Type: multipart/mixed\r\n\r\nno boundary parameter\r\n',
  'Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n',
  'Content-Type: text/plain; charset="\xff\xfe"\r\nSubject: =?x-unknown?B?////?=\r\n\r\n\xe9\xe8\r\n',
  'Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nFrom: \r\n',
  'From: <>\r\nTo:\r\n\r\n..leading dot\r\n.. \r\n',
);
const message: fc.Arbitrary<Action> = fc
  .tuple(mimeBody, fc.boolean(), fc.constantFrom('\r\n', '\n'))
  .map(([body, finalDot, eol]) => {
    const token = `hostile${randomBytes(6).toString('hex')}`;
    const text = `Subject: ${token}\r\n${body.replace(/\r\n/g, eol)}\r\ntoken ${token}\r\n${finalDot ? '.\r\n' : ''}`;
    return {
      writes: [
        latin1('MAIL FROM:<a@remote.test>\r\n'),
        latin1(`RCPT TO:<${DEMO}>\r\n`),
        latin1('DATA\r\n'),
        latin1(text),
      ],
      token,
    };
  });
const session = fc.record({
  actions: fc.array(fc.oneof(command, command, longLine, envelope8bit, manyRcpts, pipelinedJunk, message), {
    minLength: 1,
    maxLength: 6,
  }),
  /** Leave without QUIT (and, inside DATA, without the final dot). */
  abrupt: fc.boolean(),
  ehloFirst: fc.boolean(),
});

/** Runs one session; resolves with everything the server sent once it closed or went quiet. */
async function run(
  port: number,
  actions: readonly Action[],
  abrupt: boolean,
  ehloFirst: boolean,
): Promise<Buffer> {
  const socket = connect({ port, host: '127.0.0.1' });
  const received: Buffer[] = [];
  let last = Date.now();
  let closed = false;
  socket.on('data', (d: Buffer) => {
    received.push(d);
    last = Date.now();
  });
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  const quiet = async (ms: number, limitMs: number) => {
    const deadline = Date.now() + limitMs;
    while (!closed && Date.now() < deadline && Date.now() - last < ms) {
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  await quiet(150, 3_000);
  // Most sessions greet first, as clients do; the others start with whatever comes.
  const writes = [
    ...(ehloFirst ? [latin1('EHLO client.example.test\r\n')] : []),
    ...actions.flatMap((a) => a.writes),
  ];
  for (const write of writes) {
    if (closed) break;
    socket.write(write);
    last = Date.now();
    await quiet(150, 3_000);
  }
  if (abrupt) {
    socket.destroy();
  } else if (!closed) {
    socket.write('\r\n.\r\nQUIT\r\n');
    // The server closes after its 221; the 250 before it waits for JetStream's durable ack, which
    // can take over a second on a loaded machine: wait for the close, or 2 s of silence.
    await quiet(2_000, 8_000);
    socket.destroy();
  }
  return Buffer.concat(received);
}

/** RFC 5321 §4.2: `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`. */
function malformedReplyLines(bytes: Buffer): string[] {
  const text = bytes.toString('latin1');
  const lines = text.split('\r\n');
  const tail = lines.pop() ?? '';
  const bad = lines.filter((l) => !/^[2-5]\d\d(?:[ -][\t\x20-\x7e\x80-\xff]*)?$/.test(l));
  return tail === '' ? bad : [...bad, `unterminated: ${JSON.stringify(tail.slice(0, 80))}`];
}

describe('hostile SMTP input (fast-check, fixed seed)', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await Pipeline.start();
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('no crash, no hang, only well-formed replies, nothing stored twice', async () => {
    const before = await p.count(DEMO);
    let accepted = 0;
    const sentTokens: string[] = [];
    await fc.assert(
      fc.asyncProperty(session, async ({ actions, abrupt, ehloFirst }) => {
        const bytes = await run(p.smtpPort, actions, abrupt, ehloFirst);
        expect(malformedReplyLines(bytes)).toEqual([]);
        for (const a of actions) if (a.token !== undefined) sentTokens.push(a.token);
        accepted += bytes.toString('latin1').match(/^250 2\.0\.0 queued as /gm)?.length ?? 0;
        // Alive and answering at once.
        expect(p.smtp.proc.running).toBe(true);
        const probe = await WireClient.open(p.smtpPort, { timeoutMs: 5_000 });
        expect(probe.greeting.code).toBe(220);
        expect((await probe.client.command('NOOP', 5_000)).code).toBe(250);
        probe.client.close();
      }),
      { seed: 20261206, numRuns: 32, endOnFailure: true },
    );
    // The generated sessions do get mail through (the suite is not only refusals).
    expect(accepted).toBeGreaterThan(0);
    // Every 250 is stored (exactly once: the mailbox grows by the number of 250s), and no
    // message body appears twice.
    expect(await p.waitForCount(DEMO, before + accepted, { timeoutMs: 30_000 })).toBe(before + accepted);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await p.count(DEMO)).toBe(before + accepted);
    const inbox = await p.messages(DEMO);
    for (const token of sentTokens) {
      expect(inbox.filter((x) => x.bytes.includes(`token ${token}`)).length, token).toBeLessThanOrEqual(1);
    }
  }, 120_000);
});
