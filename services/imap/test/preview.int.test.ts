/**
 * PREVIEW (RFC 8970) as exact-bytes conversations against the real imap and storage services:
 * the text of the first text part (text/plain preferred in multipart/alternative, HTML markup
 * removed), decoded from quoted-printable / base64 and its charset, whitespace collapsed, at
 * most 256 characters, the empty string without a text part; the LAZY modifier; UTF-8 as a
 * literal unless IMAP4rev2 or UTF8=ACCEPT is enabled; \Seen left alone.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand, converse } from './conversation.js';
import { startImapStack, type ImapStack } from './harness.js';

const HEAD = 'From: a@example.org\r\nTo: b@example.test\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n';
const LOREM =
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit. Curabitur aliquam turpis et ante dictum, et ' +
  'pulvinar dui congue. Maecenas hendrerit, lorem non imperdiet pellentesque, nulla ligula blandit ' +
  'nunc, at mattis lectus purus ut nunc. Praesent finibus, neque eget iaculis venenatis, orci sapien ' +
  'sodales elit, at aliquet mauris sem vel erat.';

function raw(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

const PLAIN = raw(`${HEAD}Subject: plain\r\n\r\nHello   there.\r\n\r\n  Second\tline.\r\n`);
const ALTERNATIVE = raw(
  `${HEAD}Subject: alt\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n` +
    '--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>not this one</p>\r\n' +
    '--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' +
    'Caf=C3=A9 at 8 =E2=82=AC,=\r\n soft break\r\n--B--\r\n',
);
const HTML = raw(
  `${HEAD}Subject: html\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=iso-8859-1\r\n` +
    'Content-Transfer-Encoding: base64\r\n\r\n' +
    Buffer.from(
      '<html><head><title>T</title><style>p { color: red }</style></head><body><!-- note -->' +
        '<p>Gr\xfc\xdfe &amp; <b>bye</b>&#33;</p><p>Next&nbsp;para &lt;ok&gt;</p></body></html>',
      'latin1',
    )
      .toString('base64')
      .replace(/(.{76})/g, '$1\r\n') +
    '\r\n',
);
const LONG = raw(`${HEAD}Subject: long\r\n\r\n${LOREM}\r\n`);
const ATTACHMENT_ONLY = raw(
  `${HEAD}Subject: pdf\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n` +
    '--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nnot a preview\r\n' +
    '--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--B--\r\n',
);

describe('PREVIEW (RFC 8970)', () => {
  let stack: ImapStack;
  const open: TestClient[] = [];

  beforeAll(async () => {
    stack = await startImapStack();
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await stack?.stop();
  });

  it('FETCH PREVIEW: text part, decoding, HTML, 256 characters, LAZY, no \\Seen', async () => {
    const user = await stack.createUser();
    const client = await loggedIn(stack.imapPort, user);
    open.push(client);
    const cut = LOREM.slice(0, 256).trimEnd();
    await converse(client, [
      ...[PLAIN, ALTERNATIVE, HTML, LONG, ATTACHMENT_ONLY].map(
        (m, i) =>
          [appendCommand('INBOX', m), [`<tag> OK [APPENDUID <v> ${i + 1}] APPEND completed`]] as const,
      ),
      [
        'EXAMINE INBOX',
        [
          '* 5 EXISTS',
          '* 5 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 6] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
      ['FETCH 1 (PREVIEW)', ['* 1 FETCH (PREVIEW "Hello there. Second line.")', '<tag> OK FETCH completed']],
      // UTF-8 goes out as a literal while UTF8=ACCEPT is off.
      [
        'FETCH 2 PREVIEW',
        ['* 2 FETCH (PREVIEW {26}', 'Café at 8 €, soft break)', '<tag> OK FETCH completed'].map((l) =>
          Buffer.from(l, 'utf8').toString('latin1'),
        ),
      ],
      [
        'UID FETCH 3 (PREVIEW (LAZY))',
        [
          '* 3 FETCH (UID 3 PREVIEW {29}',
          Buffer.from('Grüße & bye! Next para <ok>)', 'utf8').toString('latin1'),
          '<tag> OK UID FETCH completed',
        ],
      ],
      [`FETCH 4 (UID PREVIEW)`, [`* 4 FETCH (UID 4 PREVIEW "${cut}")`, '<tag> OK FETCH completed']],
      ['FETCH 5 PREVIEW (LAZY)', ['* 5 FETCH (PREVIEW "")', '<tag> OK FETCH completed']],
      ['FETCH 1 (PREVIEW (FAST))', ['<tag> BAD expected fetch attribute at "(FAST))"']],
    ]);
    await converse(
      client,
      [
        ['UNSELECT', ['<tag> OK UNSELECT completed']],
        ['ENABLE IMAP4rev2', ['* ENABLED IMAP4rev2', '<tag> OK ENABLE completed']],
        [
          'SELECT INBOX',
          [
            '* 5 EXISTS',
            '* OK [UIDVALIDITY <v>] UIDs valid',
            '* OK [UIDNEXT 6] Predicted next UID',
            '* OK [MAILBOXID (<id>)] Mailbox id',
            '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
            '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk \\*)] Flags permitted',
            // RFC 9051 §6.3.2: an IMAP4rev2 SELECT answers the mailbox's LIST response too.
            '* LIST (\\HasNoChildren) "/" INBOX',
            '<tag> OK [READ-WRITE] SELECT completed',
          ],
        ],
        // With IMAP4rev2 (or UTF8=ACCEPT) the text is quoted; PREVIEW never sets \Seen (RFC 8970 §3).
        [
          'FETCH 2 (PREVIEW FLAGS)',
          [
            Buffer.from('* 2 FETCH (PREVIEW "Café at 8 €, soft break" FLAGS ())', 'utf8').toString('latin1'),
            '<tag> OK FETCH completed',
          ],
        ],
        [
          'FETCH 1:5 FLAGS',
          [
            '* 1 FETCH (FLAGS ())',
            '* 2 FETCH (FLAGS ())',
            '* 3 FETCH (FLAGS ())',
            '* 4 FETCH (FLAGS ())',
            '* 5 FETCH (FLAGS ())',
            '<tag> OK FETCH completed',
          ],
        ],
      ],
      'B',
    );
  });
});
