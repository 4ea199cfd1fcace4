import { runService } from '@postmesh/runtime';
import { MongoClient } from 'mongodb';
import { schema } from './config.js';

/**
 * storage: the only service that talks to MongoDB (DESIGN §1). This wiring connects to the
 * database and NATS and reports ready only when both answer; the Directory, Mailstore and Trace
 * gRPC services and the delivery consumer are added by the storage and pipeline work.
 */
await runService({
  name: 'storage',
  schema,
  async start({ config, logger, ops }) {
    const client = new MongoClient(config.MONGODB_URI, {
      appName: 'postmesh-storage',
      serverSelectionTimeoutMS: 5_000,
      // DESIGN §2 step 6: every write is majority-acknowledged and journaled.
      writeConcern: { w: 'majority', journal: true },
    });
    await client.connect();
    const db = client.db(config.POSTMESH_MONGODB_DB);
    logger.info({ database: config.POSTMESH_MONGODB_DB }, 'connected to MongoDB');
    ops.addCheck({
      name: 'mongodb',
      async check(): Promise<true> {
        await db.command({ ping: 1 }, { timeoutMS: 1_500 });
        return true;
      },
    });
    return {
      async stop() {
        await client.close();
      },
    };
  },
});
