// Every built service starts the way the chart's pod runs it from the image: the image's
// application tree (tools/image/stage.sh runtime, as the Dockerfile lays it out: no tools/*, no
// libs/testing) root-owned and read-only at /app, a read-only root filesystem, the container's
// non-root uid, only the pod's emptyDirs (/tmp, data directories) writable, the Secrets and
// ConfigMaps the chart mounts, and the environment the chart renders (default values). Only
// addresses and ports are changed, to this machine's test NATS, FerretDB and free ports. Each
// service must reach its readiness probe. (No container engine here: see pod-sandbox.ts.)
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { once } from 'node:events';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startTestEnvironment, type ManagedProcess, type TestEnvironment } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifests, renderChart, requireHelm, type K8sObject } from '../src/index.js';
import { podPlan, sandboxProcess, type PodPlan } from './pod-sandbox.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const chartDir = join(repoRoot, 'charts', 'postmesh');
const RELEASE = 'pm';
/** The Dockerfile's ENV of the runtime stage. */
const IMAGE_ENV = { NODE_ENV: 'production', HOME: '/tmp' };

const work = mkdtempSync(join(tmpdir(), 'postmesh-pod-runtime-'));
const appDir = join(work, 'app');
let env: TestEnvironment;
let objects: K8sObject[] = [];
/** The default shape (imap.mode owner, ADR 0010): storage runs storage-imap, imap-proxy in front. */
let ownerObjects: K8sObject[] = [];
const running: ManagedProcess[] = [];

function render(mode: 'owner' | 'standalone'): K8sObject[] {
  const rendered = renderChart(requireHelm(repoRoot), {
    chartDir,
    set: { 'keyEncryption.generate': 'true', 'imap.mode': mode },
    releaseName: RELEASE,
    namespace: 'mail',
  });
  if (!rendered.ok) throw new Error(rendered.error);
  return parseManifests(rendered.manifests).map((r) => r.object);
}

/** Addresses and ports on this machine instead of the cluster's; everything else as rendered. */
async function localEnv(
  plan: PodPlan,
  storageGrpc: string,
): Promise<{ env: Record<string, string>; opsPort: number }> {
  const listen: Record<string, string> = {};
  for (const [name, value] of Object.entries(plan.env)) {
    if (name.endsWith('_HOST') && value === '0.0.0.0') listen[name] = '127.0.0.1';
    if (name.endsWith('_PORT') && value !== '0') listen[name] = String(await freePort());
  }
  return {
    env: {
      ...listen,
      NATS_URL: env.natsUrl,
      NATS_MONITOR_URL: env.natsMonitorUrl ?? '',
      // One test nats-server: streams with one replica, which the chart allows only when told.
      POSTMESH_STREAM_REPLICAS: '1',
      POSTMESH_ALLOW_WEAK_DURABILITY: 'true',
      ...(plan.service === 'storage'
        ? { MONGODB_URI: env.mongoUri, POSTMESH_MONGODB_DB: env.database }
        : plan.service === 'storage-imap'
          ? {
              MONGODB_URI: env.mongoUri,
              POSTMESH_MONGODB_DB: env.database,
              POSTMESH_STORAGE_GRPC: `127.0.0.1:${listen.POSTMESH_GRPC_PORT ?? ''}`,
              // status.podIP in the pod; here the loopback its listeners are moved to.
              POSTMESH_STORAGE_ADVERTISED_GRPC: '127.0.0.1',
              POSTMESH_STORAGE_ADVERTISED_IMAP: '127.0.0.1',
            }
          : { POSTMESH_STORAGE_GRPC: storageGrpc }),
    },
    opsPort: Number(listen.POSTMESH_OPS_PORT),
  };
}

/** The identity Secret holds the test CA's certificate for the service (NATS and storage trust it). */
function identityFiles(service: string): Map<string, Buffer> {
  const dir = join(env.pki.dir, service);
  return new Map(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name))]));
}

interface StartedPod {
  readonly proc: ManagedProcess;
  readonly opsPort: number;
  readonly plan: PodPlan;
  readonly env: Readonly<Record<string, string>>;
  log(): string;
}

async function startPod(
  service: string,
  storageGrpc: string,
  change: (env: Record<string, string>) => void = () => undefined,
  rendered: K8sObject[] = objects,
): Promise<StartedPod> {
  const plan = podPlan(rendered, `${RELEASE}-postmesh-${service}`);
  const local = await localEnv(plan, storageGrpc);
  const logFile = join(work, `${service}-${Date.now()}.log`);
  const podEnv = { ...plan.env, ...local.env };
  change(podEnv);
  const proc = sandboxProcess(
    { ...plan, env: podEnv },
    {
      appDir,
      nodeModules: join(repoRoot, 'node_modules'),
      imageEnv: IMAGE_ENV,
      env: {},
      // The volume `identity` holds the workload's own identity (imap-proxy runs as imap);
      // storage-imap also mounts imap's as `identity-imap`.
      volumeFiles: {
        identity: identityFiles(service === 'imap-proxy' ? 'imap' : service),
        ...(plan.mounts.some((m) => m.name === 'identity-imap')
          ? { 'identity-imap': identityFiles('imap') }
          : {}),
      },
      logFile,
    },
  );
  proc.start();
  running.push(proc);
  return {
    proc,
    opsPort: local.opsPort,
    plan,
    env: podEnv,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
}

/** The next CRLF-terminated line from `socket` (IMAP responses here fit in one line). */
function line(socket: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n');
      if (end < 0) return;
      cleanup();
      resolve(buffered.slice(0, end));
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`closed after ${JSON.stringify(buffered)}`));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onEnd);
  });
}

async function waitReady(pod: StartedPod, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pod.proc.running) throw new Error(`${pod.plan.service} exited:\n${pod.log()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${pod.opsPort}${pod.plan.readinessPath}`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${pod.plan.service} not ready within ${timeoutMs} ms:\n${pod.log()}`);
}

async function exited(pod: StartedPod, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pod.proc.running && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return !pod.proc.running;
}

beforeAll(async () => {
  objects = render('standalone');
  ownerObjects = render('owner');
  execFileSync('sh', [join(repoRoot, 'tools', 'image', 'stage.sh'), 'runtime', repoRoot, appDir]);
  mkdirSync(join(appDir, 'node_modules'));
  // npm nests a workspace's dependency in the workspace's own node_modules when the root holds
  // another version of it (admin's ajv 8 beside the tools' ajv 6). The image keeps those folders
  // (its prod-deps stage is copied whole), so the staged app gets them too.
  for (const group of ['libs', 'services']) {
    for (const name of readdirSync(join(repoRoot, group))) {
      const nested = join(repoRoot, group, name, 'node_modules');
      if (existsSync(nested) && existsSync(join(appDir, group, name))) {
        cpSync(nested, join(appDir, group, name, 'node_modules'), {
          recursive: true,
          verbatimSymlinks: true,
        });
      }
    }
  }
  chmodSync(appDir, 0o755);
  env = await startTestEnvironment();
});
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop(5_000)));
  await env?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('the pod sandbox', () => {
  it('runs as the container user with only the pod’s volumes writable', { timeout: 30_000 }, async () => {
    const probe = [
      "const fs = require('node:fs');",
      'const tryWrite = (p) => { try { fs.writeFileSync(p, "x"); return "ok"; } catch (e) { return e.code; } };',
      'console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), cwd: process.cwd(),',
      '  app: tryWrite("/app/written"), root: tryWrite("/written"), tmp: tryWrite("/tmp/written"),',
      '  data: tryWrite("/var/lib/postmesh/written"), tls: tryWrite("/etc/postmesh/tls/written"),',
      '  tools: fs.existsSync("/app/tools"), testing: fs.existsSync("/app/libs/testing"),',
      '  key: fs.readFileSync("/etc/postmesh/tls/tls.key", "utf8").includes("PRIVATE KEY") }));',
    ].join('\n');
    const plan = podPlan(objects, `${RELEASE}-postmesh-smtp-inbound`);
    const logFile = join(work, 'probe.log');
    const proc = sandboxProcess(plan, {
      appDir,
      nodeModules: join(repoRoot, 'node_modules'),
      imageEnv: IMAGE_ENV,
      env: {},
      command: ['node', '-e', probe],
      logFile,
    });
    proc.start();
    expect(await proc.exited).toBe(0);
    const seen: unknown = JSON.parse(readFileSync(logFile, 'utf8').trim().split('\n').pop() ?? '{}');
    expect(seen).toEqual({
      uid: 10001,
      gid: 10001,
      cwd: '/app',
      app: 'EROFS',
      root: 'EROFS',
      tmp: 'ok',
      data: 'ok',
      tls: 'EROFS',
      tools: false,
      testing: false,
      key: true,
    });
  });
});

describe('every service as its pod runs it (chart default values, imap.mode owner)', () => {
  it(
    'storage-imap, then imap-proxy reach readiness; the proxy greets with the IMAP capabilities',
    { timeout: 150_000 },
    async () => {
      const storage = await startPod('storage', '', undefined, ownerObjects);
      expect(storage.plan.service).toBe('storage-imap');
      await waitReady(storage);
      const grpc = `127.0.0.1:${storage.env.POSTMESH_GRPC_PORT}`;
      // The proxy is ready only once it sees a backend published in storage-replicas.
      const proxy = await startPod('imap-proxy', grpc, undefined, ownerObjects);
      await waitReady(proxy);
      expect(storage.log()).toMatch(/IMAP proxy listener published/);
      const socket = connect(Number(proxy.env.POSTMESH_IMAP_PORT), '127.0.0.1');
      socket.setTimeout(30_000, () => socket.destroy(new Error('no answer within 30 s')));
      try {
        expect(await line(socket)).toMatch(
          /^\* OK \[CAPABILITY IMAP4rev2 IMAP4rev1 [^\]]* STARTTLS LOGINDISABLED\]/,
        );
        socket.write('a STARTTLS\r\n');
        expect(await line(socket)).toMatch(/^a OK/);
        // The proxy's certificate is the chart's self-signed mail pair: not verified here.
        const secure = tlsConnect({ socket, rejectUnauthorized: false });
        await once(secure, 'secureConnect');
        // A login naming no account goes to a live backend (the fallback): over the backend port,
        // PROXY header and mutual TLS with the name the chart gives (POSTMESH_IMAP_PROXY_BACKEND_SERVERNAME).
        // The backend's own NO proves that path; an unreachable one would be NO [UNAVAILABLE].
        secure.write('b LOGIN nobody@example.test "not-a-password"\r\n');
        expect(await line(secure)).toMatch(/^b NO \[AUTHENTICATIONFAILED\]/);
        secure.destroy();
      } finally {
        socket.destroy();
      }
      for (const pod of [storage, proxy]) expect(pod.proc.running).toBe(true);
      await Promise.all([proxy.proc.stop(10_000), storage.proc.stop(20_000)]);
    },
  );
});

describe('every service as its pod runs it (chart default values, imap.mode standalone)', () => {
  it(
    'storage, then smtp-inbound, imap, mta-delivery and admin reach readiness',
    { timeout: 150_000 },
    async () => {
      const storage = await startPod('storage', '');
      await waitReady(storage);
      const grpc = `127.0.0.1:${storage.env.POSTMESH_GRPC_PORT}`;
      const others = await Promise.all(
        ['smtp-inbound', 'imap', 'mta-delivery', 'admin'].map((s) => startPod(s, grpc)),
      );
      await Promise.all(others.map((pod) => waitReady(pod)));
      for (const pod of [storage, ...others]) expect(pod.proc.running).toBe(true);
    },
  );

  it(
    'a service writing under its working directory fails there (the check can fail)',
    { timeout: 60_000 },
    async () => {
      // Without a data directory from the chart and without a mounted certificate, smtp-inbound
      // makes its self-signed pair under ./.data, which is /app: read-only in the pod.
      const pod = await startPod('smtp-inbound', '127.0.0.1:1', (e) => {
        delete e.POSTMESH_SMTP_DATA_DIR;
        delete e.POSTMESH_TLS_CERT_FILE;
        delete e.POSTMESH_TLS_KEY_FILE;
      });
      expect(await exited(pod)).toBe(true);
      // Node's recursive mkdir on the read-only /app reports the missing parent (ENOENT).
      expect(pod.log()).toMatch(/"fatal".*mkdir '\/app\/\.data\/smtp-inbound\/tls'/);
    },
  );
});
