// The environment contract between the chart and the services: the exact environment each
// rendered container gets (ConfigMap and Secret references resolved, Secrets the chart does not
// render given placeholders), fed to that service's own configuration parser
// (`node services/<name>/dist/main.js --check-config`, which validates with the service's schema
// and rules and refuses variables it does not read). Pure resolution here; the spawn is separate.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { K8sObject } from './manifests.js';
import { objectRef } from './manifests.js';

type Rec = Readonly<Record<string, unknown>>;
const rec = (v: unknown): Rec | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : undefined;
const list = (v: unknown): readonly unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** One container of a rendered workload and the environment it would start with. */
export interface ContainerEnvironment {
  /** "Deployment/name/container" */
  readonly ref: string;
  /** The Postmesh service the container runs (its first argument), if it runs one. */
  readonly service: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly mounts: readonly { readonly path: string; readonly readOnly: boolean }[];
  /** References that cannot be resolved from the rendered objects (a ConfigMap not rendered). */
  readonly problems: readonly string[];
}

export const SERVICES = [
  'smtp-inbound',
  'storage',
  'imap',
  'mta-delivery',
  'admin',
  // imap.mode "owner" (ADR 0010): storage's workload runs storage-imap, the IMAP front door imap-proxy.
  'storage-imap',
  'imap-proxy',
] as const;

/**
 * Values for Secrets the chart only references (`existingSecret`): valid for the variable's
 * type, so the parser judges the chart's wiring, not the placeholder.
 */
const PLACEHOLDERS: Readonly<Record<string, string>> = {
  MONGODB_URI: 'mongodb://mongodb-0.example.invalid:27017/postmesh?replicaSet=rs0',
  POSTMESH_OWNER_EMAIL: 'owner@example.com',
};
const placeholder = (name: string): string => PLACEHOLDERS[name] ?? `placeholder-${name.toLowerCase()}`;

function secretValue(objects: readonly K8sObject[], name: string, key: string): string | undefined {
  const secret = objects.find((o) => o.kind === 'Secret' && o.metadata?.name === name);
  const encoded = str(rec(secret?.data)?.[key]);
  if (encoded !== undefined) return Buffer.from(encoded, 'base64').toString('utf8');
  return str(rec(secret?.stringData)?.[key]);
}

function configMapData(objects: readonly K8sObject[], name: string): Rec | undefined {
  return rec(objects.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === name)?.data);
}

/** Every container of every workload, with the environment Kubernetes would give it. */
export function containerEnvironments(objects: readonly K8sObject[]): ContainerEnvironment[] {
  const out: ContainerEnvironment[] = [];
  for (const workload of objects) {
    if (!['Deployment', 'StatefulSet', 'DaemonSet'].includes(workload.kind)) continue;
    const pod = rec(rec(rec(workload.spec)?.template)?.spec) ?? {};
    for (const raw of [...list(pod.initContainers), ...list(pod.containers)]) {
      const container = rec(raw) ?? {};
      const ref = `${objectRef(workload)}/${str(container.name) ?? '<unnamed>'}`;
      const env: Record<string, string> = {};
      const problems: string[] = [];
      // Kubernetes order: envFrom first (in order), then env entries override.
      for (const source of list(container.envFrom)) {
        const prefix = str(rec(source)?.prefix) ?? '';
        const configMap = str(rec(rec(source)?.configMapRef)?.name);
        const secret = str(rec(rec(source)?.secretRef)?.name);
        if (configMap !== undefined) {
          const data = configMapData(objects, configMap);
          if (data === undefined) problems.push(`envFrom ConfigMap/${configMap} is not rendered`);
          for (const [k, v] of Object.entries(data ?? {})) if (typeof v === 'string') env[prefix + k] = v;
        } else if (secret !== undefined) {
          const found = objects.find((o) => o.kind === 'Secret' && o.metadata?.name === secret);
          for (const key of Object.keys({ ...rec(found?.data), ...rec(found?.stringData) })) {
            env[prefix + key] = secretValue(objects, secret, key) ?? '';
          }
        }
      }
      for (const entry of list(container.env)) {
        const name = str(rec(entry)?.name);
        if (name === undefined) continue;
        const value = str(rec(entry)?.value);
        const from = rec(rec(entry)?.valueFrom);
        if (value !== undefined || from === undefined) {
          env[name] = value ?? '';
          continue;
        }
        const secretRef = rec(from.secretKeyRef);
        const configMapRef = rec(from.configMapKeyRef);
        if (secretRef !== undefined) {
          env[name] =
            secretValue(objects, str(secretRef.name) ?? '', str(secretRef.key) ?? '') ?? placeholder(name);
        } else if (configMapRef !== undefined) {
          const data = configMapData(objects, str(configMapRef.name) ?? '');
          const v = str(data?.[str(configMapRef.key) ?? '']);
          if (v === undefined)
            problems.push(`${name}: ConfigMap key ${str(configMapRef.key) ?? ''} not rendered`);
          env[name] = v ?? '';
        } else {
          env[name] = placeholder(name);
        }
      }
      const firstArg = str(list(container.args)[0]);
      const service = (SERVICES as readonly string[]).includes(firstArg ?? '') ? firstArg : undefined;
      const mounts = list(container.volumeMounts).map((m) => ({
        path: str(rec(m)?.mountPath) ?? '',
        readOnly: rec(m)?.readOnly === true,
      }));
      out.push({ ref, service, env, mounts, problems });
    }
  }
  return out;
}

/** Variables outside the namespaces a Postmesh service, OpenTelemetry's SDK or Node itself reads. */
export function foreignVariables(env: Readonly<Record<string, string>>): string[] {
  return Object.keys(env)
    .filter((name) => !/^(POSTMESH_|NATS_|MONGODB_|LOG_LEVEL$|OTEL_|NODE_EXTRA_CA_CERTS$)/.test(name))
    .sort();
}

export interface ServiceConfigCheck {
  readonly ok: boolean;
  /** What the service printed (its configuration problems name each variable). */
  readonly output: string;
}

/**
 * Runs the built service's own parser on `env` (nothing else from this process's environment but
 * PATH), as `<service> --check-config`: exit 0 when valid, 78 with the problems otherwise.
 */
export function checkServiceConfig(
  repoRoot: string,
  service: string,
  env: Readonly<Record<string, string>>,
): Promise<ServiceConfigCheck> {
  const main = join(repoRoot, 'services', service, 'dist', 'main.js');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [main, '--check-config'],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: 60_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        resolve({ ok: error === null, output: `${stdout}${stderr}`.trim() });
      },
    );
  });
}

/**
 * Files (`POSTMESH_*_FILE`) must be on a mounted volume and directories services write
 * (`POSTMESH_*_DIR`) on a writable one: the root filesystem is read-only, and a path outside
 * every mount fails at start (ENOENT or EACCES/EROFS).
 */
export function unmountedPaths(container: ContainerEnvironment): string[] {
  const problems: string[] = [];
  const under = (path: string, mount: string): boolean =>
    path === mount || path.startsWith(`${mount.replace(/\/$/, '')}/`);
  for (const [name, value] of Object.entries(container.env)) {
    if (!(name.startsWith('POSTMESH_') || name === 'NODE_EXTRA_CA_CERTS') || value === '') continue;
    const isFile = name.endsWith('_FILE') || name === 'NODE_EXTRA_CA_CERTS';
    if (isFile && !container.mounts.some((m) => under(value, m.path))) {
      problems.push(`${name}=${value} is not on a mounted volume`);
    }
    if (name.endsWith('_DIR') && !container.mounts.some((m) => !m.readOnly && under(value, m.path))) {
      problems.push(`${name}=${value} is not on a writable volume`);
    }
  }
  return problems;
}
