#!/usr/bin/env node
/**
 * Storage benchmark: what one storage process sustains over gRPC, measured the way the
 * IMAP and delivery paths use it.
 *
 *   1. appends/s into ONE mailbox (UID/MODSEQ allocation contends on one mailbox document),
 *      at a given client concurrency, with message bodies encrypted at rest as in production;
 *   2. metadata fetch of the whole mailbox (`UID FETCH 1:* (FLAGS ENVELOPE)` equivalent: one
 *      FetchMessages stream with ENVELOPE), repeated, reporting messages/s and wall time;
 *   3. what the IMAP server's SELECT asks of storage: GetMailboxStatus (claiming \Recent) and
 *      the UID/MODSEQ list of the whole mailbox (FetchMessages with no fields), repeated;
 *   4. GetMessageContent of whole messages picked at random, one after another (what `UID FETCH
 *      n BODY.PEEK[]` of a syncing client such as mbsync costs), median and p99 latency.
 *
 * It starts its own FerretDB and NATS (libs/testing) and the real storage service process, so a
 * run needs nothing else and leaves nothing behind:
 *
 *   npm run build && node tools/bench/storage/dist/main.js --messages 10000 --concurrency 8
 *
 * Options: --messages N (default 10000), --concurrency C (8), --size BYTES (10240),
 * --fetch-rounds R (5), --content-reads K (100), --storage PATH (the storage entry point to run,
 * default services/storage/dist/main.js: lets a saved build be measured against the current
 * one), --keep DIR (keep FerretDB's data, the KEK and the user in DIR: a second run with the same
 * DIR skips the append phase and measures the reads of the mailbox filled by the first, so a
 * 100,000-message mailbox is filled once and read by several builds), --json (print the result as
 * JSON too), --imap (also start the real imap service on this storage and time `SELECT INBOX`
 * and `UID FETCH 1:* (FLAGS)` over a socket, R rounds each).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ServiceError } from '@grpc/grpc-js';
import {
  DirectoryServiceClient,
  MailstoreServiceClient,
  mailstore,
  type directory as dir,
} from '@postmesh/contracts';
import {
  FerretDb,
  ManagedProcess,
  freePort,
  repoRoot,
  startTestEnvironment,
  waitForPort,
  type TestEnvironment,
} from '@postmesh/testing';

const { values: opts } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '8' },
    size: { type: 'string', default: '10240' },
    'fetch-rounds': { type: 'string', default: '5' },
    'content-reads': { type: 'string', default: '100' },
    storage: { type: 'string' },
    keep: { type: 'string' },
    imap: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const MESSAGES = Number(opts.messages);
const CONCURRENCY = Number(opts.concurrency);
const SIZE = Number(opts.size);
const FETCH_ROUNDS = Number(opts['fetch-rounds']);
const CONTENT_READS = Number(opts['content-reads']);

const log = (line: string): void => {
  process.stderr.write(`bench-storage | ${line}\n`);
};

function unary<Req, Res>(
  fn: (req: Req, callback: (error: ServiceError | null, res: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, (error, res) => (error ? reject(error) : resolve(res)));
  });
}

/** A plausible 10 KB message: headers, a text part and a little base64 attachment. */
function makeMessage(i: number, size: number): Buffer {
  const head =
    `From: Sender ${i} <sender${i}@bench.test>\r\nTo: bench@bench.test\r\n` +
    `Subject: Benchmark message number ${i}\r\nDate: ${new Date(Date.UTC(2026, 0, 1, 0, 0, i % 60)).toUTCString()}\r\n` +
    `Message-ID: <bench-${i}-${randomBytes(4).toString('hex')}@bench.test>\r\nMIME-Version: 1.0\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n\r\n';
  const line = 'The quick brown fox jumps over the lazy dog while the mail keeps flowing. \r\n';
  let body = '';
  while (head.length + body.length < size) body += line;
  return Buffer.from((head + body).slice(0, Math.max(size, head.length + 2)), 'utf8');
}

function append(
  client: MailstoreServiceClient,
  userId: string,
  raw: Buffer,
): Promise<mailstore.AppendMessageResponse> {
  return new Promise((resolve, reject) => {
    const call = client.appendMessage((error, res) => (error ? reject(error) : resolve(res)));
    call.write({
      part: {
        $case: 'header',
        value: {
          userId,
          mailbox: { selector: { $case: 'path', value: 'INBOX' } },
          flags: [],
          keywords: [],
          size: raw.length,
        },
      },
    });
    for (let offset = 0; offset < raw.length; offset += 64 * 1024) {
      call.write({ part: { $case: 'chunk', value: raw.subarray(offset, offset + 64 * 1024) } });
    }
    call.end();
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** A minimal IMAP client: sends one tagged command, resolves with the octets up to its tagged reply. */
class ImapProbe {
  private buffer = '';
  private waiter: (() => void) | undefined;
  private tagNo = 0;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.waiter?.();
    });
  }

  static async open(port: number): Promise<ImapProbe> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const probe = new ImapProbe(socket);
    await probe.until(/^\* OK/m, 'greeting');
    return probe;
  }

  private until(pattern: RegExp, what: string, timeoutMs = 600_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = pattern.exec(this.buffer);
        if (m !== null) {
          const end = m.index + m[0].length;
          const out = this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end);
          this.waiter = undefined;
          resolve(out);
        } else if (Date.now() > deadline) {
          reject(new Error(`no ${what} within ${timeoutMs} ms`));
        }
      };
      this.waiter = check;
      check();
    });
  }

  async command(text: string): Promise<string> {
    const tag = `b${++this.tagNo}`;
    this.socket.write(`${tag} ${text}\r\n`);
    const out = await this.until(new RegExp(`^${tag} (OK|NO|BAD)[^\r\n]*\r\n`, 'm'), `reply to ${text}`);
    if (!new RegExp(`^${tag} OK`, 'm').test(out)) throw new Error(`${text}: ${out.slice(-200)}`);
    return out;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** What a `--keep` directory remembers between runs. */
interface KeptState {
  readonly userId: string;
  readonly messages: number;
  readonly appendsPerSecond: number;
  readonly appendLatencyMs: { p50: number; p99: number };
}

async function main(): Promise<void> {
  const keep = opts.keep;
  if (keep !== undefined) mkdirSync(keep, { recursive: true });
  const env = await startTestEnvironment({ mongo: keep === undefined });
  const ferret = keep === undefined ? undefined : await FerretDb.start({ dataDir: join(keep, 'ferretdb') });
  const mongoUri = ferret?.uri ?? env.mongoUri;
  const database = keep === undefined ? env.database : 'postmesh_bench_storage';
  const work = keep ?? mkdtempSync(join(tmpdir(), 'postmesh-bench-storage-'));
  const kekFile = join(work, 'kek');
  if (!existsSync(kekFile)) writeFileSync(kekFile, randomBytes(32).toString('base64'));
  const stateFile = join(work, 'state.json');
  const kept = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as KeptState) : undefined;
  const grpcPort = await freePort();
  const opsPort = await freePort();
  const storage = new ManagedProcess({
    name: 'storage',
    command: process.execPath,
    args: [opts.storage ?? join(repoRoot(), 'services', 'storage', 'dist', 'main.js')],
    env: {
      ...process.env,
      ...env.serviceEnv,
      MONGODB_URI: mongoUri,
      POSTMESH_MONGODB_DB: database,
      POSTMESH_KEK_FILE: kekFile,
      POSTMESH_BLOB_DIR: join(work, 'blobs'),
      POSTMESH_GRPC_PORT: String(grpcPort),
      POSTMESH_OPS_PORT: String(opsPort),
      LOG_LEVEL: 'warn',
    },
    logFile: join(work, 'storage.log'),
  });
  try {
    storage.start();
    await waitForPort(grpcPort, '127.0.0.1', 60_000, () => storage.running);
    const target = `127.0.0.1:${grpcPort}`;
    const directory = new DirectoryServiceClient(target, env.security('operator').grpcClientCredentials());
    const store = new MailstoreServiceClient(target, env.security('operator').grpcClientCredentials());
    let userId: string;
    let appendsPerSecond: number;
    let appendLatencyMs: { p50: number; p99: number };
    if (kept !== undefined) {
      if (kept.messages !== MESSAGES) {
        throw new Error(
          `${stateFile} holds a mailbox of ${kept.messages} messages, not --messages ${MESSAGES}`,
        );
      }
      log(`reusing the ${kept.messages}-message mailbox kept in ${work}`);
      ({ userId, appendsPerSecond, appendLatencyMs } = kept);
    } else {
      await unary(directory.createDomain.bind(directory), { name: 'bench.test', defaultQuotaBytes: 0 });
      const created = await unary<dir.CreateUserRequest, dir.CreateUserResponse>(
        directory.createUser.bind(directory),
        {
          address: 'bench@bench.test',
          password: randomBytes(12).toString('base64url'),
          displayName: 'Bench',
        },
      );
      userId = created.user?.id ?? '';

      log(
        `appending ${MESSAGES} messages of ${SIZE} bytes into one mailbox with ${CONCURRENCY} concurrent clients`,
      );
      const latencies: number[] = [];
      let next = 0;
      let lastReport = Date.now();
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (;;) {
            const i = next++;
            if (i >= MESSAGES) return;
            const raw = makeMessage(i, SIZE);
            const t0 = performance.now();
            await append(store, userId, raw);
            latencies.push(performance.now() - t0);
            if (Date.now() - lastReport > 5_000) {
              lastReport = Date.now();
              log(`  ${latencies.length}/${MESSAGES} appended`);
            }
          }
        }),
      );
      const appendSeconds = (performance.now() - started) / 1000;
      latencies.sort((a, b) => a - b);
      appendsPerSecond = Math.round(MESSAGES / appendSeconds);
      appendLatencyMs = {
        p50: +percentile(latencies, 50).toFixed(1),
        p99: +percentile(latencies, 99).toFixed(1),
      };
      if (keep !== undefined) {
        const state: KeptState = { userId, messages: MESSAGES, appendsPerSecond, appendLatencyMs };
        writeFileSync(stateFile, JSON.stringify(state));
      }
    }

    const inbox = (
      await unary<mailstore.ListMailboxesRequest, mailstore.ListMailboxesResponse>(
        store.listMailboxes.bind(store),
        { userId, reference: '', pattern: 'INBOX', subscribedOnly: false, specialUse: [] },
      )
    ).mailboxes[0];
    if (!inbox) throw new Error('INBOX not found');
    log(`fetching FLAGS + ENVELOPE of all ${MESSAGES} messages, ${FETCH_ROUNDS} rounds`);
    const fetchTimes: number[] = [];
    for (let round = 0; round < FETCH_ROUNDS; round++) {
      const t0 = performance.now();
      let count = 0;
      await new Promise<void>((resolve, reject) => {
        const stream = store.fetchMessages({
          userId,
          mailboxId: inbox.id,
          uids: { ranges: [{ first: 1, last: 0 }] },
          fields: [mailstore.FetchField.ENVELOPE],
          maxBatch: 1024, // as the imap service asks
        });
        stream.on(
          'data',
          (r: mailstore.FetchMessagesResponse) => (count += r.messages.length + (r.message ? 1 : 0)),
        );
        stream.on('error', reject);
        stream.on('end', () => resolve());
      });
      if (count !== MESSAGES) throw new Error(`fetched ${count} messages, expected ${MESSAGES}`);
      fetchTimes.push(performance.now() - t0);
      log(`  round ${round + 1}: ${count} messages in ${(fetchTimes.at(-1)! / 1000).toFixed(2)} s`);
    }
    fetchTimes.sort((a, b) => a - b);
    const medianFetch = percentile(fetchTimes, 50);

    log(`SELECT INBOX as the IMAP server asks it of storage, ${FETCH_ROUNDS} rounds`);
    const selectTimes: number[] = [];
    for (let round = 0; round < FETCH_ROUNDS; round++) {
      const t0 = performance.now();
      await unary<mailstore.GetMailboxStatusRequest, mailstore.GetMailboxStatusResponse>(
        store.getMailboxStatus.bind(store),
        { userId, mailbox: { selector: { $case: 'id', value: inbox.id } }, claimRecent: true },
      );
      let count = 0;
      await new Promise<void>((resolve, reject) => {
        const stream = store.fetchMessages({
          userId,
          mailboxId: inbox.id,
          uids: { ranges: [{ first: 1, last: 0 }] },
          fields: [],
          maxBatch: 1024,
        });
        stream.on(
          'data',
          (r: mailstore.FetchMessagesResponse) => (count += r.messages.length + (r.message ? 1 : 0)),
        );
        stream.on('error', reject);
        stream.on('end', () => resolve());
      });
      if (count !== MESSAGES) throw new Error(`listed ${count} messages, expected ${MESSAGES}`);
      selectTimes.push(performance.now() - t0);
      log(`  round ${round + 1}: ${(selectTimes.at(-1)! / 1000).toFixed(2)} s`);
    }
    selectTimes.sort((a, b) => a - b);
    const medianSelect = percentile(selectTimes, 50);

    log(`reading ${CONTENT_READS} whole messages picked at random, one at a time`);
    const contentTimes: number[] = [];
    for (let i = 0; i < CONTENT_READS; i++) {
      const uid = 1 + Math.floor(Math.random() * MESSAGES);
      const t0 = performance.now();
      let bytes = 0;
      await new Promise<void>((resolve, reject) => {
        const stream = store.getMessageContent({
          userId,
          mailboxId: inbox.id,
          uid,
          section: '',
          decodeTransferEncoding: false,
        });
        stream.on('data', (r: mailstore.GetMessageContentResponse) => {
          if (r.part?.$case === 'chunk') bytes += r.part.value.length;
        });
        stream.on('error', reject);
        stream.on('end', () => resolve());
      });
      if (bytes !== SIZE) throw new Error(`message ${uid} came back with ${bytes} octets, not ${SIZE}`);
      contentTimes.push(performance.now() - t0);
    }
    contentTimes.sort((a, b) => a - b);

    let imapFigures: { selectMedianMs: number; selectMaxMs: number; fetchFlagsMedianMs: number } | undefined;
    if (opts.imap) imapFigures = await imapPhase(userId, grpcPort, env, work);

    const result = {
      ...(imapFigures === undefined ? {} : { imap: imapFigures }),
      messages: MESSAGES,
      sizeBytes: SIZE,
      concurrency: CONCURRENCY,
      appendsPerSecond,
      appendLatencyMs,
      fetchAllMedianSeconds: +(medianFetch / 1000).toFixed(3),
      fetchMessagesPerSecond: Math.round(MESSAGES / (medianFetch / 1000)),
      selectMedianSeconds: +(medianSelect / 1000).toFixed(3),
      contentLatencyMs: {
        p50: +percentile(contentTimes, 50).toFixed(1),
        p99: +percentile(contentTimes, 99).toFixed(1),
      },
    };
    process.stdout.write(
      [
        `appends: ${result.appendsPerSecond} msg/s into one mailbox (${MESSAGES} x ${SIZE} B, concurrency ${CONCURRENCY}); ` +
          `latency p50 ${result.appendLatencyMs.p50} ms, p99 ${result.appendLatencyMs.p99} ms`,
        `fetch 1:* (FLAGS ENVELOPE) of ${MESSAGES} messages: median ${result.fetchAllMedianSeconds} s ` +
          `(${result.fetchMessagesPerSecond} msg/s) over ${FETCH_ROUNDS} rounds`,
        `select (status + UID list of ${MESSAGES} messages): median ${result.selectMedianSeconds} s over ${FETCH_ROUNDS} rounds`,
        `content of one whole message (${CONTENT_READS} at random, one at a time): ` +
          `p50 ${result.contentLatencyMs.p50} ms, p99 ${result.contentLatencyMs.p99} ms`,
        '',
      ].join('\n'),
    );
    if (imapFigures !== undefined) {
      process.stdout.write(
        `imap SELECT INBOX (${MESSAGES} messages) over a socket: median ${imapFigures.selectMedianMs} ms, ` +
          `max ${imapFigures.selectMaxMs} ms; UID FETCH 1:* (FLAGS): median ${imapFigures.fetchFlagsMedianMs} ms\n`,
      );
    }
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    directory.close();
    store.close();
  } catch (error) {
    log(
      `failed; storage log:\n${readFileSync(join(work, 'storage.log'), 'utf8').split('\n').slice(-20).join('\n')}`,
    );
    throw error;
  } finally {
    await storage.stop();
    await env.stop();
    await ferret?.stop();
    if (keep === undefined) rmSync(work, { recursive: true, force: true });
  }
}

await main();

/**
 * The real imap service on this storage: LOGIN once, then SELECT INBOX and UID FETCH 1:* (FLAGS)
 * R times each, timed from the command to its tagged OK.
 */
async function imapPhase(
  userId: string,
  grpcPort: number,
  env: TestEnvironment,
  work: string,
): Promise<{ selectMedianMs: number; selectMaxMs: number; fetchFlagsMedianMs: number }> {
  const password = randomBytes(12).toString('base64url');
  const target = `127.0.0.1:${grpcPort}`;
  const directory = new DirectoryServiceClient(target, env.security('operator').grpcClientCredentials());
  await unary<dir.SetPasswordRequest, dir.SetPasswordResponse>(directory.setPassword.bind(directory), {
    userId,
    password,
    revokeAppPasswords: false,
  });
  const user = await unary<dir.GetUserRequest, dir.GetUserResponse>(directory.getUser.bind(directory), {
    selector: { $case: 'id', value: userId },
  });
  directory.close();
  const imapPort = await freePort();
  const imap = new ManagedProcess({
    name: 'imap',
    command: process.execPath,
    args: [join(repoRoot(), 'services', 'imap', 'dist', 'main.js')],
    env: {
      ...process.env,
      ...env.serviceEnv,
      POSTMESH_STORAGE_GRPC: target,
      POSTMESH_IMAP_PORT: String(imapPort),
      POSTMESH_IMAPS_PORT: '0',
      POSTMESH_OPS_PORT: String(await freePort()),
      POSTMESH_IMAP_DATA_DIR: join(work, 'imap'),
      POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
      LOG_LEVEL: 'warn',
    },
    logFile: join(work, 'imap.log'),
  });
  imap.start();
  try {
    await waitForPort(imapPort, '127.0.0.1', 60_000, () => imap.running);
    const probe = await ImapProbe.open(imapPort);
    await probe.command(`LOGIN "${user.user?.address ?? ''}" "${password}"`);
    const selects: number[] = [];
    const fetches: number[] = [];
    for (let round = 0; round < FETCH_ROUNDS; round++) {
      let t0 = performance.now();
      const selected = await probe.command('SELECT INBOX');
      selects.push(performance.now() - t0);
      if (!selected.includes(`* ${MESSAGES} EXISTS`))
        throw new Error(`SELECT said ${selected.slice(0, 200)}`);
      t0 = performance.now();
      const flags = await probe.command('UID FETCH 1:* (FLAGS)');
      fetches.push(performance.now() - t0);
      const lines = flags.split('\r\n').filter((l) => l.startsWith('* ')).length;
      if (lines !== MESSAGES) throw new Error(`UID FETCH 1:* (FLAGS) gave ${lines} lines`);
      log(
        `  imap round ${round + 1}: SELECT ${selects.at(-1)?.toFixed(0)} ms, ` +
          `UID FETCH 1:* (FLAGS) ${fetches.at(-1)?.toFixed(0)} ms`,
      );
    }
    probe.close();
    selects.sort((a, b) => a - b);
    fetches.sort((a, b) => a - b);
    return {
      selectMedianMs: Math.round(percentile(selects, 50)),
      selectMaxMs: Math.round(selects.at(-1) ?? 0),
      fetchFlagsMedianMs: Math.round(percentile(fetches, 50)),
    };
  } finally {
    await imap.stop();
  }
}
