/**
 * Runs a process the way the chart's pod runs it, without a container engine: in its own mount
 * namespace (`unshare -m`), chrooted into a root filesystem that is read-only, with the image's
 * application tree at /app (root-owned, read-only), the pod's volumes at their mount paths
 * (Secrets and ConfigMaps as read-only files owned by root and the pod's fsGroup, emptyDirs as
 * writable tmpfs), under the container's non-root uid/gid with no capabilities and
 * `no_new_privs` (`setpriv`). The network is the host's, so the process reaches the test's NATS
 * and FerretDB on 127.0.0.1. Needs root (to mount), as CI and the dev machines run tests.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess } from '@postmesh/testing';
import { containerEnvironments, objectRef, type K8sObject } from '../src/index.js';

type Rec = Readonly<Record<string, unknown>>;
const rec = (v: unknown): Rec => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {});
const list = (v: unknown): readonly unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

export type VolumeSource =
  | { readonly kind: 'emptyDir' }
  | { readonly kind: 'files'; readonly files: ReadonlyMap<string, Buffer>; readonly mode: number };

export interface PodMount {
  readonly name: string;
  readonly mountPath: string;
  readonly readOnly: boolean;
  readonly source: VolumeSource;
}

/** One container of a rendered Deployment: what a kubelet would start. */
export interface PodPlan {
  readonly ref: string;
  /** The Postmesh service it runs (its first argument). */
  readonly service: string;
  readonly env: Readonly<Record<string, string>>;
  readonly uid: number;
  readonly gid: number;
  readonly fsGroup: number;
  readonly readOnlyRootFilesystem: boolean;
  readonly mounts: readonly PodMount[];
  /** Path of the readiness probe (an httpGet on the ops port). */
  readonly readinessPath: string;
}

function objectData(object: K8sObject | undefined): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(rec(object?.data))) {
    if (typeof value !== 'string') continue;
    files.set(key, object?.kind === 'Secret' ? Buffer.from(value, 'base64') : Buffer.from(value));
  }
  for (const [key, value] of Object.entries(rec(object?.stringData))) {
    if (typeof value === 'string') files.set(key, Buffer.from(value));
  }
  return files;
}

function volumeSource(objects: readonly K8sObject[], volume: Rec, ref: string): VolumeSource {
  if ('emptyDir' in volume) return { kind: 'emptyDir' };
  const secret = rec(volume.secret);
  const configMap = rec(volume.configMap);
  const [kind, name, source] =
    'secret' in volume
      ? (['Secret', str(secret.secretName), secret] as const)
      : 'configMap' in volume
        ? (['ConfigMap', str(configMap.name), configMap] as const)
        : (['', undefined, {}] as const);
  if (kind === '' || name === undefined) {
    throw new Error(`${ref}: volume ${str(volume.name)} is of a kind the sandbox does not provide`);
  }
  const object = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (object === undefined) throw new Error(`${ref}: ${kind}/${name} is not rendered`);
  const data = objectData(object);
  const items = list(source.items);
  const files =
    items.length === 0
      ? data
      : new Map(
          items.map((item) => {
            const key = str(rec(item).key) ?? '';
            const value = data.get(key);
            if (value === undefined) throw new Error(`${ref}: ${kind}/${name} has no key ${key}`);
            return [str(rec(item).path) ?? key, value] as const;
          }),
        );
  // Kubernetes' default for Secret and ConfigMap volumes is 0644.
  return { kind: 'files', files, mode: num(source.defaultMode) ?? 0o644 };
}

/** The plan for `deployment`'s container that runs a Postmesh service. */
export function podPlan(objects: readonly K8sObject[], deployment: string): PodPlan {
  const workload = objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === deployment);
  if (workload === undefined) throw new Error(`Deployment/${deployment} is not rendered`);
  const pod = rec(rec(rec(workload.spec).template).spec);
  const container = list(pod.containers)
    .map(rec)
    .find((c) => str(list(c.args)[0]) !== undefined);
  if (container === undefined)
    throw new Error(`${objectRef(workload)}: no container with a service argument`);
  const ref = `${objectRef(workload)}/${str(container.name) ?? ''}`;
  const environment = containerEnvironments([workload, ...objects.filter((o) => o !== workload)]).find(
    (c) => c.ref === ref,
  );
  if (environment?.service === undefined) throw new Error(`${ref}: runs no Postmesh service`);
  const podSecurity = rec(pod.securityContext);
  const security = rec(container.securityContext);
  const volumes = new Map(list(pod.volumes).map((v) => [str(rec(v).name) ?? '', rec(v)]));
  const mounts = list(container.volumeMounts).map((m): PodMount => {
    const name = str(rec(m).name) ?? '';
    const volume = volumes.get(name);
    if (volume === undefined) throw new Error(`${ref}: mounts undeclared volume ${name}`);
    return {
      name,
      mountPath: str(rec(m).mountPath) ?? '',
      readOnly: rec(m).readOnly === true,
      source: volumeSource(objects, volume, ref),
    };
  });
  const uid = num(security.runAsUser) ?? num(podSecurity.runAsUser);
  const gid = num(security.runAsGroup) ?? num(podSecurity.runAsGroup) ?? uid;
  if (uid === undefined || gid === undefined) throw new Error(`${ref}: no runAsUser`);
  return {
    ref,
    service: environment.service,
    env: environment.env,
    uid,
    gid,
    fsGroup: num(podSecurity.fsGroup) ?? gid,
    readOnlyRootFilesystem: security.readOnlyRootFilesystem === true,
    mounts,
    readinessPath: str(rec(rec(container.readinessProbe).httpGet).path) ?? '/healthz/ready',
  };
}

export interface SandboxOptions {
  /** The image's /app: a root-owned tree laid out by tools/image/stage.sh runtime. */
  readonly appDir: string;
  /** Mounted at /app/node_modules (the image's production dependencies, or a superset). */
  readonly nodeModules: string;
  /** The image's own environment (Dockerfile ENV), under the pod's. */
  readonly imageEnv: Readonly<Record<string, string>>;
  /** Replaces variables of the pod's environment (addresses and ports on this machine). */
  readonly env: Readonly<Record<string, string>>;
  /** Replaces a volume's files by name (e.g. identities issued by the test's own CA). */
  readonly volumeFiles?: Readonly<Record<string, ReadonlyMap<string, Buffer>>>;
  /** The command inside the sandbox; default `node /app/services/<service>/dist/main.js`. */
  readonly command?: readonly string[];
  readonly logFile: string;
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * The Dockerfile's runtime: WORKDIR /app, `node /app/services/<name>/dist/main.js` under the
 * container's user. Returns the process (not yet started).
 */
export function sandboxProcess(plan: PodPlan, options: SandboxOptions): ManagedProcess {
  const base = mkdtempSync(join(tmpdir(), `postmesh-pod-${plan.service}-`));
  const root = join(base, 'root');
  mkdirSync(root);
  const lines = [
    'set -eu',
    `R=${quote(root)}`,
    'mount -t tmpfs -o mode=0755 pod-root "$R"',
    'mkdir -p "$R/usr" "$R/dev" "$R/proc" "$R/etc/ssl" "$R/app"',
    'for d in bin lib lib64 sbin; do if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$R/$d"; fi; done',
    'mount --rbind /usr "$R/usr" && mount -o remount,bind,ro "$R/usr"',
    'mount --rbind /dev "$R/dev"',
    'mount -t proc proc "$R/proc"',
    'for f in passwd group hosts resolv.conf nsswitch.conf; do',
    '  if [ -f "/etc/$f" ]; then touch "$R/etc/$f"; mount --bind "/etc/$f" "$R/etc/$f"; mount -o remount,bind,ro "$R/etc/$f"; fi',
    'done',
    'mount --rbind /etc/ssl "$R/etc/ssl" && mount -o remount,bind,ro "$R/etc/ssl"',
    `mount --bind ${quote(options.appDir)} "$R/app"`,
    `mount --bind ${quote(options.nodeModules)} "$R/app/node_modules"`,
    'mount -o remount,bind,ro "$R/app/node_modules"',
    'mount -o remount,bind,ro "$R/app"',
  ];
  plan.mounts.forEach((mount, index) => {
    const target = `"$R"${quote(mount.mountPath)}`;
    lines.push(`mkdir -p ${target}`);
    if (mount.source.kind === 'emptyDir') {
      // An emptyDir is world-writable; with fsGroup the kubelet gives it the group and setgid.
      lines.push(`mount -t tmpfs -o mode=2777,gid=${plan.fsGroup} ${quote(`pod-${mount.name}`)} ${target}`);
      return;
    }
    const dir = join(base, `volume-${index}`);
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    const files = options.volumeFiles?.[mount.name] ?? mount.source.files;
    for (const [name, content] of files) {
      const file = join(dir, name);
      writeFileSync(file, content);
      chownSync(file, 0, plan.fsGroup);
      chmodSync(file, mount.source.mode);
    }
    lines.push(`mount --bind ${quote(dir)} ${target}`);
    if (mount.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
  });
  if (plan.readOnlyRootFilesystem) lines.push('mount -o remount,ro "$R"');
  const command = options.command ?? ['node', `/app/services/${plan.service}/dist/main.js`];
  const inner = `cd /app && exec ${command.map(quote).join(' ')}`;
  lines.push(
    `exec /usr/sbin/chroot "$R" /usr/bin/setpriv --reuid=${plan.uid} --regid=${plan.gid} --groups=${plan.fsGroup}` +
      ` --no-new-privs --inh-caps=-all --bounding-set=-all -- /bin/sh -c ${quote(inner)}`,
  );
  return new ManagedProcess({
    name: `pod ${plan.service}`,
    // Without --fork, unshare execs the shell, which execs chroot, setpriv and node: the pid the
    // process handle signals is the service's, and its mounts vanish with it.
    command: 'unshare',
    args: ['--mount', '--propagation', 'private', '/bin/sh', '-c', lines.join('\n')],
    env: {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      ...options.imageEnv,
      ...plan.env,
      ...options.env,
    },
    logFile: options.logFile,
  });
}
