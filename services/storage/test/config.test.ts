/** storage's choice of database (POSTMESH_STORAGE_DB, ADR 0011), read through the shared loader. */
import { ConfigError, loadConfig } from '@postmesh/config';
import { describe, expect, it } from 'vitest';
import { rules, schema } from '../src/config.js';

/** The settings every valid storage configuration here shares (a KEK file is required). */
const BASE = { POSTMESH_KEK_FILE: '/run/kek.b64' };

function problemsOf(env: Record<string, string>): { variable: string; problem: string }[] {
  try {
    loadConfig(schema, { ...BASE, ...env }, rules);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('POSTMESH_STORAGE_DB', () => {
  it('is MongoDB unless set (production), with the SQLite file defaulting under .data/storage', () => {
    const config = loadConfig(schema, BASE, rules);
    expect(config.POSTMESH_STORAGE_DB).toBe('mongodb');
    expect(config.POSTMESH_SQLITE_FILE).toBe('.data/storage/postmesh.sqlite');
  });

  it('reads sqlite and its file; MONGODB_URI is then not needed', () => {
    const config = loadConfig(
      schema,
      { ...BASE, POSTMESH_STORAGE_DB: 'sqlite', POSTMESH_SQLITE_FILE: '/var/lib/postmesh/db.sqlite' },
      rules,
    );
    expect(config.POSTMESH_STORAGE_DB).toBe('sqlite');
    expect(config.POSTMESH_SQLITE_FILE).toBe('/var/lib/postmesh/db.sqlite');
  });

  it.each(['SQLite', 'postgresql', 'ferretdb', 'sqlite-inproc'])(
    'refuses %s, naming the choices',
    (value) => {
      expect(problemsOf({ POSTMESH_STORAGE_DB: value })).toEqual([
        {
          variable: 'POSTMESH_STORAGE_DB',
          problem: `expected one of mongodb, sqlite, got ${JSON.stringify(value)}`,
        },
      ]);
    },
  );

  it('refuses the GridFS body store without MongoDB', () => {
    expect(problemsOf({ POSTMESH_STORAGE_DB: 'sqlite', POSTMESH_BLOB_STORE: 'gridfs' })).toEqual([
      {
        variable: 'POSTMESH_BLOB_STORE',
        problem: expect.stringContaining('needs POSTMESH_STORAGE_DB=mongodb') as string,
      },
    ]);
    expect(problemsOf({ POSTMESH_STORAGE_DB: 'mongodb', POSTMESH_BLOB_STORE: 'gridfs' })).toEqual([]);
  });
});
