/**
 * Typed, validated configuration from the environment. Each service declares one schema
 * (an object of variable name → field); `loadConfig` reads every variable, reports *all*
 * problems at once, and the service stops at start with a message naming each bad variable.
 * Defaults are the local stack's (STYLE.md: "Defaults are the local stack's").
 *
 * Schema first, as every other payload (libs/schema): a field carries the JSON Schema of its
 * value (type, bounds, pattern, default, description) and the value read from the variable is
 * checked by that schema's compiled Ajv validator; `configDocument` publishes the schemas of a
 * service's whole environment. What JSON Schema cannot say (a URL's scheme, DNS server
 * addresses) is checked in code after the schema.
 */
import { isIP } from 'node:net';
import { Type, compile, type Static, type TSchema, type Validator } from '@postmesh/schema';

/** Services declare the schema of a JSON-valued variable (`json`) with these. */
export { Type, type Static } from '@postmesh/schema';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly { variable: string; problem: string }[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.problem}`).join('\n')}`);
  }
}

/** A field reads one environment variable (raw string or undefined) into a typed value. */
export interface Field<T> {
  readonly describe: string;
  readonly parse: (raw: string | undefined) => { ok: true; value: T } | { ok: false; problem: string };
  /** The JSON Schema of the value (with its default); a service's own fields may leave it out. */
  readonly schema?: TSchema;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (problem: string): Parsed<never> => ({ ok: false, problem });

const show = (raw: string): string => JSON.stringify(raw.length > 60 ? `${raw.slice(0, 57)}...` : raw);

/**
 * Validators by schema text: many variables share a schema (a port, a duration), and each is
 * compiled once per process.
 */
const compiled = new Map<string, Validator<unknown>>();
function validatorOf(schema: TSchema): Validator<unknown> {
  const key = JSON.stringify(schema);
  let check = compiled.get(key);
  if (check === undefined) {
    check = compile(schema);
    compiled.set(key, check);
  }
  return check;
}

/**
 * A field whose value, read from the variable's text by `fromText`, must match `schema`; then
 * `after` may refuse it for what the schema cannot say. Unset or empty: the fallback, or a
 * "required" problem when there is none.
 */
function schemaField<T>(
  schema: TSchema,
  describe: string,
  fallback: T | undefined,
  fromText: (raw: string) => unknown = (raw) => raw,
  after: (value: T, raw: string) => Parsed<T> = ok,
): Field<T> {
  const check = validatorOf(schema);
  return {
    describe,
    schema: fallback === undefined ? schema : { ...schema, default: fallback },
    parse(raw) {
      if (raw === undefined || raw === '') {
        return fallback === undefined ? bad(`required (${describe})`) : ok(fallback);
      }
      const checked = check(fromText(raw));
      return checked.ok ? after(checked.value as T, raw) : bad(`expected ${describe}, got ${show(raw)}`);
    },
  };
}

/** Integers are written in decimal; anything else stays text, which the integer schema refuses. */
const decimal = (raw: string): unknown => (/^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw);

export function integer(
  fallback?: number,
  { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = {},
): Field<number> {
  const describe = `an integer from ${min} to ${max}`;
  return schemaField(
    Type.Integer({ minimum: min, maximum: max, description: describe }),
    describe,
    fallback,
    decimal,
  );
}

/** A TCP port; 0 means "pick a free one" and is accepted only where `allowZero` says so. */
export function port(fallback?: number, { allowZero = false } = {}): Field<number> {
  return integer(fallback, { min: allowZero ? 0 : 1, max: 65535 });
}

/** JSON Schema patterns have no flags: a pattern with flags would not mean the same there. */
function patternOf(pattern: RegExp): string {
  if (pattern.flags !== '') throw new Error(`pattern ${String(pattern)} has flags`);
  return pattern.source;
}

export function string(fallback?: string, { pattern }: { pattern?: RegExp } = {}): Field<string> {
  const describe = pattern ? `a string matching ${String(pattern)}` : 'a string';
  return schemaField<string>(
    Type.String(pattern === undefined ? {} : { pattern: patternOf(pattern), description: describe }),
    describe,
    fallback,
  );
}

/** An optional string: absent → `undefined`. */
export function optionalString(): Field<string | undefined> {
  return {
    describe: 'an optional string',
    schema: Type.String({ description: 'optional' }),
    parse: (raw) => ok(raw === '' ? undefined : raw),
  };
}

const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off'];

export function boolean(fallback?: boolean): Field<boolean> {
  const describe = 'true or false';
  return schemaField<boolean>(
    Type.Boolean({ description: `${TRUE_WORDS.join(', ')} or ${FALSE_WORDS.join(', ')}` }),
    describe,
    fallback,
    (raw) => {
      const word = raw.trim().toLowerCase();
      return TRUE_WORDS.includes(word) ? true : FALSE_WORDS.includes(word) ? false : raw;
    },
  );
}

export function oneOf<const T extends string>(values: readonly T[], fallback?: T): Field<T> {
  const describe = `one of ${values.join(', ')}`;
  return schemaField<T>(Type.Unsafe<T>({ type: 'string', enum: [...values] }), describe, fallback);
}

/**
 * A variable holding JSON (a table of per-domain settings, say), checked against `schema`; a
 * refusal names the field inside the value: `expected …: ["example.org"].perMinute: must
 * be at least 1`. Unset or blank: the fallback.
 */
export function json<S extends TSchema>(
  schema: S,
  fallback: Static<S> | undefined,
  describe: string,
): Field<Static<S>> {
  const check = validatorOf(schema);
  return {
    describe,
    schema: fallback === undefined ? schema : { ...schema, default: fallback },
    parse(raw) {
      if (raw === undefined || raw.trim() === '') {
        return fallback === undefined ? bad(`required (${describe})`) : ok(fallback);
      }
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        return bad(`expected ${describe}, got text that is not JSON`);
      }
      const checked = check(value);
      return checked.ok ? ok(checked.value as Static<S>) : bad(`expected ${describe}: ${checked.problem}`);
    },
  };
}

/** A URL whose scheme is one of `protocols` (e.g. `['nats:', 'tls:']`). */
export function url(fallback: string | undefined, protocols: readonly string[]): Field<string> {
  const describe = `a URL (${protocols.join(' or ')})`;
  // The scheme of each URL is checked in code: JSON Schema's `format: uri` would not know them.
  return schemaField<string>(
    Type.String({ description: describe }),
    describe,
    fallback,
    undefined,
    (_, raw) => {
      // A NATS URL may list several servers separated by commas.
      for (const part of raw.split(',')) {
        let parsed: URL;
        try {
          parsed = new URL(part.trim());
        } catch {
          return bad(`expected ${describe}, got ${show(raw)}`);
        }
        if (!protocols.includes(parsed.protocol)) return bad(`expected ${describe}, got ${show(raw)}`);
      }
      return ok(raw);
    },
  );
}

/**
 * A MongoDB connection string (MongoDB manual, "Connection String Formats"): `mongodb://` with
 * one or more comma-separated `host[:port]` (a replica set's seed list, which the WHATWG URL
 * parser refuses) or `mongodb+srv://` with one host; optional credentials, database and options.
 */
export function mongodbUri(fallback?: string): Field<string> {
  const describe = 'a MongoDB connection string (mongodb:// or mongodb+srv://)';
  const host = String.raw`(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::\d{1,5})?`;
  const standard = new RegExp(
    String.raw`^mongodb://(?:[^@/?#\s]+@)?${host}(?:,${host})*(?:/[^?#\s]*)?(?:\?[^#\s]*)?$`,
  );
  const srv = new RegExp(
    String.raw`^mongodb\+srv://(?:[^@/?#\s]+@)?[A-Za-z0-9._-]+(?:/[^?#\s]*)?(?:\?[^#\s]*)?$`,
  );
  return schemaField<string>(
    Type.String({ pattern: `${patternOf(standard)}|${patternOf(srv)}`, description: describe }),
    describe,
    fallback,
  );
}

/** `host:port`, as used for gRPC targets. */
export function hostPort(fallback?: string): Field<string> {
  const describe = 'host:port';
  return schemaField<string>(
    Type.String({ pattern: patternOf(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/), description: describe }),
    describe,
    fallback,
  );
}

/**
 * DNS servers, comma-separated, each an IP address with an optional port (`10.0.0.53`,
 * `127.0.0.1:5353`, `2001:db8::53`, `[2001:db8::53]:53`), in the form node:dns `setServers`
 * takes; unset → `undefined` (the system's resolvers).
 */
export function dnsServers(): Field<readonly string[] | undefined> {
  const describe = 'IP addresses with optional ports, comma-separated';
  return {
    describe,
    // The addresses are checked in code (node:net isIP): JSON Schema has no IP-with-port format.
    schema: Type.Array(Type.String(), { description: describe }),
    parse(raw) {
      if (raw === undefined || raw.trim() === '') return ok(undefined);
      const servers = raw.split(',').map((s) => s.trim());
      for (const server of servers) {
        const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(server);
        const v4 = /^([\d.]+)(?::(\d{1,5}))?$/.exec(server);
        const ip = bracketed?.[1] ?? v4?.[1] ?? server;
        const port = Number(bracketed?.[2] ?? v4?.[2] ?? 53);
        if (isIP(ip) === 0 || port < 1 || port > 65_535) return bad(`expected ${describe}, got ${show(raw)}`);
      }
      return ok(servers);
    },
  };
}

export type Schema = Record<string, Field<unknown>>;
export type ConfigOf<S extends Schema> = { readonly [K in keyof S]: S[K] extends Field<infer T> ? T : never };

export interface ConfigProblem {
  readonly variable: string;
  readonly problem: string;
}

/**
 * A rule over several variables once each parsed on its own (e.g. "the KMS provider needs a key
 * id"): answers the problems it finds, or none.
 */
export type ConfigRule<S extends Schema> = (config: ConfigOf<S>) => readonly ConfigProblem[];

/** Read and validate every variable of `schema`; throws one ConfigError listing all problems. */
export function loadConfig<S extends Schema>(
  schema: S,
  env: Readonly<Record<string, string | undefined>> = process.env,
  rules: readonly ConfigRule<S>[] = [],
): ConfigOf<S> {
  const problems: ConfigProblem[] = [];
  const out: Record<string, unknown> = {};
  for (const [variable, field] of Object.entries(schema)) {
    const result = field.parse(env[variable]);
    if (result.ok) out[variable] = result.value;
    else problems.push({ variable, problem: result.problem });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const config = out as ConfigOf<S>;
  for (const rule of rules) problems.push(...rule(config));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * The JSON Schema of a service's configuration: one property per variable, with the schema of its
 * value once read (an integer variable is an integer here; type, bounds, pattern, default and
 * description), for the operations documentation and for tools that check settings.
 */
export function configDocument(schema: Schema, description?: string): TSchema {
  return Type.Object(
    Object.fromEntries(
      Object.entries(schema).map(([variable, field]) => {
        const value = field.schema ?? Type.Unknown({ description: field.describe });
        // A variable is required when leaving it unset is a problem (no default, not optional).
        return [variable, field.parse(undefined).ok ? Type.Optional(value) : value];
      }),
    ),
    { additionalProperties: false, ...(description === undefined ? {} : { description }) },
  );
}

/** Namespaces of the variables Postmesh services read (OTEL_* belongs to OpenTelemetry's SDK). */
const POSTMESH_PREFIXES = ['POSTMESH_', 'NATS_', 'MONGODB_', 'LOG_'] as const;

/**
 * Variables in Postmesh's namespaces that the schema does not read: a typo, or a setting meant
 * for another service or an older release, which would otherwise be ignored without a word.
 */
export function unknownVariables(
  schema: Schema,
  env: Readonly<Record<string, string | undefined>>,
): string[] {
  const prefixes = [...POSTMESH_PREFIXES];
  return Object.keys(env)
    .filter((name) => !Object.hasOwn(schema, name))
    .filter((name) => prefixes.some((prefix) => name.startsWith(prefix)))
    .sort();
}

/**
 * Variables every service reads. The ops port has no shared default: each service's schema
 * supplies its own local-stack port (smtp-inbound 9101, storage 9102, imap 9103,
 * mta-delivery 9104, admin 9105).
 */
/**
 * The failed-login policy of the services that check mail passwords (imap, smtp-inbound): the same
 * variables and defaults in each, because the counters they limit are shared (the NATS KV bucket
 * `auth-failures`; libs/bus auth-throttle.ts).
 */
export const authThrottleSchema = {
  /** Failed logins per account / per IP within the window before lockout. */
  POSTMESH_AUTH_LOCKOUT_ACCOUNT: integer(10, { min: 1, max: 1_000_000 }),
  POSTMESH_AUTH_LOCKOUT_IP: integer(50, { min: 1, max: 1_000_000 }),
  POSTMESH_AUTH_WINDOW_MS: integer(15 * 60_000, { min: 1_000, max: 24 * 3_600_000 }),
  /** Delay after the first failures; doubles with each further failure up to 8 s. */
  POSTMESH_AUTH_BASE_DELAY_MS: integer(500, { min: 0, max: 60_000 }),
};

export const commonSchema = {
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
  NATS_URL: url('nats://127.0.0.1:4222', ['nats:', 'tls:', 'ws:', 'wss:']),
  /** NATS monitoring endpoint, used to verify JetStream fsyncs before every ack (DESIGN §2). */
  NATS_MONITOR_URL: optionalString(),
  /** Opt out of the `sync_always` check (never in production; see DESIGN §2). */
  POSTMESH_ALLOW_WEAK_DURABILITY: boolean(false),
  /** JetStream stream replicas: 1 on one node, 3 in a cluster. */
  POSTMESH_STREAM_REPLICAS: integer(1, { min: 1, max: 5 }),
  /** MAIL_DLQ limits: dead letters are removed after this age; when full, new ones are refused. */
  POSTMESH_DLQ_MAX_AGE_MS: integer(30 * 24 * 3_600_000, { min: 3_600_000 }),
  POSTMESH_DLQ_MAX_BYTES: integer(1024 * 1024 * 1024, { min: 1024 * 1024 }),
  POSTMESH_OPS_HOST: string('127.0.0.1'),
  /**
   * This service's internal identity: `<dir>/<service>/` holds `ca.crt`, `tls.crt`, `tls.key` (mutual
   * TLS to storage's gRPC) and `nats.nk` or `nats.password` (its NATS user, over TLS).
   */
  POSTMESH_IDENTITY_ROOT: optionalString(),
  /** Development only: plaintext gRPC and NATS without identities (logged as a warning). */
  POSTMESH_INSECURE_INTERNAL: boolean(false),
  /** `/healthz/live` fails while the event loop is blocked longer than this (0: never). */
  POSTMESH_EVENT_LOOP_STALL_MS: integer(10_000, { min: 0, max: 600_000 }),
  /** Budget for a graceful stop: stop accepting, drain in-flight work, then exit. */
  POSTMESH_SHUTDOWN_TIMEOUT_MS: integer(15_000, { min: 100, max: 600_000 }),
  /** Alerts (docs/alerts.md): a work queue the service consumes holding more messages than this. */
  POSTMESH_ALERT_QUEUE_DEPTH: integer(10_000, { min: 1 }),
  /** Alerts: a consumer the service owns more jobs behind than this. */
  POSTMESH_ALERT_CONSUMER_LAG: integer(5_000, { min: 1 }),
  /** How often queue depth and consumer lag are checked. */
  POSTMESH_ALERT_CHECK_INTERVAL_MS: integer(60_000, { min: 100, max: 3_600_000 }),
  /** Alerts: a served TLS certificate (SMTP, IMAP) expiring within this many days. */
  POSTMESH_CERT_EXPIRY_WARN_DAYS: integer(14, { min: 0, max: 365 }),
  /** How often the served certificate's expiry is checked (also at start). */
  POSTMESH_CERT_EXPIRY_CHECK_MS: integer(6 * 3_600_000, { min: 100, max: 7 * 24 * 3_600_000 }),
} as const;
