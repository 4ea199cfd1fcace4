import { boolean, commonSchema, hostPort, integer, optionalString, port, string } from '@postmesh/config';

/** Environment of the admin service; defaults are the local stack's. */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9105),
  POSTMESH_HTTP_HOST: string('127.0.0.1'),
  POSTMESH_HTTP_PORT: port(8080, { allowZero: true }),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
  /**
   * Storage runs with partition ownership (its POSTMESH_STORAGE_OWNERSHIP): the Mailstore calls
   * admin makes (Sieve scripts, team mailboxes' ACLs) go to the replica that owns the user, found
   * in the `storage-partitions` KV bucket.
   */
  POSTMESH_STORAGE_OWNERSHIP: boolean(false),
  /** Storage's partition count (its POSTMESH_STORAGE_PARTITIONS); must be the same everywhere. */
  POSTMESH_STORAGE_PARTITIONS: integer(64, { min: 1, max: 4_096 }),
  /** Bootstrap owner (DESIGN §6): created in storage at start when no admin has this email. */
  POSTMESH_OWNER_EMAIL: optionalString(),
  POSTMESH_OWNER_PASSWORD: optionalString(),
  /** Mark the session cookie Secure: true whenever the console is served over TLS (the chart). */
  POSTMESH_COOKIE_SECURE: boolean(false),
  /**
   * Reverse proxies in front of the API (the ingress): the client IP is taken from
   * X-Forwarded-For that many hops from the right, never from an address the client wrote itself.
   * 0 (the default) ignores X-Forwarded-For.
   */
  POSTMESH_TRUST_PROXY_HOPS: integer(0, { min: 0, max: 10 }),
  /** Older spelling: `true` means one proxy hop (when POSTMESH_TRUST_PROXY_HOPS is 0). */
  POSTMESH_TRUST_PROXY: boolean(false),
  POSTMESH_SESSION_IDLE_SECONDS: integer(1800, { min: 1, max: 7 * 86400 }),
  POSTMESH_SESSION_ABSOLUTE_SECONDS: integer(12 * 3600, { min: 1, max: 30 * 86400 }),
  POSTMESH_LOGIN_MAX_FAILURES_PER_IP: integer(10, { min: 1, max: 100_000 }),
  POSTMESH_LOGIN_WINDOW_SECONDS: integer(900, { min: 1, max: 86400 }),
  /** Sign-in attempts per account (shared with IMAP and SMTP AUTH) in the window before 429. */
  POSTMESH_LOGIN_MAX_FAILURES_PER_ACCOUNT: integer(10, { min: 1, max: 100_000 }),
  /** Progressive delay: from the third failure on, this doubled per failure, at most 8 s. */
  POSTMESH_LOGIN_BASE_DELAY_MS: integer(500, { min: 0, max: 60_000 }),
  /** MX target shown by the DNS wizard. */
  POSTMESH_MAIL_HOST: string('mail.example.test'),
  /** Comma-separated DNS servers for the live record check; empty means the system's. */
  POSTMESH_DNS_SERVERS: optionalString(),
  /**
   * Comma-separated `host:port` where mail clients meet the TLS certificate, checked by the
   * console's overview; empty means POSTMESH_MAIL_HOST on 993 (IMAPS) and 465 (submissions).
   */
  POSTMESH_TLS_CHECK_TARGETS: optionalString(),
  /** `service=http://host:opsPort,…` probed by /api/v1/health. */
  POSTMESH_HEALTH_TARGETS: string(
    'smtp-inbound=http://127.0.0.1:9101,storage=http://127.0.0.1:9102,imap=http://127.0.0.1:9103,mta-delivery=http://127.0.0.1:9104,admin=http://127.0.0.1:9105',
  ),
  POSTMESH_CONSOLE_DIR: optionalString(),
  /**
   * Link from a trace event to its trace in the operator's tracing UI, `{traceId}` replaced, e.g.
   * `https://grafana.example/explore?traceId={traceId}` (http or https); unset: no link.
   */
  POSTMESH_TRACE_URL_TEMPLATE: optionalString(),
};
