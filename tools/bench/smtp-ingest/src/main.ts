/**
 * SMTP ingest benchmark: N messages of S bytes over C concurrent connections to the MX
 * port. Reports accepted msg/s (250s per second of wall time) and the end-to-end latency from the
 * 250 to "stored in the mailbox", observed as storage's `mail.events.delivered` trace event for
 * the spoolId the 250 named. Storage now writes that event into its event store instead of
 * publishing it (ADR 0007), so only the accept side is measured against it; tools/bench/ingest
 * counts the mailbox over IMAP. Each connection pipelines MAIL/RCPT/DATA (RFC 2920) like a real MTA.
 *
 *   node tools/bench/smtp-ingest/bin/smtp-ingest.mjs --port 2525 --nats nats://127.0.0.1:4222 \
 *     --n 5000 --size 10240 --concurrency 10 --to demo@example.test
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { connect as natsConnect } from '@nats-io/transport-node';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '2525' },
    nats: { type: 'string', default: 'nats://127.0.0.1:4222' },
    n: { type: 'string', default: '5000' },
    size: { type: 'string', default: '10240' },
    concurrency: { type: 'string', default: '10' },
    to: { type: 'string', default: 'demo@example.test' },
    from: { type: 'string', default: 'bench@bench.test' },
    'wait-ms': { type: 'string', default: '300000' },
  },
});
const N = Number(values.n);
const SIZE = Number(values.size);
const C = Number(values.concurrency);

class Session {
  private buffer = '';
  private waiters: ((line: string) => void)[] = [];
  private lines: string[] = [];
  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.setNoDelay(true);
    socket.on('data', (d: string) => {
      this.buffer += d;
      let end: number;
      while ((end = this.buffer.indexOf('\r\n')) >= 0) {
        const line = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        if (/^\d{3} /.test(line)) {
          const w = this.waiters.shift();
          if (w) w(line);
          else this.lines.push(line);
        }
      }
    });
  }
  static async open(host: string, port: number): Promise<Session> {
    const socket = tcpConnect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const s = new Session(socket);
    await s.reply();
    return s;
  }
  reply(): Promise<string> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  write(data: string): void {
    this.socket.write(data);
  }
  close(): void {
    this.socket.end('QUIT\r\n');
  }
}

function body(i: number): string {
  const head = `From: <${values.from}>\r\nTo: <${values.to}>\r\nSubject: bench ${i}\r\nMessage-ID: <bench-${i}-${Date.now()}@bench.test>\r\n\r\n`;
  const line = `${'x'.repeat(76)}\r\n`;
  let text = head;
  while (text.length + line.length <= SIZE) text += line;
  return `${text}.\r\n`;
}

const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0
    ? NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN);

async function main(): Promise<void> {
  const nc = await natsConnect({ servers: values.nats });
  const acceptedAt = new Map<string, number>();
  const latencies: number[] = [];
  const early = new Map<string, number>();
  const sub = nc.subscribe('mail.events.delivered');
  void (async () => {
    for await (const m of sub) {
      const now = performance.now();
      const event = JSON.parse(new TextDecoder().decode(m.data)) as { queueId?: string };
      const id = event.queueId ?? '';
      const t = acceptedAt.get(id);
      if (t === undefined) early.set(id, now);
      else {
        latencies.push(now - t);
        acceptedAt.delete(id);
      }
    }
  })();

  let next = 0;
  let accepted = 0;
  let failed = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      const s = await Session.open(values.host, Number(values.port));
      s.write('EHLO bench.test\r\n');
      await s.reply();
      for (;;) {
        const i = next++;
        if (i >= N) break;
        s.write(`MAIL FROM:<${values.from}>\r\nRCPT TO:<${values.to}>\r\nDATA\r\n`);
        const [mail, rcpt, data] = [await s.reply(), await s.reply(), await s.reply()];
        if (!mail.startsWith('250') || !rcpt.startsWith('250') || !data.startsWith('354')) {
          failed++;
          s.write('RSET\r\n');
          await s.reply();
          continue;
        }
        s.write(body(i));
        const end = await s.reply();
        const queued = /queued as ([A-Za-z0-9_-]+)/.exec(end);
        if (end.startsWith('250') && queued?.[1] !== undefined) {
          accepted++;
          const now = performance.now();
          const seen = early.get(queued[1]);
          if (seen !== undefined) {
            latencies.push(seen - now);
            early.delete(queued[1]);
          } else acceptedAt.set(queued[1], now);
        } else failed++;
      }
      s.close();
    }),
  );
  const acceptSeconds = (performance.now() - start) / 1000;
  // The accept figure is known now; the stored one may take much longer.
  process.stderr.write(
    `accepted ${accepted} (failed ${failed}) in ${acceptSeconds.toFixed(1)} s = ${(accepted / acceptSeconds).toFixed(1)} msg/s; waiting for storage\n`,
  );
  const deadline = Date.now() + Number(values['wait-ms']);
  while (acceptedAt.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const storeSeconds = (performance.now() - start) / 1000;
  await nc.drain();
  const sorted = latencies.map((l) => Math.max(0, l)).sort((a, b) => a - b);
  const result = {
    n: N,
    sizeBytes: SIZE,
    concurrency: C,
    accepted,
    failed,
    acceptedPerSecond: Number((accepted / acceptSeconds).toFixed(1)),
    stored: sorted.length,
    storedPerSecond: Number((sorted.length / storeSeconds).toFixed(1)),
    latencyMs: {
      p50: Number(percentile(sorted, 50).toFixed(1)),
      p99: Number(percentile(sorted, 99).toFixed(1)),
      max: Number((sorted.at(-1) ?? NaN).toFixed(1)),
    },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
