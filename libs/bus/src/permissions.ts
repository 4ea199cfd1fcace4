import type { InternalIdentity } from '@postmesh/identity';
import { PartitionBuckets } from './partitions/ownership.js';
import { Buckets, Consumers, Streams, Subjects, type ConsumerName, type StreamName } from './topology.js';
import { QueueSubjects } from './queue-operations-contract.js';

/**
 * Who may do what on NATS. Every service connects as its own NATS user (an NKey, or a password in
 * a cluster), and the server enforces these allow-lists: a service can publish and subscribe only
 * to the subjects of its own work, so a compromised smtp-inbound pod cannot read mailboxes' queued
 * mail (no consumer on MAIL_INBOUND), drive the queue operations, or receive mailbox events.
 *
 * The lists are a contract between this library and the servers' configuration: the test
 * harness and the local stack render them into nats-server's `authorization` block, and the Helm
 * chart carries the same lists in `charts/postmesh/files/nats-permissions.json` (kept equal by a
 * test; the harness reads that file, so the shipped lists are the tested ones). A service that starts to use a new subject
 * must add it here, or its calls fail with a permissions violation (logged by the server).
 */

export interface NatsPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** May answer requests (publish once to a request's reply subject). */
  readonly allowResponses: boolean;
}

/** mta-delivery's own KV buckets (created by mta-delivery at start). */
export const MtaBuckets = {
  QUEUE: 'mta-queue',
  TLS_REPORTS: 'mta-tls-reports',
  SPOOL_REFS: 'mta-spool-refs',
} as const;

const API = '$JS.API';

/** Everything on a stream that holds a KV bucket or an object store the service uses. */
function storeAccess(stream: string, dataSubjects: string): string[] {
  return [
    `${API}.STREAM.INFO.${stream}`,
    `${API}.STREAM.CREATE.${stream}`,
    `${API}.STREAM.UPDATE.${stream}`,
    `${API}.STREAM.PURGE.${stream}`,
    `${API}.STREAM.MSG.GET.${stream}`,
    `${API}.STREAM.MSG.DELETE.${stream}`,
    `${API}.DIRECT.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}.>`,
    // Watches, key listings and object reads use short-lived ordered consumers.
    `${API}.CONSUMER.CREATE.${stream}`,
    `${API}.CONSUMER.CREATE.${stream}.>`,
    `${API}.CONSUMER.INFO.${stream}.>`,
    `${API}.CONSUMER.DELETE.${stream}.>`,
    `${API}.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.ACK.${stream}.>`,
    `$JS.FC.${stream}.>`,
    dataSubjects,
  ];
}
/**
 * Dead-lettering a job that exhausted max_deliver unseen (max-deliveries.ts): the server's
 * advisory, the job by its sequence, its copy to MAIL_DLQ, and its removal from the work queue.
 * smtp-inbound and mta-delivery run it, for both work queues.
 */
const deadLettering = {
  publish: [Streams.MAIL_INBOUND, Streams.MAIL_OUTBOUND].flatMap((s) => [
    `$JS.API.STREAM.MSG.GET.${s}`,
    `$JS.API.DIRECT.GET.${s}`,
    `$JS.API.STREAM.MSG.DELETE.${s}`,
  ]),
  subscribe: [Streams.MAIL_INBOUND, Streams.MAIL_OUTBOUND].map(
    (s) => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${s}.*`,
  ),
};
const kv = (bucket: string): string[] => storeAccess(`KV_${bucket}`, `$KV.${bucket}.>`);
/** Reading and watching a KV bucket without the right to write or purge it. */
const kvReader = (bucket: string): string[] =>
  kv(bucket).filter(
    (subject) =>
      !['STREAM.CREATE', 'STREAM.UPDATE', 'STREAM.PURGE', 'STREAM.MSG.DELETE'].some((write) =>
        subject.startsWith(`${API}.${write}.`),
      ) &&
      !subject.startsWith('$KV.') &&
      !subject.startsWith('$JS.ACK.'),
  );
const objectStore = (bucket: string): string[] => storeAccess(`OBJ_${bucket}`, `$O.${bucket}.>`);

/** A durable pull consumer the service owns: create or update it, read from it, ack. */
function consumerAccess(stream: StreamName, consumer: ConsumerName): string[] {
  return [
    `${API}.CONSUMER.INFO.${stream}.${consumer}`,
    `${API}.CONSUMER.CREATE.${stream}.${consumer}`,
    `${API}.CONSUMER.CREATE.${stream}.${consumer}.>`,
    `${API}.CONSUMER.DURABLE.CREATE.${stream}.${consumer}`,
    `${API}.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
    `$JS.ACK.${stream}.${consumer}.>`,
    // A job that exhausts max_deliver is announced by the server (dead-lettering it).
    `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer}`,
  ];
}

/**
 * Every service creates or updates the shared streams and buckets at start (whichever starts
 * first), so each may create and update them; none may delete them. Consumers are created only by
 * the service that reads them (`ownedConsumers`).
 */
const TOPOLOGY_STREAMS = [
  ...Object.values(Streams),
  `KV_${Buckets.RATE_LIMITS}`,
  `KV_${Buckets.AUTH_FAILURES}`,
  `OBJ_${Buckets.MAIL_SPOOL}`,
];
const common: string[] = [
  `${API}.INFO`,
  // Stream listings (the start-up check that streams have the configured replicas).
  `${API}.STREAM.LIST`,
  `${API}.STREAM.NAMES`,
  ...TOPOLOGY_STREAMS.flatMap((s) => [
    `${API}.STREAM.INFO.${s}`,
    `${API}.STREAM.CREATE.${s}`,
    `${API}.STREAM.UPDATE.${s}`,
  ]),
];
/** Replies to JetStream API calls and requests come back on the connection's inbox. */
const inbox = ['_INBOX.>'];

/** The consumers each service reads, and so creates in `ensureTopology`. */
export function ownedConsumers(identity: InternalIdentity): readonly ConsumerName[] {
  switch (identity) {
    case 'storage':
      return [
        Consumers.STORAGE_DELIVER,
        Consumers.STORAGE_EVENTS,
        Consumers.STORAGE_SPAM_LEARN,
        Consumers.STORAGE_WEBHOOKS,
      ];
    case 'mta-delivery':
      return [Consumers.MTA_DELIVERY];
    case 'operator':
      return Object.values(Consumers);
    case 'smtp-inbound':
    case 'imap':
    case 'admin':
      return [];
  }
}

export function natsPermissions(identity: InternalIdentity): NatsPermissions {
  switch (identity) {
    case 'smtp-inbound':
      // Accepts mail: publishes jobs (bodies too large to inline go to the spool first), trace
      // events, and keeps the shared rate-limit and authentication-failure counters.
      return {
        publish: [
          ...common,
          'mail.inbound.>',
          'mail.outbound.>',
          'mail.events.>',
          ...objectStore(Buckets.MAIL_SPOOL),
          ...kv(Buckets.RATE_LIMITS),
          ...kv(Buckets.AUTH_FAILURES),
          // Publishers route a job to its recipients' partition (ADR 0007).
          ...kv(PartitionBuckets.PARTITIONS),
          // The orphaned-spool sweep keeps objects a dead-lettered inbound job still names.
          `${API}.DIRECT.GET.${Streams.MAIL_DLQ}`,
          'mail.dlq.>',
          ...deadLettering.publish,
        ],
        // Storage's Directory change announcements drop the cached recipient answers.
        subscribe: [...inbox, ...deadLettering.subscribe, Subjects.directoryChanged],
        allowResponses: false,
      };
    case 'storage':
      return {
        publish: [
          ...common,
          ...consumerAccess(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER),
          ...consumerAccess(Streams.MAIL_EVENTS, Consumers.STORAGE_EVENTS),
          ...consumerAccess(Streams.SPAM_LEARN, Consumers.STORAGE_SPAM_LEARN),
          ...consumerAccess(Streams.MAIL_EVENTS, Consumers.STORAGE_WEBHOOKS),
          // Learning requests from COPY/MOVE into and out of Junk (spam-learning/).
          'spam.learn.>',
          // One durable consumer per partition of MAIL_INBOUND (`storage-deliver-p<n>`, ADR 0007):
          // storage reads every consumer of MAIL_INBOUND, and only storage does.
          `${API}.CONSUMER.INFO.${Streams.MAIL_INBOUND}.*`,
          `${API}.CONSUMER.CREATE.${Streams.MAIL_INBOUND}.*`,
          `${API}.CONSUMER.CREATE.${Streams.MAIL_INBOUND}.*.>`,
          `${API}.CONSUMER.DURABLE.CREATE.${Streams.MAIL_INBOUND}.*`,
          `${API}.CONSUMER.MSG.NEXT.${Streams.MAIL_INBOUND}.*`,
          `$JS.ACK.${Streams.MAIL_INBOUND}.>`,
          ...kv(PartitionBuckets.PARTITIONS),
          ...kv(PartitionBuckets.REPLICAS),
          'mail.events.>',
          'mail.dlq.>',
          // Forwarded mail leaves through mta-delivery; over-quota notices go to local senders.
          'mail.outbound.>',
          'mail.inbound.>',
          'mailbox.changed.>',
          Subjects.directoryChanged,
          ...objectStore(Buckets.MAIL_SPOOL),
        ],
        subscribe: [
          ...inbox,
          // Directory changes of the other storage replicas (directory/cache.ts).
          Subjects.directoryChanged,
          `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${Streams.MAIL_INBOUND}.*`,
          `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${Streams.MAIL_EVENTS}.${Consumers.STORAGE_EVENTS}`,
        ],
        allowResponses: false,
      };
    case 'imap':
      return {
        publish: [
          ...common,
          ...kv(Buckets.AUTH_FAILURES),
          ...kv(Buckets.RATE_LIMITS),
          // Routing each user's calls to the storage replica that owns the user (ADR 0007): it
          // reads the ownership map and must never write it (a forged record would move users).
          ...kvReader(PartitionBuckets.PARTITIONS),
          // The IMAP proxy (imap-proxy runs as imap) reads where each replica serves IMAP.
          ...kvReader(PartitionBuckets.REPLICAS),
          // Alerts about the certificate it serves (runtime alert-watch.ts); no other events.
          Subjects.events('alert'),
        ],
        subscribe: [...inbox, 'mailbox.changed.>'],
        allowResponses: false,
      };
    case 'mta-delivery':
      return {
        publish: [
          ...common,
          ...consumerAccess(Streams.MAIL_OUTBOUND, Consumers.MTA_DELIVERY),
          // DSNs and local deliveries go back to storage; events and dead letters as everyone.
          'mail.inbound.>',
          'mail.events.>',
          'mail.dlq.>',
          ...objectStore(Buckets.MAIL_SPOOL),
          ...kv(MtaBuckets.QUEUE),
          ...kv(MtaBuckets.TLS_REPORTS),
          ...kv(MtaBuckets.SPOOL_REFS),
          ...kv(PartitionBuckets.PARTITIONS),
          ...deadLettering.publish,
        ],
        subscribe: [
          ...inbox,
          ...deadLettering.subscribe,
          // Queue operations: only admin may publish these (below), so the caller in a request
          // is the admin service's word, checked by NATS, not anyone's claim.
          `${QueueSubjects.list}`,
          `${QueueSubjects.retry}`,
          `${QueueSubjects.cancel}`,
          `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${Streams.MAIL_OUTBOUND}.${Consumers.MTA_DELIVERY}`,
        ],
        allowResponses: true,
      };
    case 'admin':
      // Queue and dead-letter inspection: stream and consumer info, reading queued jobs,
      // re-driving a dead letter to its original subject and deleting it from MAIL_DLQ.
      return {
        publish: [
          ...common,
          `${QueueSubjects.list}`,
          `${QueueSubjects.retry}`,
          `${QueueSubjects.cancel}`,
          ...Object.values(Streams).flatMap((s) => [
            `${API}.CONSUMER.LIST.${s}`,
            `${API}.CONSUMER.NAMES.${s}`,
            `${API}.STREAM.MSG.GET.${s}`,
            `${API}.DIRECT.GET.${s}`,
            `${API}.DIRECT.GET.${s}.>`,
          ]),
          `${API}.STREAM.MSG.DELETE.${Streams.MAIL_DLQ}`,
          'mail.inbound.>',
          'mail.outbound.>',
          'mail.events.>',
          ...kv(Buckets.AUTH_FAILURES),
          // Team mailboxes' ACLs and Sieve scripts go to the storage replica that owns the user
          // (ADR 0007): it reads the ownership map, as imap does, and never writes it.
          ...kvReader(PartitionBuckets.PARTITIONS),
        ],
        subscribe: [...inbox],
        allowResponses: false,
      };
    case 'operator':
      return { publish: ['>'], subscribe: ['>'], allowResponses: true };
  }
}
