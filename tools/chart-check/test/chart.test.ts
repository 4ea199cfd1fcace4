// The Helm chart charts/postmesh: lints strictly, renders with the default, HA and EKS
// values, every object passes the Kubernetes API schemas, and the deployment policy holds. The
// negative cases prove the gates can fail: the values schema refuses bad values, and the policy
// checker catches a broken object.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pythonTool } from '@postmesh/testing';
import { beforeAll, describe, expect, it } from 'vitest';

import type { K8sObject, PolicyViolation } from '../src/index.js';
import {
  DEFAULT_KUBE_VERSION,
  HelmNotFoundError,
  PolicyRule,
  checkPolicy,
  lintChart,
  parseManifests,
  renderChart,
  requireHelm,
  validateObject,
  validateObjects,
  validateStrict,
} from '../src/index.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const chartDir = join(repoRoot, 'charts', 'postmesh');
const ha = join(chartDir, 'values-ha.yaml');
const eks = join(chartDir, 'values-eks.yaml');

let helm = '';
beforeAll(() => {
  // Fails the suite with "helm not found at …/.bin/helm. Install … with `npm run deps`" if missing.
  helm = requireHelm(repoRoot);
});

/**
 * The default values name no KEK Secret: tests of the defaults let the chart generate one (what
 * `helm install --set keyEncryption.generate=true` does); HA and EKS bring their own key.
 */
const GENERATE_KEK = { 'keyEncryption.generate': 'true' } as const;

/**
 * The tests below describe the standalone imap shape (imap.mode "standalone", today's Deployment
 * per service) unless they set imap.mode; the default shape, IMAP at the owner behind imap-proxy
 * (ADR 0010), has its own describe, and both run through lint, the API schemas and the policy.
 */
const STANDALONE = { 'imap.mode': 'standalone' } as const;

function render(valuesFiles: string[] = [], set: Record<string, string> = {}): K8sObject[] {
  const rendered = renderChart(helm, {
    chartDir,
    valuesFiles,
    set: { ...GENERATE_KEK, ...STANDALONE, ...set },
    releaseName: 'pm',
    namespace: 'mail',
  });
  if (!rendered.ok) throw new Error(rendered.error);
  return parseManifests(rendered.manifests).map((r) => r.object);
}

function renderError(set: Record<string, string>, valuesFiles: string[] = []): string {
  const rendered = renderChart(helm, {
    chartDir,
    valuesFiles,
    set: { ...GENERATE_KEK, ...STANDALONE, ...set },
  });
  expect(rendered.ok).toBe(false);
  return rendered.ok ? '' : rendered.error;
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (found === undefined) throw new Error(`${kind}/${name} not rendered`);
  return found;
}

function count(objects: K8sObject[], kind: string): number {
  return objects.filter((o) => o.kind === kind).length;
}

/** A deep copy that tests may mutate freely. */
function clone<T>(value: T): T {
  return structuredClone(value);
}

// Typed access into a cloned object for the negative tests.
type Json = Record<string, unknown>;
function at(value: unknown, ...keys: (string | number)[]): Json {
  let current: unknown = value;
  for (const key of keys) current = (current as Record<string | number, unknown>)[key];
  return current as Json;
}

function rules(violations: PolicyViolation[]): string[] {
  return violations.map((v) => `${v.rule} ${v.object}`);
}

const SERVICES = ['smtp-inbound', 'storage', 'imap', 'mta-delivery', 'admin'] as const;

const valueSets: [string, string[]][] = [
  ['default values', []],
  ['values-ha.yaml', [ha]],
  ['values-eks.yaml', [eks]],
  ['values-ha.yaml + values-eks.yaml', [ha, eks]],
];
const modes = ['owner', 'standalone'] as const;
const modeSets = modes.flatMap((mode) =>
  valueSets.map(([label, files]) => [label, mode, files] as [string, (typeof modes)[number], string[]]),
);

describe.each(modeSets)('chart with %s, imap.mode %s', (_label, mode, valuesFiles) => {
  const set = { 'imap.mode': mode };
  it('passes helm lint --strict', () => {
    const run = lintChart(helm, { chartDir, valuesFiles, set: { ...GENERATE_KEK, ...set } });
    expect(run.stderr + run.stdout).toContain('0 chart(s) failed');
    expect(run.exitCode).toBe(0);
  });

  it('renders objects that all validate against the Kubernetes API schemas', () => {
    const objects = render(valuesFiles, set);
    expect(count(objects, 'Deployment')).toBe(5);
    expect(validateObjects(objects)).toEqual([]);
  });

  it('meets the deployment policy', () => {
    expect(checkPolicy(render(valuesFiles, set))).toEqual([]);
  });

  it(
    'validates against the strict Kubernetes schemas, where unknown fields fail',
    { timeout: 60_000 },
    async () => {
      expect(
        await validateStrict(
          pythonTool('kubernetes-validate'),
          render(valuesFiles, set),
          DEFAULT_KUBE_VERSION,
        ),
      ).toEqual([]);
    },
  );
});

describe('rendered defaults', () => {
  let objects: K8sObject[] = [];
  beforeAll(() => {
    objects = render();
  });

  it('runs each service from the one image, chosen by argument, with a pinned tag', () => {
    for (const service of SERVICES) {
      const container = at(
        find(objects, 'Deployment', `pm-postmesh-${service}`),
        'spec',
        'template',
        'spec',
        'containers',
        0,
      );
      expect(container.args).toEqual([service]);
      expect(container.image).toBe('ghcr.io/postmesh/postmesh:0.1.0');
    }
  });

  it('publishes only mail ports on the load balancers, mapped onto unprivileged container ports', () => {
    const smtp = at(find(objects, 'Service', 'pm-postmesh-smtp-public'), 'spec');
    expect(smtp.type).toBe('LoadBalancer');
    expect(smtp.externalTrafficPolicy).toBe('Local');
    expect((smtp.ports as Json[]).map((p) => [p.port, p.targetPort])).toEqual([
      [25, 'smtp'],
      [587, 'submission'],
      [465, 'submissions'],
    ]);
    const imap = at(find(objects, 'Service', 'pm-postmesh-imap-public'), 'spec');
    // IMAP, IMAPS and ManageSieve (RFC 5804), the ports mail clients connect to.
    expect((imap.ports as Json[]).map((p) => p.port)).toEqual([143, 993, 4190]);
    const storage = at(find(objects, 'Service', 'pm-postmesh-storage'), 'spec');
    expect(storage.type).toBe('ClusterIP');
    expect((storage.ports as Json[]).map((p) => p.port)).toEqual([9100, 7001]);
  });

  it('wires the service contract: NATS, ops port, storage gRPC, KEK file, owner secret', () => {
    const storageConfig = at(find(objects, 'ConfigMap', 'pm-postmesh-storage'), 'data');
    expect(storageConfig).toMatchObject({
      NATS_URL: 'nats://nats.nats.svc.cluster.local:4222',
      NATS_MONITOR_URL: 'http://nats.nats.svc.cluster.local:8222',
      POSTMESH_OPS_HOST: '0.0.0.0',
      POSTMESH_OPS_PORT: '9100',
      POSTMESH_GRPC_PORT: '7001',
      POSTMESH_KEK_FILE: '/etc/postmesh/kek/kek',
      POSTMESH_ALLOW_WEAK_DURABILITY: 'false',
    });
    // DESIGN §2: every service creates (and its readiness verifies) three copies of each stream.
    for (const service of SERVICES) {
      expect(at(find(objects, 'ConfigMap', `pm-postmesh-${service}`), 'data').POSTMESH_STREAM_REPLICAS).toBe(
        '3',
      );
    }
    for (const service of ['smtp-inbound', 'imap', 'mta-delivery', 'admin']) {
      expect(at(find(objects, 'ConfigMap', `pm-postmesh-${service}`), 'data').POSTMESH_STORAGE_GRPC).toBe(
        'pm-postmesh-storage:7001',
      );
    }
    const kek = find(objects, 'Secret', 'pm-postmesh-kek');
    expect(at(kek, 'metadata', 'annotations')['helm.sh/resource-policy']).toBe('keep');
    // A 32-byte key, base64, as the key file's content.
    const keyFile = Buffer.from(String(at(kek, 'data').kek), 'base64').toString('utf8');
    expect(Buffer.from(keyFile, 'base64')).toHaveLength(32);
    const adminEnv = at(
      find(objects, 'Deployment', 'pm-postmesh-admin'),
      'spec',
      'template',
      'spec',
      'containers',
      0,
    ).env as Json[];
    expect(adminEnv.map((e) => e.name)).toEqual(
      expect.arrayContaining(['POSTMESH_OWNER_EMAIL', 'POSTMESH_OWNER_PASSWORD']),
    );
  });

  it('runs one owner per mailbox: ownership and the mailbox index on, one partition count, storage reachable at its pod IP', () => {
    const config = (service: string): Json =>
      at(find(objects, 'ConfigMap', `pm-postmesh-${service}`), 'data');
    // ADR 0007: storage takes the leases, smtp-inbound queues by partition, imap and admin call
    // the owner; all of them must hash users into the same partitions.
    for (const service of ['storage', 'smtp-inbound', 'imap', 'admin']) {
      expect(config(service), service).toMatchObject({
        POSTMESH_STORAGE_OWNERSHIP: 'true',
        POSTMESH_STORAGE_PARTITIONS: '64',
      });
    }
    expect(config('mta-delivery').POSTMESH_STORAGE_OWNERSHIP).toBeUndefined();
    // ADR 0006: the index is always on, since each mailbox has one owner at a time.
    expect(Number(config('storage').POSTMESH_MAILBOX_INDEX_MESSAGES)).toBeGreaterThan(0);
    const storageEnv = at(
      find(objects, 'Deployment', 'pm-postmesh-storage'),
      'spec',
      'template',
      'spec',
      'containers',
      0,
    ).env as Json[];
    expect(storageEnv.find((e) => e.name === 'POSTMESH_STORAGE_ADVERTISED_GRPC')).toEqual({
      name: 'POSTMESH_STORAGE_ADVERTISED_GRPC',
      valueFrom: { fieldRef: { fieldPath: 'status.podIP' } },
    });
  });

  it('gives every service a grace period longer than its preStop sleep plus drain budget', () => {
    const smtp = at(find(objects, 'Deployment', 'pm-postmesh-smtp-inbound'), 'spec', 'template', 'spec');
    // 10 s preStop + 60 s drain + 10 s margin
    expect(smtp.terminationGracePeriodSeconds).toBe(80);
  });

  it('lets only the DESIGN §1 flows through the NetworkPolicies', () => {
    const storage = at(find(objects, 'NetworkPolicy', 'pm-postmesh-storage'), 'spec');
    const grpcFrom = (storage.ingress as Json[]).find((r) =>
      (r.ports as Json[]).some((p) => p.port === 'grpc'),
    );
    expect(at(grpcFrom, 'from', 0, 'podSelector', 'matchExpressions', 0).values).toEqual([
      'smtp-inbound',
      'imap',
      'mta-delivery',
      'admin',
    ]);
    // Only storage reaches MongoDB; only mta-delivery reaches remote MTAs and MTA-STS hosts.
    const egressPorts = (name: string): unknown[] =>
      (at(find(objects, 'NetworkPolicy', `pm-postmesh-${name}`), 'spec').egress as Json[]).flatMap((r) =>
        (r.ports as Json[]).map((p) => p.port),
      );
    expect(egressPorts('storage')).toContain(27017);
    expect(egressPorts('mta-delivery')).toEqual(expect.arrayContaining([25, 465, 587, 443]));
    for (const name of ['smtp-inbound', 'imap', 'admin']) {
      expect(egressPorts(name)).not.toContain(27017);
      expect(egressPorts(name)).not.toContain(25);
    }
    expect(egressPorts('mta-delivery')).not.toContain(27017);
  });

  it('keeps autoscaled Deployments free of a fixed replica count', () => {
    expect(at(find(objects, 'Deployment', 'pm-postmesh-storage'), 'spec').replicas).toBeUndefined();
    expect(at(find(objects, 'Deployment', 'pm-postmesh-admin'), 'spec').replicas).toBe(2);
    expect(count(objects, 'HorizontalPodAutoscaler')).toBe(4);
    expect(count(objects, 'NetworkPolicy')).toBe(5);
    expect(count(objects, 'ScaledObject')).toBe(0);
  });
});

describe('imap.mode owner, the default: IMAP at the owner behind imap-proxy (ADR 0010)', () => {
  let objects: K8sObject[] = [];
  beforeAll(() => {
    objects = render([], { 'imap.mode': 'owner' });
  });
  const pod = (name: string): Json =>
    at(find(objects, 'Deployment', `pm-postmesh-${name}`), 'spec', 'template', 'spec');
  const container = (name: string): Json => at(pod(name), 'containers', 0);

  it('is the default and renders storage-imap and imap-proxy in place of storage and imap', () => {
    const defaults = parseManifests(
      (() => {
        const r = renderChart(helm, { chartDir, set: GENERATE_KEK, releaseName: 'pm', namespace: 'mail' });
        if (!r.ok) throw new Error(r.error);
        return r.manifests;
      })(),
    ).map((r) => r.object);
    const deployments = (list: K8sObject[]): unknown[] =>
      list.filter((o) => o.kind === 'Deployment').map((o) => o.metadata?.name);
    expect(deployments(defaults)).toEqual(deployments(objects));
    expect(objects.some((o) => o.kind === 'Deployment' && o.metadata?.name === 'pm-postmesh-imap')).toBe(
      false,
    );
    expect(container('storage').args).toEqual(['storage-imap']);
    expect(container('imap-proxy').args).toEqual(['imap-proxy']);
  });

  it('gives storage-imap both identities, the backend port and its pod IP to publish', () => {
    const mounts = (container('storage').volumeMounts as Json[]).map((m) => m.mountPath);
    expect(mounts).toEqual(
      expect.arrayContaining([
        '/etc/postmesh/identity/storage',
        '/etc/postmesh/identity/imap',
        '/etc/postmesh/tls',
      ]),
    );
    const secrets = (pod('storage').volumes as Json[]).map((v) => (v.secret as Json | undefined)?.secretName);
    expect(secrets).toEqual(
      expect.arrayContaining(['pm-postmesh-identity-storage', 'pm-postmesh-identity-imap']),
    );
    const env = container('storage').env as Json[];
    expect(env.find((e) => e.name === 'POSTMESH_STORAGE_ADVERTISED_IMAP')?.valueFrom).toEqual({
      fieldRef: { fieldPath: 'status.podIP' },
    });
    expect(container('storage').ports).toContainEqual({
      name: 'imap-backend',
      containerPort: 10993,
      protocol: 'TCP',
    });
    const data = at(find(objects, 'ConfigMap', 'pm-postmesh-storage'), 'data');
    expect(data.POSTMESH_IMAP_BACKEND_PORT).toBe('10993');
    expect(data.POSTMESH_MANAGESIEVE_ENABLED).toBe('false');
    // The proxy runs as imap: that identity only.
    expect((container('imap-proxy').volumeMounts as Json[]).map((m) => m.mountPath)).toContain(
      '/etc/postmesh/identity/imap',
    );
    expect((container('imap-proxy').volumeMounts as Json[]).map((m) => m.mountPath)).not.toContain(
      '/etc/postmesh/identity/storage',
    );
  });

  it('verifies the backends by a name the generated storage certificate carries (not their pod IPs)', () => {
    const name = at(find(objects, 'ConfigMap', 'pm-postmesh-imap-proxy'), 'data')
      .POSTMESH_IMAP_PROXY_BACKEND_SERVERNAME as string;
    const secret = at(find(objects, 'Secret', 'pm-postmesh-identity-storage'), 'data');
    const cert = new X509Certificate(Buffer.from(secret['tls.crt'] as string, 'base64'));
    expect(cert.subjectAltName?.split(', ')).toContain(`DNS:${name}`);
    expect(cert.subjectAltName).not.toMatch(/IP Address/);
  });

  it('makes imap-proxy the IMAP Service, with its name and the IMAP ports', () => {
    const svc = at(find(objects, 'Service', 'pm-postmesh-imap-public'), 'spec');
    expect(svc.type).toBe('LoadBalancer');
    expect(at(svc, 'selector')['app.kubernetes.io/component']).toBe('imap-proxy');
    expect((svc.ports as Json[]).map((p) => [p.port, p.targetPort])).toEqual([
      [143, 'imap'],
      [993, 'imaps'],
    ]);
  });

  it('lets only imap-proxy reach the backend port; the proxy reaches storage as imap did', () => {
    const storage = at(find(objects, 'NetworkPolicy', 'pm-postmesh-storage'), 'spec');
    const backendRules = (storage.ingress as Json[]).filter((r) =>
      (r.ports as Json[]).some((p) => p.port === 'imap-backend'),
    );
    expect(backendRules).toHaveLength(1);
    expect(at(backendRules[0], 'from')).toEqual([
      {
        podSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'postmesh',
            'app.kubernetes.io/instance': 'pm',
            'app.kubernetes.io/component': 'imap-proxy',
          },
        },
      },
    ]);
    const grpcFrom = (storage.ingress as Json[]).find((r) =>
      (r.ports as Json[]).some((p) => p.port === 'grpc'),
    );
    expect(at(grpcFrom, 'from', 0, 'podSelector', 'matchExpressions', 0).values).toEqual([
      'smtp-inbound',
      'storage',
      'imap-proxy',
      'mta-delivery',
      'admin',
    ]);
    const proxy = at(find(objects, 'NetworkPolicy', 'pm-postmesh-imap-proxy'), 'spec');
    const egress = (proxy.egress as Json[]).flatMap((r) => (r.ports as Json[]).map((p) => p.port));
    expect(egress).toEqual(expect.arrayContaining([4222, 7001, 10993]));
    expect(egress).not.toContain(27017);
    const ingress = (proxy.ingress as Json[]).flatMap((r) => (r.ports as Json[]).map((p) => p.port));
    expect(ingress).toEqual(expect.arrayContaining(['imap', 'imaps']));
    expect(objects.some((o) => o.kind === 'NetworkPolicy' && o.metadata?.name === 'pm-postmesh-imap')).toBe(
      false,
    );
  });

  it('gives the proxy a PodDisruptionBudget, an autoscaler and the hardened securityContext', () => {
    expect(find(objects, 'PodDisruptionBudget', 'pm-postmesh-imap-proxy')).toBeDefined();
    expect(find(objects, 'HorizontalPodAutoscaler', 'pm-postmesh-imap-proxy')).toBeDefined();
    expect(at(container('imap-proxy'), 'securityContext').readOnlyRootFilesystem).toBe(true);
    expect(at(container('imap-proxy'), 'readinessProbe', 'httpGet').port).toBe('ops');
  });
});

describe('optional integrations', () => {
  it('HA: KEDA scales storage and mta-delivery on consumer lag instead of CPU HPAs; cert-manager, ServiceMonitor', () => {
    const objects = render([ha]);
    const storage = find(objects, 'ScaledObject', 'pm-postmesh-storage');
    expect(at(storage, 'spec', 'triggers', 0)).toMatchObject({
      type: 'nats-jetstream',
      metadata: { stream: 'MAIL_INBOUND', consumer: 'storage-deliver' },
    });
    expect(
      at(find(objects, 'ScaledObject', 'pm-postmesh-mta-delivery'), 'spec', 'triggers', 0).metadata,
    ).toMatchObject({
      stream: 'MAIL_OUTBOUND',
      consumer: 'mta-delivery',
    });
    expect(
      objects.some((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata?.name === 'pm-postmesh-storage'),
    ).toBe(false);
    expect(at(find(objects, 'Certificate', 'pm-postmesh-mail'), 'spec').dnsNames).toEqual([
      'mail.example.com',
      'imap.example.com',
    ]);
    expect(count(objects, 'ServiceMonitor')).toBe(1);
    expect(count(objects, 'Secret')).toBe(0);
  });

  it('EKS: NLB with PROXY protocol on both mail services, KMS via IRSA instead of a KEK Secret', () => {
    const objects = render([eks]);
    for (const name of ['smtp', 'imap']) {
      const service = find(objects, 'Service', `pm-postmesh-${name}-public`);
      expect(at(service, 'spec').loadBalancerClass).toBe('service.k8s.aws/nlb');
      expect(
        at(service, 'metadata', 'annotations')['service.beta.kubernetes.io/aws-load-balancer-proxy-protocol'],
      ).toBe('*');
    }
    expect(at(find(objects, 'ConfigMap', 'pm-postmesh-smtp-inbound'), 'data').POSTMESH_PROXY_PROTOCOL).toBe(
      'true',
    );
    expect(at(find(objects, 'ConfigMap', 'pm-postmesh-imap'), 'data').POSTMESH_PROXY_PROTOCOL).toBe('true');
    const storageConfig = at(find(objects, 'ConfigMap', 'pm-postmesh-storage'), 'data');
    expect(storageConfig.POSTMESH_KMS_KEY_ID).toMatch(/^arn:aws:kms:/);
    expect(storageConfig.POSTMESH_KEK_FILE).toBeUndefined();
    expect(objects.some((o) => o.kind === 'Secret' && o.metadata?.name === 'pm-postmesh-kek')).toBe(false);
    expect(
      at(find(objects, 'ServiceAccount', 'pm-postmesh-storage'), 'metadata', 'annotations'),
    ).toHaveProperty('eks.amazonaws.com/role-arn');
  });

  it('EKS: load balancer health checks ask readiness on the ops port, and the NetworkPolicies admit them', () => {
    const objects = render([ha, eks]);
    // The NLB health check is the pods' own readiness probe, so a readiness gate follows readiness.
    for (const [service, deployment] of [
      ['smtp', 'smtp-inbound'],
      ['imap', 'imap'],
    ] as const) {
      const annotations = at(
        find(objects, 'Service', `pm-postmesh-${service}-public`),
        'metadata',
        'annotations',
      );
      const probe = at(
        find(objects, 'Deployment', `pm-postmesh-${deployment}`),
        'spec',
        'template',
        'spec',
        'containers',
        0,
        'readinessProbe',
        'httpGet',
      );
      expect(annotations['service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol']).toBe('HTTP');
      expect(annotations['service.beta.kubernetes.io/aws-load-balancer-healthcheck-path']).toBe(probe.path);
      expect(annotations['service.beta.kubernetes.io/aws-load-balancer-healthcheck-port']).toBe('9100');
    }
    const ingress = at(find(objects, 'Ingress', 'pm-postmesh-admin'), 'metadata', 'annotations');
    expect(ingress['alb.ingress.kubernetes.io/healthcheck-port']).toBe('9100');
    // ...and the policy rule that checks it finds nothing to object to.
    expect(checkPolicy(objects).filter((v) => v.rule === PolicyRule.LoadBalancerHealthCheckAllowed)).toEqual(
      [],
    );
    // The VPC may reach the ops port of exactly the services behind a load balancer.
    const fromVpc = (component: string): boolean =>
      (at(find(objects, 'NetworkPolicy', `pm-postmesh-${component}`), 'spec').ingress as Json[]).some(
        (rule) =>
          JSON.stringify(rule).includes('"cidr":"10.0.0.0/16"') &&
          JSON.stringify(rule.ports).includes('"ops"'),
      );
    expect(SERVICES.filter(fromVpc)).toEqual(['smtp-inbound', 'imap', 'admin']);
  });

  it('EKS: storage reaches the Pod Identity agent, and only storage; the mail certificate comes by DNS-01', () => {
    const objects = render([ha, eks]);
    const agentEgress = (component: string): boolean =>
      (at(find(objects, 'NetworkPolicy', `pm-postmesh-${component}`), 'spec').egress as Json[]).some(
        (rule) =>
          JSON.stringify(rule.to).includes('169.254.170.23/32') &&
          JSON.stringify(rule.to).includes('fd00:ec2::23/128') &&
          JSON.stringify(rule.ports) === JSON.stringify([{ port: 80, protocol: 'TCP' }]),
      );
    expect(SERVICES.filter(agentEgress)).toEqual(['storage']);
    // Off by default: the link-local agent is otherwise unreachable (the internet peers exclude it).
    const defaults = render();
    expect(
      SERVICES.filter((c) =>
        JSON.stringify(find(defaults, 'NetworkPolicy', `pm-postmesh-${c}`)).includes('169.254.170.23'),
      ),
    ).toEqual([]);
    expect(at(find(objects, 'Certificate', 'pm-postmesh-mail'), 'spec', 'issuerRef')).toEqual({
      name: 'letsencrypt-route53',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
  });
});

describe('extension points', () => {
  const hardened = {
    runAsNonRoot: true,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  const resources = { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '50m', memory: '32Mi' } };
  let objects: K8sObject[] = [];
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'postmesh-values-'));
    const file = join(dir, 'extensions.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        global: { imageRegistry: 'mirror.example.com:5000/hub' },
        caBundle: { configMap: 'corp-ca', key: 'bundle.pem' },
        storage: {
          extraEnvFrom: [{ secretRef: { name: 'storage-extra' } }],
          extraVolumes: [{ name: 'scratch', emptyDir: { sizeLimit: '64Mi' } }],
          extraVolumeMounts: [{ name: 'scratch', mountPath: '/var/scratch' }],
          initContainers: [
            {
              name: 'wait-db',
              image: 'busybox:1.37',
              command: ['true'],
              securityContext: hardened,
              resources,
            },
          ],
          sidecars: [
            {
              name: 'log-shipper',
              image: 'fluent-bit:3.2',
              securityContext: hardened,
              resources,
              livenessProbe: { exec: { command: ['true'] } },
              readinessProbe: { exec: { command: ['true'] } },
            },
          ],
          probes: { readiness: { periodSeconds: 15, timeoutSeconds: 4 }, liveness: { failureThreshold: 6 } },
        },
      }),
    );
    objects = render([file]);
  });
  const pod = (name: string): Json =>
    at(find(objects, 'Deployment', `pm-postmesh-${name}`), 'spec', 'template', 'spec');

  it('prefixes every image with the global registry in place of the repository host', () => {
    for (const service of SERVICES) {
      expect(at(pod(service), 'containers', 0).image).toBe(
        'mirror.example.com:5000/hub/postmesh/postmesh:0.1.0',
      );
    }
  });

  it('mounts the CA bundle into every service and hands it to Node for MongoDB and NATS TLS', () => {
    for (const service of SERVICES) {
      expect(at(find(objects, 'ConfigMap', `pm-postmesh-${service}`), 'data').NODE_EXTRA_CA_CERTS).toBe(
        '/etc/postmesh/ca/bundle.pem',
      );
      expect(pod(service).volumes).toContainEqual({ name: 'ca-bundle', configMap: { name: 'corp-ca' } });
      expect(at(pod(service), 'containers', 0).volumeMounts).toContainEqual({
        name: 'ca-bundle',
        mountPath: '/etc/postmesh/ca',
        readOnly: true,
      });
    }
  });

  it('adds init containers, sidecars, envFrom, volumes and probe overrides to the chosen service only', () => {
    const storage = pod('storage');
    expect((storage.initContainers as Json[]).map((c) => c.name)).toEqual(['wait-db']);
    expect((storage.containers as Json[]).map((c) => c.name)).toEqual(['storage', 'log-shipper']);
    const main = at(storage, 'containers', 0);
    expect(main.envFrom).toEqual([
      { configMapRef: { name: 'pm-postmesh-storage' } },
      { secretRef: { name: 'storage-extra' } },
    ]);
    expect(main.volumeMounts).toContainEqual({ name: 'scratch', mountPath: '/var/scratch' });
    expect(storage.volumes).toContainEqual({ name: 'scratch', emptyDir: { sizeLimit: '64Mi' } });
    expect(main.readinessProbe).toEqual({
      httpGet: { path: '/healthz/ready', port: 'ops' },
      periodSeconds: 15,
      failureThreshold: 2,
      timeoutSeconds: 4,
    });
    expect(at(main, 'livenessProbe').failureThreshold).toBe(6);
    expect(pod('imap').initContainers).toBeUndefined();
    expect((pod('imap').containers as Json[]).map((c) => c.name)).toEqual(['imap']);
  });

  it('still validates and meets the policy with the extensions', async () => {
    expect(validateObjects(objects)).toEqual([]);
    expect(checkPolicy(objects)).toEqual([]);
    expect(await validateStrict(pythonTool('kubernetes-validate'), objects, DEFAULT_KUBE_VERSION)).toEqual(
      [],
    );
  });
});

describe('values.schema.json refuses bad values', () => {
  it.each([
    [{ 'storage.replicas': 'three' }, '/storage/replicas'],
    [{ 'image.tag': 'latest' }, '/image/tag'],
    [{ 'securityContext.runAsUser': '0' }, '/securityContext/runAsUser'],
    [{ 'smtpInbound.service.type': 'ExternalName' }, '/smtpInbound/service/type'],
    [{ 'smtpInbound.containerPorts.smtp': '25' }, '/smtpInbound/containerPorts/smtp'],
    [{ 'tls.mode': 'none' }, '/tls/mode'],
    [{ 'storage.resources.limits': 'null' }, '/storage/resources'],
    [{ 'admin.replicaz': '2' }, '/admin'],
    [{ 'nats.url': 'http://nats:4222' }, '/nats/url'],
  ])('%o', (set, where) => {
    const error = renderError(set);
    expect(error).toContain("values don't meet the specifications of the schema");
    expect(error).toContain(where);
  });

  it('refuses a grace period shorter than preStop sleep plus drain budget', () => {
    expect(renderError({ 'imap.terminationGracePeriodSeconds': '20' })).toContain(
      'imap.terminationGracePeriodSeconds (20) must exceed',
    );
  });

  it('refuses to turn the mailbox index off (ownership keeps it coherent on every replica count)', () => {
    expect(renderError({ 'storage.mailboxIndexMessages': '0' })).toMatch(/mailboxIndexMessages/);
  });

  it('refuses fewer than three stream replicas unless weak durability is accepted', () => {
    expect(renderError({ 'nats.streamReplicas': '1' })).toContain(
      'nats.streamReplicas is 1: fewer than 3 copies lose acknowledged mail',
    );
    const single = render([], { 'nats.streamReplicas': '1', allowWeakDurability: 'true' });
    expect(at(find(single, 'ConfigMap', 'pm-postmesh-imap'), 'data').POSTMESH_STREAM_REPLICAS).toBe('1');
  });

  it('refuses to generate a KEK unless asked: under helm template or GitOps it would change on every render', () => {
    const error = renderError({ 'keyEncryption.generate': 'false' });
    expect(error).toContain('keyEncryption.existingSecret is required');
    expect(error).toContain('under helm template, Argo CD or Flux every render would write a new key');
    // An existing Secret or KMS needs no generation, and no Secret is rendered for the KEK.
    const withKey: Record<string, string>[] = [
      { 'keyEncryption.generate': 'false', 'keyEncryption.existingSecret': 'postmesh-kek' },
      {
        'keyEncryption.generate': 'false',
        'keyEncryption.provider': 'kms',
        'keyEncryption.kms.keyId': 'alias/pm',
      },
    ];
    for (const set of withKey) {
      const objects = render([], set);
      expect(objects.some((o) => o.kind === 'Secret' && o.metadata?.name === 'pm-postmesh-kek')).toBe(false);
    }
  });

  it('asks for the KMS key id when the KMS provider is chosen', () => {
    expect(renderError({ 'keyEncryption.provider': 'kms' })).toContain('keyEncryption.kms.keyId is required');
  });
});

describe('the checks can fail', () => {
  let objects: K8sObject[] = [];
  beforeAll(() => {
    objects = render();
  });

  function mutate(kind: string, name: string, change: (object: Json) => void): K8sObject[] {
    const copy = clone(objects);
    change(find(copy, kind, name));
    return copy;
  }
  const storageContainer = (o: Json): Json => at(o, 'spec', 'template', 'spec', 'containers', 0);

  it('catches a container without resources', () => {
    const broken = mutate('Deployment', 'pm-postmesh-storage', (o) => {
      delete storageContainer(o).resources;
    });
    expect(rules(checkPolicy(broken))).toEqual([
      'resources Deployment/pm-postmesh-storage/storage',
      'resources Deployment/pm-postmesh-storage/storage',
      'resources Deployment/pm-postmesh-storage/storage',
      'resources Deployment/pm-postmesh-storage/storage',
    ]);
  });

  it('catches a weakened securityContext and a missing probe', () => {
    const broken = mutate('Deployment', 'pm-postmesh-imap', (o) => {
      const container = at(o, 'spec', 'template', 'spec', 'containers', 0);
      container.securityContext = { runAsUser: 0, capabilities: { add: ['NET_ADMIN'] } };
      delete at(o, 'spec', 'template', 'spec').securityContext;
      delete container.readinessProbe;
    });
    expect(new Set(checkPolicy(broken).map((v) => v.rule))).toEqual(
      new Set([
        PolicyRule.RunAsNonRoot,
        PolicyRule.ReadOnlyRootFilesystem,
        PolicyRule.NoPrivilegeEscalation,
        PolicyRule.DropAllCapabilities,
        PolicyRule.SeccompRuntimeDefault,
        PolicyRule.Probes,
      ]),
    );
  });

  it('catches a :latest image and an image without a tag', () => {
    const latest = mutate('Deployment', 'pm-postmesh-admin', (o) => {
      at(o, 'spec', 'template', 'spec', 'containers', 0).image = 'ghcr.io/postmesh/postmesh:latest';
    });
    expect(rules(checkPolicy(latest))).toEqual(['image-pinned Deployment/pm-postmesh-admin/admin']);
    const untagged = mutate('Deployment', 'pm-postmesh-admin', (o) => {
      at(o, 'spec', 'template', 'spec', 'containers', 0).image = 'registry:5000/postmesh';
    });
    expect(rules(checkPolicy(untagged))).toEqual(['image-pinned Deployment/pm-postmesh-admin/admin']);
  });

  it('catches a Deployment without a PodDisruptionBudget or NetworkPolicy', () => {
    const broken = objects.filter(
      (o) =>
        !(
          ['PodDisruptionBudget', 'NetworkPolicy'].includes(o.kind) &&
          o.metadata?.name === 'pm-postmesh-storage'
        ),
    );
    expect(rules(checkPolicy(broken))).toEqual([
      'disruption-budget Deployment/pm-postmesh-storage',
      'network-policy Deployment/pm-postmesh-storage',
    ]);
  });

  it('catches gRPC or ops ports exposed by a LoadBalancer or NodePort Service', () => {
    const grpc = mutate('Service', 'pm-postmesh-storage', (o) => {
      at(o, 'spec').type = 'LoadBalancer';
    });
    // (A balancer in front of storage would also find its health checks dropped by the policy.)
    expect(rules(checkPolicy(grpc))).toEqual([
      'load-balancer-health-check-allowed Service/pm-postmesh-storage',
      'load-balancer-health-check-allowed Service/pm-postmesh-storage',
      'internal-port-not-public Service/pm-postmesh-storage',
      'internal-port-not-public Service/pm-postmesh-storage',
    ]);
    // A renamed port on the public service still resolves, through the pod, to 9100.
    const ops = mutate('Service', 'pm-postmesh-smtp-public', (o) => {
      (at(o, 'spec').ports as Json[]).push({ name: 'metrics', port: 8443, targetPort: 'ops' });
    });
    expect(rules(checkPolicy(ops))).toEqual([
      'load-balancer-health-check-allowed Service/pm-postmesh-smtp-public',
      'internal-port-not-public Service/pm-postmesh-smtp-public',
    ]);
  });

  it('catches mounted service-account tokens and a grace period shorter than the drain', () => {
    const token = mutate('ServiceAccount', 'pm-postmesh-admin', (o) => {
      o.automountServiceAccountToken = true;
    });
    expect(rules(checkPolicy(token))).toEqual(['no-service-account-token ServiceAccount/pm-postmesh-admin']);
    const grace = mutate('Deployment', 'pm-postmesh-smtp-inbound', (o) => {
      at(o, 'spec', 'template', 'spec').terminationGracePeriodSeconds = 30;
    });
    expect(rules(checkPolicy(grace))).toEqual([
      'grace-period-covers-drain Deployment/pm-postmesh-smtp-inbound/smtp-inbound',
    ]);
  });

  it('catches a misspelt field the loose schemas let through', { timeout: 60_000 }, async () => {
    const broken = mutate('Deployment', 'pm-postmesh-storage', (o) => {
      const sc = storageContainer(o).securityContext as Json;
      delete sc.readOnlyRootFilesystem;
      sc.readOnlyRootFilesytem = true;
    });
    const storage = find(broken, 'Deployment', 'pm-postmesh-storage');
    // The loose schemas accept it; the strict ones name the field.
    expect(validateObject(storage)).toEqual([]);
    const issues = await validateStrict(pythonTool('kubernetes-validate'), [storage], DEFAULT_KUBE_VERSION);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.object).toBe('deployment/pm-postmesh-storage');
    expect(issues[0]?.message).toContain("'readOnlyRootFilesytem' was unexpected");
  });

  it('catches a load balancer health check the NetworkPolicy drops', () => {
    const eksObjects = render([ha, eks]);
    // What the EKS profile had before: no health-check peers, so the ops port was open to
    // monitoring only, while the ALB and NLBs check it.
    for (const component of ['admin', 'smtp-inbound']) {
      const policy = at(find(eksObjects, 'NetworkPolicy', `pm-postmesh-${component}`), 'spec');
      policy.ingress = (policy.ingress as Json[]).filter(
        (rule) => !JSON.stringify(rule.from ?? []).includes('ipBlock'),
      );
    }
    expect(
      rules(checkPolicy(eksObjects).filter((v) => v.rule === PolicyRule.LoadBalancerHealthCheckAllowed)),
    ).toEqual([
      'load-balancer-health-check-allowed Service/pm-postmesh-smtp-public',
      'load-balancer-health-check-allowed Ingress/pm-postmesh-admin',
    ]);
  });

  it('catches a Service that selects no pods', () => {
    const typo = mutate('Service', 'pm-postmesh-imap-public', (o) => {
      at(o, 'spec', 'selector')['app.kubernetes.io/component'] = 'imapd';
    });
    expect(rules(checkPolicy(typo))).toEqual(['service-selects-pods Service/pm-postmesh-imap-public']);
    const none = mutate('Service', 'pm-postmesh-admin', (o) => {
      delete at(o, 'spec').selector;
    });
    expect(checkPolicy(none)).toEqual([
      { rule: PolicyRule.ServiceSelectsPods, object: 'Service/pm-postmesh-admin', detail: 'has no selector' },
    ]);
  });

  it('catches a probe on an undeclared port, and liveness probing what readiness probes', () => {
    const port = mutate('Deployment', 'pm-postmesh-imap', (o) => {
      at(o, 'spec', 'template', 'spec', 'containers', 0, 'readinessProbe', 'httpGet').port = 'metrics';
      at(o, 'spec', 'template', 'spec', 'containers', 0, 'startupProbe', 'httpGet').port = 9101;
    });
    expect(checkPolicy(port).map((v) => v.detail)).toEqual([
      'startupProbe port 9101 is not a declared container port',
      'readinessProbe port "metrics" is not a declared container port',
    ]);
    const same = mutate('Deployment', 'pm-postmesh-storage', (o) => {
      at(o, 'spec', 'template', 'spec', 'containers', 0, 'livenessProbe', 'httpGet').path = '/healthz/ready';
    });
    expect(rules(checkPolicy(same))).toEqual(['probe-paths-differ Deployment/pm-postmesh-storage/storage']);
  });

  it('catches an object that breaks its API schema, and a kind with no known schema', () => {
    const broken = clone(find(objects, 'Deployment', 'pm-postmesh-storage')) as unknown as Json;
    (at(broken, 'spec', 'template', 'spec', 'containers', 0).ports as Json[])[0]!.containerPort = 'ops';
    expect(validateObject(broken as unknown as K8sObject)).toEqual([
      {
        object: 'Deployment/pm-postmesh-storage',
        message: '/spec/template/spec/containers/0/ports/0/containerPort must be integer',
      },
    ]);
    expect(validateObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual(
      [{ object: 'Widget/w', message: 'no schema for example.com/v1 Widget' }],
    );
  });
});

describe('helm location', () => {
  it('names the install command when .bin/helm is missing', () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-helm-'));
    writeFileSync(join(empty, 'package.json'), '{}');
    expect(() => requireHelm(empty)).toThrow(HelmNotFoundError);
    expect(() => requireHelm(empty)).toThrow(/npm run deps/);
  });
});
