import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { mutualTls, readIdentityMaterial, type InternalSecurity } from '@postmesh/identity';
import { FerretDb, type DbBackend } from './ferretdb.js';
import { InternalPki } from './internal-pki.js';
import { NatsServer } from './nats.js';

/**
 * What an integration suite needs: a NATS JetStream and a MongoDB-compatible database, and the
 * internal CA and identities every service uses to reach them (the secure path is the tested
 * path: TLS and a NATS user per service, mutual TLS to storage's gRPC).
 * By default each suite gets its own nats-server and FerretDB on free ports with temporary data
 * (so suites run in parallel and leave nothing behind). With `NATS_URL` / `MONGODB_URI` set, the
 * same suites run against those instead (a NATS cluster, a MongoDB 7 replica set); each suite
 * then uses a database of its own name, dropped afterwards by the caller. The local FerretDB keeps
 * its data in SQLite or in a PostgreSQL cluster of its own, as POSTMESH_DB_BACKEND says. An external NATS must
 * then be set up with this run's users itself (see docs/operations.md); none are sent to it.
 */
export interface TestEnvironment {
  readonly natsUrl: string;
  readonly natsMonitorUrl: string | undefined;
  readonly mongoUri: string;
  /** A database name unique to this suite. */
  readonly database: string;
  /** The local nats-server, when this environment started one (fault tests need it). */
  readonly nats: NatsServer | undefined;
  readonly ferret: FerretDb | undefined;
  /** The internal CA and one certificate and NATS user per identity. */
  readonly pki: InternalPki;
  /**
   * Environment for a service process: where NATS is and where its identity lives
   * (`NATS_URL`, `NATS_MONITOR_URL`, `POSTMESH_IDENTITY_ROOT`). Spread it into the child's env.
   */
  readonly serviceEnv: Readonly<Record<string, string>>;
  /** An identity's credentials (gRPC channel and server credentials, NATS options). */
  security(identity?: string): InternalSecurity;
  /** nats.js `connect()` options as `identity` (default the all-permitted `operator`). */
  natsOptions(identity?: string): NodeConnectionOptions;
  /** `Bus.connect` options (`url`, `tls`, `authenticator`) as `identity` (default `operator`). */
  busOptions(identity?: string): { url: string } & ReturnType<InternalSecurity['natsOptions']>;
  stop(): Promise<void>;
}

export interface TestEnvironmentOptions {
  readonly nats?: boolean;
  readonly mongo?: boolean;
  /**
   * FerretDB's backend; default POSTMESH_DB_BACKEND, else the project's default (sqlite). Given
   * here, the suite gets a local FerretDB on that backend even when MONGODB_URI is set: it is
   * testing the backend itself.
   */
  readonly dbBackend?: DbBackend;
  /**
   * Use this CA and these identities instead of making new ones: for suites that start their own
   * NATS with it (a `NatsCluster`), whose clients then connect with its users over TLS.
   */
  readonly pki?: InternalPki;
}

/** Credentials of one identity of `pki`. */
export function pkiSecurity(pki: InternalPki, identity: string): InternalSecurity {
  return mutualTls(identity, readIdentityMaterial(pki.dir, identity));
}

export async function startTestEnvironment(options: TestEnvironmentOptions = {}): Promise<TestEnvironment> {
  const wantNats = options.nats ?? true;
  const wantMongo = options.mongo ?? true;
  const externalNats = process.env.NATS_URL;
  const externalMongo = process.env.MONGODB_URI;
  const pkiDir = options.pki === undefined ? mkdtempSync(join(tmpdir(), 'postmesh-pki-')) : undefined;
  const pki = options.pki ?? InternalPki.ensure(pkiDir ?? '');
  const [nats, ferret] = await Promise.all([
    wantNats && !externalNats ? NatsServer.start({ pki }) : Promise.resolve(undefined),
    wantMongo && (!externalMongo || options.dbBackend !== undefined)
      ? FerretDb.start(options.dbBackend === undefined ? {} : { backend: options.dbBackend })
      : Promise.resolve(undefined),
  ]);
  const natsUrl = nats?.url ?? externalNats ?? '';
  const natsMonitorUrl = nats?.monitorUrl ?? process.env.NATS_MONITOR_URL;
  const security = (identity: string = 'operator'): InternalSecurity => pkiSecurity(pki, identity);
  // Our own server (or the caller's, set up with `options.pki`) requires TLS and a user; an
  // external one is taken as it is.
  const securedNats = nats !== undefined || options.pki !== undefined;
  const natsSecurity = (identity: string) => (securedNats ? security(identity).natsOptions() : {});
  return {
    natsUrl,
    natsMonitorUrl,
    mongoUri: ferret?.uri ?? externalMongo ?? '',
    database: `postmesh_test_${randomBytes(6).toString('hex')}`,
    nats,
    ferret,
    pki,
    serviceEnv: {
      NATS_URL: natsUrl,
      NATS_MONITOR_URL: natsMonitorUrl ?? '',
      POSTMESH_IDENTITY_ROOT: pki.dir,
    },
    security,
    natsOptions: (identity = 'operator') => ({
      servers: natsUrl.split(','),
      ...natsSecurity(identity),
    }),
    busOptions: (identity = 'operator') => ({ url: natsUrl, ...natsSecurity(identity) }),
    async stop() {
      await Promise.all([nats?.stop(), ferret?.stop()]);
      if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
    },
  };
}

/** The CA certificate of `pki`, for clients that verify storage or NATS. */
export const caCertificate = (pki: InternalPki): Buffer => readFileSync(pki.caFile);
