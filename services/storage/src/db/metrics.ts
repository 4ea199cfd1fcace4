/**
 * Database and key metrics of storage (docs/metrics.md): every command storage sends to MongoDB
 * (FerretDB) by command name and outcome, with its latency from the driver's command monitoring
 * (or, on the in-process SQLite database, from its `observe` callback),
 * and every wrap and unwrap of a key by the KEK (local file or KMS), with its latency. The
 * dashboard reads from these where a slow message spent its time in storage.
 */
import type { CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, MongoClient } from 'mongodb';
import { Counter, Histogram, HotCounter, HotHistogram, type Registry } from '@postmesh/telemetry';
import type { KeyProvider } from '../crypto/index.js';
import type { WrappedKey } from './schema.js';

/** Commands by name only (a bounded set); anything unexpected is counted as `other`. */
const KNOWN_COMMANDS = new Set([
  'find',
  'getMore',
  'insert',
  'update',
  'delete',
  'findAndModify',
  'aggregate',
  'count',
  'distinct',
  'createIndexes',
  'listIndexes',
  'listCollections',
  'create',
  'drop',
  'ping',
  'killCursors',
  'endSessions',
  // The in-process SQLite database names a bulk write as one operation, and answers dbStats.
  'bulkWrite',
  'dbStats',
]);

/** A command sent and not answered yet. */
export interface CommandInFlight {
  readonly command: string;
  /** The collection it names, if any. */
  readonly collection: string;
  /** Statements of an insert, update or delete; 1 otherwise. */
  readonly statements: number;
  readonly runningMs: number;
}

/** Commands `client` sent that have not been answered yet (fed by `instrumentDatabase`). */
export class CommandsInFlight {
  private readonly started = new Map<
    string,
    { command: string; collection: string; statements: number; at: number }
  >();

  /** Commands running for at least `minMs` now. */
  longerThan(minMs: number): CommandInFlight[] {
    const now = performance.now();
    const out: CommandInFlight[] = [];
    for (const c of this.started.values()) {
      const runningMs = now - c.at;
      if (runningMs >= minMs) out.push({ ...omitAt(c), runningMs: Math.round(runningMs) });
    }
    return out;
  }

  /** @internal */
  begin(event: CommandStartedEvent): void {
    const target: unknown = event.command[event.commandName];
    const list = (event.command.updates ?? event.command.deletes ?? event.command.documents) as unknown;
    this.started.set(key(event), {
      command: event.commandName,
      collection: typeof target === 'string' ? target : '',
      statements: Array.isArray(list) ? list.length : 1,
      at: performance.now(),
    });
  }

  /** @internal */
  end(event: CommandSucceededEvent | CommandFailedEvent): void {
    this.started.delete(key(event));
  }
}

const key = (e: { connectionId?: string | number; requestId: number }): string =>
  `${String(e.connectionId ?? '')}/${e.requestId}`;

function omitAt(c: { command: string; collection: string; statements: number }) {
  return { command: c.command, collection: c.collection, statements: c.statements };
}

/** What one finished database command is counted as. */
export interface DatabaseCommand {
  /** Its name (`find`, `insert`, …); names outside the known set are counted as `other`. */
  readonly command: string;
  readonly durationMs: number;
  readonly failed: boolean;
}

/**
 * The database metrics, fed by whichever database storage runs on: the MongoDB driver's command
 * events (`instrumentDatabase`) or the in-process SQLite database's `observe` callback.
 */
export function databaseMetrics(registry: Registry): (command: DatabaseCommand) => void {
  const registers = [registry];
  const operations = new HotCounter({
    name: 'postmesh_storage_db_operations_total',
    help: 'Commands storage sent to the database, by command and outcome (ok, error)',
    labelNames: ['command', 'outcome'] as const,
    registers,
  });
  const seconds = new HotHistogram({
    name: 'postmesh_storage_db_operation_seconds',
    help: 'Latency of the commands storage sent to the database, by command',
    labelNames: ['command'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  return ({ command: name, durationMs, failed }) => {
    const command = KNOWN_COMMANDS.has(name) ? name : 'other';
    operations.inc({ command, outcome: failed ? 'error' : 'ok' });
    seconds.observe({ command }, durationMs / 1000);
  };
}

/**
 * Starts counting the commands `client` sends; it must be created with `monitorCommands: true`.
 * Answers the commands in flight, which db/stall-watch.ts reports when one runs too long.
 */
export function instrumentDatabase(client: MongoClient, registry: Registry): CommandsInFlight {
  const inFlight = new CommandsInFlight();
  const record = databaseMetrics(registry);
  client.on('commandStarted', (event) => inFlight.begin(event));
  client.on('commandSucceeded', (event) => {
    inFlight.end(event);
    record({ command: event.commandName, durationMs: event.duration, failed: false });
  });
  client.on('commandFailed', (event) => {
    inFlight.end(event);
    record({ command: event.commandName, durationMs: event.duration, failed: true });
  });
  return inFlight;
}

/** The same KeyProvider, counting its wraps and unwraps (a KMS call each with KMS). */
export function instrumentKeyProvider<P extends KeyProvider>(provider: P, registry: Registry): P {
  const registers = [registry];
  const operations = new Counter({
    name: 'postmesh_storage_key_operations_total',
    help: 'Keys wrapped or unwrapped by the key-encryption key, by operation and outcome (ok, error)',
    labelNames: ['operation', 'outcome'] as const,
    registers,
  });
  const seconds = new Histogram({
    name: 'postmesh_storage_key_operation_seconds',
    help: 'Latency of wrapping or unwrapping a key by the key-encryption key',
    labelNames: ['operation'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers,
  });
  const timed = async <T>(operation: 'wrap' | 'unwrap', run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      const result = await run();
      operations.inc({ operation, outcome: 'ok' });
      return result;
    } catch (error) {
      operations.inc({ operation, outcome: 'error' });
      throw error;
    } finally {
      seconds.observe({ operation }, (performance.now() - started) / 1000);
    }
  };
  const wrap = provider.wrap.bind(provider);
  const unwrap = provider.unwrap.bind(provider);
  // The same object (other code keeps using its other members), with the two methods counted.
  return Object.assign(provider, {
    wrap: (key: Uint8Array, context: string): Promise<WrappedKey> => timed('wrap', () => wrap(key, context)),
    unwrap: (wrapped: WrappedKey, context: string): Promise<Uint8Array> =>
      timed('unwrap', () => unwrap(wrapped, context)),
  });
}
