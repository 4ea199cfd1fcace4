/**
 * One trace per message across processes (OpenTelemetry, standard OTEL_* configuration, OTLP
 * export): smtp-inbound, storage and mta-delivery run as real processes exporting OTLP/HTTP JSON
 * to a receiver in this test. A message to a local user gives smtp-inbound's transaction span
 * and storage's delivery span (its child, through the job's traceparent header) under one trace
 * id; a submitted message to a remote recipient gives the transaction span and mta-delivery's
 * attempt span, relayed to a sink. The trace events of both carry the same trace id, and every
 * service's `/metrics` parses as Prometheus text with counters that moved; at debug level no
 * service logs a password, an AUTH token, a key or a message body.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { TraceServiceClient, trace as traceApi } from '@postmesh/contracts';
import { freePort, startService, type RunningService } from '@postmesh/testing';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { DEMO, DEMO_PASSWORD, Pipeline } from './pipeline.js';

interface ExportedSpan {
  readonly service: string;
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
}

/** An OTLP/HTTP receiver (JSON encoding, OTLP spec "JSON Protobuf Encoding": ids as hex). */
class OtlpReceiver {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly spans: readonly ExportedSpan[],
  ) {}

  static async start(): Promise<OtlpReceiver> {
    const port = await freePort();
    const spans: ExportedSpan[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            resourceSpans?: {
              resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
              scopeSpans?: {
                spans?: { name: string; traceId: string; spanId: string; parentSpanId?: string }[];
              }[];
            }[];
          };
          for (const rs of body.resourceSpans ?? []) {
            const service =
              rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
            for (const ss of rs.scopeSpans ?? []) {
              for (const s of ss.spans ?? []) {
                spans.push({
                  service,
                  name: s.name,
                  traceId: s.traceId,
                  spanId: s.spanId,
                  parentSpanId: s.parentSpanId ?? '',
                });
              }
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return new OtlpReceiver(server, port, spans);
  }

  env(): Record<string, string> {
    return {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${this.port}/v1/traces`,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
    };
  }

  async waitFor(predicate: (spans: readonly ExportedSpan[]) => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.spans)) {
      if (Date.now() > deadline) {
        throw new Error(
          `spans not seen in time; got ${JSON.stringify(this.spans.map((s) => [s.service, s.name]))}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The remote side: a plain SMTP server (no STARTTLS, no AUTH) that records what it accepted. */
class SmtpSink {
  readonly received: string[] = [];
  private readonly server: SMTPServer;

  constructor(readonly port: number) {
    this.server = new SMTPServer({
      logger: false,
      disabledCommands: ['STARTTLS', 'AUTH'],
      onData: (stream, _session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.received.push(Buffer.concat(chunks).toString('utf8'));
          callback();
        });
      },
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Every sample line of a Prometheus text exposition (format 0.0.4), strictly. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$/.exec(
      line,
    );
    if (m === null) throw new Error(`not Prometheus text: ${line}`);
    const value = Number(m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad sample value: ${line}`);
    samples.set(`${m[1]}${m[2] ?? ''}`, value);
  }
  return samples;
}

/** Sum of the samples of `name` whose labels include all of `labels`. */
function sum(samples: Map<string, number>, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const [key, value] of samples) {
    if (!key.startsWith(`${name}{`) && key !== name) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) total += value;
  }
  return total;
}

async function scrape(opsPort: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${opsPort}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

describe('one trace per message across smtp-inbound, storage and mta-delivery', () => {
  let otlp: OtlpReceiver;
  let p: Pipeline;
  let sink: SmtpSink;
  let mta: RunningService | undefined;
  let traces: TraceServiceClient;
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-tracing-'));

  beforeAll(async () => {
    otlp = await OtlpReceiver.start();
    // Debug logs: the most a service writes, for the check that no secret or body reaches them.
    p = await Pipeline.start({
      smtpEnv: { ...otlp.env(), LOG_LEVEL: 'debug' },
      storageEnv: { ...otlp.env(), LOG_LEVEL: 'debug' },
    });
    sink = new SmtpSink(await freePort());
    await sink.listen();
    mta = await startService('mta-delivery', {
      env: p.env,
      dir,
      name: 'mta',
      vars: {
        ...otlp.env(),
        NATS_URL: p.natsUrl,
        NATS_MONITOR_URL: p.env.natsMonitorUrl ?? '',
        POSTMESH_STREAM_REPLICAS: '1',
        POSTMESH_STORAGE_GRPC: `127.0.0.1:${p.grpcPort}`,
        POSTMESH_MTA_DKIM: 'false',
        POSTMESH_HOSTNAME: 'mta.example.test',
        POSTMESH_RELAY_HOST: '127.0.0.1',
        POSTMESH_RELAY_PORT: String(sink.port),
        POSTMESH_RELAY_TLS: 'none',
        LOG_LEVEL: 'debug',
      },
    });
    traces = new TraceServiceClient(
      `127.0.0.1:${p.grpcPort}`,
      p.env.security('operator').grpcClientCredentials(),
    );
  }, 150_000);

  afterAll(async () => {
    traces?.close();
    await mta?.stop();
    await sink?.close();
    await p?.stop();
    await otlp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const eventsOf = (queueId: string): Promise<traceApi.TraceEvent[]> =>
    new Promise((resolve, reject) => {
      traces.queryEvents(
        traceApi.QueryEventsRequest.fromPartial({ filter: { $case: 'queueId', value: queueId } }),
        new Metadata(),
        { deadline: Date.now() + 10_000 },
        (error, response) => (error === null ? resolve(response.events) : reject(error)),
      );
    });

  async function waitForEvents(queueId: string, kinds: readonly traceApi.EventKind[]) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const events = await eventsOf(queueId);
      if (kinds.every((k) => events.some((e) => e.kind === k)) || Date.now() > deadline) return events;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Body tokens of the messages this suite sent: none may appear in any service's log. */
  const bodyTokens: string[] = [];

  const queueIdOf = (response: string): string => /queued as (\S+)/.exec(response)?.[1] ?? '';

  it('a message to a local user: SMTP transaction → storage delivery under one trace id', async () => {
    const token = randomBytes(6).toString('hex');
    bodyTokens.push(`${token}-local-secret`);
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: p.smtpPort, secure: false, ignoreTLS: true })
      .sendMail({
        envelope: { from: 'sender@remote.example', to: [DEMO] },
        raw: `From: sender@remote.example\r\nTo: ${DEMO}\r\nSubject: trace ${token}\r\n\r\nbody ${token}-local-secret\r\n`,
      });
    const queueId = queueIdOf(info.response);
    expect(queueId).not.toBe('');

    await otlp.waitFor((spans) =>
      spans.some((s) => s.service === 'postmesh-storage' && s.name === 'deliver to mailboxes'),
    );
    const transaction = otlp.spans.filter(
      (s) => s.service === 'postmesh-smtp-inbound' && s.name === 'smtp transaction',
    );
    const delivery = otlp.spans.filter(
      (s) => s.service === 'postmesh-storage' && s.name === 'deliver to mailboxes',
    );
    const pair = delivery
      .map((d) => ({ d, t: transaction.find((t) => t.spanId === d.parentSpanId) }))
      .find((x) => x.t !== undefined);
    expect(pair).toBeDefined();
    const traceId = pair?.t?.traceId ?? '';
    expect(pair?.d.traceId).toBe(traceId);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);

    const events = await waitForEvents(queueId, [traceApi.EventKind.QUEUED, traceApi.EventKind.DELIVERED]);
    const byKind = new Map(events.map((e) => [e.kind, e]));
    expect(byKind.get(traceApi.EventKind.QUEUED)?.traceId).toBe(traceId);
    expect(byKind.get(traceApi.EventKind.DELIVERED)?.traceId).toBe(traceId);
  }, 60_000);

  it('a submitted message to a remote recipient: SMTP transaction → mta-delivery attempt under one trace id', async () => {
    const token = randomBytes(6).toString('hex');
    bodyTokens.push(`${token}-remote-secret`);
    const info = await nodemailer
      .createTransport({
        host: '127.0.0.1',
        port: p.submissionPort,
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: DEMO, pass: DEMO_PASSWORD },
      })
      .sendMail({
        envelope: { from: DEMO, to: ['someone@remote.example'] },
        raw: `From: ${DEMO}\r\nTo: someone@remote.example\r\nSubject: remote ${token}\r\n\r\nbody ${token}-remote-secret\r\n`,
      });
    const queueId = queueIdOf(info.response);
    expect(queueId).not.toBe('');

    await otlp.waitFor((spans) =>
      spans.some((s) => s.service === 'postmesh-mta-delivery' && s.name === 'process MAIL_OUTBOUND'),
    );
    const transaction = otlp.spans.filter(
      (s) => s.service === 'postmesh-smtp-inbound' && s.name === 'smtp transaction',
    );
    const attempt = otlp.spans.find(
      (s) =>
        s.service === 'postmesh-mta-delivery' &&
        s.name === 'process MAIL_OUTBOUND' &&
        transaction.some((t) => t.spanId === s.parentSpanId && t.traceId === s.traceId),
    );
    expect(attempt).toBeDefined();
    expect(sink.received.some((m) => m.includes(`remote ${token}`))).toBe(true);

    const events = await waitForEvents(queueId, [traceApi.EventKind.QUEUED, traceApi.EventKind.RELAYED]);
    const relayed = events.find((e) => e.kind === traceApi.EventKind.RELAYED);
    expect(relayed?.traceId).toBe(attempt?.traceId);
    // Receipt and authentication are recorded on the queued hop.
    const queued = events.find((e) => e.kind === traceApi.EventKind.QUEUED);
    expect(queued?.attributes).toMatchObject({ authenticated_as: DEMO, remote_ip: '127.0.0.1' });
  }, 60_000);

  it('/metrics on every service parses as Prometheus text and the mail counters moved', async () => {
    const smtp = await scrape(p.smtp.opsPort);
    expect(sum(smtp, 'postmesh_smtp_messages_total', { result: 'accepted' })).toBeGreaterThanOrEqual(2);
    expect(sum(smtp, 'postmesh_smtp_connections_total', {})).toBeGreaterThanOrEqual(2);
    const storage = await scrape(p.storage.opsPort);
    expect(
      sum(storage, 'postmesh_deliveries_total', { outcome: 'delivered', destination: 'local' }),
    ).toBeGreaterThanOrEqual(1);
    expect(sum(storage, 'postmesh_delivery_write_seconds_count', {})).toBeGreaterThanOrEqual(1);
    expect(
      sum(storage, 'postmesh_grpc_server_duration_seconds_count', {
        method: '/postmesh.directory.v1.DirectoryService/ResolveRecipient',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(storage.has('postmesh_dlq_messages{service="storage"}')).toBe(true);
    // The database commands and key unwraps the delivery made.
    expect(
      sum(storage, 'postmesh_storage_db_operations_total', { command: 'insert', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sum(storage, 'postmesh_storage_db_operation_seconds_count', { command: 'find' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sum(storage, 'postmesh_storage_key_operations_total', { operation: 'unwrap', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sum(storage, 'postmesh_jetstream_consumer_pending', { consumer: 'storage-events' }) >= 0 &&
        [...storage.keys()].some((k) => k.startsWith('postmesh_jetstream_consumer_pending{')),
    ).toBe(true);
    const mtaMetrics = await scrape(mta?.opsPort ?? 0);
    expect(
      sum(mtaMetrics, 'postmesh_deliveries_total', { outcome: 'relayed', destination: 'remote' }),
    ).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('no password, AUTH token, key or message body in any service log (debug level)', () => {
    const logs = [p.smtp.log(), p.storage.log(), mta?.log() ?? ''];
    expect(logs.every((log) => log.length > 0)).toBe(true);
    const secrets = [
      DEMO_PASSWORD,
      // AUTH PLAIN's argument (RFC 4616), as the client sent it.
      Buffer.from(`\0${DEMO}\0${DEMO_PASSWORD}`).toString('base64'),
      // The key-encryption key and the internal identities' private keys.
      readFileSync(p.storage.vars.POSTMESH_KEK_FILE ?? '', 'utf8').trim(),
      'PRIVATE KEY',
      ...bodyTokens,
    ];
    expect(bodyTokens).toHaveLength(2);
    for (const log of logs) {
      for (const secret of secrets)
        expect(log.includes(secret), `a log holds ${secret.slice(0, 12)}…`).toBe(false);
    }
  });
});
