/**
 * Caps on SMTP sessions open at once (per client IP and in total): a client over a cap gets
 * `421 4.7.0` and the connection is closed (RFC 5321 §3.8, §4.2.3); a slot freed by a session
 * that ends is usable again at once. Client addresses are distinct loopback addresses
 * (127.0.0.2, 127.0.0.3, ...; Linux routes all of 127/8 to lo).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline } from './pipeline.js';
import { WireClient } from './smtp-wire.js';

describe('SMTP connection caps', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await Pipeline.start({
      smtpEnv: { POSTMESH_SMTP_MAX_CONNECTIONS_PER_IP: '3', POSTMESH_SMTP_MAX_CONNECTIONS: '5' },
    });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  const open = (from: string) => WireClient.open(p.smtpPort, { localAddress: from });

  it('421 4.7.0 over the per-IP cap and over the total cap; freed slots are reused', async () => {
    const held: WireClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const { client, greeting } = await open('127.0.0.2');
        expect(greeting.code).toBe(220);
        held.push(client);
      }
      const over = await open('127.0.0.2');
      expect(`${over.greeting.code} ${over.greeting.text}`).toBe(
        '421 4.7.0 Too many connections from your address, try later',
      );
      expect(await over.client.waitClosed()).toBe(true);

      // Other addresses still get in, up to the total of 5 open sessions.
      for (const from of ['127.0.0.3', '127.0.0.4']) {
        const { client, greeting } = await open(from);
        expect(greeting.code).toBe(220);
        held.push(client);
      }
      const full = await open('127.0.0.5');
      expect(`${full.greeting.code} ${full.greeting.text}`).toBe('421 4.7.0 Too many connections, try later');
      expect(await full.client.waitClosed()).toBe(true);

      // A session that ends frees its slot: the same client gets in again, and works.
      held.shift()?.close();
      const deadline = Date.now() + 5_000;
      let again: Awaited<ReturnType<typeof open>> | undefined;
      while (Date.now() < deadline) {
        again = await open('127.0.0.2');
        if (again.greeting.code === 220) break;
        again.client.close();
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(again?.greeting.code).toBe(220);
      if (again !== undefined) {
        held.push(again.client);
        expect((await again.client.command('EHLO client.example.test')).code).toBe(250);
      }
    } finally {
      for (const c of held) c.close();
    }
  }, 60_000);
});
