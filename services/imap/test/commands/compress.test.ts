/** COMPRESS — RFC 4978 §3, §4. */
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, type Connection } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

/**
 * After COMPRESS: sends `line` as raw DEFLATE (RFC 1951), flushed, and returns everything the
 * server sent since compression began, inflated, once it holds the tagged response.
 */
async function compressed(c: Connection, start: number, line: string): Promise<string> {
  c.write(deflateRawSync(Buffer.from(line, 'latin1'), { finishFlush: constants.Z_SYNC_FLUSH }));
  const tag = line.slice(0, line.indexOf(' '));
  const deadline = Date.now() + 3000;
  for (;;) {
    let text = '';
    try {
      text = inflateRawSync(c.bytes.subarray(start), { finishFlush: constants.Z_SYNC_FLUSH }).toString(
        'latin1',
      );
    } catch {
      // Not a complete flush yet.
    }
    if (new RegExp(`(^|\\r\\n)${tag} [^\\r]*\\r\\n$`).test(text)) return text;
    if (Date.now() > deadline) throw new Error(`no compressed answer to ${line}: ${text}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('COMPRESS', () => {
  it('switches both directions to raw DEFLATE right after the tagged OK (RFC 4978 §3, §4)', async () => {
    const c = await imap.login();
    expect(await c.command('a COMPRESS DEFLATE')).toEqual(['a OK DEFLATE active']);
    const start = c.bytes.length;
    expect(await compressed(c, start, 'b NOOP\r\n')).toBe('b OK NOOP completed\r\n');
    // RFC 4978 §3: COMPRESS=DEFLATE is no longer advertised once compression is on.
    const text = await compressed(c, start, 'c CAPABILITY\r\n');
    expect(text).toContain('* CAPABILITY IMAP4rev2 ');
    expect(text).not.toContain('COMPRESS=DEFLATE');
    // RFC 4978 §3: a second COMPRESS is refused with COMPRESSIONACTIVE.
    expect(await compressed(c, start, 'd COMPRESS DEFLATE\r\n')).toMatch(
      /\r\nd NO \[COMPRESSIONACTIVE\] Compression is already active\r\n$/,
    );
  });

  it('answers an unknown mechanism BAD and is BAD before authentication (RFC 4978 §3)', async () => {
    const c = await imap.connect();
    expect(await c.command('a COMPRESS DEFLATE')).toEqual([
      'a BAD COMPRESS is not allowed in the not authenticated state',
    ]);
    await c.command('l LOGIN alice@example.test alice-pw');
    expect(await c.command('b COMPRESS LZMA')).toEqual(['b BAD Unsupported compression mechanism LZMA']);
  });
});
