import { boolean, commonSchema, hostPort, integer, optionalString, port, string } from '@postmesh/config';

/**
 * Environment of the IMAP proxy; defaults are the local stack's. The names are a contract with
 * the Helm chart (charts/postmesh). The variables it shares with imap mean the same there.
 */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9106),
  POSTMESH_IMAP_HOST: string('127.0.0.1'),
  /** Plain port with STARTTLS (143 in production). 0 picks a free port. */
  POSTMESH_IMAP_PORT: port(2143, { allowZero: true }),
  /** Implicit-TLS port (993 in production). 0 picks a free port; unset the certificate to drop it. */
  POSTMESH_IMAPS_PORT: port(2993, { allowZero: true }),
  /** The proxy's own PEM certificate chain and key; without them a self-signed pair is made. */
  POSTMESH_TLS_CERT_FILE: optionalString(),
  POSTMESH_TLS_KEY_FILE: optionalString(),
  /** How often the certificate files are compared for a renewal, besides watching them. */
  POSTMESH_TLS_RELOAD_POLL_MS: integer(30_000, { min: 100, max: 3_600_000 }),
  /** The name clients connect to: the self-signed certificate's name (default: this host's name). */
  POSTMESH_HOSTNAME: optionalString(),
  /** Where generated material (the self-signed certificate) is kept. */
  POSTMESH_IMAP_PROXY_DATA_DIR: string('.data/imap-proxy'),
  /** Every client connection starts with a PROXY protocol header (behind a TCP load balancer). */
  POSTMESH_PROXY_PROTOCOL: boolean(false),
  /** Allow LOGIN/AUTHENTICATE without TLS (development and tests on loopback only). */
  POSTMESH_IMAP_ALLOW_PLAINTEXT: boolean(false),
  /** The backends' APPENDLIMIT (their POSTMESH_IMAP_APPEND_LIMIT), announced before login. */
  POSTMESH_IMAP_APPEND_LIMIT: integer(64 * 1024 * 1024, { min: 1024, max: 1024 * 1024 * 1024 }),
  /** Longest command line before login; a longer one gets `BAD` and is dropped. */
  POSTMESH_IMAP_PROXY_MAX_LINE: integer(8 * 1024, { min: 512, max: 64 * 1024 }),
  /** Time to log in; then `* BYE` (autologout before authentication). */
  POSTMESH_IMAP_PREAUTH_TIMEOUT_MS: integer(60_000, { min: 1_000, max: 3_600_000 }),
  /**
   * A spliced connection with no bytes either way for this long is cut. Above the backends'
   * autologout (POSTMESH_IMAP_IDLE_TIMEOUT_MS, 30 min), which ends an idle session properly first.
   */
  POSTMESH_IMAP_PROXY_IDLE_TIMEOUT_MS: integer(35 * 60_000, { min: 1_000, max: 24 * 3_600_000 }),
  /** Connecting to a backend (TCP, TLS and its greeting) within this, or the next one is tried. */
  POSTMESH_IMAP_PROXY_CONNECT_TIMEOUT_MS: integer(5_000, { min: 100, max: 60_000 }),
  /** Failed logins on one connection before `* BYE` (the backends' throttle counts them too). */
  POSTMESH_IMAP_PROXY_MAX_AUTH_FAILURES: integer(3, { min: 1, max: 100 }),
  /** Open client connections; more get `* BYE`. */
  POSTMESH_IMAP_MAX_CONNECTIONS: integer(10_000, { min: 1, max: 1_000_000 }),
  /**
   * The TLS name the backends' certificate (storage's) is verified against; unset, the host of
   * the address each backend publishes.
   */
  POSTMESH_IMAP_PROXY_BACKEND_SERVERNAME: optionalString(),
  /** Storage's gRPC address, for resolving a login to its user (Directory.GetUser). */
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
  /** Storage's partition count (its POSTMESH_STORAGE_PARTITIONS); must be the same everywhere. */
  POSTMESH_STORAGE_PARTITIONS: integer(64, { min: 1, max: 4_096 }),
};
