/**
 * Trace (DESIGN §2, §3): events published to MAIL_EVENTS on a real NATS are stored by the
 * `storage-events` consumer and answered by Trace.QueryEvents in time order, paged; a redelivered
 * event is stored once; a malformed one goes to the DLQ instead of vanishing.
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { Streams, Subjects, publishDurable, type MailEvent } from '@postmesh/bus';
import { ErrorReason, errorDetailOf, trace } from '@postmesh/contracts';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collections } from '../src/db/schema.js';
import { callError, startStorageHarness, traceApi, type StorageHarness } from './harness.js';

let h: StorageHarness;
let t: ReturnType<typeof traceApi>;
beforeAll(async () => {
  h = await startStorageHarness({ nats: true });
  t = traceApi(h.trace);
});
afterAll(async () => {
  await h.stop();
});

const base = Date.parse('2026-11-27T10:00:00.000Z');
const at = (minutes: number): string => new Date(base + minutes * 60_000).toISOString();

async function publish(event: MailEvent, msgId = event.eventId): Promise<void> {
  if (h.bus === undefined) throw new Error('harness without NATS');
  await publishDurable(
    h.bus.js,
    Subjects.events(event.kind),
    new TextEncoder().encode(JSON.stringify(event)),
    { msgId },
  );
}

/** Polls until `count` events match (the consumer is asynchronous); bounded. */
async function waitForEvents(
  filter: trace.QueryEventsRequest['filter'],
  count: number,
): Promise<trace.TraceEvent[]> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const res = await t.queryEvents({ filter, pageSize: 1000 });
    if (res.events.length >= count) return res.events;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fewer than ${count} events arrived`);
}

describe('trace events', () => {
  const queueId = `q-${randomUUID()}`;
  const messageId = `${randomUUID()}@sender.example`;
  // Published out of order: the store answers in time order.
  const hops: MailEvent[] = [
    {
      eventId: randomUUID(),
      time: at(2),
      service: 'storage',
      kind: 'delivered',
      queueId,
      messageId,
      sender: 'Alice@Sender.example',
      recipient: 'bob@trace.test',
      detail: 'stored in INBOX',
      attributes: { mailbox: 'INBOX' },
    },
    {
      eventId: randomUUID(),
      time: at(0),
      service: 'smtp-inbound',
      kind: 'received',
      queueId,
      messageId,
      sender: 'alice@sender.example',
      detail: '250 2.0.0 queued',
      attributes: { remote_ip: '192.0.2.7' },
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    },
    {
      eventId: randomUUID(),
      time: at(1),
      service: 'smtp-inbound',
      kind: 'queued',
      queueId,
      messageId,
      sender: 'alice@sender.example',
      recipient: 'bob@trace.test',
    },
    {
      eventId: randomUUID(),
      time: at(3),
      service: 'mta-delivery',
      kind: 'deferred',
      queueId,
      messageId,
      sender: 'alice@sender.example',
      recipient: 'carol@remote.example',
      detail: '451 4.7.1 try later',
      attributes: { attempt: '1', smtp_code: '451' },
    },
  ];

  beforeAll(async () => {
    for (const hop of hops) await publish(hop);
    await waitForEvents({ $case: 'queueId', value: queueId }, hops.length);
  });

  it('answers every hop of a message by Message-ID, in time order, with all fields', async () => {
    const events = await waitForEvents({ $case: 'messageId', value: `<${messageId}>` }, 4);
    expect(events.map((e) => e.kind)).toEqual([
      trace.EventKind.RECEIVED,
      trace.EventKind.QUEUED,
      trace.EventKind.DELIVERED,
      trace.EventKind.DEFERRED,
    ]);
    expect(events[0]).toEqual({
      id: hops[1]?.eventId,
      time: new Date(at(0)),
      service: 'smtp-inbound',
      kind: trace.EventKind.RECEIVED,
      queueId,
      messageId,
      sender: 'alice@sender.example',
      recipient: '',
      detail: '250 2.0.0 queued',
      attributes: { remote_ip: '192.0.2.7' },
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    expect(events[3]?.attributes).toEqual({ attempt: '1', smtp_code: '451' });
  });

  it('answers by address as sender or recipient, case-insensitively, and by time range', async () => {
    const asSender = await t.queryEvents({ filter: { $case: 'address', value: 'ALICE@sender.example' } });
    expect(asSender.events.filter((e) => e.queueId === queueId)).toHaveLength(4);
    const asRecipient = await t.queryEvents({ filter: { $case: 'address', value: 'Bob@Trace.Test' } });
    expect(asRecipient.events.map((e) => e.kind)).toEqual([
      trace.EventKind.QUEUED,
      trace.EventKind.DELIVERED,
    ]);
    const window = await t.queryEvents({
      filter: { $case: 'queueId', value: queueId },
      startTime: new Date(at(1)),
      endTime: new Date(at(3)),
    });
    // start inclusive, end exclusive
    expect(window.events.map((e) => e.kind)).toEqual([trace.EventKind.QUEUED, trace.EventKind.DELIVERED]);
  });

  it('restricts to the caller’s domains', async () => {
    const res = await t.queryEvents({
      filter: { $case: 'queueId', value: queueId },
      domains: ['remote.example'],
    });
    expect(res.events.map((e) => e.recipient)).toEqual(['carol@remote.example']);
    const none = await t.queryEvents({
      filter: { $case: 'queueId', value: queueId },
      domains: ['unrelated.example'],
    });
    expect(none.events).toEqual([]);
  });

  it('pages through events without loss or repetition, ties broken by id', async () => {
    const busyQueue = `q-${randomUUID()}`;
    const ids: string[] = [];
    for (let i = 0; i < 7; i += 1) {
      const eventId = `evt-${i}-${randomUUID()}`;
      ids.push(eventId);
      // Two events share each timestamp.
      await publish({
        eventId,
        time: at(10 + Math.floor(i / 2)),
        service: 'storage',
        kind: 'delivered',
        queueId: busyQueue,
      });
    }
    await waitForEvents({ $case: 'queueId', value: busyQueue }, 7);
    const seen: string[] = [];
    let pageToken = '';
    for (let page = 0; page < 10; page += 1) {
      const res = await t.queryEvents({
        filter: { $case: 'queueId', value: busyQueue },
        pageSize: 3,
        pageToken,
      });
      expect(res.events.length).toBeLessThanOrEqual(3);
      seen.push(...res.events.map((e) => e.id));
      pageToken = res.nextPageToken;
      if (pageToken === '') break;
    }
    const expected = ids
      .map((id, i) => ({ id, time: Math.floor(i / 2) }))
      .sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : 1))
      .map((e) => e.id);
    expect(seen).toEqual(expected);
  });

  it('stores a redelivered event once', async () => {
    const event: MailEvent = {
      eventId: randomUUID(),
      time: at(30),
      service: 'storage',
      kind: 'junked',
      queueId: `q-${randomUUID()}`,
    };
    // A different Nats-Msg-Id gets past JetStream's dedup window: storage must dedup by eventId.
    await publish(event, `${event.eventId}-1`);
    await publish(event, `${event.eventId}-2`);
    const marker: MailEvent = {
      eventId: randomUUID(),
      time: at(31),
      service: 'storage',
      kind: 'delivered',
      queueId: event.queueId ?? '',
    };
    await publish(marker);
    await waitForEvents({ $case: 'queueId', value: event.queueId ?? '' }, 2);
    // The consumer processes in parallel: give a late duplicate time to land, then count.
    await new Promise((r) => setTimeout(r, 300));
    expect(await h.db.collection(Collections.events).countDocuments({ eventId: event.eventId })).toBe(1);
    const res = await t.queryEvents({ filter: { $case: 'queueId', value: event.queueId ?? '' } });
    expect(res.events.map((e) => e.id)).toEqual([event.eventId, marker.eventId]);
  });

  it('keys an event by its eventId, and still finds one stored under an ObjectId', async () => {
    const fresh: MailEvent = {
      eventId: randomUUID(),
      time: at(40),
      service: 'storage',
      kind: 'delivered',
    };
    const date = new Date(fresh.time);
    expect(await h.app.traceStore.store({ ...fresh, date })).toBe(true);
    expect(await h.app.traceStore.store({ ...fresh, date })).toBe(false);
    const events = h.db.collection<{ _id: string | ObjectId; eventId: string }>(Collections.events);
    expect((await events.findOne({ _id: fresh.eventId }))?.eventId).toBe(fresh.eventId);
    // A record from before `_id = eventId`: a redelivery of its event is not a second copy.
    const legacy: MailEvent = { ...fresh, eventId: randomUUID() };
    await events.insertOne({
      _id: new ObjectId(),
      eventId: legacy.eventId,
      time: date,
      service: 'storage',
      kind: 'delivered',
      detail: {},
      expiresAt: new Date(Date.now() + 86_400_000),
    } as { _id: string | ObjectId; eventId: string });
    expect(await h.app.traceStore.store({ ...legacy, date })).toBe(false);
    expect(await events.countDocuments({ eventId: legacy.eventId })).toBe(1);
  });

  it('sets each stored event to expire after the retention period', async () => {
    const doc = await h.db.collection(Collections.events).findOne({ eventId: hops[0]?.eventId });
    expect((doc?.expiresAt as Date).getTime() - Date.parse(at(2))).toBe(30 * 24 * 60 * 60 * 1000);
    const expired = {
      eventId: randomUUID(),
      time: new Date(Date.now() - 40 * 86_400_000).toISOString(),
      service: 'storage',
      kind: 'delivered',
      queueId: `q-${randomUUID()}`,
    } as const;
    await publish(expired);
    await waitForEvents({ $case: 'queueId', value: expired.queueId }, 1);
    expect(await h.app.traceStore.sweepExpired()).toBeGreaterThanOrEqual(1);
    expect((await t.queryEvents({ filter: { $case: 'queueId', value: expired.queueId } })).events).toEqual(
      [],
    );
  });

  it('moves a malformed event to the DLQ instead of storing or dropping it', async () => {
    if (h.bus === undefined) throw new Error('harness without NATS');
    const before = (await h.bus.jsm.streams.info(Streams.MAIL_DLQ)).state.messages;
    await publishDurable(h.bus.js, Subjects.events('received'), new TextEncoder().encode('{"eventId": 42}'), {
      msgId: randomUUID(),
    });
    let after = before;
    for (let attempt = 0; attempt < 100 && after === before; attempt += 1) {
      await new Promise((r) => setTimeout(r, 100));
      after = (await h.bus.jsm.streams.info(Streams.MAIL_DLQ)).state.messages;
    }
    expect(after).toBe(before + 1);
  });

  it('refuses a query without a filter or with end before start', async () => {
    const noFilter = await callError(t.queryEvents({}));
    expect(noFilter.code).toBe(status.INVALID_ARGUMENT);
    expect(errorDetailOf(noFilter)?.reason).toBe(ErrorReason.INVALID_ARGUMENT);
    const backwards = await callError(
      t.queryEvents({
        filter: { $case: 'queueId', value: queueId },
        startTime: new Date(at(5)),
        endTime: new Date(at(1)),
      }),
    );
    expect(backwards.code).toBe(status.INVALID_ARGUMENT);
    expect(errorDetailOf(backwards)?.field).toBe('end_time');
    const badToken = await callError(
      t.queryEvents({ filter: { $case: 'queueId', value: queueId }, pageToken: 'nope' }),
    );
    expect(errorDetailOf(badToken)?.field).toBe('page_token');
  });
});
