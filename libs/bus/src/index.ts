export { Bus, checkJetStreamDurability, type BusOptions } from './connection.js';
export { checkStreamReplicas, replicaCount } from './replicas.js';
export { publishDurable, PublishError, type DurablePublishOptions } from './publish.js';
export {
  ConsumerLoop,
  JobOutcomes,
  settleJob,
  type ConsumerLoopOptions,
  type JobOutcome,
  type SettleOptions,
} from './consumer.js';
export { BatchConsumerLoop, type BatchConsumerLoopOptions } from './batch-consumer.js';
export {
  MaxDeliveriesDeadLetter,
  deadLetterMessageId,
  maxDeliveriesSubject,
  parseMaxDeliveriesAdvisory,
  type DeadLetterResult,
  type MaxDeliveriesAdvisory,
  type MaxDeliveriesDeadLetterOptions,
} from './max-deliveries.js';
export {
  Buckets,
  Consumers,
  DLQ_DEFAULTS,
  INLINE_MESSAGE_LIMIT,
  Streams,
  Subjects,
  consumerDefinitions,
  ensureTopology,
  streamConfigs,
  type ConsumerName,
  type DlqLimits,
  type StreamName,
  type TopologyOptions,
} from './topology.js';
export {
  CHANGE_ORIGIN_HEADER,
  LocalMailboxChanges,
  decodeMailboxChange,
  encodeMailboxChange,
  type MailboxChange,
} from './mailbox-changed.js';
export type { JsMsg, PubAck } from '@nats-io/jetstream';
export type { NatsConnection } from '@nats-io/transport-node';
export {
  InboundAuthVerdictSchema,
  InboundBodySchema,
  InboundEnvelopeSchema,
  InboundJobSchema,
  JobFormatError,
  SpoolIdSchema,
  decodeInboundJob,
  encodeInboundJob,
  jobMessageId,
  spoolObjectName,
  type DecodedInboundJob,
  NO_AUTH_VERDICT,
  type InboundAuthVerdict,
  type InboundBody,
  type InboundEnvelope,
  type InboundJob,
} from './jobs.js';
export { openRateLimits, openSpool, type KV, type ObjectStore } from './spool.js';
export {
  OutboundAttemptSchema,
  OutboundBodySchema,
  OutboundEnvelopeSchema,
  OutboundJobFormatError,
  OutboundJobSchema,
  decodeOutboundJob,
  encodeOutboundJob,
  outboundJobMessageId,
  type DecodedOutboundJob,
  type OutboundAttempt,
  type OutboundBody,
  type OutboundEnvelope,
  type OutboundJob,
} from './outbound-job.js';
export {
  QUEUE_CALLER_ROLES,
  QueueCallerSchema,
  QueueCancelRequestSchema,
  QueueEntrySchema,
  QueueListRequestSchema,
  QueueRequestChecks,
  QueueRetryRequestSchema,
  QueueSubjects,
  type QueueCallerRole,
  type QueueCaller,
  type QueueCancelRequest,
  type QueueCancelResponse,
  type QueueEntry,
  type QueueErrorCode,
  type QueueFailure,
  type QueueListRequest,
  type QueueListResponse,
  type QueueRetryRequest,
  type QueueRetryResponse,
} from './queue-operations-contract.js';
export {
  DEFAULT_THROTTLE_POLICY,
  throttlePolicyOf,
  authFailuresCounter,
  KvAuthThrottle,
  PENDING_MAX_MS,
  accountKey,
  delayFor,
  ipKey,
  normaliseLogin,
  type AuthThrottle,
  type AuthThrottleOptions,
  type ThrottlePolicy,
  type ThrottleTicket,
  type ThrottleVerdict,
} from './auth-throttle.js';
export { MtaBuckets, natsPermissions, ownedConsumers, type NatsPermissions } from './permissions.js';
export {
  INBOUND_SPOOL_PREFIX,
  InboundSpoolSweeper,
  sweepInboundSpool,
  type InboundSpoolSweepOptions,
  type SweepReport,
} from './spool-sweep.js';
export * from './partitions/index.js';
export {
  MAIL_EVENT_KINDS,
  MailEventOutbox,
  MailEventSchema,
  encodeMailEvent,
  mailEvent,
  parseMailEvent,
  validateMailEvent,
  publishMailEvent,
  stripAngles,
  type MailEvent,
  type MailEventFields,
  type MailEventKind,
  type MailEventOutboxOptions,
  type ParsedMailEvent,
} from './mail-event.js';
export { jobTraceContext } from './trace-headers.js';
export {
  ALERT_NAMES,
  WindowCounter,
  certificateExpiryAlert,
  consumerLagAlert,
  deadLetterAlert,
  deliveryFailuresAlert,
  queueDepthAlert,
  serviceOf,
  storageWriteErrorsAlert,
  type AlertName,
  type AlertSeverity,
} from './alerts.js';
export { registerJetStreamMetrics, type JetStreamMetricsOptions } from './jetstream-metrics.js';
export {
  WEBHOOK_EVENT_TYPES,
  WEBHOOK_SOURCE_KINDS,
  isWebhookEventType,
  webhookDomainsOf,
  webhookEventTypeOf,
  type WebhookEventType,
} from './webhook-events.js';
