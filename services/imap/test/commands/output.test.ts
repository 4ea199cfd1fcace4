/**
 * How responses reach the connection: a command's output is written in few large pieces (a write
 * per small chunk costs a system call each), bounded in size, and what the client waits for
 * (a continuation request) is not held back behind a storage call.
 */
import { randomBytes } from 'node:crypto';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('response output', () => {
  it('writes a FETCH of bodies and its tagged OK as one write', async () => {
    for (let i = 1; i <= 5; i++)
      await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: `m${i}` }));
    const c = await imap.selected();
    const before = c.pipe.chunks.length;
    const lines = await c.command('a FETCH 1:5 (UID BODY.PEEK[] BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    expect(lines.at(-1)).toBe('a OK FETCH completed');
    expect(lines.filter((l) => l.startsWith('* ')).length).toBe(5);
    expect(c.pipe.chunks.length - before).toBe(1);
  });

  it('writes a large FETCH in pieces of bounded size, every byte in order', async () => {
    const body = 'x'.repeat(76) + '\r\n';
    const big = message({ subject: 'big', body: body.repeat(400) }); // about 31 KiB
    for (let i = 0; i < 8; i++) await imap.store.deliver(imap.alice.id, 'INBOX', big);
    const c = await imap.selected();
    const before = c.pipe.chunks.length;
    const text = (await c.command('a FETCH 1:8 BODY.PEEK[]')).join('\r\n');
    const writes = c.pipe.chunks.slice(before);
    // 250 KiB of answer: not one buffer of all of it, each write at most the threshold plus one piece.
    expect(writes.length).toBeGreaterThan(2);
    for (const w of writes) expect(w.length).toBeLessThanOrEqual(64 * 1024 + big.length + 1024);
    expect(text.split(big.slice(0, 200)).length - 1).toBe(8);
    expect(text.endsWith('a OK FETCH completed')).toBe(true);
  });

  it('writes a large FETCH through COMPRESS=DEFLATE whole, waiting for the compressor (RFC 4978 §4)', async () => {
    // Base64 of random bytes: the compressor's buffer fills, so the answer waits for it to drain.
    const bodies = Array.from({ length: 6 }, () =>
      (
        randomBytes(24 * 1024)
          .toString('base64')
          .match(/.{1,76}/g) ?? []
      ).join('\r\n'),
    );
    for (const body of bodies) await imap.store.deliver(imap.alice.id, 'INBOX', message({ body }));
    const c = await imap.selected();
    expect(await c.command('a COMPRESS DEFLATE')).toEqual(['a OK DEFLATE active']);
    const start = c.bytes.length;
    c.write(
      deflateRawSync(Buffer.from('b FETCH 1:6 BODY.PEEK[TEXT]\r\n'), { finishFlush: constants.Z_SYNC_FLUSH }),
    );
    const deadline = Date.now() + 5000;
    let text = '';
    while (!text.endsWith('b OK FETCH completed\r\n')) {
      if (Date.now() > deadline) throw new Error(`no complete answer; got ${text.length} octets`);
      await new Promise((resolve) => setTimeout(resolve, 10));
      try {
        text = inflateRawSync(c.bytes.subarray(start), { finishFlush: constants.Z_SYNC_FLUSH }).toString(
          'latin1',
        );
      } catch {
        // Not a complete flush yet.
      }
    }
    for (const body of bodies) expect(text).toContain(body);
  });

  it('sends "+ idling" before the first look at storage answers', async () => {
    const c = await imap.selected();
    const getChanges = imap.store.getChanges.bind(imap.store);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    imap.store.getChanges = async (request) => {
      await held;
      return getChanges(request);
    };
    c.write('a IDLE\r\n');
    expect(await c.lines('\r\n')).toEqual(['+ idling']);
    release();
    c.write('DONE\r\n');
    expect(await c.lines(/a (OK|NO|BAD)/)).toEqual(['a OK IDLE terminated']);
  });
});
