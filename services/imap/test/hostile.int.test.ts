/**
 * Hostile input over real sockets to the real imap service (bounded, fixed seed, runs in CI):
 * random and mutated IMAP commands — literals of both kinds and literal8, deeply nested
 * parenthesised lists, huge numbers and sequence sets, every atom-special, invalid UTF-8, NUL,
 * CR without LF, overlong lines — before and after login.
 *
 * Checked for every connection: every reply line is a well-formed response (RFC 9051 §7:
 * `+ ...`, `* ...` untagged data or status, `<tag> OK|NO|BAD ...`, CRLF-terminated, no bare CR
 * or NUL outside literals); for well-delimited commands, every command gets its tagged answer
 * (or the connection ends with `* BYE`), within a bound. For the whole run: the process stays up,
 * no session ends on an internal error, its resident memory stays bounded, and a bystander
 * session keeps working.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, loggedIn } from './client.js';
import { appendCommand } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const SEED = 20261206;
/** Every printable ASCII character: atom-chars and all atom-specials but CR, LF. */
const PRINTABLE = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));
const NAMES = [
  'CAPABILITY',
  'NOOP',
  'ID',
  'LOGIN',
  'ENABLE',
  'SELECT',
  'EXAMINE',
  'CREATE',
  'DELETE',
  'RENAME',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'LIST',
  'LSUB',
  'NAMESPACE',
  'STATUS',
  'APPEND',
  'CHECK',
  'CLOSE',
  'UNSELECT',
  'EXPUNGE',
  'SEARCH',
  'FETCH',
  'STORE',
  'COPY',
  'MOVE',
  'UID FETCH',
  'UID SEARCH',
  'UID STORE',
  'UID COPY',
  'UID MOVE',
  'UID EXPUNGE',
  'select',
  'Fetch',
  'XYZZY',
];
const WORDS = [
  'INBOX',
  '""',
  '"*"',
  '%',
  '*',
  'NIL',
  'ALL',
  'UID',
  'FLAGS',
  'BODY[]',
  'BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]',
  'BINARY[1]<0.10>',
  'BODYSTRUCTURE',
  'ENVELOPE',
  '+FLAGS',
  '-FLAGS.SILENT',
  '(\\Seen \\Deleted $Junk)',
  'CHARSET',
  'UTF-8',
  'OR',
  'NOT',
  'SUBJECT',
  'RETURN',
  '(MESSAGES UIDNEXT SIZE)',
  '(SUBSCRIBED)',
  'IMAP4rev2',
  'UTF8=ACCEPT',
  '"01-Jan-2026 00:00:00 +0000"',
  '&AMk-',
  '&-',
  '&Zm9v',
  '[',
  ']',
  '<1.2>',
  '\\',
  '"',
  '~',
];

/** One argument of a command: bytes without LF except inside the literals they carry. */
const argument: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constantFrom(...WORDS).map((w) => Buffer.from(w)),
  // Atoms and strings of every printable character, atom-specials included.
  fc.string({ unit: fc.constantFrom(...PRINTABLE), minLength: 1, maxLength: 40 }).map((s) => Buffer.from(s)),
  fc
    .string({ unit: fc.constantFrom(...PRINTABLE.filter((c) => c !== '"' && c !== '\\')), maxLength: 40 })
    .map((s) => Buffer.from(`"${s}"`)),
  // Invalid UTF-8, NUL and CR without LF inside quoted strings and atoms.
  fc
    .constantFrom('\xff\xfe', '\xc3(', '\xed\xa0\x80', '\x00', 'a\rb', '\r', 'caf\xc3\xa9')
    .map((s) => Buffer.from(`"${s}"`, 'latin1')),
  fc.constantFrom('a\rb', '\x00', '\xff').map((s) => Buffer.from(s, 'latin1')),
  // Literals of both kinds with exactly the announced octets, any octets (CRLF included).
  fc
    .tuple(fc.boolean(), fc.uint8Array({ maxLength: 300 }))
    .map(([binary, data]) =>
      Buffer.concat([Buffer.from(`${binary ? '~' : ''}{${data.length}+}\r\n`), Buffer.from(data)]),
    ),
  // Deep nesting, huge numbers and sequence sets.
  fc.integer({ min: 1, max: 12_000 }).map((d) => Buffer.from(`${'('.repeat(d)}ALL${')'.repeat(d)}`)),
  fc.integer({ min: 1, max: 12_000 }).map((d) => Buffer.from('('.repeat(d))),
  fc
    .constantFrom(
      '4294967295',
      '4294967296',
      '99999999999999999999999999',
      '0',
      '-1',
      '1:4294967295',
      '*:1',
      '1:*',
      '$',
      '1,,2',
    )
    .map((s) => Buffer.from(s)),
  fc
    .integer({ min: 1, max: 6_000 })
    .map((n) => Buffer.from(Array.from({ length: n }, (_, i) => `${i * 2 + 1}:${i * 2 + 2}`).join(','))),
  // Longer than the 64 KiB line limit.
  fc.constant(Buffer.from('x'.repeat(70 * 1024))),
);

/** A command line with a readable tag, ending in CRLF; literals inside carry their octets. */
function commandBytes(tag: string, name: string, args: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`${tag} ${name}`)];
  for (const arg of args) parts.push(Buffer.from(' '), arg);
  let line = Buffer.concat(parts);
  // A line must not end by announcing a synchronizing literal the test does not send: the server
  // would wait for its octets (correctly) and the next commands would be read as them.
  if (/\{\d+\}$/.test(line.subarray(-24).toString('latin1'))) line = Buffer.concat([line, Buffer.from(' x')]);
  return Buffer.concat([line, Buffer.from('\r\n')]);
}

interface Session {
  readonly login: boolean;
  readonly select: boolean;
  readonly commands: readonly { readonly name: string; readonly args: readonly Buffer[] }[];
}

/** Well-formed commands, so that sessions also reach the handlers and storage. */
const VALID = [
  'NOOP',
  'CAPABILITY',
  'LIST "" *',
  'LIST (SUBSCRIBED) "" % RETURN (STATUS (MESSAGES UNSEEN))',
  'LSUB "" *',
  'STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)',
  'SELECT INBOX',
  'EXAMINE INBOX',
  'FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)',
  'FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BINARY.PEEK[1]<0.5>)',
  'UID FETCH 1:* (FLAGS)',
  'SEARCH ALL',
  'UID SEARCH OR SEEN NOT SUBJECT hostile',
  'STORE 1 +FLAGS ($Hostile)',
  'CREATE "Hostile/Child"',
  'SUBSCRIBE "Hostile/Child"',
  'NAMESPACE',
  'ID NIL',
  'ENABLE UTF8=ACCEPT',
] as const;

const session: fc.Arbitrary<Session> = fc.record({
  login: fc.boolean(),
  select: fc.boolean(),
  commands: fc.array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({ name: fc.constantFrom(...NAMES), args: fc.array(argument, { maxLength: 5 }) }),
      },
      { weight: 1, arbitrary: fc.constantFrom(...VALID).map((name) => ({ name, args: [] as Buffer[] })) },
    ),
    { minLength: 1, maxLength: 10 },
  ),
});

/** A raw mutation of a byte string. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 50 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.constantFrom('\r', '\n', '\r\n', '{99999+}\r\n', '{5}\r\n', '~{3}', '\x00', '(((((', ' * BYE'),
  }),
);

function mutate(bytes: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = bytes;
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % out.length;
    switch (m.kind) {
      case 'flip':
        if (out.length > 0) {
          out = Buffer.from(out);
          out[at] = m.byte;
        }
        break;
      case 'cut':
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
        break;
      case 'repeat':
        out = Buffer.concat([out.subarray(0, at + m.length), out.subarray(at)]);
        break;
      case 'insert':
        out = Buffer.concat([out.subarray(0, at), Buffer.from(m.bytes, 'latin1'), out.subarray(at)]);
        break;
    }
  }
  return out;
}
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

/** RFC 9051 §9 `tag`: astring-chars except "+" (controls are excluded by the range). */
// eslint-disable-next-line no-control-regex
const TAGGED = /^[^\x00-\x20\x7f-\xff(){%*"\\+]+ (OK|NO|BAD)( \[[^\]\r\n]+\])? [^\r\n]+$/;
const UNTAGGED =
  /^\* (OK|NO|BAD|BYE|PREAUTH|CAPABILITY|LIST|LSUB|STATUS|FLAGS|SEARCH|ESEARCH|ENABLED|ID|NAMESPACE|\d+ (EXISTS|EXPUNGE|RECENT|FETCH))( |$)/;
const CONTINUATION = /^\+( [^\r\n]*)?$/;

/**
 * Splits what the server sent into response lines, skipping the octets of literals (`{n}` or
 * `~{n}` at the end of a line); throws on anything that is not a well-formed response. A final
 * incomplete line (the client closed mid-response) is ignored.
 */
function responseLines(bytes: Buffer): string[] {
  const lines: string[] = [];
  let pos = 0;
  let current = '';
  while (pos < bytes.length) {
    const lf = bytes.indexOf(0x0a, pos);
    if (lf < 0) break;
    if (bytes[lf - 1] !== 0x0d) throw new Error(`LF without CR at ${lf}: ${JSON.stringify(current)}`);
    const piece = bytes.subarray(pos, lf - 1).toString('latin1');
    if (/[\r\0]/.test(piece)) throw new Error(`bare CR or NUL in a response line: ${JSON.stringify(piece)}`);
    current += piece;
    pos = lf + 1;
    const literal = /~?\{(\d+)\}$/.exec(piece);
    if (literal !== null) {
      pos += Number(literal[1]);
      current += '<literal>';
      continue;
    }
    lines.push(current);
    current = '';
  }
  for (const line of lines) {
    if (!TAGGED.test(line) && !UNTAGGED.test(line) && !CONTINUATION.test(line)) {
      throw new Error(`malformed response line: ${JSON.stringify(line.slice(0, 200))}`);
    }
  }
  return lines;
}

/**
 * Everything the client received once `done(text)` holds or the server closed the connection;
 * a timeout (a hang) throws.
 */
async function collect(
  client: TestClient,
  done: (text: string) => boolean,
  timeoutMs: number,
): Promise<Buffer> {
  const text = await client.readUntil((t) => (done(t) || client.closed ? t.length : -1), timeoutMs);
  return Buffer.from(text, 'latin1');
}

describe('hostile input over real sockets', () => {
  let stack: ImapStack;
  /** The account the hostile sessions use (they may rename, expunge, delete anything in it). */
  let target: TestUser;
  let user: TestUser;
  let bystander: TestClient;
  const rss: number[] = [];
  let sampler: NodeJS.Timeout | undefined;

  async function residentBytes(): Promise<number> {
    const metrics = await (await fetch(`http://127.0.0.1:${stack.opsPort}/metrics`)).text();
    return Number(/^process_resident_memory_bytes\{[^}]*\} (\d+)/m.exec(metrics)?.[1]);
  }

  beforeAll(async () => {
    stack = await startImapStack();
    user = await stack.createUser();
    target = await stack.createUser();
    const filler = await loggedIn(stack.imapPort, target);
    for (let i = 0; i < 3; i++) await filler.command(`t${i}`, appendCommand('INBOX', message(`target ${i}`)));
    filler.close();
    bystander = await loggedIn(stack.imapPort, user);
    for (let i = 0; i < 3; i++)
      await bystander.command(`p${i}`, appendCommand('INBOX', message(`hostile ${i}`)));
    await bystander.command('p9', 'SELECT INBOX');
    rss.push(await residentBytes());
    sampler = setInterval(() => {
      residentBytes().then(
        (bytes) => rss.push(bytes),
        () => undefined,
      );
    }, 250);
  });
  afterAll(async () => {
    clearInterval(sampler);
    bystander?.close();
    await stack?.stop();
  });

  async function open(login: boolean, select: boolean): Promise<TestClient> {
    if (!login) {
      const client = await TestClient.connect(stack.imapPort);
      await client.readLine('* OK');
      return client;
    }
    const client = await loggedIn(stack.imapPort, target);
    if (select) await client.command('S', 'SELECT INBOX');
    return client;
  }

  it('answers every well-delimited hostile command with one well-formed tagged response', async () => {
    const cases = fc.sample(session, { numRuns: 72, seed: SEED });
    const conditions = { OK: 0, NO: 0, BAD: 0 };
    for (let i = 0; i < cases.length; i += 6) {
      await Promise.all(
        cases.slice(i, i + 6).map(async (c, k) => {
          const client = await open(c.login, c.select);
          const tags = c.commands.map((_, n) => `h${i + k}x${n}`);
          const input = Buffer.concat(c.commands.map((cmd, n) => commandBytes(tags[n]!, cmd.name, cmd.args)));
          client.write(input);
          const last = tags[tags.length - 1]!;
          // Bounded: a hang fails here. Every tag is answered unless the server said BYE.
          const answeredLast = new RegExp(`(^|\r\n)${last} [^\r\n]*\r\n`);
          const bytes = await collect(client, (t) => answeredLast.test(t), 20_000);
          const lines = responseLines(bytes);
          const answered = lines.map((l) => l.split(' ', 1)[0]!).filter((t) => tags.includes(t));
          const bye = lines.some((l) => l.startsWith('* BYE '));
          for (const line of lines) {
            const condition = /^\S+ (OK|NO|BAD) /.exec(line)?.[1] as keyof typeof conditions | undefined;
            if (condition !== undefined && !line.startsWith('* ')) conditions[condition]++;
          }
          if (!bye)
            expect(answered, `input ${JSON.stringify(input.subarray(0, 300).toString('latin1'))}`).toEqual(
              tags,
            );
          else expect(tags.slice(0, answered.length)).toEqual(answered);
          client.close();
        }),
      );
      expect(stack.imap.running).toBe(true);
    }
    // The generator reaches past the parser: some commands succeed, some are refused.
    expect(conditions.OK).toBeGreaterThan(20);
    expect(conditions.NO).toBeGreaterThan(5);
    expect(conditions.BAD).toBeGreaterThan(100);
  }, 60_000);

  it('survives mutated commands sent in random chunks, with well-formed replies only', async () => {
    const cases = fc.sample(
      fc.record({
        session,
        mutations: fc.array(mutation, { minLength: 1, maxLength: 6 }),
        chunk: fc.integer({ min: 256, max: 8192 }),
      }),
      { numRuns: 72, seed: SEED + 1 },
    );
    for (let i = 0; i < cases.length; i += 6) {
      await Promise.all(
        cases.slice(i, i + 6).map(async ({ session: c, mutations, chunk }, k) => {
          const client = await open(c.login, c.select);
          const input = mutate(
            Buffer.concat(c.commands.map((cmd, n) => commandBytes(`m${i + k}x${n}`, cmd.name, cmd.args))),
            mutations,
          );
          for (let at = 0; at < input.length; at += chunk) client.write(input.subarray(at, at + chunk));
          // The end of the input may be inside a literal the server is still waiting for: the
          // check is that whatever came back is well formed, not that everything was answered.
          responseLines(Buffer.from(await client.drain(300), 'latin1'));
          client.close();
        }),
      );
      expect(stack.imap.running).toBe(true);
    }
  }, 60_000);

  it('kept the process up, its memory bounded and other sessions served', async () => {
    expect(stack.imap.running).toBe(true);
    expect(await bystander.command('b1', 'NOOP')).toMatch(/b1 OK NOOP completed\r\n$/);
    expect(await bystander.command('b2', 'FETCH 1:3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])')).toContain(
      'Subject: hostile 2',
    );
    rss.push(await residentBytes());
    const baseline = rss[0]!;
    const peak = Math.max(...rss);
    // Bounded, not timed: the receiver holds at most one line and one command's literals per
    // connection (here: 6 at a time, literals of a few hundred octets, lines of 64 KiB).
    expect(peak - baseline, `resident memory from ${baseline} peaked at ${peak}`).toBeLessThan(
      192 * 1024 * 1024,
    );
    expect(stack.log('imap')).not.toMatch(/"level":"fatal"|uncaught|unhandled|session failed/);
  });
});
