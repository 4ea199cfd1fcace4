// Readiness verifies the replica count the JetStream servers actually keep for every stream, KV
// bucket and object store (DESIGN §2), on a real three-node cluster and on a single node.
import type { StreamConfig } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { createLogger } from '@postmesh/telemetry';
import { NatsCluster, NatsServer } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Buckets, Bus, Streams, checkStreamReplicas, replicaCount } from '../src/index.js';

const logger = createLogger('replicas-test', 'silent');

describe('stream replicas on a three-node cluster', () => {
  let cluster: NatsCluster;
  let bus: Bus;

  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
    // A bucket an older release created with one replica, before the chart set three.
    const early = await Bus.connect({
      url: cluster.url,
      name: 'early',
      logger,
      replicas: 1,
      ensureTopology: false,
    });
    await new Kvm(early.nc).create(Buckets.RATE_LIMITS, { history: 1, replicas: 1 });
    await early.drain();
    bus = await Bus.connect({ url: cluster.url, name: 'replicas-test', logger, replicas: 3 });
  });
  afterAll(async () => {
    await bus?.drain();
    await cluster?.stop();
  });

  it('reports every stream or bucket kept with fewer copies than required, by name', async () => {
    const inbound = await bus.jsm.streams.info(Streams.MAIL_INBOUND);
    expect(replicaCount(inbound)).toBe(3);
    const result = await checkStreamReplicas(bus.jsm, 3);
    expect(result).toBe(
      'JetStream keeps fewer than 3 replicas of KV_rate-limits has 1 ' +
        '(scale them with `nats stream edit <name> --replicas 3`, or lower POSTMESH_STREAM_REPLICAS)',
    );
  });

  it('is ready once the operator scales the short bucket up', async () => {
    const info = await bus.jsm.streams.info(`KV_${Buckets.RATE_LIMITS}`);
    await scaleUp(cluster, bus, info.config.name, { ...info.config, num_replicas: 3 });
    expect(await checkStreamReplicas(bus.jsm, 3)).toBe(true);
    const names: string[] = [];
    for await (const s of bus.jsm.streams.list()) names.push(s.config.name);
    // The check covered the streams, the KV buckets and the object store.
    expect(names).toEqual(
      expect.arrayContaining([
        Streams.MAIL_INBOUND,
        `KV_${Buckets.AUTH_FAILURES}`,
        `KV_${Buckets.RATE_LIMITS}`,
        `OBJ_${Buckets.MAIL_SPOOL}`,
      ]),
    );
  });
});

describe('stream replicas on a single node', () => {
  let server: NatsServer;
  let bus: Bus;

  beforeAll(async () => {
    server = await NatsServer.start();
    bus = await Bus.connect({ url: server.url, name: 'single', logger, replicas: 1 });
  });
  afterAll(async () => {
    await bus?.drain();
    await server?.stop();
  });

  it('accepts one copy when one is configured and names every stream when three are', async () => {
    expect(await checkStreamReplicas(bus.jsm, 1)).toBe(true);
    const result = await checkStreamReplicas(bus.jsm, 3);
    expect(result).toContain('MAIL_INBOUND has 1');
    expect(result).toContain(`OBJ_${Buckets.MAIL_SPOOL} has 1`);
    expect(result).toContain(`KV_${Buckets.AUTH_FAILURES} has 1`);
  });
});

/**
 * As an operator would: on a loaded machine the meta leader can briefly miss a node's statistics
 * and refuse placement with "peer offline"; wait until it sees every peer again and retry, a
 * bounded number of times.
 */
async function scaleUp(cluster: NatsCluster, bus: Bus, name: string, config: StreamConfig): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await bus.jsm.streams.update(name, config);
      return;
    } catch (err) {
      if (attempt >= 5 || !String(err).includes('peer offline')) throw err;
      await cluster.waitForMetaLeader();
    }
  }
}
