/**
 * Certificate reload without a restart (src/tls-reload.ts): a renewed pair is served to new
 * connections, a pair that does not load (certificate and key of different renewals) is reported
 * and the current one stays, and a Kubernetes Secret's `..data` symlink swap is seen.
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecureContext } from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ensureSelfSignedCertificate } from '../src/self-signed.js';
import {
  loadCertificate,
  watchCertificate,
  type CertificatePair,
  type CertificateWatch,
} from '../src/tls-reload.js';

const root = mkdtempSync(join(tmpdir(), 'postmesh-tls-reload-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Two distinct pairs (two renewals), made once for the file. */
const pairA = ensureSelfSignedCertificate({
  dir: join(root, 'a'),
  certName: 'tls.crt',
  keyName: 'tls.key',
  hostname: 'a.example.test',
});
const pairB = ensureSelfSignedCertificate({
  dir: join(root, 'b'),
  certName: 'tls.crt',
  keyName: 'tls.key',
  hostname: 'b.example.test',
});
const subjectOf = (pair: CertificatePair): string => new X509Certificate(pair.cert).subject;

let dirs = 0;
/** A fresh directory holding `pair` as tls.crt/tls.key. */
function mounted(pair: { certFile: string; keyFile: string }): { certFile: string; keyFile: string } {
  const dir = join(root, `mount-${++dirs}`);
  mkdirSync(dir);
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  copyFileSync(pair.certFile, files.certFile);
  copyFileSync(pair.keyFile, files.keyFile);
  return files;
}

/** Replaces a file atomically (write then rename), as a careful writer does. */
function replace(target: string, source: string): void {
  copyFileSync(source, `${target}.new`);
  renameSync(`${target}.new`, target);
}

async function until(what: string, done: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const watches: CertificateWatch[] = [];
afterEach(() => {
  for (const watch of watches.splice(0)) watch.close();
});

function watchOf(files: { certFile: string; keyFile: string }) {
  const reloads: { context: SecureContext; pair: CertificatePair }[] = [];
  const errors: unknown[] = [];
  watches.push(
    watchCertificate(files, {
      debounceMs: 30,
      pollMs: 100,
      onReload: (context, pair) => reloads.push({ context, pair }),
      onError: (error) => errors.push(error),
    }),
  );
  return { reloads, errors };
}

describe('loadCertificate', () => {
  it('loads a matching pair into a context', () => {
    expect(loadCertificate(pairA, { minVersion: 'TLSv1.2' })).toBeDefined();
  });

  it('throws for a missing file and for a certificate with the key of another pair', () => {
    expect(() => loadCertificate({ certFile: join(root, 'none.crt'), keyFile: pairA.keyFile })).toThrow(
      /ENOENT/,
    );
    expect(() => loadCertificate({ certFile: pairA.certFile, keyFile: pairB.keyFile })).toThrow();
  });
});

describe('watchCertificate', () => {
  it('reloads when the pair is renewed, handing over the new files', async () => {
    const files = mounted(pairA);
    const { reloads, errors } = watchOf(files);
    replace(files.keyFile, pairB.keyFile);
    replace(files.certFile, pairB.certFile);
    await until('the reload', () => reloads.length > 0);
    expect(subjectOf(reloads[0]!.pair)).toContain('CN=b.example.test');
    expect(reloads[0]!.pair.key.equals(readFileSync(pairB.keyFile))).toBe(true);
    expect(errors).toEqual([]);
  });

  it('reports a half-renewed pair, keeps the current one, and reloads once the pair matches', async () => {
    const files = mounted(pairA);
    const { reloads, errors } = watchOf(files);
    replace(files.certFile, pairB.certFile); // the key is still A's
    await until('the error', () => errors.length > 0);
    expect(reloads).toEqual([]);
    replace(files.keyFile, pairB.keyFile);
    await until('the reload', () => reloads.length > 0);
    expect(subjectOf(reloads[0]!.pair)).toContain('CN=b.example.test');
  });

  it("follows a Kubernetes Secret volume's ..data symlink swap", async () => {
    // The kubelet writes a new timestamped directory and repoints `..data`; tls.crt and tls.key
    // are symlinks through `..data`, so the files themselves never change.
    const dir = join(root, `secret-${++dirs}`);
    mkdirSync(join(dir, '..2026_01'), { recursive: true });
    copyFileSync(pairA.certFile, join(dir, '..2026_01', 'tls.crt'));
    copyFileSync(pairA.keyFile, join(dir, '..2026_01', 'tls.key'));
    symlinkSync('..2026_01', join(dir, '..data'));
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls.key'));
    const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
    expect(loadCertificate(files)).toBeDefined();
    const { reloads, errors } = watchOf(files);
    mkdirSync(join(dir, '..2026_02'));
    copyFileSync(pairB.certFile, join(dir, '..2026_02', 'tls.crt'));
    copyFileSync(pairB.keyFile, join(dir, '..2026_02', 'tls.key'));
    symlinkSync('..2026_02', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await until('the reload', () => reloads.length > 0);
    expect(subjectOf(reloads[0]!.pair)).toContain('CN=b.example.test');
    expect(errors).toEqual([]);
  });

  it('does not reload for a write of the same contents, nor after close', async () => {
    const files = mounted(pairA);
    const { reloads } = watchOf(files);
    replace(files.certFile, pairA.certFile);
    // Several debounce and poll periods: an unchanged pair is not a renewal.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reloads).toEqual([]);
    watches.splice(0).forEach((watch) => watch.close());
    replace(files.keyFile, pairB.keyFile);
    replace(files.certFile, pairB.certFile);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reloads).toEqual([]);
  });
});
