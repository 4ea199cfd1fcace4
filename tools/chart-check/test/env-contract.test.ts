// The chart and the services agree: every container the chart renders (default, HA and EKS
// values) gets an environment its own service's configuration parser accepts, with no variable it
// does not read, no required one missing, every file on a mounted volume and every data directory
// on a writable one. The negative cases show each part of the check can fail.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEnvironment, K8sObject } from '../src/index.js';
import {
  checkServiceConfig,
  containerEnvironments,
  foreignVariables,
  parseManifests,
  renderChart,
  requireHelm,
  unmountedPaths,
} from '../src/index.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const chartDir = join(repoRoot, 'charts', 'postmesh');
const ha = join(chartDir, 'values-ha.yaml');
const eks = join(chartDir, 'values-eks.yaml');

let helm = '';
beforeAll(() => {
  helm = requireHelm(repoRoot);
});

function render(valuesFiles: string[] = [], set: Record<string, string> = {}): K8sObject[] {
  // The default values name no KEK Secret; let the chart generate one as `helm install` would.
  const rendered = renderChart(helm, {
    chartDir,
    valuesFiles,
    set: { 'keyEncryption.generate': 'true', ...set },
    releaseName: 'pm',
    namespace: 'mail',
  });
  if (!rendered.ok) throw new Error(rendered.error);
  return parseManifests(rendered.manifests).map((r) => r.object);
}

// Several value sets give a service the same environment: ask its parser once per distinct one.
const checked = new Map<string, ReturnType<typeof checkServiceConfig>>();
function checkOnce(
  service: string,
  env: Readonly<Record<string, string>>,
): ReturnType<typeof checkServiceConfig> {
  const key = JSON.stringify([service, Object.entries(env).sort()]);
  let result = checked.get(key);
  if (result === undefined) {
    result = checkServiceConfig(repoRoot, service, env);
    checked.set(key, result);
  }
  return result;
}

/** Everything wrong with one container's environment; empty when the service accepts it. */
async function contractProblems(container: ContainerEnvironment): Promise<string[]> {
  const problems = [...container.problems, ...unmountedPaths(container)];
  for (const name of foreignVariables(container.env)) problems.push(`${name}: read by nothing`);
  if (container.service === undefined) return [...problems, 'runs no Postmesh service'];
  const check = await checkOnce(container.service, container.env);
  if (!check.ok) problems.push(check.output);
  return problems;
}

async function allProblems(objects: K8sObject[]): Promise<Record<string, string[]>> {
  const containers = containerEnvironments(objects);
  const results = await Promise.all(containers.map(async (c) => [c.ref, await contractProblems(c)] as const));
  return Object.fromEntries(results.filter(([, p]) => p.length > 0));
}

// imap.mode: owner (the default; storage-imap and imap-proxy) and standalone (storage and imap).
const SHAPES = {
  owner: ['smtp-inbound', 'storage-imap', 'imap-proxy', 'mta-delivery', 'admin'],
  standalone: ['smtp-inbound', 'storage', 'imap', 'mta-delivery', 'admin'],
} as const;

describe.each(
  (['owner', 'standalone'] as const).flatMap((mode) =>
    (
      [
        ['default values', []],
        ['values-ha.yaml', [ha]],
        ['values-eks.yaml', [eks]],
        ['values-ha.yaml + values-eks.yaml', [ha, eks]],
      ] as [string, string[]][]
    ).map(([label, files]) => [label, mode, files] as const),
  ),
)('environment contract with %s, imap.mode %s', (_label, mode, valuesFiles) => {
  it('every container environment passes its service’s own parser', { timeout: 90_000 }, async () => {
    const objects = render(valuesFiles, { 'imap.mode': mode });
    expect(
      containerEnvironments(objects)
        .map((c) => c.service)
        .sort(),
    ).toEqual([...SHAPES[mode]].sort());
    expect(await allProblems(objects)).toEqual({});
  });
});

describe('the environment contract check can fail', () => {
  let objects: K8sObject[] = [];
  beforeAll(() => {
    objects = render([], { 'imap.mode': 'standalone' });
  });

  function withConfig(service: string, change: (data: Record<string, string>) => void): K8sObject[] {
    const copy = structuredClone(objects);
    const map = copy.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === `pm-postmesh-${service}`);
    change(map?.data as Record<string, string>);
    return copy;
  }
  const only = (list: K8sObject[], service: string): K8sObject[] =>
    list.filter((o) => o.kind !== 'Deployment' || o.metadata?.name === `pm-postmesh-${service}`);

  it(
    'an invalid value: a load balancer address where smtp-inbound wants true or false',
    { timeout: 30_000 },
    async () => {
      const broken = only(
        withConfig('smtp-inbound', (d) => (d.POSTMESH_PROXY_PROTOCOL = '10.0.0.1')),
        'smtp-inbound',
      );
      const problems = await allProblems(broken);
      expect(problems['Deployment/pm-postmesh-smtp-inbound/smtp-inbound']?.join('\n')).toMatch(
        /POSTMESH_PROXY_PROTOCOL: expected true or false, got "10.0.0.1"/,
      );
    },
  );

  it('a variable the service does not read', { timeout: 30_000 }, async () => {
    const broken = only(
      withConfig('storage', (d) => (d.POSTMESH_KMS_KEYID = 'arn:aws:kms:x')),
      'storage',
    );
    expect((await allProblems(broken))['Deployment/pm-postmesh-storage/storage']?.join('\n')).toContain(
      'variables this service does not read: POSTMESH_KMS_KEYID',
    );
  });

  it('a required variable missing, and a provider without its key', { timeout: 30_000 }, async () => {
    const noKek = only(
      withConfig('storage', (d) => delete d.POSTMESH_KEK_FILE),
      'storage',
    );
    expect((await allProblems(noKek))['Deployment/pm-postmesh-storage/storage']?.join('\n')).toContain(
      'POSTMESH_KEK_FILE: required when POSTMESH_KEY_PROVIDER=file',
    );
    const kms = only(
      withConfig('storage', (d) => (d.POSTMESH_KEY_PROVIDER = 'kms')),
      'storage',
    );
    expect((await allProblems(kms))['Deployment/pm-postmesh-storage/storage']?.join('\n')).toContain(
      'POSTMESH_KMS_KEY_ID: required when POSTMESH_KEY_PROVIDER=kms',
    );
  });

  it('a variable outside every namespace a service reads, and a file or directory off the volumes', () => {
    const [imap] = containerEnvironments(only(objects, 'imap'));
    if (imap === undefined) throw new Error('imap not rendered');
    expect(foreignVariables({ ...imap.env, K8S_POD_NAME: 'pm-postmesh-imap-0' })).toEqual(['K8S_POD_NAME']);
    expect(
      unmountedPaths({
        ...imap,
        env: {
          ...imap.env,
          POSTMESH_TLS_CERT_FILE: '/etc/tls/tls.crt',
          POSTMESH_IMAP_DATA_DIR: '/etc/postmesh/tls/x',
        },
      }),
    ).toEqual([
      'POSTMESH_TLS_CERT_FILE=/etc/tls/tls.crt is not on a mounted volume',
      'POSTMESH_IMAP_DATA_DIR=/etc/postmesh/tls/x is not on a writable volume',
    ]);
  });

  it('a ConfigMap the container refers to but the chart does not render', () => {
    const broken = only(
      objects.filter((o) => !(o.kind === 'ConfigMap' && o.metadata?.name === 'pm-postmesh-admin')),
      'admin',
    );
    expect(containerEnvironments(broken)[0]?.problems).toEqual([
      'envFrom ConfigMap/pm-postmesh-admin is not rendered',
    ]);
  });
});
