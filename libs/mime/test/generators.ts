/** fast-check generators for MIME-shaped input: real structure, plenty of near-misses. */
import fc from 'fast-check';

const LINES = [
  'Content-Type: multipart/mixed; boundary=a',
  'Content-Type: multipart/alternative; boundary="b"',
  'Content-Type: multipart/digest; boundary=a',
  'Content-Type: message/rfc822',
  'Content-Type: text/plain; charset=utf-8',
  "Content-Type: text/html; charset*=utf-8''x; name*0*=utf-8''%E2%82; name*1*=%AC",
  'Content-Type: multipart/related',
  'Content-Transfer-Encoding: base64',
  'Content-Transfer-Encoding: quoted-printable',
  'Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?b?w6k=?=',
  'From: "A, B" <a@b.c>, grp: c@d.e, (x) f@g.h;',
  'To: <@r:x@y>, bad@, @, <>',
  'Date: Tue, 1 Jan 2019 10:00:00 +0100',
  ' folded continuation',
  '--a',
  '--a--',
  '--b',
  '--b--',
  '--a  ',
  '--ab',
  '--',
  '',
  'text',
  'caf=C3=A9=',
  'SGVsbG8=',
  '\u00e9\u00ff raw 8-bit',
];

/** A message assembled from header/body/delimiter lines with CRLF, LF or CR line ends. */
export function mimeishMessage(): fc.Arbitrary<Uint8Array> {
  return fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...LINES), fc.string({ maxLength: 12 })),
        fc.constantFrom('\r\n', '\r\n', '\n', '\r', ''),
      ),
      { maxLength: 40 },
    )
    .map((lines) => Buffer.from(lines.map(([l, eol]) => l + eol).join(''), 'latin1'));
}
