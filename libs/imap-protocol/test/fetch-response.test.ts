import type { BodyPart, Envelope } from '@postmesh/mime';
import { describe, expect, it } from 'vitest';
import { collectOutput, serializeFetch, type FetchItem, type OutputChunk } from '../src/index.js';

const offsets = { headerStart: 0, bodyStart: 0, bodyEnd: 0 };

async function text(chunks: readonly OutputChunk[]): Promise<string> {
  return (await collectOutput(chunks)).toString('utf8');
}

/** The ENVELOPE of the RFC 9051 §6.4.5 / RFC 3501 §8 sample message. */
const rfcEnvelope: Envelope = {
  date: 'Wed, 17 Jul 1996 02:23:25 -0700 (PDT)',
  subject: 'IMAP4rev2 WG mtg summary and minutes',
  from: [{ name: 'Terry Gray', adl: null, mailbox: 'gray', host: 'cac.washington.edu' }],
  sender: [{ name: 'Terry Gray', adl: null, mailbox: 'gray', host: 'cac.washington.edu' }],
  replyTo: [{ name: 'Terry Gray', adl: null, mailbox: 'gray', host: 'cac.washington.edu' }],
  to: [{ name: null, adl: null, mailbox: 'imap', host: 'cac.washington.edu' }],
  cc: [
    { name: null, adl: null, mailbox: 'minutes', host: 'CNRI.Reston.VA.US' },
    { name: 'John Klensin', adl: null, mailbox: 'KLENSIN', host: 'MIT.EDU' },
  ],
  bcc: null,
  inReplyTo: null,
  messageId: '<B27397-0100000@cac.washington.edu>',
};

const textPlain = (size: number, lines: number, extra: Partial<BodyPart> = {}): BodyPart =>
  ({
    kind: 'text',
    partId: '1',
    type: 'text',
    subtype: 'plain',
    params: [['charset', 'US-ASCII']],
    id: null,
    description: null,
    encoding: '7BIT',
    size,
    lines,
    md5: null,
    disposition: null,
    language: null,
    location: null,
    offsets,
    ...extra,
  }) as BodyPart;

describe('FETCH responses (RFC 9051 §7.5.2)', () => {
  it('writes UID and FLAGS', async () => {
    expect(
      await text(
        serializeFetch(1, [
          { item: 'UID', uid: 5 },
          { item: 'FLAGS', flags: ['\\Seen'] },
        ]),
      ),
    ).toBe('* 1 FETCH (UID 5 FLAGS (\\Seen))\r\n');
    expect(
      await text(
        serializeFetch(2, [
          { item: 'FLAGS', flags: [] },
          { item: 'MODSEQ', modseq: 12121231000n },
        ]),
      ),
    ).toBe('* 2 FETCH (FLAGS () MODSEQ (12121231000))\r\n');
  });

  it('writes PREVIEW as a string, a literal for UTF-8 without UTF8=ACCEPT, or NIL (RFC 8970 §3)', async () => {
    expect(await text(serializeFetch(1, [{ item: 'PREVIEW', text: 'Hello there.' }]))).toBe(
      '* 1 FETCH (PREVIEW "Hello there.")\r\n',
    );
    expect(await text(serializeFetch(1, [{ item: 'PREVIEW', text: 'Caf\u00e9' }]))).toBe(
      '* 1 FETCH (PREVIEW {5}\r\nCaf\u00e9)\r\n',
    );
    expect(await text(serializeFetch(1, [{ item: 'PREVIEW', text: 'Caf\u00e9' }], { utf8: true }))).toBe(
      '* 1 FETCH (PREVIEW "Caf\u00e9")\r\n',
    );
    expect(await text(serializeFetch(1, [{ item: 'PREVIEW', text: null }]))).toBe(
      '* 1 FETCH (PREVIEW NIL)\r\n',
    );
  });

  it('reproduces the RFC 9051 §6.4.5 sample FETCH response', async () => {
    const items: FetchItem[] = [
      { item: 'FLAGS', flags: ['\\Seen'] },
      { item: 'INTERNALDATE', date: new Date('1996-07-17T09:44:25Z'), offsetMinutes: -420 },
      { item: 'RFC822.SIZE', size: 4286 },
      { item: 'ENVELOPE', envelope: rfcEnvelope },
      { item: 'BODY', body: textPlain(3028, 92) },
    ];
    expect(await text(serializeFetch(12, items))).toBe(
      '* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE 4286 ' +
        'ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev2 WG mtg summary and minutes" ' +
        '(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ' +
        '(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ' +
        '((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL ' +
        '"<B27397-0100000@cac.washington.edu>") ' +
        'BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))\r\n',
    );
  });

  const mixed: BodyPart = {
    kind: 'multipart',
    partId: '',
    subtype: 'mixed',
    params: [['boundary', 'x']],
    disposition: null,
    language: null,
    location: null,
    offsets,
    parts: [
      textPlain(1152, 23),
      textPlain(4554, 73, {
        partId: '2',
        params: [
          ['charset', 'US-ASCII'],
          ['name', 'cc.diff'],
        ],
        id: '<960723163407.20117h@cac.washington.edu>',
        description: 'Compiler diff',
        encoding: 'BASE64',
      }),
    ],
  };

  it('writes the non-extensible BODY of the RFC 9051 §7.5.2 multipart example', async () => {
    expect(await text(serializeFetch(1, [{ item: 'BODY', body: mixed }]))).toBe(
      '* 1 FETCH (BODY (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)' +
        '("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" ' +
        '"Compiler diff" "BASE64" 4554 73) "MIXED"))\r\n',
    );
  });

  it('adds extension data to BODYSTRUCTURE (body-ext-1part, body-ext-mpart)', async () => {
    const withExt: BodyPart = {
      ...mixed,
      language: ['en', 'de'],
      parts: [
        textPlain(10, 1, { md5: 'Q2hlY2sgSW50ZWdyaXR5IQ==', language: ['en'], location: 'http://x/y' }),
        {
          kind: 'basic',
          partId: '2',
          type: 'application',
          subtype: 'pdf',
          params: [],
          id: null,
          description: null,
          encoding: 'BASE64',
          size: 200,
          md5: null,
          disposition: { type: 'attachment', params: [['filename', 'a b.pdf']] },
          language: null,
          location: null,
          offsets,
        },
      ],
    };
    expect(await text(serializeFetch(3, [{ item: 'BODYSTRUCTURE', body: withExt }]))).toBe(
      '* 3 FETCH (BODYSTRUCTURE (' +
        '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" NIL "en" "http://x/y")' +
        '("APPLICATION" "PDF" NIL NIL NIL "BASE64" 200 NIL ("ATTACHMENT" ("FILENAME" "a b.pdf")) NIL NIL)' +
        ' "MIXED" ("BOUNDARY" "x") NIL ("en" "de") NIL))\r\n',
    );
  });

  it('nests message/rfc822 with its envelope, body and line count', async () => {
    const message: BodyPart = {
      kind: 'message',
      partId: '',
      type: 'message',
      subtype: 'rfc822',
      params: [],
      id: null,
      description: null,
      encoding: '7BIT',
      size: 500,
      md5: null,
      disposition: null,
      language: null,
      location: null,
      offsets,
      envelope: {
        ...rfcEnvelope,
        from: null,
        sender: null,
        replyTo: null,
        to: null,
        cc: null,
        subject: 'Grüße',
      },
      body: textPlain(100, 2),
      lines: 12,
    };
    expect(await text(serializeFetch(1, [{ item: 'BODY', body: message }]))).toBe(
      '* 1 FETCH (BODY ("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 500 ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" ' +
        '{7}\r\nGrüße NIL NIL NIL NIL NIL NIL NIL "<B27397-0100000@cac.washington.edu>") ' +
        '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 100 2) 12))\r\n',
    );
  });

  it('writes an ENVELOPE group as IMAP group markers and 8-bit text as quoted UTF-8 when enabled', async () => {
    const env: Envelope = {
      ...rfcEnvelope,
      subject: 'Grüße',
      to: [
        { name: null, adl: null, mailbox: 'undisclosed-recipients', host: null },
        { name: null, adl: null, mailbox: null, host: null },
      ],
    };
    const out = await text(serializeFetch(1, [{ item: 'ENVELOPE', envelope: env }], { utf8: true }));
    expect(out).toContain('"Grüße"');
    expect(out).toContain('((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))');
  });

  it('writes BODY[section]<origin> as a literal, NIL when missing', async () => {
    const out = await text(
      serializeFetch(1, [
        { item: 'UID', uid: 9 },
        {
          item: 'BODY[]',
          section: { part: [], text: { kind: 'none' } },
          origin: null,
          data: Buffer.from('Hi\r\n'),
        },
        {
          item: 'BODY[]',
          section: { part: [1, 2], text: { kind: 'HEADER.FIELDS', fields: ['From', 'x-b'] } },
          origin: null,
          data: Buffer.from('From: a\r\n\r\n'),
        },
        {
          item: 'BODY[]',
          section: { part: [2], text: { kind: 'TEXT' } },
          origin: 10,
          data: Buffer.from('xyz'),
        },
        { item: 'BODY[]', section: { part: [3], text: { kind: 'MIME' } }, origin: null, data: null },
        { item: 'RFC822.HEADER', data: Buffer.from('A: b\r\n\r\n') },
      ]),
    );
    expect(out).toBe(
      '* 1 FETCH (UID 9 BODY[] {4}\r\nHi\r\n BODY[1.2.HEADER.FIELDS (FROM X-B)] {11}\r\nFrom: a\r\n\r\n' +
        ' BODY[2.TEXT]<10> {3}\r\nxyz BODY[3.MIME] NIL RFC822.HEADER {8}\r\nA: b\r\n\r\n)\r\n',
    );
  });

  it('writes BINARY with literal8 only when the data has NUL (RFC 3516 §4.3), and BINARY.SIZE', async () => {
    const out = await text(
      serializeFetch(4, [
        { item: 'BINARY[]', part: [1], origin: null, data: Buffer.from('plain') },
        { item: 'BINARY[]', part: [2], origin: 0, data: Buffer.from([1, 0, 2]) },
        { item: 'BINARY.SIZE', part: [2], size: 3 },
      ]),
    );
    expect(out).toBe(
      '* 4 FETCH (BINARY[1] {5}\r\nplain BINARY[2]<0> ~{3}\r\n\x01\x00\x02 BINARY.SIZE[2] 3)\r\n',
    );
  });

  it('passes large bodies and streams through as their own chunks, without copying', async () => {
    const body = Buffer.alloc(100_000, 0x61);
    const chunks = serializeFetch(1, [
      { item: 'BODY[]', section: { part: [], text: { kind: 'none' } }, origin: null, data: body },
    ]);
    expect(chunks).toHaveLength(3);
    expect(chunks[1]).toBe(body);

    const source = (async function* (): AsyncGenerator<Uint8Array> {
      yield Buffer.from('ab');
      await Promise.resolve();
      yield Buffer.from('c');
    })();
    const streamed = serializeFetch(2, [
      { item: 'UID', uid: 1 },
      { item: 'RFC822', data: { kind: 'stream', size: 3, source } },
    ]);
    expect(streamed.map((c) => (c instanceof Uint8Array ? 'bytes' : c.kind))).toEqual([
      'bytes',
      'stream',
      'bytes',
    ]);
    expect(await text(streamed)).toBe('* 2 FETCH (UID 1 RFC822 {3}\r\nabc)\r\n');
  });

  it('formats INTERNALDATE with a space-padded day and the zone', async () => {
    expect(
      await text(
        serializeFetch(1, [
          { item: 'INTERNALDATE', date: new Date('2024-03-05T23:30:00Z'), offsetMinutes: 60 },
        ]),
      ),
    ).toBe('* 1 FETCH (INTERNALDATE " 6-Mar-2024 00:30:00 +0100")\r\n');
    expect(
      await text(serializeFetch(1, [{ item: 'INTERNALDATE', date: new Date('2024-12-25T08:05:09Z') }])),
    ).toBe('* 1 FETCH (INTERNALDATE "25-Dec-2024 08:05:09 +0000")\r\n');
  });
});
