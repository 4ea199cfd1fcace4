/** mta-delivery's own configuration fields (src/config.ts), read through the shared loader. */
import { ConfigError, loadConfig } from '@postmesh/config';
import { describe, expect, it } from 'vitest';
import { schema } from '../src/config.js';

describe('POSTMESH_MTA_DOMAIN_LIMITS', () => {
  it('reads per-domain limits, domains in lower case; unset is no limits', () => {
    const config = loadConfig(schema, {
      POSTMESH_MTA_DOMAIN_LIMITS: '{"Example.ORG":{"concurrency":2,"perMinute":60},"x.test":{}}',
    });
    expect(config.POSTMESH_MTA_DOMAIN_LIMITS).toEqual({
      'example.org': { concurrency: 2, perMinute: 60 },
      'x.test': {},
    });
    expect(loadConfig(schema, {}).POSTMESH_MTA_DOMAIN_LIMITS).toEqual({});
  });

  it.each([
    ['{"example.org":{"perMinute":0}}', '["example.org"].perMinute: must be at least 1'],
    ['{"example.org":{"concurrency":1.5}}', '["example.org"].concurrency: expected an integer'],
    ['{"example.org":{"perminute":5}}', '["example.org"].perminute: unknown field'],
    ['{"example.org":5}', '["example.org"]: expected an object'],
    ['not json', 'got text that is not JSON'],
  ])('refuses %s, naming the field', (raw, problem) => {
    let error: unknown;
    try {
      loadConfig(schema, { POSTMESH_MTA_DOMAIN_LIMITS: raw });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      { variable: 'POSTMESH_MTA_DOMAIN_LIMITS', problem: expect.stringContaining(problem) as string },
    ]);
  });
});
