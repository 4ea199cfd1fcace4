export { repoRoot, binDir } from './repo.js';
export {
  installTool,
  installTools,
  isInstalled,
  requireTool,
  toolPath,
  MissingToolchainError,
  type NativeTool,
} from './binaries.js';
export { ManagedProcess, freePort, waitForPort, type ManagedProcessOptions } from './process.js';
export { metricValue, waitFor } from './probes.js';
export { NatsServer, type NatsServerOptions } from './nats.js';
export {
  DB_BACKENDS,
  DEFAULT_DB_BACKEND,
  FerretDb,
  dbBackendFromEnv,
  type DbBackend,
  type FerretDbOptions,
} from './ferretdb.js';
export { PostgresServer, postgresBinDir, type PostgresOptions } from './postgres.js';
export {
  caCertificate,
  pkiSecurity,
  startTestEnvironment,
  type TestEnvironment,
  type TestEnvironmentOptions,
} from './environment.js';
export { InternalPki, PKI_IDENTITIES, type IdentityFiles } from './internal-pki.js';
export { NatsCluster } from './nats-cluster.js';
export { proxyV2Header } from './proxy-protocol.js';
export { installPythonTools, pythonTool, pythonVenv } from './python-tools.js';
export { MotoServer } from './moto.js';
export { FakeDnsServer, type DnsZones } from './dns-server.js';
export { RspamdServer, type RspamdOptions } from './rspamd.js';
export {
  startService,
  writeKekFile,
  type RunningService,
  type ServiceName,
  type StartServiceOptions,
} from './services.js';
