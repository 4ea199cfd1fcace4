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
