import {
  authThrottleSchema,
  boolean,
  commonSchema,
  hostPort,
  integer,
  optionalString,
  port,
  string,
} from '@postmesh/config';

/**
 * Environment of the imap service; defaults are the local stack's. The names are a contract
 * with the Helm chart (charts/postmesh).
 */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9103),
  POSTMESH_IMAP_HOST: string('127.0.0.1'),
  /** Plain port with STARTTLS (143 in production). 0 picks a free port. */
  POSTMESH_IMAP_PORT: port(1143, { allowZero: true }),
  /** Implicit-TLS port (993 in production). 0 picks a free port. */
  POSTMESH_IMAPS_PORT: port(1993, { allowZero: true }),
  /**
   * ManageSieve (RFC 5804) for users' Sieve scripts, on POSTMESH_IMAP_HOST with the IMAP
   * certificate (STARTTLS). The port is 4190 in the chart and `npm start`; the default 0 picks a
   * free port (logged), so test suites that start imap never collide on it.
   */
  POSTMESH_MANAGESIEVE_ENABLED: boolean(true),
  POSTMESH_MANAGESIEVE_PORT: port(0, { allowZero: true }),
  /** PEM certificate chain and key; without them a self-signed pair is made under the data dir. */
  POSTMESH_TLS_CERT_FILE: optionalString(),
  POSTMESH_TLS_KEY_FILE: optionalString(),
  /** How often the certificate files are compared for a renewal, besides watching them. */
  POSTMESH_TLS_RELOAD_POLL_MS: integer(30_000, { min: 100, max: 3_600_000 }),
  /** The name clients connect to: the self-signed certificate's name (default: this host's name). */
  POSTMESH_HOSTNAME: optionalString(),
  /** Where generated material (the self-signed certificate) is kept. */
  POSTMESH_IMAP_DATA_DIR: string('.data/imap'),
  /** Every connection starts with a PROXY protocol header, v1 or v2 (behind a TCP load balancer). */
  POSTMESH_PROXY_PROTOCOL: boolean(false),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
  /**
   * Storage runs with partition ownership (its POSTMESH_STORAGE_OWNERSHIP): each user's Mailstore
   * calls go to the replica that owns the user, found in the `storage-partitions` KV bucket.
   */
  POSTMESH_STORAGE_OWNERSHIP: boolean(false),
  /** Storage's partition count (its POSTMESH_STORAGE_PARTITIONS); must be the same everywhere. */
  POSTMESH_STORAGE_PARTITIONS: integer(64, { min: 1, max: 4_096 }),
  /** Allow LOGIN/AUTHENTICATE without TLS (development and tests on loopback only). */
  POSTMESH_IMAP_ALLOW_PLAINTEXT: boolean(false),
  /** Largest message APPEND accepts (APPENDLIMIT, RFC 7889). */
  POSTMESH_IMAP_APPEND_LIMIT: integer(64 * 1024 * 1024, { min: 1024, max: 1024 * 1024 * 1024 }),
  POSTMESH_IMAP_MAX_LINE: integer(64 * 1024, { min: 1024, max: 1024 * 1024 }),
  /**
   * Literal octets (APPEND messages) all connections may hold at once; at least the APPEND
   * limit. A command that would exceed it waits up to POSTMESH_IMAP_LITERAL_WAIT_MS, then gets
   * `NO [LIMIT]`.
   */
  POSTMESH_IMAP_LITERAL_MEMORY: integer(256 * 1024 * 1024, { min: 64 * 1024, max: 64 * 1024 * 1024 * 1024 }),
  POSTMESH_IMAP_LITERAL_WAIT_MS: integer(10_000, { min: 0, max: 600_000 }),
  /** Autologout after this much inactivity once authenticated (RFC 9051 §5.4: ≥ 30 min). */
  POSTMESH_IMAP_IDLE_TIMEOUT_MS: integer(30 * 60_000, { min: 1_000, max: 24 * 3_600_000 }),
  /** Autologout before authentication. */
  POSTMESH_IMAP_PREAUTH_TIMEOUT_MS: integer(60_000, { min: 1_000, max: 3_600_000 }),
  /** Open connections per imap process; more get `* BYE` and are closed. */
  POSTMESH_IMAP_MAX_CONNECTIONS: integer(10_000, { min: 1, max: 1_000_000 }),
  /** Open connections from one client address (after the PROXY header); more get `* BYE`. */
  POSTMESH_IMAP_MAX_CONNECTIONS_PER_IP: integer(50, { min: 1, max: 1_000_000 }),
  /** Sustained commands per second per connection (bursts of 4x are allowed). */
  POSTMESH_IMAP_COMMAND_RATE: integer(500, { min: 1, max: 1_000_000 }),
  /** How often an idling session polls storage for changes it may have missed. */
  POSTMESH_IMAP_IDLE_POLL_MS: integer(60_000, { min: 100, max: 3_600_000 }),
  /** Failed logins (shared with smtp-inbound via NATS KV). */
  ...authThrottleSchema,
};
