/**
 * GetMessageContent with `accept_content_in_info` (proto/postmesh/mailstore/v1): a section
 * storage has read and authenticated in memory comes whole in the one `info` response; a large
 * one still streams its chunks, and a caller that does not ask gets `info` and chunks as before.
 * The real storage app, its gRPC server and FerretDB.
 */
import { status } from '@grpc/grpc-js';
import type { mailstore } from '@postmesh/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callOptions } from './harness.js';
import {
  append,
  byPath,
  createUser,
  failureOf,
  message,
  startMailstoreHarness,
  type MailstoreHarness,
} from './mailstore-helpers.js';

let m: MailstoreHarness;

beforeAll(async () => {
  m = await startMailstoreHarness();
});

afterAll(async () => {
  await m?.stop();
});

/** Every response of one GetMessageContent stream, in order. */
async function responses(
  request: Partial<mailstore.GetMessageContentRequest> & { userId: string; mailboxId: string; uid: number },
): Promise<mailstore.GetMessageContentResponse[]> {
  const stream = m.client.getMessageContent(
    { section: '', decodeTransferEncoding: false, ...request },
    callOptions(),
  );
  const out: mailstore.GetMessageContentResponse[] = [];
  for await (const item of stream as AsyncIterable<mailstore.GetMessageContentResponse>) out.push(item);
  return out;
}

describe('GetMessageContent with the content in info', () => {
  it('answers a small section with one response holding it, and streams otherwise', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: in one piece', 'From: a@example.test', '', 'body '.repeat(2_000)]);
    const small = await append(m.client, userId, byPath('INBOX'), raw);
    const at = { userId, mailboxId: small.mailboxId, uid: small.uid };

    const whole = await responses({ ...at, acceptContentInInfo: true });
    expect(whole).toHaveLength(1);
    const info = whole[0]?.part?.$case === 'info' ? whole[0].part.value : undefined;
    expect(info?.size).toBe(raw.length);
    expect(info?.content?.equals(raw)).toBe(true);
    // A header section and a partial range the same way.
    const header = await responses({ ...at, section: 'HEADER', acceptContentInInfo: true });
    const headerInfo = header[0]?.part?.$case === 'info' ? header[0].part.value : undefined;
    expect(header).toHaveLength(1);
    expect(headerInfo?.content?.toString()).toBe('Subject: in one piece\r\nFrom: a@example.test\r\n\r\n');
    const part = await responses({ ...at, partial: { offset: 9, length: 5 }, acceptContentInInfo: true });
    expect(part[0]?.part?.$case === 'info' ? part[0].part.value.content?.toString() : undefined).toBe(
      'in on',
    );

    // Not asked: info without content, then the chunks.
    const streamed = await responses(at);
    expect(streamed.map((r) => r.part?.$case)).toEqual(['info', 'chunk']);
    expect(streamed[0]?.part?.$case === 'info' ? streamed[0].part.value.content : 'set').toBeUndefined();

    // Over 1 MiB the bytes stream as they are authenticated, asked or not.
    const big = Buffer.concat([message(['Subject: big', '', '']), Buffer.alloc(2 * 1024 * 1024, 0x78)]);
    const large = await append(m.client, userId, byPath('INBOX'), big, { chunkSize: 256 * 1024 });
    const bigResponses = await responses({
      userId,
      mailboxId: large.mailboxId,
      uid: large.uid,
      acceptContentInInfo: true,
    });
    expect(
      bigResponses[0]?.part?.$case === 'info' ? bigResponses[0].part.value.content : 'set',
    ).toBeUndefined();
    const chunks = bigResponses.flatMap((r) => (r.part?.$case === 'chunk' ? [r.part.value] : []));
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(big)).toBe(true);
  });

  it('refuses a message that is not there the same way', async () => {
    const userId = await createUser(m.h);
    const appended = await append(m.client, userId, byPath('INBOX'), message(['Subject: x', '', 'y']));
    const failure = await failureOf(
      responses({ userId, mailboxId: appended.mailboxId, uid: appended.uid + 1, acceptContentInInfo: true }),
    );
    expect(failure.code).toBe(status.NOT_FOUND);
  });
});
