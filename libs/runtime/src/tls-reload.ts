/**
 * Certificates renew without restarts: cert-manager (or an operator) replaces the mounted
 * `tls.crt`/`tls.key`, and the server must serve the new pair to new connections. Kubernetes
 * updates a Secret volume by writing a new timestamped directory and swapping the `..data`
 * symlink, so a watch on the files themselves can miss it: this watches their directories and
 * also polls (content hash) as a fallback. Changes are debounced, because the certificate and the
 * key land as separate events; a pair that does not load (key and certificate from different
 * renewals, half-written files) is reported and the current context stays in use until the next
 * change.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

export interface CertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** The PEM contents of a certificate and its key, as read from the files. */
export interface CertificatePair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface CertificateWatchOptions {
  /** Quiet time after the last change before reloading. */
  readonly debounceMs?: number;
  /** Poll interval of the fallback check. */
  readonly pollMs?: number;
  /** Options every context gets besides cert and key (e.g. minVersion). */
  readonly contextOptions?: SecureContextOptions;
  /** `pair` is what the context was made from, for servers that build their own contexts (Haraka). */
  readonly onReload: (context: SecureContext, pair: CertificatePair) => void;
  readonly onError: (error: unknown) => void;
}

export interface CertificateWatch {
  close(): void;
}

function fingerprint(files: CertificateFiles): string {
  const hash = createHash('sha256');
  for (const file of [files.certFile, files.keyFile]) {
    try {
      hash.update(readFileSync(file));
    } catch {
      hash.update('missing');
    }
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** Load the pair into a context (throws when the files are missing or do not match). */
export function loadCertificate(files: CertificateFiles, options: SecureContextOptions = {}): SecureContext {
  return loadCertificatePair(files, options).context;
}

function loadCertificatePair(
  files: CertificateFiles,
  options: SecureContextOptions,
): { context: SecureContext; pair: CertificatePair } {
  const pair = { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
  return { context: createSecureContext({ ...options, ...pair }), pair };
}

export function watchCertificate(
  files: CertificateFiles,
  options: CertificateWatchOptions,
): CertificateWatch {
  const debounceMs = options.debounceMs ?? 1_000;
  let loaded = fingerprint(files);
  let timer: NodeJS.Timeout | undefined;
  const reload = (): void => {
    timer = undefined;
    const now = fingerprint(files);
    if (now === loaded) return;
    try {
      const { context, pair } = loadCertificatePair(files, options.contextOptions ?? {});
      loaded = now;
      options.onReload(context, pair);
    } catch (error) {
      // Leave `loaded` as it was: the next event or poll tries again.
      options.onError(error);
    }
  };
  const changed = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(files.certFile), dirname(files.keyFile)])) {
    try {
      const watcher = watch(dir, { persistent: false }, changed);
      watcher.on('error', (error) => options.onError(error));
      watchers.push(watcher);
    } catch (error) {
      options.onError(error); // polling still covers it
    }
  }
  const poll = setInterval(() => {
    if (timer === undefined && fingerprint(files) !== loaded) changed();
  }, options.pollMs ?? 30_000);
  poll.unref();
  return {
    close() {
      clearInterval(poll);
      if (timer !== undefined) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
