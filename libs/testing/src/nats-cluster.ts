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

  /**
   * Resolves once the JetStream meta group has a leader and the leader sees every other running
   * node as current and online: only then does it place new replicas on them.
   */
  async waitForMetaLeader(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ready = true;
      for (const node of this.nodes) {
        if (!node.process.running) continue;
        try {
          const res = await fetch(`${node.monitorUrl}/jsz`, { signal: AbortSignal.timeout(1_000) });
          const jsz = (await res.json()) as { meta_cluster?: MetaCluster };
          const meta = jsz.meta_cluster;
          if (!meta?.leader) ready = false;
          // The leader places replicas only on peers it sees as current and online; a peer whose
          // server statistics it has not heard yet is refused with "peer offline".
          else if (isLeader(meta) && !allPeersUp(meta, this.running())) ready = false;
        } catch {
          ready = false;
        }
      }
      if (ready) return;
      if (Date.now() > deadline)
        throw new Error(`JetStream cluster had no meta leader seeing all its peers within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private running(): number {
    return this.nodes.filter((n) => n.process.running).length;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

interface MetaCluster {
  leader?: string;
  replicas?: { name: string; current?: boolean; offline?: boolean }[];
}

/** The leader lists every peer but itself; any other node lists the leader among its peers. */
function isLeader(meta: MetaCluster): boolean {
  return !(meta.replicas ?? []).some((p) => p.name === meta.leader);
}

/** Whether the leader sees as many current, online peers as there are other running nodes. */
function allPeersUp(meta: MetaCluster, running: number): boolean {
  const up = (meta.replicas ?? []).filter((p) => p.current === true && p.offline !== true);
  return up.length >= running - 1;
}
