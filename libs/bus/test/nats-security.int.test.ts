/**
 * NATS as the harness and the local stack run it: TLS on the client port, one user per service
 * with its allow-lists (libs/bus `natsPermissions`), and JetStream encrypted at rest. A real
 * nats-server; the clients are nats.js, as the services use it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer, startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { Buckets, Consumers, QueueSubjects, Streams, ensureTopology } from '../src/index.js';

let env: TestEnvironment;
let operator: NatsConnection;

beforeAll(async () => {
  env = await startTestEnvironment({ mongo: false });
  operator = await connect(env.natsOptions('operator'));
  await ensureTopology(operator, await jetstreamManager(operator), { replicas: 1 });
}, 60_000);
afterAll(async () => {
  await operator?.close();
  await env?.stop();
});

/** Resolves with the error a subscription was closed with (a permissions violation). */
async function subscriptionError(nc: NatsConnection, subject: string): Promise<unknown> {
  const sub = nc.subscribe(subject);
  const closed = sub.closed;
  await nc.flush();
  return Promise.race([
    closed,
    new Promise((resolve) => setTimeout(() => resolve('still subscribed after 5 s'), 5_000)),
  ]);
}

describe('NATS refuses clients without an identity', () => {
  it('refuses a TLS client without credentials', async () => {
    const { tls } = env.security('operator').natsOptions();
    await expect(
      connect({ servers: env.natsUrl, ...(tls === undefined ? {} : { tls }), reconnect: false }),
    ).rejects.toThrow(/authorization/i);
  });

  it('refuses a client that does not speak TLS', async () => {
    // nats.js always follows the server into TLS; a raw socket is what a plaintext client gets.
    const port = Number(new URL(env.natsUrl).port);
    const transcript = await new Promise<string>((resolve) => {
      let received = '';
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
        if (received.includes('\r\n') && !received.includes('CONNECT-SENT')) {
          socket.write('CONNECT {"verbose":false}\r\nPING\r\n');
          received += 'CONNECT-SENT';
        }
      });
      socket.on('close', () => resolve(received));
      socket.on('error', () => undefined);
      setTimeout(() => {
        socket.destroy();
        resolve(`${received} (still open after 10 s)`);
      }, 10_000);
    });
    expect(transcript).toMatch(/"tls_required":true/);
    expect(transcript).toMatch(/"auth_required":true/);
    expect(transcript).not.toMatch(/PONG/);
  });

  it('refuses a client whose credentials are another identity’s key', async () => {
    const other = await startTestEnvironment({ mongo: false, nats: false });
    try {
      // A user of another CA's set: its seed is unknown to this server.
      const { authenticator } = other.security('operator').natsOptions();
      const { tls } = env.security('operator').natsOptions();
      await expect(
        connect({
          servers: env.natsUrl,
          ...(tls === undefined ? {} : { tls }),
          ...(authenticator === undefined ? {} : { authenticator }),
          reconnect: false,
        }),
      ).rejects.toThrow(/authorization/i);
    } finally {
      await other.stop();
    }
  });
});

describe('each service gets only its own subjects', () => {
  let smtp: NatsConnection;
  beforeAll(async () => {
    smtp = await connect(env.natsOptions('smtp-inbound'));
  });
  afterAll(async () => {
    await smtp?.close();
  });

  it('lets smtp-inbound publish a job to MAIL_INBOUND and use the spool', async () => {
    const ack = await jetstream(smtp).publish('mail.inbound.permitted', 'job');
    expect(ack.stream).toBe(Streams.MAIL_INBOUND);
    const spool = await new Objm(smtp).open(Buckets.MAIL_SPOOL);
    await spool.putBlob({ name: 'msg/permitted' }, new Uint8Array([1, 2, 3]));
    expect(await spool.delete('msg/permitted')).toBeTruthy();
  });

  it('does not let smtp-inbound subscribe to mail.inbound', async () => {
    const error = await subscriptionError(smtp, 'mail.inbound.>');
    expect(String(error)).toMatch(/permissions violation/i);
  });

  it('does not let smtp-inbound read storage’s consumer', async () => {
    const jsm = await jetstreamManager(smtp);
    await expect(jsm.consumers.info(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER)).rejects.toThrow(
      /permissions violation/i,
    );
    await expect(
      smtp.request(`$JS.API.CONSUMER.MSG.NEXT.${Streams.MAIL_INBOUND}.${Consumers.STORAGE_DELIVER}`, '1', {
        timeout: 3_000,
      }),
    ).rejects.toThrow(/permissions violation/i);
    // Nor make a consumer of its own on the stream.
    await expect(
      jsm.consumers.add(Streams.MAIL_INBOUND, { durable_name: 'stolen', filter_subject: 'mail.inbound.>' }),
    ).rejects.toThrow(/permissions violation/i);
  });

  it('does not let smtp-inbound drive the queue operations or receive mailbox events', async () => {
    await expect(smtp.request(QueueSubjects.list, '{}', { timeout: 3_000 })).rejects.toThrow(
      /permissions violation/i,
    );
    expect(String(await subscriptionError(smtp, 'mailbox.changed.>'))).toMatch(/permissions violation/i);
  });

  it('lets imap receive mailbox events but not publish jobs', async () => {
    const imap = await connect(env.natsOptions('imap'));
    try {
      expect(await subscriptionError(imap, 'mailbox.changed.someone')).toBe('still subscribed after 5 s');
      await expect(jetstream(imap).publish('mail.inbound.forged', 'job')).rejects.toThrow(
        /permissions violation/i,
      );
    } finally {
      await imap.close();
    }
  });
});

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Writes `marker` through a job, a spool object and a KV value, then stops the server. */
async function writeMarkerAndStop(server: NatsServer, marker: string): Promise<void> {
  const nc = await connect({
    servers: server.url,
    ...(server.pki === undefined ? {} : env.security('operator').natsOptions()),
  });
  try {
    await ensureTopology(nc, await jetstreamManager(nc), { replicas: 1 });
    await jetstream(nc).publish('mail.inbound.marker', `Subject: ${marker}\r\n\r\n${marker}\r\n`);
    const spool = await new Objm(nc).open(Buckets.MAIL_SPOOL);
    await spool.putBlob({ name: 'msg/marker' }, new TextEncoder().encode(marker.repeat(100)));
    const kv = await new Kvm(nc).open(Buckets.RATE_LIMITS);
    await kv.put('marker', marker);
  } finally {
    await nc.close();
    await server.process.stop();
  }
}

describe('JetStream encryption at rest', () => {
  it('keeps no plaintext of a message in any file of the store', async () => {
    const server = await NatsServer.start({ pki: env.pki });
    try {
      const marker = `plaintext-marker-${Date.now()}`;
      await writeMarkerAndStop(server, marker);
      const files = filesUnder(server.storeDir);
      expect(files.length).toBeGreaterThan(0);
      const leaking = files.filter((f) => readFileSync(f).includes(marker));
      expect(leaking).toEqual([]);
      // The key stays beside the store, readable by its owner only.
      expect(statSync(join(server.dataDir, 'jetstream.key')).mode & 0o077).toBe(0);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('the same check finds the marker when encryption is off (the test can fail)', async () => {
    const server = await NatsServer.start({ encryptAtRest: false });
    try {
      const marker = `plaintext-marker-${Date.now()}`;
      await writeMarkerAndStop(server, marker);
      const leaking = filesUnder(server.storeDir).filter((f) => readFileSync(f).includes(marker));
      expect(leaking.length).toBeGreaterThan(0);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
