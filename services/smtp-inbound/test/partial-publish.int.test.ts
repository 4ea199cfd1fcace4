/**
 * A message for a local and a remote recipient becomes two jobs (MAIL_INBOUND and MAIL_OUTBOUND),
 * each with its own spool object when it is large. When one publish is acknowledged and the
 * other fails, the client hears 451, and the acknowledged job is delivered: its spool object must
 * still be there. Only the object of the job the server refused is deleted.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Streams, openSpool } from '@postmesh/bus';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, DEMO_PASSWORD, Pipeline } from './pipeline.js';

describe('a partial publish keeps the spool objects acknowledged jobs need', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await Pipeline.start();
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('MAIL_OUTBOUND refuses, MAIL_INBOUND acknowledges: 451, and the local copy is still delivered', async () => {
    const nc = await connect(p.natsOptions());
    try {
      // No stream takes mail.outbound.> any more: that publish is refused (no responders).
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(Streams.MAIL_OUTBOUND);

      const token = randomBytes(6).toString('hex');
      // Over the inline limit: the message goes to `mail-spool`, once per side.
      const filler = `${'x'.repeat(76)}\r\n`.repeat(4_000);
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: p.submissionPort,
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: DEMO, pass: DEMO_PASSWORD },
      });
      const sent = transport.sendMail({
        envelope: { from: DEMO, to: [DEMO, 'someone@remote.test'] },
        raw: Buffer.from(`From: ${DEMO}\r\nSubject: partial ${token}\r\n\r\nbody ${token}\r\n${filler}`),
      });
      await expect(sent).rejects.toMatchObject({
        responseCode: 451,
        response: expect.stringMatching(/^451 4\.3\.0 /) as unknown,
      });

      // The inbound job was acknowledged before the failure: storage delivers it from its object.
      const inbox = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(`body ${token}`)), {
        timeoutMs: 30_000,
      });
      expect(inbox.filter((x) => x.bytes.includes(`body ${token}`))).toHaveLength(1);
      // The outbound object, whose job the server refused, is gone; storage removed the inbound
      // one after delivering it.
      const store = await openSpool(nc);
      const deadline = Date.now() + 10_000;
      let left: string[] = [];
      do {
        left = (await store.list()).filter((o) => o.deleted !== true).map((o) => o.name);
        if (left.length === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      } while (Date.now() < deadline);
      expect(left).toEqual([]);
    } finally {
      await nc.close();
    }
  }, 90_000);
});
