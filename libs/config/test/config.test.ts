import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  boolean,
  commonSchema,
  hostPort,
  integer,
  loadConfig,
  oneOf,
  port,
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
