/**
 * A service's identity inside the system: the certificate it presents to storage's gRPC server
 * (mutual TLS; storage allows each caller only the RPCs it needs) and the NATS user it connects
 * as over TLS (NATS allows each user only its own subjects). Both come from one directory per
 * identity, a Kubernetes Secret mounted as files:
 *
 *   <POSTMESH_IDENTITY_ROOT>/<identity>/ca.crt     the internal CA (verifies storage and NATS)
 *                                      tls.crt    this identity's certificate (CN = identity, SAN
 *                                                 URI spiffe://postmesh/<identity>)
 *                                      tls.key    its private key
 *                                      nats.nk    its NATS NKey seed, or
 *                                      nats.password  its NATS password (user = identity)
 *
 * `POSTMESH_INSECURE_INTERNAL=true` turns all of this off for development only (plaintext gRPC
 * without caller identity, NATS without TLS or user), with a warning at every start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import {
  nkeyAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type TlsOptions,
} from '@nats-io/transport-node';
import { ConfigError } from '@postmesh/config';

/** The services, each its own identity (certificate CN and NATS user name). */
export const SERVICE_IDENTITIES = ['storage', 'smtp-inbound', 'imap', 'mta-delivery', 'admin'] as const;
export type ServiceIdentity = (typeof SERVICE_IDENTITIES)[number];
/**
 * Operators' tools (the CLI, the test harness, a break-glass shell): every RPC and subject.
 * Issued by the local stack and the tests; a cluster issues it only on purpose (docs/operations.md).
 */
export const OPERATOR_IDENTITY = 'operator';
export type InternalIdentity = ServiceIdentity | typeof OPERATOR_IDENTITY;

/** The SPIFFE-style URI a certificate carries for an identity. */
export const identityUri = (identity: string): string => `spiffe://postmesh/${identity}`;

export interface InternalSecurity {
  /** The identity name (`storage`, `smtp-inbound`, …), or `undefined` when insecure. */
  readonly identity: string | undefined;
  readonly insecure: boolean;
  /** Credentials for a gRPC client to storage. */
  grpcClientCredentials(): ChannelCredentials;
  /** Credentials for storage's gRPC server: TLS, and a certificate from the internal CA required. */
  grpcServerCredentials(): ServerCredentials;
  /** What `Bus.connect` / nats.js `connect` need on top of the server list. */
  natsOptions(): { tls?: TlsOptions; authenticator?: Authenticator };
}

export interface IdentityMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly natsSeed?: Uint8Array;
  readonly natsPassword?: string;
}

/** Reads `<dir>/<identity>/…`; a missing file is a ConfigError naming it. */
export function readIdentityMaterial(dir: string, identity: string): IdentityMaterial {
  const base = join(dir, identity);
  const problems: { variable: string; problem: string }[] = [];
  const need = (file: string): Buffer => {
    const path = join(base, file);
    try {
      return readFileSync(path);
    } catch (error) {
      problems.push({
        variable: 'POSTMESH_IDENTITY_ROOT',
        problem: `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      });
      return Buffer.alloc(0);
    }
  };
  const ca = need('ca.crt');
  const cert = need('tls.crt');
  const key = need('tls.key');
  const seedFile = join(base, 'nats.nk');
  const passwordFile = join(base, 'nats.password');
  let natsSeed: Uint8Array | undefined;
  let natsPassword: string | undefined;
  if (existsSync(seedFile)) natsSeed = new TextEncoder().encode(readFileSync(seedFile, 'utf8').trim());
  else if (existsSync(passwordFile)) natsPassword = readFileSync(passwordFile, 'utf8').trim();
  else
    problems.push({
      variable: 'POSTMESH_IDENTITY_ROOT',
      problem: `neither ${seedFile} nor ${passwordFile} exists (the NATS user of ${identity})`,
    });
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    ca,
    cert,
    key,
    ...(natsSeed === undefined ? {} : { natsSeed }),
    ...(natsPassword === undefined ? {} : { natsPassword }),
  };
}

/** Mutual TLS and a NATS user from the identity's files. */
export function mutualTls(identity: string, material: IdentityMaterial): InternalSecurity {
  return {
    identity,
    insecure: false,
    grpcClientCredentials: () => credentials.createSsl(material.ca, material.key, material.cert),
    // checkClientCertificate: a caller without a certificate from the internal CA never gets a
    // TLS session, so every call that reaches a handler has an identity to check.
    grpcServerCredentials: () =>
      ServerCredentials.createSsl(
        material.ca,
        [{ cert_chain: material.cert, private_key: material.key }],
        true,
      ),
    natsOptions: () => ({
      tls: { ca: material.ca.toString('utf8') },
      authenticator:
        material.natsSeed !== undefined
          ? nkeyAuthenticator(material.natsSeed)
          : usernamePasswordAuthenticator(identity, material.natsPassword ?? ''),
    }),
  };
}

/** Development only: no TLS, no caller identity, no NATS user. */
export const insecureInternal: InternalSecurity = {
  identity: undefined,
  insecure: true,
  grpcClientCredentials: () => credentials.createInsecure(),
  grpcServerCredentials: () => ServerCredentials.createInsecure(),
  natsOptions: () => ({}),
};

/**
 * The service's internal security from its configuration: its identity directory, or the
 * explicit development opt-out. Neither is a configuration error (never insecure by default).
 */
export function loadInternalSecurity(
  config: {
    readonly POSTMESH_IDENTITY_ROOT: string | undefined;
    readonly POSTMESH_INSECURE_INTERNAL: boolean;
  },
  identity: string,
): InternalSecurity {
  if (config.POSTMESH_INSECURE_INTERNAL) return insecureInternal;
  if (config.POSTMESH_IDENTITY_ROOT === undefined) {
    throw new ConfigError([
      {
        variable: 'POSTMESH_IDENTITY_ROOT',
        problem:
          'required: the directory of the internal certificates and NATS users (or POSTMESH_INSECURE_INTERNAL=true, for development only)',
      },
    ]);
  }
  return mutualTls(identity, readIdentityMaterial(config.POSTMESH_IDENTITY_ROOT, identity));
}
