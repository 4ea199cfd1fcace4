/**
 * DESIGN §2 guarantee under a storage crash: `kill -9` storage while 500 messages flow, restart
 * it; senders retry what got a 4xx (as real MTAs do), and every message that got a 250 is in the
 * mailbox exactly once, checked by content.
 */
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, Pipeline } from './pipeline.js';

const N = 500;

describe('kill -9 storage while 500 messages flow', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await Pipeline.start({ smtpEnv: { POSTMESH_SMTP_QUEUE_TIMEOUT_MS: '5000' } });
  }, 90_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('delivers every accepted message exactly once', async () => {
    const run = randomBytes(4).toString('hex');
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: p.smtpPort,
      secure: false,
      ignoreTLS: true,
      pool: true,
      maxConnections: 8,
      maxMessages: Infinity,
    });
    const accepted = new Set<number>();
    const tempFailed = new Set<number>();
    let killed = false;
    let restarted: Promise<void> | undefined;
    const sendOne = async (i: number): Promise<void> => {
      try {
        const info = await transport.sendMail({
          from: 'load@sender.test',
          to: DEMO,
          subject: `fault-${run}-${i}`,
          text: `message ${i} of run ${run}`,
        });
        expect(info.response).toMatch(/^250 /);
        accepted.add(i);
        tempFailed.delete(i);
      } catch (error) {
        const code = (error as { responseCode?: number }).responseCode ?? 0;
        // Never a permanent failure because storage was down.
        expect(code === 0 || (code >= 400 && code < 500), `message ${i} got ${code}`).toBe(true);
        tempFailed.add(i);
      }
      if (!killed && accepted.size >= 150) {
        killed = true;
        await p.storage.proc.kill();
        restarted = new Promise((r) => setTimeout(r, 1_000)).then(() => p.startStorage());
      }
    };
    await Promise.all(Array.from({ length: N }, (_, i) => sendOne(i)));
    await restarted;
    // Senders retry what was deferred, as MTAs do: later, a bounded number of times. The first
    // retries may still meet 451 while the restarted storage warms up and smtp-inbound's gRPC
    // channel leaves its reconnect backoff.
    for (let round = 0; round < 30 && tempFailed.size > 0; round++) {
      await new Promise((r) => setTimeout(r, 2_000));
      await Promise.all([...tempFailed].map((i) => sendOne(i)));
    }
    transport.close();
    expect(killed).toBe(true);
    expect(accepted.size).toBe(N);

    // Jobs storage had taken but not acked come back after the consumer's ack_wait (60 s).
    // (Wait a little beyond N too, so a duplicate would have had the time to show.)
    expect(await p.waitForCount(DEMO, N, { timeoutMs: 150_000 })).toBeGreaterThanOrEqual(N);
    await new Promise((r) => setTimeout(r, 2_000));
    const subjects = await p.messages(DEMO, 'INBOX', 'HEADER.FIELDS (SUBJECT)');
    const counts = new Map<number, number>();
    for (const m of subjects) {
      const match = new RegExp(`fault-${run}-(\\d+)`).exec(m.bytes.toString('latin1'));
      if (match) counts.set(Number(match[1]), (counts.get(Number(match[1])) ?? 0) + 1);
    }
    const duplicates = [...counts].filter(([, n]) => n !== 1);
    expect(duplicates).toEqual([]);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([...accepted].sort((a, b) => a - b));
  }, 280_000);
});
