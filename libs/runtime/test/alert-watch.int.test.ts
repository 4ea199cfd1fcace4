/**
 * The queue rules against a real NATS JetStream: a work queue past its depth threshold and its
 * consumer past its lag threshold each raise one alert on MAIL_EVENTS, and the next check of the
 * same hour raises nothing more. The certificate reader names a certificate by its DNS name and
 * knows its expiry.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, Consumers, Streams, Subjects, parseMailEvent, publishDurable } from '@postmesh/bus';
import { createLogger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkQueues, readCertificate } from '../src/alert-watch.js';

const logger = createLogger('alert-watch-test', 'silent');
let env: TestEnvironment;
let bus: Bus;

beforeAll(async () => {
  env = await startTestEnvironment({ nats: true, mongo: false });
  bus = await Bus.connect({
    ...env.busOptions('operator'),
    name: 'alert-watch-test',
    logger,
    replicas: 1,
    consumers: [Consumers.MTA_DELIVERY],
  });
}, 60_000);

afterAll(async () => {
  await bus?.drain();
  await env?.stop();
});

describe('queue alerts', () => {
  it('raise queue-depth and consumer-lag once per hour when past their thresholds', async () => {
    for (let i = 0; i < 3; i += 1) {
      await publishDurable(bus.js, Subjects.outbound('remote.test'), new TextEncoder().encode(`job ${i}`), {
        msgId: `alert-watch-${i}`,
      });
    }
    const options = {
      service: 'mta-delivery',
      jsm: () => bus.jsm,
      js: () => bus.js,
      consumers: [{ stream: Streams.MAIL_OUTBOUND, consumer: Consumers.MTA_DELIVERY }],
      queues: [Streams.MAIL_OUTBOUND],
      queueDepth: 2,
      consumerLag: 2,
      intervalMs: 60_000,
      logger,
    };
    const raised = new Set<string>();
    const now = Date.parse('2026-12-06T10:15:00Z');
    const first = await checkQueues(options, now, raised);
    expect(first.map((a) => a.attributes)).toEqual([
      expect.objectContaining({ alert: 'queue-depth', about: Streams.MAIL_OUTBOUND, messages: '3' }),
      expect.objectContaining({
        alert: 'consumer-lag',
        about: `${Streams.MAIL_OUTBOUND}/${Consumers.MTA_DELIVERY}`,
        pending: '3',
      }),
    ]);
    // Later in the same hour: the same incident, not raised again.
    expect(await checkQueues(options, now + 20 * 60_000, raised)).toEqual([]);
    // Under the thresholds: nothing.
    expect(await checkQueues({ ...options, queueDepth: 3, consumerLag: 3 }, now + 2 * 3_600_000)).toEqual([]);

    // What storage will read: the alerts on MAIL_EVENTS.
    const stream = await bus.jsm.streams.info(Streams.MAIL_EVENTS);
    const stored = [];
    for (let seq = stream.state.first_seq; seq <= stream.state.last_seq; seq += 1) {
      const msg = await bus.jsm.streams.getMessage(Streams.MAIL_EVENTS, { seq });
      if (msg === null) continue;
      const parsed = parseMailEvent(msg.data);
      if (parsed.ok && parsed.event.kind === 'alert') stored.push(parsed.event.attributes?.alert);
    }
    expect(stored).toEqual(['queue-depth', 'consumer-lag']);
  });
});

describe('readCertificate', () => {
  it('names the certificate by its DNS name and reads its expiry', () => {
    const dir = mkdtempSync(join(tmpdir(), 'postmesh-cert-'));
    try {
      execFileSync('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'tls.key'),
        '-out',
        join(dir, 'tls.crt'),
        '-days',
        '3',
        '-subj',
        '/CN=ignored.example',
        '-addext',
        'subjectAltName=DNS:mx.example.test',
      ]);
      const found = readCertificate(join(dir, 'tls.crt'));
      expect(found.subject).toBe('mx.example.test');
      expect(found.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      const days = (found.notAfter.getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(2.9);
      expect(days).toBeLessThanOrEqual(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
