import { existsSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { FerretDb, NatsServer, startTestEnvironment } from '../src/index.js';

describe('test servers', () => {
  it('FerretDB serves the MongoDB wire protocol to the mongodb driver, with unique indexes', async () => {
    const env = await startTestEnvironment({ nats: false });
    const client = new MongoClient(env.mongoUri, { serverSelectionTimeoutMS: 10_000 });
    try {
      await client.connect();
      const collection = client
        .db(env.database)
        .collection<{ spoolId: string; recipient: string; n: number }>('deliveries');
      await collection.createIndex({ spoolId: 1, recipient: 1 }, { unique: true });
      await collection.insertOne({ spoolId: 's1', recipient: 'demo@example.test', n: 1 });
      await expect(
        collection.insertOne({ spoolId: 's1', recipient: 'demo@example.test', n: 2 }),
      ).rejects.toMatchObject({ code: 11000 });
      const updated = await collection.findOneAndUpdate(
        { spoolId: 's1' },
        { $inc: { n: 1 } },
        { returnDocument: 'after' },
      );
      expect(updated?.n).toBe(2);
      expect(await collection.countDocuments()).toBe(1);
      await client.db(env.database).dropDatabase();
    } finally {
      await client.close();
      await env.stop();
    }
  });

  it('keeps JetStream data across a kill -9 and restart, and removes its temporary data on stop', async () => {
    const nats = await NatsServer.start();
    const { dataDir } = nats;
    expect(existsSync(dataDir)).toBe(true);
    await nats.process.kill();
    expect(nats.process.running).toBe(false);
    await nats.restart();
    expect(nats.process.running).toBe(true);
    await nats.stop();
    expect(existsSync(dataDir)).toBe(false);
  });

  it('starts two isolated FerretDB instances side by side', async () => {
    const [a, b] = await Promise.all([FerretDb.start(), FerretDb.start()]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.dataDir).not.toBe(b.dataDir);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
