/**
 * FETCH and UID FETCH — RFC 9051 §6.4.5, §6.4.9, §7.5.2; BINARY (RFC 3516 §4.2), PREVIEW
 * (RFC 8970), OBJECTID (RFC 8474 §5), CONDSTORE's MODSEQ and CHANGEDSINCE (RFC 7162 §3.1.4).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;

const PLAIN = message({ subject: 'Plain', body: 'Hello there.' });
const MULTIPART =
  'From: Bob <bob@example.test>\r\n' +
  'To: alice@example.test\r\n' +
  'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n' +
  'Date: Mon, 7 Dec 2026 11:00:00 +0000\r\n' +
  'MIME-Version: 1.0\r\n' +
  'Content-Type: multipart/mixed; boundary="b1"\r\n' +
  '\r\n' +
  '--b1\r\n' +
  'Content-Type: text/plain; charset=utf-8\r\n' +
  '\r\n' +
  'First part text.\r\n' +
  '--b1\r\n' +
  'Content-Type: application/octet-stream\r\n' +
  'Content-Transfer-Encoding: base64\r\n' +
  '\r\n' +
  'AAECAw==\r\n' +
  '--b1--\r\n';

beforeEach(async () => {
  imap = new InprocImap();
  await imap.store.deliver(imap.alice.id, 'INBOX', PLAIN, { internalDate: new Date('2026-12-07T10:00:05Z') });
  await imap.store.deliver(imap.alice.id, 'INBOX', MULTIPART, {
    internalDate: new Date('2026-12-07T11:00:05Z'),
  });
});
afterEach(() => imap.close());

const headerOf = (raw: string): string => raw.slice(0, raw.indexOf('\r\n\r\n') + 4);
const bodyOf = (raw: string): string => raw.slice(raw.indexOf('\r\n\r\n') + 4);

describe('FETCH', () => {
  it('answers FLAGS, UID, INTERNALDATE and RFC822.SIZE (RFC 9051 §7.5.2)', async () => {
    const c = await imap.selected();
    expect(await c.command('a FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE)')).toEqual([
      `* 1 FETCH (UID 1 FLAGS (\\Recent) INTERNALDATE " 7-Dec-2026 10:00:05 +0000" RFC822.SIZE ${PLAIN.length})`,
      `* 2 FETCH (UID 2 FLAGS (\\Recent) INTERNALDATE " 7-Dec-2026 11:00:05 +0000" RFC822.SIZE ${MULTIPART.length})`,
      'a OK FETCH completed',
    ]);
  });

  it('expands the FAST, ALL and FULL macros (RFC 9051 §6.4.5)', async () => {
    const c = await imap.selected();
    const [fast] = await c.command('a FETCH 1 FAST');
    expect(fast).toBe(
      `* 1 FETCH (FLAGS (\\Recent) INTERNALDATE " 7-Dec-2026 10:00:05 +0000" RFC822.SIZE ${PLAIN.length})`,
    );
    const [all] = await c.command('b FETCH 1 ALL');
    expect(all).toMatch(
      /^\* 1 FETCH \(FLAGS \(\\Recent\) INTERNALDATE "[^"]+" RFC822\.SIZE \d+ ENVELOPE \(.*\)\)$/,
    );
    const [full] = await c.command('c FETCH 1 FULL');
    expect(full).toMatch(/ ENVELOPE \(.*\) BODY \("TEXT" "PLAIN" .*\)\)$/);
  });

  it('answers ENVELOPE with decoded addresses and the raw subject (RFC 9051 §7.5.2)', async () => {
    const c = await imap.selected();
    expect(await c.command('a FETCH 2 ENVELOPE')).toEqual([
      '* 2 FETCH (ENVELOPE ("Mon, 7 Dec 2026 11:00:00 +0000" "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=" (("Bob" NIL "bob" "example.test")) (("Bob" NIL "bob" "example.test")) (("Bob" NIL "bob" "example.test")) ((NIL NIL "alice" "example.test")) NIL NIL NIL NIL))',
      'a OK FETCH completed',
    ]);
  });

  it('answers BODYSTRUCTURE of a multipart (RFC 9051 §7.5.2)', async () => {
    const c = await imap.selected();
    expect(await c.command('a FETCH 2 BODYSTRUCTURE')).toEqual([
      '* 2 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 16 1 NIL NIL NIL NIL)("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 8 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "b1") NIL NIL NIL))',
      'a OK FETCH completed',
    ]);
  });

  it('BODY[] sets \\Seen and BODY.PEEK[] does not (RFC 9051 §6.4.5)', async () => {
    const c = await imap.selected();
    expect(await c.command('a FETCH 1 BODY.PEEK[]')).toEqual([
      `* 1 FETCH (BODY[] {${PLAIN.length}}`,
      ...PLAIN.split('\r\n').slice(0, -1),
      ')',
      'a OK FETCH completed',
    ]);
    expect(await c.command('b FETCH 1 FLAGS')).toEqual([
      '* 1 FETCH (FLAGS (\\Recent))',
      'b OK FETCH completed',
    ]);
    // RFC 9051 §6.4.5: the \Seen flag is implicitly set; the changed FLAGS are returned too.
    const response = await c.command('c FETCH 1 BODY[TEXT]');
    expect(response[0]).toMatch(/^\* 1 FETCH \((FLAGS \(\\Seen \\Recent\) )?BODY\[TEXT\] \{14\}$/);
    expect(await c.command('d FETCH 1 FLAGS')).toEqual([
      '* 1 FETCH (FLAGS (\\Seen \\Recent))',
      'd OK FETCH completed',
    ]);
  });

  it('answers HEADER, TEXT, MIME, part numbers and HEADER.FIELDS sections (RFC 9051 §6.4.5)', async () => {
    const c = await imap.selected();
    const header = headerOf(MULTIPART);
    expect((await c.command('a FETCH 2 BODY.PEEK[HEADER]'))[0]).toBe(
      `* 2 FETCH (BODY[HEADER] {${header.length}}`,
    );
    expect(await c.command('b FETCH 2 BODY.PEEK[1]')).toEqual([
      '* 2 FETCH (BODY[1] {16}',
      'First part text.)',
      'b OK FETCH completed',
    ]);
    expect(await c.command('c FETCH 2 BODY.PEEK[1.MIME]')).toEqual([
      '* 2 FETCH (BODY[1.MIME] {43}',
      'Content-Type: text/plain; charset=utf-8',
      '',
      ')',
      'c OK FETCH completed',
    ]);
    // RFC 9051 §6.4.5: HEADER.FIELDS keeps only the named fields, with the blank line.
    expect(await c.command('d FETCH 2 BODY.PEEK[HEADER.FIELDS (Subject To)]')).toEqual([
      '* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT TO)] {64}',
      'To: alice@example.test',
      'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=',
      '',
      ')',
      'd OK FETCH completed',
    ]);
    const [notFields] = await c.command(
      'e FETCH 2 BODY.PEEK[HEADER.FIELDS.NOT (Subject To From Date MIME-Version)]',
    );
    expect(notFields).toBe('* 2 FETCH (BODY[HEADER.FIELDS.NOT (SUBJECT TO FROM DATE MIME-VERSION)] {48}');
    expect((await c.command('f FETCH 1 BODY.PEEK[TEXT]')).slice(0, 2)).toEqual([
      '* 1 FETCH (BODY[TEXT] {14}',
      bodyOf(PLAIN).trimEnd(),
    ]);
  });

  it('answers a partial fetch with its origin (RFC 9051 §6.4.5 <origin.octets>)', async () => {
    const c = await imap.selected();
    expect(await c.command('a FETCH 1 BODY.PEEK[]<6.3>')).toEqual([
      `* 1 FETCH (BODY[]<6> {3}`,
      `${PLAIN.slice(6, 9)})`,
      'a OK FETCH completed',
    ]);
    // RFC 9051 §6.4.5: an origin past the end gives an empty string (here a zero-length literal).
    expect(await c.command('b FETCH 1 BODY.PEEK[]<100000.10>')).toEqual([
      '* 1 FETCH (BODY[]<100000> {0}',
      ')',
      'b OK FETCH completed',
    ]);
  });

  it('answers a part the message does not have as NIL (RFC 9051 §7.5.2: BODY[section] is an nstring)', async () => {
    const c = await imap.selected();
    // Not left out: a FETCH without the message's data would read as an expunge to the client.
    expect(await c.command('a FETCH 1 BODY.PEEK[4]')).toEqual([
      '* 1 FETCH (BODY[4] NIL)',
      'a OK FETCH completed',
    ]);
    expect(await c.command('b FETCH 2 (UID BODY.PEEK[3.1])')).toEqual([
      '* 2 FETCH (UID 2 BODY[3.1] NIL)',
      'b OK FETCH completed',
    ]);
  });

  it('decodes BINARY[] and answers BINARY.SIZE[] (RFC 3516 §4.2)', async () => {
    const c = await imap.selected();
    expect(await c.command('a FETCH 2 BINARY.PEEK[2]')).toEqual([
      // RFC 3516 §4.2: literal8 (~{n}) when the content has NUL octets.
      '* 2 FETCH (BINARY[2] ~{4}',
      '\x00\x01\x02\x03)',
      'a OK FETCH completed',
    ]);
    expect(await c.command('b FETCH 2 BINARY.SIZE[2]')).toEqual([
      '* 2 FETCH (BINARY.SIZE[2] 4)',
      'b OK FETCH completed',
    ]);
  });

  it('answers RFC822, RFC822.HEADER and RFC822.TEXT (RFC 3501 §6.4.5)', async () => {
    const c = await imap.selected();
    expect((await c.command('a FETCH 1 RFC822.HEADER'))[0]).toBe(
      `* 1 FETCH (RFC822.HEADER {${headerOf(PLAIN).length}}`,
    );
    expect((await c.command('b FETCH 1 RFC822.TEXT'))[0]).toMatch(
      /^\* 1 FETCH \((FLAGS \(\\Seen \\Recent\) )?RFC822\.TEXT \{14\}$/,
    );
  });

  it('answers PREVIEW from the first text part (RFC 8970 §3)', async () => {
    const c = await imap.selected();
    expect(await c.command('a FETCH 2 PREVIEW')).toEqual([
      '* 2 FETCH (PREVIEW "First part text.")',
      'a OK FETCH completed',
    ]);
  });

  it('answers EMAILID and THREADID (RFC 8474 §5.1, §5.2)', async () => {
    const c = await imap.selected();
    const [line] = await c.command('a FETCH 1 (EMAILID THREADID)');
    expect(line).toMatch(/^\* 1 FETCH \(EMAILID \([\w-]+\) THREADID \([\w-]+\)\)$/);
  });

  it('UID FETCH always includes UID (RFC 9051 §6.4.9)', async () => {
    const c = await imap.selected();
    expect(await c.command('a UID FETCH 2 FLAGS')).toEqual([
      '* 2 FETCH (UID 2 FLAGS (\\Recent))',
      'a OK UID FETCH completed',
    ]);
    // RFC 9051 §6.4.9: UIDs not in the mailbox are ignored, no error.
    expect(await c.command('b UID FETCH 7:9 FLAGS')).toEqual(['b OK UID FETCH completed']);
  });

  it('answers "1:*" and "*" in an empty mailbox BAD, the UID forms OK (RFC 9051 §9 seq-number, §6.4.9)', async () => {
    const c = await imap.login();
    await c.command('s SELECT Drafts');
    // RFC 9051 §9: a sequence number beyond the messages is BAD, "*" in an empty mailbox included.
    expect(await c.command('a FETCH 1:* FLAGS')).toEqual(['a BAD Invalid message sequence number']);
    expect(await c.command('b UID FETCH 1:* FLAGS')).toEqual(['b OK UID FETCH completed']);
    // RFC 9051 §9 seq-number: "This includes "*" if the selected mailbox is empty" (Dovecot: BAD).
    expect(await c.command('c FETCH * FLAGS')).toEqual(['c BAD Invalid message sequence number']);
    // RFC 9051 §6.4.9: UID FETCH ignores UIDs that do not exist, `*` included.
    expect(await c.command('d UID FETCH * FLAGS')).toEqual(['d OK UID FETCH completed']);
  });

  it('answers a sequence number beyond EXISTS with BAD (RFC 9051 §6.4.5, §9 seq-number)', async () => {
    const c = await imap.selected();
    expect((await c.command('a FETCH 3 FLAGS'))[0]).toMatch(/^a BAD /);
    expect((await c.command('b FETCH 1 BOGUS'))[0]).toMatch(/^b BAD /);
    expect(await c.command('c FETCH * UID')).toEqual(['* 2 FETCH (UID 2)', 'c OK FETCH completed']);
  });
});
