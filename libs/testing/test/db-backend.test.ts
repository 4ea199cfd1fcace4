import { describe, expect, it } from 'vitest';
import { DEFAULT_DB_BACKEND, dbBackendFromEnv } from '../src/ferretdb.js';

describe('POSTMESH_DB_BACKEND', () => {
  it('chooses the default when unset or empty', () => {
    expect(dbBackendFromEnv({})).toBe(DEFAULT_DB_BACKEND);
    expect(dbBackendFromEnv({ POSTMESH_DB_BACKEND: ' ' })).toBe(DEFAULT_DB_BACKEND);
  });

  it('takes sqlite and postgresql', () => {
    expect(dbBackendFromEnv({ POSTMESH_DB_BACKEND: 'sqlite' })).toBe('sqlite');
    expect(dbBackendFromEnv({ POSTMESH_DB_BACKEND: 'postgresql' })).toBe('postgresql');
  });

  it('refuses anything else instead of silently using the default', () => {
    expect(() => dbBackendFromEnv({ POSTMESH_DB_BACKEND: 'postgres' })).toThrow(/sqlite, postgresql/);
    expect(() => dbBackendFromEnv({ POSTMESH_DB_BACKEND: 'mysql' })).toThrow(/not 'mysql'/);
    expect(() => dbBackendFromEnv({ POSTMESH_DB_BACKEND: 'PostgreSQL' })).toThrow(/not 'PostgreSQL'/);
  });
});
