import { randomBytes } from 'node:crypto';
import { FerretDb } from './ferretdb.js';
import { NatsServer } from './nats.js';

/**
 * What an integration suite needs: a NATS JetStream and a MongoDB-compatible database.
 * By default each suite gets its own nats-server and FerretDB on free ports with temporary data
 * (so suites run in parallel and leave nothing behind). With `NATS_URL` / `MONGODB_URI` set, the
 * same suites run against those instead (a NATS cluster, a MongoDB 7 replica set); each suite
 * then uses a database of its own name, dropped afterwards by the caller.
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
  stop(): Promise<void>;
}

export interface TestEnvironmentOptions {
  readonly nats?: boolean;
  readonly mongo?: boolean;
}

export async function startTestEnvironment(options: TestEnvironmentOptions = {}): Promise<TestEnvironment> {
  const wantNats = options.nats ?? true;
  const wantMongo = options.mongo ?? true;
  const externalNats = process.env.NATS_URL;
  const externalMongo = process.env.MONGODB_URI;
  const [nats, ferret] = await Promise.all([
    wantNats && !externalNats ? NatsServer.start() : Promise.resolve(undefined),
    wantMongo && !externalMongo ? FerretDb.start() : Promise.resolve(undefined),
  ]);
  return {
    natsUrl: nats?.url ?? externalNats ?? '',
    natsMonitorUrl: nats?.monitorUrl ?? process.env.NATS_MONITOR_URL,
    mongoUri: ferret?.uri ?? externalMongo ?? '',
    database: `postmesh_test_${randomBytes(6).toString('hex')}`,
    nats,
    ferret,
    async stop() {
      await Promise.all([nats?.stop(), ferret?.stop()]);
    },
  };
}
