import { describe, expect, it } from 'vitest';
import { compileScript, runScript } from '../src/index.js';
import { actions, holds, IMPLICIT_KEEP, message } from './helpers.js';

describe('fileinto (RFC 5228 §4.1) and copy (RFC 3894)', () => {
  it('fileinto cancels the implicit keep; with :copy it does not', () => {
    expect(actions('require "fileinto"; fileinto "INBOX.work";')).toEqual([
      { kind: 'fileinto', mailbox: 'INBOX.work', flags: [] },
    ]);
    // RFC 3894 §4 example.
    expect(actions('require ["copy", "fileinto"]; fileinto :copy "incoming";')).toEqual([
      { kind: 'fileinto', mailbox: 'incoming', flags: [] },
      IMPLICIT_KEEP,
    ]);
    expect(actions('require "copy"; redirect :copy "b@example.org";')).toEqual([
      { kind: 'redirect', address: 'b@example.org' },
      IMPLICIT_KEEP,
    ]);
  });

  it('fileinto the same mailbox twice delivers once', () => {
    expect(actions('require "fileinto"; fileinto "a"; fileinto "a"; fileinto "b";')).toEqual([
      { kind: 'fileinto', mailbox: 'a', flags: [] },
      { kind: 'fileinto', mailbox: 'b', flags: [] },
    ]);
  });
});

describe('imap4flags (RFC 5232)', () => {
  it('setflag, addflag, removeflag feed the implicit keep at the end of the script', () => {
    expect(
      actions(
        'require "imap4flags"; setflag "\\\\Seen"; addflag ["$Work", "\\\\Flagged \\\\seen"]; removeflag "\\\\flagged";',
      ),
    ).toEqual([{ kind: 'keep', flags: ['\\Seen', '$Work'], implicit: true }]);
  });

  it('keep and fileinto take the flags of the moment, or :flags when given', () => {
    const script = `require ["imap4flags", "fileinto"];
      addflag "\\\\Flagged";
      fileinto "a";
      addflag "$Later";
      fileinto :flags ["\\\\Answered", "\\\\Recent", "bad(flag"] "b";
      keep;`;
    // RFC 5232 §2: \\Recent and malformed keywords are ignored when stored.
    expect(actions(script)).toEqual([
      { kind: 'fileinto', mailbox: 'a', flags: ['\\Flagged'] },
      { kind: 'fileinto', mailbox: 'b', flags: ['\\Answered'] },
      { kind: 'keep', flags: ['\\Flagged', '$Later'], implicit: false },
    ]);
  });

  it('hasflag matches the internal variable with the match type and comparator', () => {
    const pre = 'require ["imap4flags", "fileinto"]; setflag "NonJunk $MDNSent \\\\Seen";';
    const verdict = (test: string): boolean =>
      actions(`${pre} if ${test} { fileinto "yes"; }`).some(
        (a) => a.kind === 'fileinto' && a.mailbox === 'yes',
      );
    expect(verdict('hasflag :contains "Junk"')).toBe(true);
    expect(verdict('hasflag :contains ["label", "forward"]')).toBe(false);
    expect(verdict('hasflag :is "\\\\seen"')).toBe(true);
    expect(verdict('hasflag :is :comparator "i;octet" "\\\\seen"')).toBe(false);
    expect(verdict('hasflag :is "nonjunk \\\\Answered"')).toBe(true);
    expect(verdict('hasflag :matches "$*Sent"')).toBe(true);
    expect(verdict('hasflag "Junk"')).toBe(false);
  });

  it('the extended example of RFC 5232 §9 flags mail from the boss and files it', () => {
    const script = `require ["imap4flags", "fileinto"];
      if size :over 500 { setflag "\\\\Deleted"; }
      if header :contains "from" "boss@frobnitzm.example.edu" {
        setflag "\\\\Flagged";
        fileinto "INBOX.From Boss";
      }
      if address :contains "to" "alice@example.com" { addflag "\\\\Answered"; }
      keep;`;
    const boss = message(
      'From: boss@frobnitzm.example.edu\r\nTo: alice@example.com\r\nSubject: x\r\n\r\nshort\r\n',
    );
    expect(actions(script, boss)).toEqual([
      { kind: 'fileinto', mailbox: 'INBOX.From Boss', flags: ['\\Flagged'] },
      { kind: 'keep', flags: ['\\Flagged', '\\Answered'], implicit: false },
    ]);
  });
});

describe('reject and ereject (RFC 5429)', () => {
  it('reject cancels the implicit keep and carries the multi-line reason of the RFC example', () => {
    const script = `require ["reject"];
if header :contains "from" "coyote@desert.example.org" {
  reject text:
I am not taking mail from you, and I don't
want your birdseed, either!
.
;
}`;
    const coyote = message('From: coyote@desert.example.org\r\nSubject: birdseed\r\n\r\n');
    expect(actions(script, coyote)).toEqual([
      {
        kind: 'reject',
        reason: "I am not taking mail from you, and I don't\r\nwant your birdseed, either!\r\n",
      },
    ]);
    expect(actions(script)).toEqual([IMPLICIT_KEEP]);
    expect(actions('require "ereject"; ereject "No thanks";')).toEqual([
      { kind: 'ereject', reason: 'No thanks' },
    ]);
  });

  it('reject together with keep, fileinto, redirect or vacation is a runtime error, so the message is kept', () => {
    for (const script of [
      'require "reject"; keep; reject "no";',
      'require ["reject", "fileinto"]; reject "no"; fileinto "x";',
      'require ["reject", "vacation"]; vacation "away"; reject "no";',
      'require ["reject", "ereject"]; reject "no"; ereject "no";',
    ]) {
      const result = runScript(compileScript(script), message());
      expect(result.ok, script).toBe(false);
      if (!result.ok) expect(result.error).toMatch(/cannot be combined/);
    }
    expect(actions('require "reject"; discard; reject "no";')).toEqual([
      { kind: 'discard' },
      { kind: 'reject', reason: 'no' },
    ]);
  });
});

describe('body (RFC 5173)', () => {
  const multipart = message(
    [
      'From: a@example.org',
      'To: alice@example.com',
      'Subject: stuff',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'The missile coordinates are in the project schedule. Caf=C3=A9.',
      '--b',
      'Content-Type: text/html',
      '',
      '<p>MAKE <b>MONEY</b> FAST</p>',
      '--b',
      'Content-Type: audio/ogg',
      'Content-Transfer-Encoding: base64',
      '',
      'T2dnUw==',
      '--b--',
      '',
    ].join('\r\n'),
  );

  it('the RFC 5173 §7 examples', () => {
    expect(holds('"body"', 'body :raw :contains "MAKE MONEY FAST"', multipart)).toBe(false);
    expect(holds('"body"', 'body :raw :contains "<b>MONEY</b>"', multipart)).toBe(true);
    expect(holds('"body"', 'body :text :contains "project schedule"', multipart)).toBe(true);
    expect(holds('"body"', 'body :content "text" :contains ["missile", "coordinates"]', multipart)).toBe(
      true,
    );
    expect(holds('"body"', 'body :content "audio" :contains ""', multipart)).toBe(true);
    expect(holds('"body"', 'body :content "audio" :contains ""', message())).toBe(false);
  });

  it(':text decodes transfer encodings and strips HTML markup; :content selects by type', () => {
    expect(holds('"body"', 'body :contains "café"', multipart)).toBe(true);
    expect(holds('"body"', 'body :text :contains "MAKE MONEY FAST"', multipart)).toBe(true);
    expect(holds('"body"', 'body :content "text/plain" :contains "MONEY"', multipart)).toBe(false);
    expect(holds('"body"', 'body :content "text/html" :contains "<b>MONEY</b>"', multipart)).toBe(true);
    expect(holds('"body"', 'body :text :contains "project schedule"')).toBe(true);
  });
});
