// Indexer behaviour not covered by the corpus: search text, API misuse, boundaries in 8-bit headers.
import { describe, expect, it } from 'vitest';
import { MimeIndexer, MimeIndexerStateError, indexMessage } from '../src/index.js';

const MESSAGE = [
  'Content-Type: multipart/mixed; boundary=m',
  '',
  '--m',
  'Content-Type: multipart/alternative; boundary=a',
  '',
  '--a',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'caf=C3=A9 =',
  'cr=C3=A8me',
  '--a',
  'Content-Type: text/html; charset=iso-8859-1',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('<p>na\xefve &amp; <b>bold</b></p><script>x()</script>', 'latin1').toString('base64'),
  '--a--',
  '--m',
  'Content-Type: text/plain',
  'Content-Disposition: attachment; filename=secret.txt',
  '',
  'not indexed',
  '--m',
  'Content-Type: image/png',
  '',
  'binary',
  '--m--',
  '',
].join('\r\n');

describe('textForSearch', () => {
  it('decodes text/plain and text/html bodies (not attachments or other types)', () => {
    const r = indexMessage(Buffer.from(MESSAGE), { searchTextBytes: 1 << 20 });
    expect(r.textForSearch).toBe('café crème\nnaïve & bold');
  });

  it('is absent unless asked for, and bounded by searchTextBytes', () => {
    expect(indexMessage(Buffer.from(MESSAGE)).textForSearch).toBeUndefined();
    const r = indexMessage(Buffer.from(MESSAGE), { searchTextBytes: 5 });
    // The budget is spent by the first line (kept up to the line prefix); nothing after it.
    expect(r.textForSearch).toBe('café');
  });
});

describe('textForSearch of long and 8-bit parts', () => {
  // Lines are gathered and charset-decoded in blocks of 64 KiB: a character split between two
  // blocks, or between two writes, must come out whole.
  const line = `${'é'.repeat(33)}x\r\n`; // 69 octets: 64 KiB falls inside a 'é'
  const body = line.repeat(2_000);
  const message = `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`;
  const expected = body.replaceAll('\r\n', '\n').trim();

  it('decodes a UTF-8 part longer than a decoding block without breaking characters', () => {
    const raw = Buffer.from(message, 'utf8');
    expect(indexMessage(raw, { searchTextBytes: 1 << 20 }).textForSearch).toBe(expected);
    const ix = new MimeIndexer({ searchTextBytes: 1 << 20 });
    for (let i = 0; i < raw.length; i += 7) ix.write(raw.subarray(i, i + 7));
    expect(ix.end().textForSearch).toBe(expected);
  });

  it('decodes windows-1252 (and its us-ascii default) with the characters of 0x80-0x9F', () => {
    const raw = Buffer.concat([
      Buffer.from('Content-Type: text/plain; charset=windows-1252\r\n\r\n'),
      Buffer.from([0x93, 0x61, 0x80, 0x94, 0x0d, 0x0a, 0xe9]),
    ]);
    expect(indexMessage(raw, { searchTextBytes: 1 << 20 }).textForSearch).toBe('\u201ca\u20ac\u201d\né');
    const ascii = Buffer.from('Subject: s\r\n\r\nplain text\r\nsecond line\r\n');
    expect(indexMessage(ascii, { searchTextBytes: 1 << 20 }).textForSearch).toBe('plain text\nsecond line');
  });
});

describe('MimeIndexer', () => {
  it('rejects use after end() with a typed error', () => {
    const ix = new MimeIndexer();
    ix.write(Buffer.from('Subject: x\r\n\r\nbody'));
    ix.end();
    expect(() => ix.write(Buffer.from('more'))).toThrow(MimeIndexerStateError);
    expect(() => ix.end()).toThrow(MimeIndexerStateError);
  });

  it('indexes the empty message', () => {
    const r = indexMessage(new Uint8Array(0));
    expect(r.size).toBe(0);
    expect(r.bodystructure).toMatchObject({
      kind: 'text',
      type: 'text',
      subtype: 'plain',
      size: 0,
      lines: 0,
    });
    expect(r.envelope.subject).toBeNull();
  });

  it('matches a Latin-1 boundary written in a raw 8-bit header', () => {
    const raw = Buffer.from(
      'Content-Type: multipart/mixed; boundary="gr\xfcn"\r\n\r\n--gr\xfcn\r\n\r\nx\r\n--gr\xfcn--\r\n',
      'latin1',
    );
    const r = indexMessage(raw);
    expect(r.bodystructure.kind).toBe('multipart');
    expect(r.bodystructure.kind === 'multipart' && r.bodystructure.parts[0]?.offsets).toEqual({
      headerStart: raw.indexOf('\r\n\r\nx') + 2,
      bodyStart: raw.indexOf('x\r\n'),
      bodyEnd: raw.indexOf('x\r\n') + 1,
    });
  });
});
