import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { Buckets } from './topology.js';

/** The `mail-spool` object store (DESIGN §2 step 2), created by `ensureTopology`. */
export function openSpool(nc: NatsConnection): Promise<ObjectStore> {
  return new Objm(nc).open(Buckets.MAIL_SPOOL);
}

/** The `rate-limits` KV bucket shared by every smtp-inbound and imap replica. */
export function openRateLimits(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).open(Buckets.RATE_LIMITS);
}

export type { KV, ObjectStore };
