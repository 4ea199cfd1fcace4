/**
 * Haraka reads its configuration from files under `$HARAKA/config` (docs/CoreConfig.md). We never
 * edit those by hand: they are generated at every start from the service's typed configuration,
 * so the environment (and the Helm chart) is the only source of truth.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HARAKA_PROXY_PEERS } from './proxy-front.js';

/** Our plugins, in the order Haraka runs their hooks. */
export const POSTMESH_PLUGINS = [
  'postmesh_rdns',
  'postmesh_trace',
  'postmesh_limits',
  'postmesh_operator',
  'postmesh_submission',
  'postmesh_rcpt',
  'postmesh_sender_auth',
  'postmesh_content_filter',
  'postmesh_operator_data',
  'postmesh_queue',
] as const;
export type PostmeshPluginName = (typeof POSTMESH_PLUGINS)[number];

export interface HarakaSettings {
  readonly listenHost: string;
  readonly listenPort: number;
  /** Submission (STARTTLS, RFC 6409) and submissions (implicit TLS, RFC 8314); 0 = not listening. */
  readonly submissionPort?: number;
  readonly submissionsPort?: number;
  readonly hostname: string;
  readonly maxMessageBytes: number;
  readonly idleTimeoutSeconds: number;
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly dhparamFile: string };
  /** Every connection starts with a PROXY header, checked by `requireProxyHeader` in front of Haraka. */
  readonly proxyProtocol: boolean;
  /** Seconds a plugin hook may take before Haraka gives up (451). */
  readonly queueTimeoutSeconds: number;
}

const ini = (sections: Record<string, Record<string, string | number | boolean | readonly string[]>>) =>
  Object.entries(sections)
    .map(([name, values]) => {
      const lines = Object.entries(values).flatMap(([key, value]) =>
        Array.isArray(value) ? value.map((v: string) => `${key}[]=${v}`) : [`${key}=${String(value)}`],
      );
      return `[${name}]\n${lines.join('\n')}\n`;
    })
    .join('\n');

/** File name (relative to the config dir) → content. Pure, so it is unit-tested. */
export function harakaConfigFiles(settings: HarakaSettings, spoolDir: string): Map<string, string> {
  const files = new Map<string, string>();
  files.set(
    'smtp.ini',
    ini({
      main: {
        listen: [settings.listenPort, settings.submissionPort ?? 0, settings.submissionsPort ?? 0]
          .filter((p) => p > 0)
          .map(
            (p) =>
              `${settings.listenHost.includes(':') ? `[${settings.listenHost}]` : settings.listenHost}:${p}`,
          )
          .join(','),
        // RFC 8314 §3.3: implicit TLS from the first octet on the submissions port.
        smtps_port: settings.submissionsPort ?? 0,
        inactivity_timeout: settings.idleTimeoutSeconds,
        // One process: Postmesh scales by replicas, not by Haraka's cluster module.
        nodes: 0,
        graceful_shutdown: true,
        ignore_bad_plugins: 0,
      },
    }),
  );
  files.set(
    'connection.ini',
    ini({
      main: {
        // RFC 6531: our plugins pass UTF-8 addresses through unchanged.
        smtputf8: true,
        strict_rfc1869: false,
        // Keep messages over 1 MiB on disk while the session runs, not in memory.
        spool_dir: spoolDir,
        spool_after: 1024 * 1024,
      },
      // Haraka reads the v1 line that proxy-front.ts puts back on every connection; off, no peer
      // may send one (a client could otherwise claim any address).
      haproxy: { enabled: settings.proxyProtocol, hosts: settings.proxyProtocol ? HARAKA_PROXY_PEERS : [] },
      headers: {
        add_received: true,
        // We replace only forged Authentication-Results claiming our authserv-id (RFC 8601 §5).
        clean_auth_results: false,
        show_version: false,
        max_lines: 1000,
        max_received: 100,
      },
      max: {
        // RFC 1870: advertised as SIZE and enforced at end of DATA.
        bytes: settings.maxMessageBytes,
        mime_parts: 1000,
        // RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
        line_length: 512,
        // Haraka would rewrap longer lines (and break DKIM); stored mail must be what was sent.
        data_line_length: 1024 * 1024,
      },
      message: {
        greeting: ['Postmesh'],
        helo: `${settings.hostname} Hello`,
        close: `${settings.hostname} closing connection`,
      },
      uuid: { banner_chars: 0, deny_chars: 0 },
    }),
  );
  files.set('me', `${settings.hostname}\n`);
  // Haraka reads results.ini for every connection and transaction (haraka-results); a missing
  // config file is never cached (haraka-config), so each read cost a stat of the file. Results
  // are never published to Redis here (there is no Redis).
  files.set('results.ini', ini({ main: { redis_publish: false } }));
  files.set(
    'tls.ini',
    ini({
      main: {
        key: settings.tls.keyFile,
        cert: settings.tls.certFile,
        dhparam: settings.tls.dhparamFile,
        // DESIGN §5: TLS 1.2 or newer.
        minVersion: 'TLSv1.2',
        requestCert: false,
        rejectUnauthorized: false,
      },
    }),
  );
  files.set('log.ini', ini({ main: { level: 'warn', timestamps: false, format: 'default' } }));
  files.set('plugins', `tls\n${POSTMESH_PLUGINS.join('\n')}\n`);
  // Haraka's default hook timeout is 30 s; the queue hook waits for the PubAck of large messages.
  for (const name of POSTMESH_PLUGINS) {
    files.set(`${name}.timeout`, `${name === 'postmesh_queue' ? settings.queueTimeoutSeconds : 30}\n`);
  }
  files.set('outbound.ini', ini({ main: { disabled: true } }));
  return files;
}

/** Haraka loads plugins as scripts; each shim hands over to hooks registered by the service. */
export function pluginShim(name: PostmeshPluginName): string {
  return [
    `// Generated by @postmesh/smtp-inbound at start; the hooks live in its compiled TypeScript.`,
    `const hooks = process[Symbol.for('postmesh.smtp-inbound.plugins')]?.[${JSON.stringify(name)}];`,
    `if (!hooks) throw new Error('postmesh plugin ${name} was not registered before Haraka started');`,
    `for (const [hook, fn] of Object.entries(hooks)) exports[hook] = fn;`,
    '',
  ].join('\n');
}

/** Writes a fresh config dir (old contents removed) and returns the Haraka root. */
export function writeHarakaRoot(root: string, settings: HarakaSettings): string {
  rmSync(join(root, 'config'), { recursive: true, force: true });
  rmSync(join(root, 'plugins'), { recursive: true, force: true });
  const spoolDir = join(root, 'spool');
  mkdirSync(join(root, 'config'), { recursive: true });
  mkdirSync(join(root, 'plugins'), { recursive: true });
  mkdirSync(spoolDir, { recursive: true });
  mkdirSync(join(root, 'queue'), { recursive: true });
  for (const [file, content] of harakaConfigFiles(settings, spoolDir)) {
    writeFileSync(join(root, 'config', file), content);
  }
  for (const name of POSTMESH_PLUGINS) writeFileSync(join(root, 'plugins', `${name}.js`), pluginShim(name));
  return root;
}
