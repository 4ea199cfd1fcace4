/** The stack's database choice (POSTMESH_STACK_DB) as the processes get it and the status shows it. */
import { ConfigError } from '@postmesh/config';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_STACK_DB,
  endpoints,
  loadStackConfig,
  nodeArgsOf,
  processEnv,
  stackDatabase,
  stackProcesses,
  type StackConfig,
} from '../src/layout.js';

const DATA = '/srv/postmesh-data';

/** The stack's configuration from `env` alone (not this process's environment). */
const configOf = (env: Record<string, string>): StackConfig => loadStackConfig(env);

/** The environment each process of the stack would start with. */
const envs = (config: StackConfig): Map<string, NodeJS.ProcessEnv> =>
  new Map(stackProcesses(config).map((p) => [p.name, processEnv(config, p, DATA, undefined)]));

function problemsOf(env: Record<string, string>): { variable: string; problem: string }[] {
  try {
    loadStackConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('POSTMESH_STACK_DB', () => {
  it('sqlite: storage opens the one file under the data directory, and no MongoDB port is listed', () => {
    const config = configOf({ POSTMESH_STACK_DB: 'sqlite' });
    const storage = envs(config).get('storage-imap');
    expect(storage).toMatchObject({
      POSTMESH_STORAGE_DB: 'sqlite',
      POSTMESH_SQLITE_FILE: `${DATA}/storage/postmesh.sqlite`,
    });
    expect(storage?.MONGODB_URI).toBeUndefined();
    expect(endpoints(config).map((e) => e.name)).not.toContain('MongoDB (FerretDB)');
    expect(stackDatabase(config, DATA)).toEqual({
      kind: 'sqlite',
      file: `${DATA}/storage/postmesh.sqlite`,
      process: 'storage-imap',
    });
    // Only storage reads the database.
    for (const [name, env] of envs(config)) {
      if (name !== 'storage-imap') expect(env.POSTMESH_STORAGE_DB, name).toBeUndefined();
    }
  });

  it('sqlite with replicas: every replica shares the one file', () => {
    const config = configOf({ POSTMESH_STACK_DB: 'sqlite', POSTMESH_STACK_STORAGE_REPLICAS: '3' });
    const files = ['storage-imap-1', 'storage-imap-2', 'storage-imap-3'].map(
      (name) => envs(config).get(name)?.POSTMESH_SQLITE_FILE,
    );
    expect(files).toEqual(Array.from({ length: 3 }, () => `${DATA}/storage/postmesh.sqlite`));
    expect(stackDatabase(config, DATA)).toMatchObject({
      process: 'storage-imap-1, storage-imap-2, storage-imap-3',
    });
  });

  it('sqlite with a separate imap: the storage process has the file, imap none', () => {
    const config = configOf({ POSTMESH_STACK_DB: 'sqlite', POSTMESH_STACK_IMAP_AT_STORAGE: 'false' });
    expect(envs(config).get('storage')).toMatchObject({ POSTMESH_STORAGE_DB: 'sqlite' });
    expect(envs(config).get('imap')?.POSTMESH_SQLITE_FILE).toBeUndefined();
    expect(stackDatabase(config, DATA)).toMatchObject({ process: 'storage' });
  });

  it.each(['sqlite', 'postgresql'])('ferretdb on %s: storage uses MongoDB at FerretDB’s port', (backend) => {
    const config = configOf({
      POSTMESH_STACK_DB: 'ferretdb',
      POSTMESH_DB_BACKEND: backend,
      POSTMESH_MONGO_PORT: '27999',
    });
    const storage = envs(config).get('storage-imap');
    expect(storage).toMatchObject({
      POSTMESH_STORAGE_DB: 'mongodb',
      MONGODB_URI: 'mongodb://127.0.0.1:27999/',
    });
    expect(storage?.POSTMESH_SQLITE_FILE).toBeUndefined();
    expect(endpoints(config).find((e) => e.name === 'MongoDB (FerretDB)')).toMatchObject({
      port: 27999,
      process: 'ferretdb',
    });
    expect(stackDatabase(config, DATA)).toEqual({
      kind: 'ferretdb',
      backend,
      url: 'mongodb://127.0.0.1:27999/',
      port: 27999,
      process: 'ferretdb',
    });
  });

  it('has a default, and refuses anything else by name', () => {
    expect(configOf({}).POSTMESH_STACK_DB).toBe(DEFAULT_STACK_DB);
    expect(problemsOf({ POSTMESH_STACK_DB: 'mongodb' })).toEqual([
      { variable: 'POSTMESH_STACK_DB', problem: 'expected one of sqlite, ferretdb, got "mongodb"' },
    ]);
  });

  it('refuses FerretDB’s PostgreSQL backend without FerretDB', () => {
    expect(problemsOf({ POSTMESH_STACK_DB: 'sqlite', POSTMESH_DB_BACKEND: 'postgresql' })).toEqual([
      {
        variable: 'POSTMESH_DB_BACKEND',
        problem: expect.stringContaining('needs POSTMESH_STACK_DB=ferretdb') as string,
      },
    ]);
    // FerretDB's default backend named explicitly is not a contradiction.
    expect(problemsOf({ POSTMESH_STACK_DB: 'sqlite', POSTMESH_DB_BACKEND: 'sqlite' })).toEqual([]);
  });
});

describe('POSTMESH_STACK_STORAGE_SEMI_SPACE_MB', () => {
  const argsOf = (env: Record<string, string>): Map<string, string[]> => {
    const config = configOf(env);
    return new Map(stackProcesses(config).map((p) => [p.name, nodeArgsOf(config, p)]));
  };

  it('gives the storage processes a 64 MiB semi-space by default, and no other process', () => {
    const args = argsOf({});
    expect(args.get('storage-imap')).toEqual(['--max-semi-space-size=64']);
    for (const [name, a] of args) if (name !== 'storage-imap') expect(a, name).toEqual([]);
    const replicas = argsOf({ POSTMESH_STACK_STORAGE_REPLICAS: '2' });
    expect(replicas.get('storage-imap-2')).toEqual(['--max-semi-space-size=64']);
    expect(replicas.get('imap-proxy')).toEqual([]);
    expect(argsOf({ POSTMESH_STACK_IMAP_AT_STORAGE: 'false' }).get('storage')).toEqual([
      '--max-semi-space-size=64',
    ]);
  });

  it("takes another size, 0 for V8's own, and refuses a negative one", () => {
    expect(argsOf({ POSTMESH_STACK_STORAGE_SEMI_SPACE_MB: '32' }).get('storage-imap')).toEqual([
      '--max-semi-space-size=32',
    ]);
    expect(argsOf({ POSTMESH_STACK_STORAGE_SEMI_SPACE_MB: '0' }).get('storage-imap')).toEqual([]);
    expect(problemsOf({ POSTMESH_STACK_STORAGE_SEMI_SPACE_MB: '-1' }).map((p) => p.variable)).toEqual([
      'POSTMESH_STACK_STORAGE_SEMI_SPACE_MB',
    ]);
  });
});
