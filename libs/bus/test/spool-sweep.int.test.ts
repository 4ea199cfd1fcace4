/**
 * The inbound spool sweeper on a real JetStream: an old `msg/` object is deleted only when no
 * queued MAIL_INBOUND job and no dead-lettered inbound job references it; `out/` objects and
 * young objects are left alone; progress is logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import {
  Bus,
  PartitionedInbound,
  Streams,
  Subjects,
  encodeInboundJob,
  openSpool,
  publishDurable,
  spoolObjectName,
  sweepInboundSpool,
  type InboundJob,
} from '../src/index.js';

const silent = createLogger('spool-sweep-test', 'silent');

function objectJob(spoolId: string): InboundJob {
  return {
    version: 1,
    spoolId,
    envelope: { mailFrom: 'a@remote.test', rcptTo: ['demo@example.test'], remoteIp: '192.0.2.1', helo: 'x' },
    authResults: { spf: 'none', dkim: 'none', dmarc: 'none', arc: 'none', dmarcPolicy: '', junk: false },
    receivedAt: new Date().toISOString(),
    messageId: '',
    traceparent: '',
    body: { kind: 'object', size: 5, object: spoolObjectName(spoolId) },
  };
}

describe('inbound spool sweep', () => {
  let env: TestEnvironment;
  let bus: Bus;
  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    bus = await Bus.connect({ ...env.busOptions(), name: 'spool-sweep-test', logger: silent, replicas: 1 });
  });
  afterAll(async () => {
    await bus?.drain();
    await env?.stop();
  });

  it('deletes only old, unreferenced msg/ objects', async () => {
    const store = await openSpool(bus.nc);
    const ids = {
      queued: 'queuedJob0001',
      partitioned: 'partitioned01',
      deadLettered: 'deadLetter0001',
      orphan: 'orphanObj0001',
    };
    for (const id of Object.values(ids))
      await store.putBlob({ name: spoolObjectName(id) }, Buffer.from('hello'));
    await store.putBlob({ name: 'out/orphanOut0001' }, Buffer.from('hello'));
    // No consumer runs here, so this job stays in MAIL_INBOUND.
    await publishDurable(bus.js, Subjects.inbound(ids.queued), encodeInboundJob(objectJob(ids.queued)), {
      msgId: `${ids.queued}:MAIL_INBOUND`,
    });
    // A partition's share of a job (`mail.inbound.<partition>.<spoolId>`).
    await publishDurable(
      bus.js,
      PartitionedInbound.subject(3, ids.partitioned),
      encodeInboundJob(objectJob(ids.partitioned)),
      { msgId: PartitionedInbound.messageId(ids.partitioned, 3) },
    );
    // A dead-lettered inbound job (ConsumerLoop copies the job frame into MAIL_DLQ).
    await publishDurable(
      bus.js,
      Subjects.dlq(Streams.MAIL_INBOUND),
      encodeInboundJob(objectJob(ids.deadLettered)),
      { msgId: `dlq:${ids.deadLettered}` },
    );

    // Young objects are never looked at.
    const young = await sweepInboundSpool({
      jsm: bus.jsm,
      spool: () => openSpool(bus.nc),
      minAgeMs: 3_600_000,
      logger: silent,
    });
    expect(young).toEqual({ candidates: 0, deleted: 0, referenced: 0, failed: 0 });

    // The log lines an operator sees (message texts), in order.
    const lines: string[] = [];
    const record = (_fields: unknown, message: string) => void lines.push(message);
    const logger = { info: record, warn: record } as unknown as Logger;
    const report = await sweepInboundSpool({
      jsm: bus.jsm,
      spool: () => openSpool(bus.nc),
      minAgeMs: 60_000,
      now: () => Date.now() + 120_000,
      logger,
      progressEvery: 1,
    });
    expect(report).toEqual({ candidates: 4, deleted: 1, referenced: 3, failed: 0 });
    const names = (await store.list())
      .filter((o) => o.deleted !== true)
      .map((o) => o.name)
      .sort();
    expect(names).toEqual([
      'msg/deadLetter0001',
      'msg/partitioned01',
      'msg/queuedJob0001',
      'out/orphanOut0001',
    ]);
    expect(lines).toEqual([
      'inbound spool sweep: checking old objects',
      'inbound spool sweep: progress',
      'inbound spool sweep: progress',
      'inbound spool sweep: progress',
      'inbound spool sweep done',
    ]);
  });
});
