import { freePort } from './process.js';
import type { InternalPki } from './internal-pki.js';
import { NatsServer } from './nats.js';

/**
 * Three nats-servers clustered on loopback with JetStream (DESIGN §8: the distributed deployment,
 * on one machine). Each node fsyncs before acknowledging; streams created with replicas 3 ack
 * after a quorum of two.
 */
export class NatsCluster {
  private constructor(readonly nodes: readonly NatsServer[]) {}

  /** Every client URL, comma-separated, as services take them in NATS_URL. */
  get url(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  /** With `pki`, every node requires TLS and the identities' users, as a single server does. */
  static async start(size = 3, pki?: InternalPki): Promise<NatsCluster> {
    const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const name = `postmesh-test-${clusterPorts[0] ?? 0}`;
    const nodes = await Promise.all(
      clusterPorts.map((port, i) =>
        NatsServer.create({
          serverName: `n${i + 1}-${port}`,
          cluster: { name, port, routes: clusterPorts.filter((p) => p !== port) },
          ...(pki === undefined ? {} : { pki }),
        }),
      ),
    );
    await Promise.all(nodes.map((n) => n.restart()));
    const cluster = new NatsCluster(nodes);
    await cluster.waitForMetaLeader();
    return cluster;
  }

  /** Resolves once the JetStream meta group has a leader and every node sees all peers. */
  async waitForMetaLeader(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ready = true;
      for (const node of this.nodes) {
        if (!node.process.running) continue;
        try {
          const res = await fetch(`${node.monitorUrl}/jsz`, { signal: AbortSignal.timeout(1_000) });
          const jsz = (await res.json()) as { meta_cluster?: { leader?: string; cluster_size?: number } };
          if (!jsz.meta_cluster?.leader) ready = false;
        } catch {
          ready = false;
        }
      }
      if (ready) return;
      if (Date.now() > deadline)
        throw new Error(`JetStream cluster had no meta leader within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
