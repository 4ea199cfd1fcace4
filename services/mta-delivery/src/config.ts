import {
  dnsServers,
  boolean,
  commonSchema,
  hostPort,
  integer,
  oneOf,
  optionalString,
  port,
  string,
  json,
  Type,
  type Field,
  type Static,
} from '@postmesh/config';

const HOUR = 60 * 60 * 1000;

/** A comma-separated list of delays in milliseconds, e.g. `300000,900000,1800000`. */
function delays(fallback: readonly number[]): Field<readonly number[]> {
  return {
    describe: 'comma-separated delays in milliseconds',
    schema: Type.Array(Type.Integer({ minimum: 0 }), {
      default: fallback,
      description: 'delays in milliseconds, written comma-separated',
    }),
    parse(raw) {
      if (raw === undefined || raw.trim() === '') return { ok: true, value: fallback };
      const parts = raw.split(',').map((s) => s.trim());
      if (parts.length === 0 || !parts.every((p) => /^\d{1,10}$/.test(p)))
        return {
          ok: false,
          problem: `expected comma-separated delays in milliseconds, got ${JSON.stringify(raw)}`,
        };
      return { ok: true, value: parts.map(Number) };
    },
  };
}

const DomainLimitSchema = Type.Object(
  {
    concurrency: Type.Optional(
      Type.Integer({ minimum: 1, description: 'connections (transactions) at once to this domain' }),
    ),
    perMinute: Type.Optional(Type.Integer({ minimum: 1, description: 'messages per minute to this domain' })),
  },
  { additionalProperties: false },
);
export type DomainLimit = Readonly<Static<typeof DomainLimitSchema>>;

/** `{"example.org": {"concurrency": 2, "perMinute": 60}, ...}`; domains compare in lower case. */
function domainLimits(): Field<Readonly<Record<string, DomainLimit>>> {
  const field = json(
    Type.Record(Type.String(), DomainLimitSchema),
    {},
    'a JSON object of domain → {concurrency, perMinute}',
  );
  return {
    ...field,
    parse(raw) {
      const parsed = field.parse(raw);
      if (!parsed.ok) return parsed;
      const limits = Object.entries(parsed.value).map(
        ([domain, limit]) => [domain.toLowerCase(), limit] as const,
      );
      return { ok: true, value: Object.fromEntries(limits) };
    },
  };
}

/** Environment of the mta-delivery service; defaults are the local stack's. */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9104),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
  /** Our name in EHLO (RFC 5321 §4.1.1.1) and in DSNs' Reporting-MTA. */
  POSTMESH_HOSTNAME: string('mx.example.test', { pattern: /^[A-Za-z0-9.-]{1,253}$/ }),
  /** Smart host: when set, every message goes there instead of to the recipients' MX. */
  POSTMESH_RELAY_HOST: optionalString(),
  POSTMESH_RELAY_PORT: port(587),
  /** `starttls` (required, RFC 3207), `tls` (implicit, RFC 8314) or `none` (trusted network only). */
  POSTMESH_RELAY_TLS: oneOf(['starttls', 'tls', 'none'], 'starttls'),
  POSTMESH_RELAY_USER: optionalString(),
  POSTMESH_RELAY_PASSWORD: optionalString(),
  /**
   * The recursive resolvers asked for MX, A, AAAA and MTA-STS records, comma-separated
   * (`10.0.0.53`, `[2001:db8::53]:53`, `127.0.0.1:5353`); unset: the system's (/etc/resolv.conf).
   */
  POSTMESH_DNS_SERVERS: dnsServers(),
  /** Tests only: the port of remote MTAs (RFC 5321 §4.5.4.2 says 25). */
  POSTMESH_MTA_SMTP_PORT: port(25),
  /**
   * Tests only: fetch MTA-STS policies from `<base>/<domain>/.well-known/mta-sts.txt` instead of
   * `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
   */
  POSTMESH_MTA_STS_FETCH_BASE: optionalString(),
  /** Extra CA certificates (PEM) trusted when verifying MX certificates (private CAs, tests). */
  POSTMESH_MTA_TLS_CA_FILE: optionalString(),
  /** Jobs handled at once by this replica. */
  POSTMESH_MTA_CONCURRENCY: integer(256, { min: 1, max: 10_000 }),
  /**
   * Bytes of message bodies this replica holds at once (each attempted job counts twice its
   * size: the body and its signed copy); other jobs wait, unacknowledged and in progress. The
   * default leaves room for the runtime in the chart's 512 Mi pod; a single larger message runs
   * alone.
   */
  POSTMESH_MTA_BODY_BUDGET_BYTES: integer(192 * 1024 * 1024, { min: 64 * 1024 }),
  /** Default transactions at once per destination domain. */
  POSTMESH_MTA_DOMAIN_CONCURRENCY: integer(20, { min: 1, max: 1_000 }),
  /** Per-domain overrides of concurrency and messages per minute (JSON). */
  POSTMESH_MTA_DOMAIN_LIMITS: domainLimits(),
  /** Retry delays after the 1st, 2nd, … failed attempt (the last one repeats). */
  POSTMESH_MTA_RETRY_SCHEDULE_MS: delays([5 * 60_000, 15 * 60_000, 30 * 60_000, HOUR, 2 * HOUR, 4 * HOUR]),
  /** ± this percentage of random jitter on each retry delay. */
  POSTMESH_MTA_RETRY_JITTER_PCT: integer(20, { min: 0, max: 100 }),
  /** Give up (failure DSN) this long after the message was queued. */
  POSTMESH_MTA_QUEUE_LIFETIME_MS: integer(5 * 24 * HOUR, { min: 1_000 }),
  /** Tell the sender mail is delayed after this long (0 = never). */
  POSTMESH_MTA_DELAY_NOTICE_MS: integer(4 * HOUR, { min: 0 }),
  /**
   * Longest nak delay: a deferred job comes back at least this often to look at its queue
   * record, which is how "retry now" and "cancel" take effect without a redelivery API.
   */
  POSTMESH_MTA_QUEUE_TICK_MS: integer(30_000, { min: 100, max: 10 * 60_000 }),
  POSTMESH_MTA_CONNECT_TIMEOUT_MS: integer(30_000, { min: 100 }),
  /** RFC 5321 §4.5.3.2: at least 5 minutes for most replies; 10 minutes after the data. */
  POSTMESH_MTA_COMMAND_TIMEOUT_MS: integer(5 * 60_000, { min: 100 }),
  /** How long an idle connection to a destination is kept for reuse. */
  POSTMESH_MTA_IDLE_CONNECTION_MS: integer(5_000, { min: 0 }),
  /** How often abandoned outbound spool objects (older than the lifetime + 2 days) are swept. */
  POSTMESH_MTA_SPOOL_SWEEP_MS: integer(3_600_000, { min: 1_000 }),
  /** Sign with the sender domain's active DKIM key from the Directory. */
  POSTMESH_MTA_DKIM: boolean(true),
};
