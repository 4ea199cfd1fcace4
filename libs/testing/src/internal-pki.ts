/**
 * The internal certificate authority of a test run or a local stack: one CA, a certificate per
 * service identity (mutual TLS to storage's gRPC), a server certificate for nats-server, and an
 * NKey per NATS user. Laid out as `POSTMESH_IDENTITY_ROOT` expects (one directory per identity, the
 * shape of a mounted Kubernetes Secret), made once and reused when the files are already there.
 * Certificates come from the `openssl` CLI (Debian's), NKeys from nats.js.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import {
  OPERATOR_IDENTITY,
  SERVICE_IDENTITIES,
  identityUri,
  type InternalIdentity,
} from '@postmesh/identity';

export const PKI_IDENTITIES: readonly InternalIdentity[] = [...SERVICE_IDENTITIES, OPERATOR_IDENTITY];

/** Names the storage and NATS server certificates answer to (loopback, and in-cluster names). */
const SERVER_NAMES = ['localhost', 'IP:127.0.0.1', 'storage', 'postmesh-storage', 'nats', 'postmesh-nats'];

export interface IdentityFiles {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly nkeySeedFile: string;
  /** The NKey public key the NATS server lists for this user. */
  readonly nkeyPublic: string;
}

export class InternalPki {
  private constructor(
    /** `POSTMESH_IDENTITY_ROOT`: one subdirectory per identity. */
    readonly dir: string,
  ) {}

  get caFile(): string {
    return join(this.dir, 'ca', 'ca.crt');
  }

  /** nats-server's own certificate and key (`tls {}` on the client port). */
  get natsServer(): { certFile: string; keyFile: string; caFile: string } {
    const d = join(this.dir, 'nats-server');
    return { certFile: join(d, 'tls.crt'), keyFile: join(d, 'tls.key'), caFile: this.caFile };
  }

  identity(name: string): IdentityFiles {
    const dir = join(this.dir, name);
    const nkeySeedFile = join(dir, 'nats.nk');
    const seed = readFileSync(nkeySeedFile, 'utf8').trim();
    return {
      dir,
      caFile: join(dir, 'ca.crt'),
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      nkeySeedFile,
      nkeyPublic: nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey(),
    };
  }

  /**
   * Make (or reuse) the CA and every identity under `dir`. `extraIdentities` adds certificates
   * for names that are not services (tests use one to play an unknown caller).
   */
  static ensure(dir: string, extraIdentities: readonly string[] = []): InternalPki {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const caDir = join(dir, 'ca');
    const caCert = join(caDir, 'ca.crt');
    const caKey = join(caDir, 'ca.key');
    if (!existsSync(caCert) || !existsSync(caKey)) {
      mkdirSync(caDir, { recursive: true, mode: 0o700 });
      openssl([
        'req',
        '-x509',
        ...EC_KEY,
        '-keyout',
        caKey,
        '-out',
        caCert,
        '-days',
        '3650',
        '-subj',
        `/CN=Postmesh internal CA ${randomBytes(4).toString('hex')}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      chmodSync(caKey, 0o600);
    }
    const pki = new InternalPki(dir);
    for (const name of [...PKI_IDENTITIES, ...extraIdentities]) {
      pki.issue(name, caCert, caKey, name === 'storage' ? SERVER_NAMES : []);
    }
    pki.issue('nats-server', caCert, caKey, SERVER_NAMES, { nkey: false });
    return pki;
  }

  private issue(
    name: string,
    caCert: string,
    caKey: string,
    serverNames: readonly string[],
    { nkey = true } = {},
  ): void {
    const dir = join(this.dir, name);
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!existsSync(certFile) || !existsSync(keyFile)) {
      const csr = join(dir, 'tls.csr');
      const ext = join(dir, 'tls.ext');
      const san = [
        `URI:${identityUri(name)}`,
        `DNS:${name}`,
        ...serverNames.map((n) => (n.startsWith('IP:') ? n : `DNS:${n}`)),
      ];
      writeFileSync(
        ext,
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth,clientAuth',
          `subjectAltName=${[...new Set(san)].join(',')}`,
          '',
        ].join('\n'),
      );
      openssl(['req', '-new', ...EC_KEY, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`]);
      openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        caCert,
        '-CAkey',
        caKey,
        '-set_serial',
        `0x${randomBytes(12).toString('hex')}`,
        '-days',
        '825',
        '-extfile',
        ext,
        '-out',
        certFile,
      ]);
      rmSync(csr, { force: true });
      rmSync(ext, { force: true });
      chmodSync(keyFile, 0o600);
    }
    copyFileSync(caCert, join(dir, 'ca.crt'));
    const seedFile = join(dir, 'nats.nk');
    if (nkey && !existsSync(seedFile)) {
      writeFileSync(seedFile, `${new TextDecoder().decode(nkeys.createUser().getSeed())}\n`, { mode: 0o600 });
    }
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: readonly string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args[0] ?? ''} failed: ${stderr || String(error)}`);
  }
}
