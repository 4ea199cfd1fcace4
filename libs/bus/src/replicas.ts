import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';

/**
 * DESIGN §2: in a cluster every stream, KV bucket and object store keeps `replicas` copies, so an
 * acknowledged message survives the loss of a node. The topology is created with the configured
 * count, but a stream made earlier with fewer (an older release, an operator's `nats stream add`,
 * a bucket created before the value was raised) keeps its own count. This readiness check reads
 * what the servers actually hold for every stream of the account (KV buckets are `KV_<bucket>`,
 * object stores `OBJ_<bucket>`) and answers `true`, or which ones fall short.
 *
 * It counts the peers placed for each stream (leader plus replicas, offline ones included): a NATS
 * node restarting during a rolling upgrade leaves the placement intact and must not take every
 * Postmesh pod out of its Service.
 */
export async function checkStreamReplicas(jsm: JetStreamManager, required: number): Promise<true | string> {
  const short: string[] = [];
  for await (const info of jsm.streams.list()) {
    const actual = replicaCount(info);
    if (actual < required) short.push(`${info.config.name} has ${actual}`);
  }
  if (short.length === 0) return true;
  return (
    `JetStream keeps fewer than ${required} replicas of ${short.join(', ')} ` +
    `(scale them with \`nats stream edit <name> --replicas ${required}\`, or lower POSTMESH_STREAM_REPLICAS)`
  );
}

/** Copies the servers keep: the configured count, bounded by the peers actually placed. */
export function replicaCount(info: Pick<StreamInfo, 'config' | 'cluster'>): number {
  const configured = info.config.num_replicas;
  const cluster = info.cluster;
  // A single server without clustering reports no placement: it keeps exactly one copy.
  if (cluster === undefined || (cluster.leader === undefined && cluster.replicas === undefined)) {
    return Math.min(configured, 1);
  }
  const placed = (cluster.leader === undefined ? 0 : 1) + (cluster.replicas?.length ?? 0);
  return Math.min(configured, placed);
}
