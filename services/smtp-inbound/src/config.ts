import {
  authThrottleSchema,
  dnsServers,
  boolean,
  commonSchema,
  hostPort,
  integer,
  oneOf,
  optionalString,
  port,
  string,
  type ConfigOf,
} from '@postmesh/config';

/**
 * Environment of the smtp-inbound service; defaults are the local stack's. The variable names
 * are a contract with the Helm chart (charts/postmesh).
 */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9101),
  /** Address the SMTP listeners bind to. */
  POSTMESH_SMTP_HOST: string('127.0.0.1'),
  /** MX listener (port 25 in production, 2525 on the local stack). */
  POSTMESH_SMTP_PORT: port(2525),
  /** Submission (STARTTLS, RFC 6409) and submissions (implicit TLS, RFC 8314); 0 = off. */
  POSTMESH_SUBMISSION_PORT: port(2587, { allowZero: true }),
  POSTMESH_SUBMISSIONS_PORT: port(2465, { allowZero: true }),
  /** Failed-AUTH policy, the same variables and defaults as imap (shared KV `auth-failures`). */
  ...authThrottleSchema,
  /** Per-user sending limits on submission: messages per hour (shared) and recipients per message; 0 = off. */
  POSTMESH_SUBMISSION_MESSAGES_PER_HOUR: integer(1_000, { min: 0, max: 10_000_000 }),
  POSTMESH_SUBMISSION_RECIPIENTS_PER_MESSAGE: integer(100, { min: 0, max: 10_000 }),
  /** PEM certificate and key for STARTTLS; a self-signed pair is made in the data dir when unset. */
  POSTMESH_TLS_CERT_FILE: optionalString(),
  POSTMESH_TLS_KEY_FILE: optionalString(),
  /** Fallback check for renewed certificate files (milliseconds); same variable as imap. */
  POSTMESH_TLS_RELOAD_POLL_MS: integer(30_000, { min: 100, max: 3_600_000 }),
  /** Name in the banner, EHLO and Received:/Authentication-Results: (authserv-id, RFC 8601 §2.5). */
  POSTMESH_HOSTNAME: string('mx.example.test', { pattern: /^[A-Za-z0-9.-]{1,253}$/ }),
  /**
   * Every connection starts with a PROXY protocol header, v1 or v2 (behind a TCP load balancer
   * such as an AWS NLB); connections without one are closed. Same variable and meaning as imap.
   */
  POSTMESH_PROXY_PROTOCOL: boolean(false),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
  /**
   * Storage runs one owner per mailbox (its POSTMESH_STORAGE_OWNERSHIP, ADR 0007): publish each
   * message's local recipients as one job per partition of their users. Set it with storage's.
   */
  POSTMESH_STORAGE_OWNERSHIP: boolean(false),
  /** Storage's partition count (its POSTMESH_STORAGE_PARTITIONS); the same value on both. */
  POSTMESH_STORAGE_PARTITIONS: integer(64, { min: 1, max: 4_096 }),
  /**
   * Where a self-signed certificate is made when none is configured (the local stack). Nothing is
   * written here when POSTMESH_TLS_CERT_FILE and POSTMESH_TLS_KEY_FILE are set; Haraka's generated
   * configuration lives under the system temporary directory.
   */
  POSTMESH_SMTP_DATA_DIR: string('.data/smtp-inbound'),
  /** RFC 1870 SIZE: largest message accepted, in octets (default 50 MB). */
  POSTMESH_SMTP_MAX_MESSAGE_BYTES: integer(50 * 1024 * 1024, { min: 1024, max: 1024 * 1024 * 1024 }),
  /** RCPT TO per transaction; RFC 5321 §4.5.3.1.8 requires at least 100. */
  POSTMESH_SMTP_MAX_RECIPIENTS: integer(100, { min: 100, max: 10_000 }),
  /** Idle time before a session is closed (RFC 5321 §4.5.3.2.7 suggests 5 minutes). */
  POSTMESH_SMTP_IDLE_TIMEOUT_S: integer(300, { min: 5, max: 3_600 }),
  /** New connections per client IP per minute, counted across replicas (0 = no limit). */
  POSTMESH_SMTP_CONNECTIONS_PER_MINUTE: integer(600, { min: 0, max: 1_000_000 }),
  /** SMTP sessions open at once in one replica from one client IP; over it: 421 4.7.0 (0 = no cap). */
  POSTMESH_SMTP_MAX_CONNECTIONS_PER_IP: integer(50, { min: 0, max: 1_000_000 }),
  /** SMTP sessions open at once in one replica; over it: 421 4.7.0 (0 = no cap). */
  POSTMESH_SMTP_MAX_CONNECTIONS: integer(1_000, { min: 0, max: 1_000_000 }),
  /** Accepted messages per client IP per minute, counted across replicas (0 = no limit). */
  POSTMESH_SMTP_MESSAGES_PER_MINUTE: integer(6_000, { min: 0, max: 10_000_000 }),
  /**
   * The recursive resolvers asked for SPF, DKIM, DMARC and ARC records, comma-separated
   * (`10.0.0.53`, `[2001:db8::53]:53`, `127.0.0.1:5353`); unset: the system's (/etc/resolv.conf).
   */
  POSTMESH_DNS_SERVERS: dnsServers(),
  /** Verify SPF/DKIM/DMARC/ARC (on by default; off only for benchmarks of the queue path). */
  POSTMESH_SMTP_VERIFY_SENDERS: boolean(true),
  /**
   * Inbound spool sweep: `msg/` objects older than this that no queued or dead-lettered job
   * references are deleted (the longest an inbound job can wait, retries included, plus margin).
   */
  POSTMESH_SPOOL_SWEEP_MIN_AGE_MS: integer(7 * 24 * 3_600_000, { min: 60_000 }),
  /** How often this replica sweeps the inbound spool (0 = never). */
  POSTMESH_SPOOL_SWEEP_INTERVAL_MS: integer(3_600_000, { min: 0 }),
  /** How long a session may wait for the PubAck before answering 451. */
  POSTMESH_SMTP_QUEUE_TIMEOUT_MS: integer(15_000, { min: 100, max: 120_000 }),
  /**
   * rspamd's normal worker (its /checkv2 HTTP API), e.g. http://127.0.0.1:11333: every message is
   * scanned before the 250 and rspamd's action honoured. Unset: no content filtering.
   */
  POSTMESH_RSPAMD_URL: optionalString(),
  /** Longest a scan may take before the failure policy applies. */
  POSTMESH_RSPAMD_TIMEOUT_MS: integer(10_000, { min: 100, max: 120_000 }),
  /** When rspamd cannot answer: `accept` (with an X-Spam-Status saying not scanned) or `tempfail` (451). */
  POSTMESH_RSPAMD_ON_FAILURE: oneOf(['accept', 'tempfail'] as const, 'accept'),
  /** Scan authenticated submissions too, so a compromised account cannot send spam unnoticed. */
  POSTMESH_RSPAMD_SCAN_SUBMISSIONS: boolean(true),
  /**
   * Operators' own SMTP plugins (docs/smtp-plugins.md, API version 1): every *.js/*.mjs module in
   * this directory, in file-name order. Unset: none.
   */
  POSTMESH_SMTP_PLUGIN_DIR: optionalString(),
  /** Longest one plugin hook may take; over it the command gets 451. */
  POSTMESH_SMTP_PLUGIN_TIMEOUT_MS: integer(5_000, { min: 10, max: 60_000 }),
};

export type SmtpInboundConfig = ConfigOf<typeof schema>;
