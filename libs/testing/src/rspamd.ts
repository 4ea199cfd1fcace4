/**
 * A real rspamd (Debian's `rspamd` package) with its own Redis (Debian's `redis-server`, for the
 * Bayes statistics), for the local stack and the test suites. Both listen on 127.0.0.1 only and,
 * when started as root (our machines and CI), run as the packages' unprivileged users through
 * `setpriv` — rspamd would otherwise keep a root main process.
 *
 * The configuration is ours and works offline: it includes Debian's defaults (`/etc/rspamd`, the
 * rules and scores) and switches off every module that needs the network (RBL/SURBL/URIBL, fuzzy
 * hashes, DCC, remote updates and maps) and those smtp-inbound already does (SPF, DKIM, DMARC,
 * ARC) or that would get in the way of a mail server's own policy (greylisting, rate limits).
 * `POSTMESH_RSPAMD_NETWORK_CHECKS=true` (or `networkChecks`) keeps the DNS-based lists on.
 *
 * rspamd compiles its regular expressions and the public-suffix list with Hyperscan on first start
 * (minutes on a busy 2-core machine); the compiled databases go to a cache directory shared by
 * every start on this machine, so later starts take seconds.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ManagedProcess, freePort, waitForPort } from './process.js';
import { repoRoot } from './repo.js';

/** Modules that query the network or repeat what smtp-inbound does, off in the offline profile. */
const NETWORK_MODULES = [
  'rbl',
  'surbl',
  'emails',
  'dcc',
  'fuzzy_check',
  'asn',
  'mx_check',
  'phishing',
  'rspamd_update',
  'url_redirector',
  'hfilter',
  'once_received',
  'p0f',
  'antivirus',
  'external_services',
  'spamassassin',
  'clickhouse',
  'elastic',
  'metadata_exporter',
  'bimi',
];
/** Done by smtp-inbound (mailauth) or by our own policy. */
const OWN_POLICY_MODULES = [
  'spf',
  'dkim',
  'dmarc',
  'arc',
  'dkim_signing',
  'greylist',
  'ratelimit',
  'replies',
];

export interface RspamdOptions {
  /** Where config, logs and the pid file go (a temporary directory when unset). */
  readonly dataDir?: string;
  /** Shared Hyperscan cache; default `<repo>/.tmp/rspamd-cache`. */
  readonly cacheDir?: string;
  /** Keep the DNS-based checks (RBL, SURBL, DCC, hfilter's DNS lookups) on. */
  readonly networkChecks?: boolean;
  /**
   * Extra files for rspamd's `local.d` (name → UCL text), e.g. an operator's own multimap
   * rules; they are merged with ours.
   */
  readonly localFiles?: Readonly<Record<string, string>>;
  readonly detached?: boolean;
  /** Fixed ports (the local stack); free ports when unset. */
  readonly port?: number;
  readonly controllerPort?: number;
  readonly redisPort?: number;
  /**
   * Also run rspamd's proxy worker as a milter on this port (handing messages to the normal
   * worker), for an MTA such
   * as Postfix (`smtpd_milters = inet:127.0.0.1:<port>`): the peers' side of the content-filter
   * benchmark. Postmesh itself asks the normal worker over HTTP.
   */
  readonly milterPort?: number;
}

function userExists(name: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/** The command line that runs `argv` as `user` when we are root, else as ourselves. */
function asUser(user: string, argv: readonly string[]): { command: string; args: string[] } {
  if (process.getuid?.() !== 0 || userExists(user) === undefined) {
    return { command: argv[0] ?? '', args: argv.slice(1) };
  }
  return {
    command: 'setpriv',
    args: [`--reuid=${user}`, `--regid=${user}`, '--init-groups', '--inh-caps=-all', ...argv],
  };
}

/** Every directory above `path` must let others through, or the unprivileged users cannot reach it. */
function assertReachable(path: string): void {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `${dir} is closed to other users (mode ${(statSync(dir).mode & 0o777).toString(8)}): rspamd and Redis run unprivileged and cannot reach ${path}; 'chmod o+x ${dir}' or choose another data directory`,
      );
    }
    if (dirname(dir) === dir) return;
  }
}

/** The preferred cache directory, or a machine-wide one under /tmp when rspamd could not reach it. */
function reachableCacheDir(preferred: string): string {
  if (process.getuid?.() !== 0) return preferred;
  try {
    assertReachable(preferred);
    return preferred;
  } catch {
    return join(tmpdir(), 'postmesh-rspamd-cache');
  }
}

function chownTree(path: string, owner: { uid: number; gid: number }): void {
  chownSync(path, owner.uid, owner.gid);
  if (!statSync(path).isDirectory()) return;
  for (const entry of readdirSync(path)) chownTree(join(path, entry), owner);
}

/** rspamd's normal worker (scans) and controller (learns, stats) on 127.0.0.1, with its Redis. */
export class RspamdServer {
  private constructor(
    readonly redis: ManagedProcess,
    readonly process: ManagedProcess,
    readonly redisPort: number,
    readonly port: number,
    readonly controllerPort: number,
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
  ) {}

  /** Base URL of the normal worker: POSTMESH_RSPAMD_URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Base URL of the controller (learnspam/learnham/stat; trusted from 127.0.0.1). */
  get controllerUrl(): string {
    return `http://127.0.0.1:${this.controllerPort}`;
  }

  static installed(): boolean {
    return existsSync('/usr/bin/rspamd') && existsSync('/usr/bin/redis-server');
  }

  /** Writes the configuration and starts Redis and rspamd; resolves once rspamd answers. */
  static async start(options: RspamdOptions = {}): Promise<RspamdServer> {
    const server = await RspamdServer.create(options);
    try {
      await server.startRedis();
      await server.restart();
    } catch (error) {
      const detail = `redis.log: ${server.logTail('redis.log')}\nrspamd.log: ${server.logTail('rspamd.log')}`;
      await server.stop();
      throw new Error(`rspamd did not start: ${(error as Error).message}\n${detail}`, { cause: error });
    }
    return server;
  }

  /** The last lines of one of its logs (for error messages). */
  logTail(name: 'redis.log' | 'rspamd.log'): string {
    try {
      return readFileSync(join(this.dataDir, name), 'utf8').slice(-1500);
    } catch {
      return '';
    }
  }

  /** Writes the configuration and picks the ports without starting anything. */
  static async create(options: RspamdOptions = {}): Promise<RspamdServer> {
    if (!RspamdServer.installed()) {
      throw new Error(
        "rspamd and redis-server are not installed: 'npm test' and 'npm start' install them (tools/deps.json apt), or run 'apt-get install -y rspamd redis-server'",
      );
    }
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'postmesh-rspamd-'));
    const cacheDir = reachableCacheDir(options.cacheDir ?? join(repoRoot(), '.tmp', 'rspamd-cache'));
    const redisPort = options.redisPort ?? (await freePort());
    const port = options.port ?? (await freePort());
    const controllerPort = options.controllerPort ?? (await freePort());
    const confDir = join(dataDir, 'conf');
    const localDir = join(confDir, 'local.d');
    for (const dir of [
      localDir,
      join(dataDir, 'run'),
      join(dataDir, 'log'),
      join(dataDir, 'redis'),
      cacheDir,
    ]) {
      mkdirSync(dir, { recursive: true });
    }
    writeFileSync(join(confDir, 'rspamd.conf'), topLevelConfig(port, controllerPort, options.milterPort));
    const disabled = [...(options.networkChecks ? [] : NETWORK_MODULES), ...OWN_POLICY_MODULES];
    for (const module of disabled) writeFileSync(join(localDir, `${module}.conf`), 'enabled = false;\n');
    writeFileSync(
      join(localDir, 'options.inc'),
      [
        // The GTUBE test patterns are honoured from any client, so a setup can be checked.
        'gtube_patterns = "all";',
        // Offline: a lookup that cannot be answered fails fast instead of holding the scan.
        'dns { timeout = 1s; retransmits = 1; }',
        '',
      ].join('\n'),
    );
    writeFileSync(join(localDir, 'redis.conf'), `servers = "127.0.0.1:${redisPort}";\n`);
    writeFileSync(
      join(localDir, 'classifier-bayes.conf'),
      [
        'backend = "redis";',
        'autolearn = false;',
        '# Learn from the first messages users sort.',
        'min_learns = 1;',
        '',
      ].join('\n'),
    );
    writeFileSync(join(localDir, 'logging.inc'), 'level = "notice";\n');
    writeFileSync(
      join(localDir, 'actions.conf'),
      [
        '# Greylisting is off (the module is disabled): no score-based greylist action either.',
        'greylist = null;',
        'subject = "[SPAM] %s";',
        '',
      ].join('\n'),
    );
    for (const [name, text] of Object.entries(options.localFiles ?? {})) {
      writeFileSync(join(localDir, name), text);
    }
    const rspamdUser = userExists('_rspamd');
    const redisUser = userExists('redis');
    if (process.getuid?.() === 0) {
      assertReachable(dataDir);
      // mkdtemp makes 0700 directories: the unprivileged users must be able to reach their own.
      chmodSync(dataDir, 0o755);
      if (rspamdUser) {
        chownTree(confDir, rspamdUser);
        chownTree(join(dataDir, 'run'), rspamdUser);
        chownTree(join(dataDir, 'log'), rspamdUser);
        chownTree(cacheDir, rspamdUser);
      }
      if (redisUser) chownTree(join(dataDir, 'redis'), redisUser);
    }
    const redisCmd = asUser('redis', [
      '/usr/bin/redis-server',
      '--bind',
      '127.0.0.1',
      '--port',
      String(redisPort),
      // A given data dir (the local stack) keeps what users taught the filter across restarts.
      ...(ownsDataDir
        ? ['--save', '', '--appendonly', 'no']
        : ['--appendonly', 'yes', '--appendfsync', 'everysec']),
      '--dir',
      join(dataDir, 'redis'),
      '--protected-mode',
      'yes',
    ]);
    const redis = new ManagedProcess({
      name: 'redis',
      ...redisCmd,
      logFile: join(dataDir, 'redis.log'),
      detached: options.detached ?? false,
    });
    const rspamdCmd = asUser('_rspamd', [
      '/usr/bin/rspamd',
      '-f',
      '-c',
      join(confDir, 'rspamd.conf'),
      '--var',
      `LOCAL_CONFDIR=${confDir}`,
      '--var',
      `RUNDIR=${join(dataDir, 'run')}`,
      '--var',
      `DBDIR=${cacheDir}`,
      '--var',
      `LOGDIR=${join(dataDir, 'log')}`,
    ]);
    const rspamd = new ManagedProcess({
      name: 'rspamd',
      ...rspamdCmd,
      logFile: join(dataDir, 'rspamd.log'),
      detached: options.detached ?? false,
    });
    return new RspamdServer(redis, rspamd, redisPort, port, controllerPort, dataDir, ownsDataDir);
  }

  /** (Re)starts Redis, the Bayes statistics' store (kept on disk when the data dir was given). */
  async startRedis(): Promise<void> {
    if (this.redis.running) await this.redis.stop(5_000);
    this.redis.start();
    await waitForPort(this.redisPort, '127.0.0.1', 30_000, () => this.redis.running);
  }

  /** (Re)starts rspamd (not Redis) and waits for both of its workers. */
  async restart(timeoutMs = 600_000): Promise<void> {
    if (this.process.running) await this.process.stop(10_000);
    this.process.start();
    await waitForPort(this.port, '127.0.0.1', timeoutMs, () => this.process.running);
    await waitForPort(this.controllerPort, '127.0.0.1', timeoutMs, () => this.process.running);
  }

  async stop(): Promise<void> {
    await this.process.stop(10_000);
    await this.redis.stop(5_000);
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

function topLevelConfig(port: number, controllerPort: number, milterPort?: number): string {
  const milter =
    milterPort === undefined
      ? ''
      : `
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:${milterPort}";
  # Not Debian's worker-proxy.inc: its upstream (localhost:11333) would be merged with ours.
  milter = yes;
  timeout = 120s;
  max_retries = 5;
  discard_on_reject = false;
  quarantine_on_reject = false;
  # Forwards each message to our normal worker, as rspamd's standard milter setup does.
  upstream "scanner" {
    default = yes;
    hosts = "127.0.0.1:${port}";
  }
  count = 1;
}
`;
  return `# Generated by Postmesh (libs/testing/src/rspamd.ts): Debian's rules, our workers and overrides.
.include "$CONFDIR/common.conf"

options {
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}

logging {
  type = "console";
  .include "$CONFDIR/logging.inc"
  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/logging.inc"
}

worker "normal" {
  bind_socket = "127.0.0.1:${port}";
  .include "$CONFDIR/worker-normal.inc"
  count = 1;
}

worker "controller" {
  bind_socket = "127.0.0.1:${controllerPort}";
  .include "$CONFDIR/worker-controller.inc"
  count = 1;
}
${milter}`;
}
