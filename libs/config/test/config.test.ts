import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  boolean,
  commonSchema,
  configDocument,
  dnsServers,
  hostPort,
  integer,
  json,
  loadConfig,
  mongodbUri,
  oneOf,
  optionalString,
  port,
  string,
  Type,
  unknownVariables,
  url,
} from '../src/index.js';

describe('loadConfig', () => {
  const schema = {
    ...commonSchema,
    POSTMESH_OPS_PORT: port(9102),
    POSTMESH_GRPC_ADDR: hostPort('127.0.0.1:7001'),
  };

  it('applies the local-stack defaults when nothing is set', () => {
    const cfg = loadConfig(schema, {});
    expect(cfg.POSTMESH_OPS_PORT).toBe(9102);
    expect(cfg.NATS_URL).toBe('nats://127.0.0.1:4222');
    expect(cfg.LOG_LEVEL).toBe('info');
    expect(cfg.POSTMESH_ALLOW_WEAK_DURABILITY).toBe(false);
  });

  it('parses set values into their types', () => {
    const cfg = loadConfig(schema, {
      POSTMESH_OPS_PORT: '19000',
      NATS_URL: 'nats://a:4222,nats://b:4222',
      POSTMESH_ALLOW_WEAK_DURABILITY: 'yes',
      LOG_LEVEL: 'debug',
    });
    expect(cfg).toMatchObject({
      POSTMESH_OPS_PORT: 19000,
      NATS_URL: 'nats://a:4222,nats://b:4222',
      POSTMESH_ALLOW_WEAK_DURABILITY: true,
      LOG_LEVEL: 'debug',
    });
  });

  it('names every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig(schema, { POSTMESH_OPS_PORT: 'abc', NATS_URL: 'http://x', POSTMESH_GRPC_ADDR: 'nope' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('POSTMESH_OPS_PORT: expected an integer from 1 to 65535, got "abc"');
    expect(message).toContain('NATS_URL');
    expect(message).toContain('POSTMESH_GRPC_ADDR: expected host:port');
    expect((error as ConfigError).problems).toHaveLength(3);
  });

  it('rejects out-of-range and malformed values', () => {
    expect(() => loadConfig({ P: port() }, { P: '70000' })).toThrow(/P: expected an integer from 1 to 65535/);
    expect(() => loadConfig({ P: port() }, {})).toThrow(/P: required/);
    expect(() => loadConfig({ N: integer(1, { min: 0, max: 3 }) }, { N: '1.5' })).toThrow(/N:/);
    expect(() => loadConfig({ B: boolean(false) }, { B: 'maybe' })).toThrow(/B: expected true or false/);
    expect(() => loadConfig({ L: oneOf(['a', 'b']) }, { L: 'c' })).toThrow(/L: expected one of a, b/);
    expect(() => loadConfig({ U: url(undefined, ['nats:']) }, { U: 'not a url' })).toThrow(
      /U: expected a URL/,
    );
  });
});

describe('MongoDB connection strings', () => {
  const schema = { MONGODB_URI: mongodbUri() };
  it.each([
    'mongodb://127.0.0.1:27017/',
    // A replica set's seed list: several hosts, which the WHATWG URL parser refuses.
    'mongodb://mongodb-0.mongodb-svc:27017,mongodb-1.mongodb-svc:27017,mongodb-2.mongodb-svc:27017/postmesh?replicaSet=mongodb',
    'mongodb://user:p%40ss@[::1]:27017,db2/postmesh?authSource=admin',
    'mongodb+srv://user:pw@cluster0.example.mongodb.net/postmesh?retryWrites=true',
  ])('accepts %s', (uri) => {
    expect(loadConfig(schema, { MONGODB_URI: uri }).MONGODB_URI).toBe(uri);
  });
  it.each(['http://db:27017', 'mongodb://', 'mongodb://a:27017,,b', 'mongodb+srv://a,b/x', 'mongodb://a b'])(
    'refuses %s',
    (uri) => {
      expect(() => loadConfig(schema, { MONGODB_URI: uri })).toThrow(
        /MONGODB_URI: expected a MongoDB connection string/,
      );
    },
  );
});

describe('rules across variables and variables nobody reads', () => {
  const schema = { POSTMESH_MODE: oneOf(['a', 'b'], 'a'), POSTMESH_B_KEY: optionalString() };
  const needsKey = (c: { POSTMESH_MODE: string; POSTMESH_B_KEY: string | undefined }) =>
    c.POSTMESH_MODE === 'b' && c.POSTMESH_B_KEY === undefined
      ? [{ variable: 'POSTMESH_B_KEY', problem: 'required when POSTMESH_MODE=b' }]
      : [];
  it('applies rules once every variable parsed', () => {
    expect(loadConfig(schema, { POSTMESH_MODE: 'b', POSTMESH_B_KEY: 'k' }, [needsKey]).POSTMESH_B_KEY).toBe(
      'k',
    );
    expect(() => loadConfig(schema, { POSTMESH_MODE: 'b' }, [needsKey])).toThrow(
      /POSTMESH_B_KEY: required when POSTMESH_MODE=b/,
    );
  });
  it('names variables in Postmesh namespaces the schema does not read, and only those', () => {
    expect(
      unknownVariables(schema, {
        POSTMESH_MODE: 'a',
        POSTMESH_B_KEYS: 'typo',
        NATS_CREDS: 'x',
        MONGODB_URL: 'x',
        PATH: '/bin',
        HOME: '/tmp',
        OTEL_SERVICE_NAME: 'x',
      }),
    ).toEqual(['MONGODB_URL', 'NATS_CREDS', 'POSTMESH_B_KEYS']);
  });
});

describe('dnsServers', () => {
  const schema = { POSTMESH_DNS_SERVERS: dnsServers() };
  it('is undefined when unset (the system resolvers)', () => {
    expect(loadConfig(schema, {}).POSTMESH_DNS_SERVERS).toBeUndefined();
  });
  it('reads addresses with and without ports, IPv4 and IPv6', () => {
    expect(
      loadConfig(schema, { POSTMESH_DNS_SERVERS: '10.0.0.53, 127.0.0.1:5353,2001:db8::53,[2001:db8::53]:53' })
        .POSTMESH_DNS_SERVERS,
    ).toEqual(['10.0.0.53', '127.0.0.1:5353', '2001:db8::53', '[2001:db8::53]:53']);
  });
  it.each(['resolver.example', '10.0.0.53:0', '10.0.0.53:70000', '10.0.0.53,', '[::1'])(
    'refuses %s',
    (raw) => {
      expect(() => loadConfig(schema, { POSTMESH_DNS_SERVERS: raw })).toThrow(/POSTMESH_DNS_SERVERS/);
    },
  );
});

describe('schema first: every field checks its value with a JSON Schema', () => {
  const schema = {
    POSTMESH_OPS_PORT: port(9102),
    POSTMESH_MODE: oneOf(['a', 'b'], 'a'),
    POSTMESH_HOSTNAME: string('mx.example.test', { pattern: /^[A-Za-z0-9.-]{1,253}$/ }),
    POSTMESH_SECRET: string(),
    POSTMESH_FLAG: boolean(false),
    POSTMESH_KEY: optionalString(),
    NATS_URL: url('nats://127.0.0.1:4222', ['nats:']),
    POSTMESH_DNS_SERVERS: dnsServers(),
  };

  it("publishes the configuration's JSON Schema: types, bounds, patterns, defaults; required when no default", () => {
    const document = configDocument(schema, 'a test service') as unknown as {
      properties: Record<string, Record<string, unknown>>;
      required?: string[];
      additionalProperties: boolean;
      description: string;
    };
    expect(document.description).toBe('a test service');
    expect(document.additionalProperties).toBe(false);
    expect(document.required).toEqual(['POSTMESH_SECRET']);
    expect(document.properties.POSTMESH_OPS_PORT).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      default: 9102,
    });
    expect(document.properties.POSTMESH_MODE).toMatchObject({
      type: 'string',
      enum: ['a', 'b'],
      default: 'a',
    });
    expect(document.properties.POSTMESH_HOSTNAME).toMatchObject({
      type: 'string',
      pattern: '^[A-Za-z0-9.-]{1,253}$',
      default: 'mx.example.test',
    });
    expect(document.properties.POSTMESH_FLAG).toMatchObject({ type: 'boolean', default: false });
    expect(document.properties.NATS_URL).toMatchObject({ type: 'string', default: 'nats://127.0.0.1:4222' });
    expect(document.properties.POSTMESH_DNS_SERVERS).toMatchObject({ type: 'array' });
  });

  it("checks each value against its field's schema (the schema's bounds are the ones applied)", () => {
    const field = integer(5, { min: 1, max: 9 });
    expect(field.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 9, default: 5 });
    expect(field.parse('9')).toEqual({ ok: true, value: 9 });
    expect(field.parse(' 3 ')).toEqual({ ok: true, value: 3 });
    expect(field.parse('10')).toEqual({ ok: false, problem: 'expected an integer from 1 to 9, got "10"' });
    expect(field.parse('1.5')).toEqual({ ok: false, problem: 'expected an integer from 1 to 9, got "1.5"' });
    expect(field.parse('0x5')).toEqual({ ok: false, problem: 'expected an integer from 1 to 9, got "0x5"' });
    expect(field.parse('')).toEqual({ ok: true, value: 5 });
    const host = schema.POSTMESH_HOSTNAME;
    expect(host.parse('mx 1')).toEqual({
      ok: false,
      problem: 'expected a string matching /^[A-Za-z0-9.-]{1,253}$/, got "mx 1"',
    });
    expect(boolean().parse('ON')).toEqual({ ok: true, value: true });
    expect(boolean().parse('Off')).toEqual({ ok: true, value: false });
    expect(string().parse(undefined)).toEqual({ ok: false, problem: 'required (a string)' });
  });

  it('refuses a pattern with flags, which JSON Schema cannot carry', () => {
    expect(() => string(undefined, { pattern: /^a$/i })).toThrow(/has flags/);
  });

  it('cuts a long bad value in the message (a secret pasted in the wrong variable stays short)', () => {
    const long = 'x'.repeat(100);
    expect(integer().parse(long)).toEqual({
      ok: false,
      problem: `expected an integer from ${Number.MIN_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}, got "${'x'.repeat(57)}..."`,
    });
  });
});

describe('json', () => {
  const limits = json(
    Type.Record(
      Type.String(),
      Type.Object(
        { perMinute: Type.Optional(Type.Integer({ minimum: 1 })) },
        { additionalProperties: false },
      ),
    ),
    {},
    'a JSON object of domain → {perMinute}',
  );

  it('reads JSON checked by the schema, the fallback when unset, and publishes the schema', () => {
    expect(limits.parse('{"example.org":{"perMinute":60}}')).toEqual({
      ok: true,
      value: { 'example.org': { perMinute: 60 } },
    });
    expect(limits.parse(undefined)).toEqual({ ok: true, value: {} });
    expect(limits.parse('  ')).toEqual({ ok: true, value: {} });
    expect(limits.schema).toMatchObject({ type: 'object', default: {} });
  });

  it.each([
    ['{"example.org":', 'expected a JSON object of domain → {perMinute}, got text that is not JSON'],
    ['[1]', 'expected a JSON object of domain → {perMinute}: expected an object'],
    [
      '{"example.org":{"perMinute":0}}',
      'expected a JSON object of domain → {perMinute}: ["example.org"].perMinute: must be at least 1',
    ],
    [
      '{"x.test":{"perminute":5}}',
      'expected a JSON object of domain → {perMinute}: ["x.test"].perminute: unknown field',
    ],
  ])('refuses %s, naming the field inside', (raw, problem) => {
    expect(limits.parse(raw)).toEqual({ ok: false, problem });
  });
});
