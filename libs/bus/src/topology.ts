import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { WEBHOOK_SOURCE_KINDS } from './webhook-events.js';

/**
 * The JetStream topology of DESIGN §3, defined once. Names are contracts: other services and
 * operators' tooling depend on them.
 */
export const Streams = {
  MAIL_INBOUND: 'MAIL_INBOUND',
  MAIL_OUTBOUND: 'MAIL_OUTBOUND',
  MAIL_EVENTS: 'MAIL_EVENTS',
  MAIL_DLQ: 'MAIL_DLQ',
  /** Requests to teach the content filter from what users sort into or out of Junk. */
  SPAM_LEARN: 'SPAM_LEARN',
} as const;
export type StreamName = (typeof Streams)[keyof typeof Streams];

export const Subjects = {
  /** `mail.inbound.<spoolId>`: a job for storage to deliver into local mailboxes. */
  inbound: (spoolId: string) => `mail.inbound.${spoolId}`,
  /** `mail.outbound.<domain>`: a job for mta-delivery, keyed by recipient domain. */
  outbound: (domain: string) => `mail.outbound.${domain.replace(/[.*>\s]/g, '_')}`,
  /** `mail.events.<kind>`: trace, audit and alert events. */
  events: (kind: string) => `mail.events.${kind}`,
  /** `mail.dlq.<stream>`: a job that exhausted its deliveries, with its last error. */
  dlq: (stream: string) => `mail.dlq.${stream}`,
  /** `spam.learn.<userId>`: messages a user moved into Junk (spam) or out of it (ham). */
  spamLearn: (userId: string) => `spam.learn.${userId}`,
  /** Core NATS (not JetStream): a best-effort nudge for IMAP IDLE sessions. */
  mailboxChanged: (userId: string) => `mailbox.changed.${userId}`,
  /** Core NATS: a storage replica changed the Directory; the others drop their cached answers. */
  directoryChanged: 'directory.changed',
} as const;

export const Consumers = {
  STORAGE_DELIVER: 'storage-deliver',
  MTA_DELIVERY: 'mta-delivery',
  STORAGE_EVENTS: 'storage-events',
  STORAGE_SPAM_LEARN: 'storage-spam-learn',
  /** Mail events sent on to the domains' webhooks (storage/src/webhooks, docs/webhooks.md). */
  STORAGE_WEBHOOKS: 'storage-webhooks',
} as const;
export type ConsumerName = (typeof Consumers)[keyof typeof Consumers];

export const Buckets = {
  /** Object store for message bodies too large to travel inline in a job. */
  MAIL_SPOOL: 'mail-spool',
  /** KV: per-IP / per-account counters shared by every smtp-inbound and imap replica. */
  RATE_LIMITS: 'rate-limits',
  /** KV: failed-authentication counters and lockouts, shared by SMTP and IMAP. */
  AUTH_FAILURES: 'auth-failures',
} as const;

/** A message inline in a job stays well below NATS `max_payload` (DESIGN §2 step 2). */
export const INLINE_MESSAGE_LIMIT = 256 * 1024;

const DAY_NS = 24 * 60 * 60 * 1e9;
const MINUTE_NS = 60 * 1e9;

export interface TopologyOptions {
  /** 1 on a single node; 3 in a cluster (ack after quorum). */
  readonly replicas: number;
  /**
   * The consumers to create or update; default all. A service creates only those it reads
   * (`ownedConsumers`), which is all its NATS user may create.
   */
  readonly consumers?: readonly ConsumerName[];
  /** Limits of MAIL_DLQ (defaults: DLQ_DEFAULTS). */
  readonly dlq?: DlqLimits;
}

export interface DlqLimits {
  /** Dead letters older than this are removed (admins must act within it; alert on any entry). */
  readonly maxAgeMs: number;
  /** When MAIL_DLQ holds this many bytes, new dead letters are refused (the job then stays in its
   * own stream, unacknowledged, rather than an older dead letter being dropped). */
  readonly maxBytes: number;
}

export const DLQ_DEFAULTS: DlqLimits = { maxAgeMs: 30 * 24 * 3_600_000, maxBytes: 1024 * 1024 * 1024 };

export type StreamDefinition = Partial<StreamConfig> & { name: StreamName };

export function streamConfigs({ replicas, dlq = DLQ_DEFAULTS }: TopologyOptions): StreamDefinition[] {
  const common = { storage: StorageType.File, num_replicas: replicas, allow_direct: true } as const;
  return [
    {
      ...common,
      name: Streams.MAIL_INBOUND,
      subjects: ['mail.inbound.>'],
      retention: RetentionPolicy.Workqueue,
      // Window inside which a retried publish with the same Nats-Msg-Id is dropped (DESIGN §2 step 3).
      duplicate_window: 10 * MINUTE_NS,
      max_msg_size: 1024 * 1024,
      discard: DiscardPolicy.New,
    },
    {
      ...common,
      name: Streams.MAIL_OUTBOUND,
      subjects: ['mail.outbound.>'],
      retention: RetentionPolicy.Workqueue,
      duplicate_window: 10 * MINUTE_NS,
      max_msg_size: 1024 * 1024,
      discard: DiscardPolicy.New,
    },
    {
      ...common,
      name: Streams.MAIL_EVENTS,
      subjects: ['mail.events.>'],
      retention: RetentionPolicy.Limits,
      max_age: 7 * DAY_NS,
      duplicate_window: 2 * MINUTE_NS,
    },
    {
      ...common,
      name: Streams.SPAM_LEARN,
      subjects: ['spam.learn.>'],
      retention: RetentionPolicy.Workqueue,
      duplicate_window: 2 * MINUTE_NS,
      max_msg_size: 64 * 1024,
      // A lesson not taken within a day is not worth keeping.
      max_age: DAY_NS,
      discard: DiscardPolicy.Old,
    },
    {
      ...common,
      name: Streams.MAIL_DLQ,
      subjects: ['mail.dlq.>'],
      retention: RetentionPolicy.Limits,
      duplicate_window: 10 * MINUTE_NS,
      max_msg_size: 1024 * 1024,
      max_age: dlq.maxAgeMs * 1e6,
      max_bytes: dlq.maxBytes,
      // Full: refuse the new dead letter (its job stays where it is), never drop an old one.
      discard: DiscardPolicy.New,
    },
  ];
}

export interface ConsumerDefinition {
  readonly stream: StreamName;
  readonly config: Partial<ConsumerConfig> & { durable_name: ConsumerName };
}

export function consumerDefinitions(): ConsumerDefinition[] {
  return [
    {
      stream: Streams.MAIL_INBOUND,
      config: {
        durable_name: Consumers.STORAGE_DELIVER,
        // Only unpartitioned jobs (`mail.inbound.<spoolId>`): partitioned ones have a consumer per
        // partition (partitions/delivery.ts), and a work queue allows no overlapping filters.
        filter_subject: 'mail.inbound.*',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: 60 * 1e9,
        max_deliver: 10,
        max_ack_pending: 1_000,
      },
    },
    {
      stream: Streams.MAIL_OUTBOUND,
      config: {
        durable_name: Consumers.MTA_DELIVERY,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        // ConsumerLoop reports progress every 15 s during a long SMTP transaction, so a short
        // ack_wait is safe and a crashed replica's jobs come back within a minute.
        ack_wait: 60 * 1e9,
        // mta-delivery schedules its own retries (nak with delay) up to the queue lifetime.
        max_deliver: -1,
        max_ack_pending: 10_000,
      },
    },
    {
      stream: Streams.SPAM_LEARN,
      config: {
        durable_name: Consumers.STORAGE_SPAM_LEARN,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: 120 * 1e9,
        max_deliver: 10,
        max_ack_pending: 100,
      },
    },
    {
      stream: Streams.MAIL_EVENTS,
      config: {
        durable_name: Consumers.STORAGE_EVENTS,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: 30 * 1e9,
        max_deliver: 20,
        max_ack_pending: 5_000,
      },
    },
    {
      stream: Streams.MAIL_EVENTS,
      config: {
        durable_name: Consumers.STORAGE_WEBHOOKS,
        filter_subjects: WEBHOOK_SOURCE_KINDS.map((kind) => `mail.events.${kind}`),
        ack_policy: AckPolicy.Explicit,
        // Webhooks report what happens from now on; a new consumer does not replay the stream.
        deliver_policy: DeliverPolicy.New,
        ack_wait: 60 * 1e9,
        // The sender bounds attempts per endpoint itself (webhooks/sender.ts) and acks.
        max_deliver: -1,
        max_ack_pending: 1_000,
      },
    },
  ];
}

function isAlreadyExists(error: unknown): boolean {
  // 10058: stream name already in use with a different configuration; 10148: consumer exists.
  return error instanceof JetStreamApiError && [10058, 10148, 10013].includes(error.code);
}

function isNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && [10059, 10014].includes(error.code);
}

/**
 * Create or update every stream, consumer, KV bucket and object store. Idempotent, and safe when
 * several services start at once: whoever loses the race to create updates instead.
 */
export async function ensureTopology(
  nc: NatsConnection,
  jsm: JetStreamManager,
  options: TopologyOptions,
): Promise<void> {
  for (const config of streamConfigs(options)) {
    await ensureStream(jsm, config);
  }
  for (const { stream, config } of consumerDefinitions()) {
    if (options.consumers !== undefined && !options.consumers.includes(config.durable_name)) continue;
    try {
      await jsm.consumers.info(stream, config.durable_name);
      await jsm.consumers.update(stream, config.durable_name, config);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        await jsm.consumers.add(stream, config);
      } catch (addError) {
        if (!isAlreadyExists(addError)) throw addError;
      }
    }
  }
  const kvm = new Kvm(nc);
  await kvm.create(Buckets.RATE_LIMITS, { history: 1, ttl: 60 * 60 * 1000, replicas: options.replicas });
  await kvm.create(Buckets.AUTH_FAILURES, {
    history: 1,
    ttl: 24 * 60 * 60 * 1000,
    replicas: options.replicas,
  });
  const objm = new Objm(nc);
  await objm.create(Buckets.MAIL_SPOOL, { replicas: options.replicas, storage: StorageType.File });
}

async function ensureStream(jsm: JetStreamManager, config: StreamDefinition): Promise<void> {
  const name = config.name;
  try {
    await jsm.streams.info(name);
    await jsm.streams.update(name, config);
    return;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  try {
    await jsm.streams.add(config);
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
    await jsm.streams.update(name, config);
  }
}
