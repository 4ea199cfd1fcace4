import { describe, expect, it } from 'vitest';
import {
  buildVacationReply,
  compileScript,
  decideVacation,
  runScript,
  type VacationAction,
} from '../src/index.js';
import { actions, message, MESSAGE } from './helpers.js';

function vacationOf(script: string, msg = message()): VacationAction {
  const found = actions(script, msg).find((a): a is VacationAction => a.kind === 'vacation');
  if (found === undefined) throw new Error('no vacation action');
  return found;
}

const context = { recipient: 'alice@example.com' };

describe('vacation action (RFC 5230 §4)', () => {
  it('the RFC 5230 §4 example picks the reason by subject and keeps the message', () => {
    const script = `require "vacation";
if header :contains "subject" "cyrus" {
    vacation "I'm out -- send mail to cyrus-bugs";
} else {
    vacation "I'm out -- call me at 321-1223";
}`;
    const list = actions(script);
    expect(list.map((a) => a.kind)).toEqual(['vacation', 'keep']);
    expect(vacationOf(script).reason).toBe("I'm out -- call me at 321-1223");
    expect(vacationOf(script, message('Subject: cyrus down\r\nTo: alice@example.com\r\n\r\n')).reason).toBe(
      "I'm out -- send mail to cyrus-bugs",
    );
  });

  it(':days defaults to 7 and is bounded; the §4.1 example with :addresses', () => {
    const a = vacationOf(`require "vacation";
vacation :days 23 :addresses ["tjs@example.edu", "ts4z@landru.example.edu"]
   "I'm away until October 19.  If it's an emergency, call 911, I guess." ;`);
    expect(a).toMatchObject({ days: 23, addresses: ['tjs@example.edu', 'ts4z@landru.example.edu'] });
    expect(vacationOf('require "vacation"; vacation "x";').days).toBe(7);
    expect(vacationOf('require "vacation"; vacation :days 0 "x";').days).toBe(1);
    expect(vacationOf('require "vacation"; vacation :days 9999 "x";').days).toBe(365);
  });

  it('the handle is :handle when given, else the same for the same reply and different for another', () => {
    expect(vacationOf('require "vacation"; vacation :handle "ski" "a";').handle).toBe('ski');
    const one = vacationOf('require "vacation"; vacation :subject "s" "a";').handle;
    expect(vacationOf('require "vacation"; vacation :subject "s" "a";').handle).toBe(one);
    expect(vacationOf('require "vacation"; vacation :subject "s" "b";').handle).not.toBe(one);
  });

  it('running vacation twice is a runtime error (§4.7)', () => {
    const result = runScript(compileScript('require "vacation"; vacation "a"; vacation "b";'), message());
    expect(result).toMatchObject({ ok: false, error: 'vacation may run only once per message' });
  });
});

describe('when to reply (RFC 5230 §4.5, §4.6; RFC 3834)', () => {
  const action = vacationOf('require "vacation"; vacation "away";');
  const withHeader = (h: string, from = 'tjs@example.edu') =>
    message(MESSAGE.replace('X-Caffeine', `${h}\r\nX-Caffeine`), { from, to: 'alice@example.com' });

  it('replies to personal mail, to the envelope sender, from the recipient', () => {
    expect(decideVacation(action, message(), context)).toEqual({
      send: true,
      to: 'tjs@example.edu',
      from: 'alice@example.com',
    });
  });

  it.each([
    ['a bounce (null return-path)', withHeader('X-A: b', ''), 'bounce'],
    ['MAILER-DAEMON', withHeader('X-A: b', 'MAILER-DAEMON@mx.example.org'), 'automated'],
    ['a -request address', withHeader('X-A: b', 'list-request@lists.example.org'), 'automated'],
    ['owner- address', withHeader('X-A: b', 'owner-list@lists.example.org'), 'automated'],
    ['Auto-Submitted: auto-replied', withHeader('Auto-Submitted: auto-replied'), 'auto-submitted'],
    ['Auto-Submitted: auto-generated', withHeader('Auto-Submitted: auto-generated'), 'auto-submitted'],
    ['List-Id', withHeader('List-Id: <dev.lists.example.org>'), 'mailing list'],
    ['List-Unsubscribe', withHeader('List-Unsubscribe: <mailto:u@lists.example.org>'), 'mailing list'],
    ['Precedence: bulk', withHeader('Precedence: bulk'), 'bulk'],
    ['Precedence: list', withHeader('Precedence: list'), 'bulk'],
    [
      'the user is not in To or Cc',
      message(MESSAGE.replace('alice@example.com', 'someone@example.com')),
      'not in To',
    ],
    [
      'mail from the user',
      message(MESSAGE, { from: 'alice@example.com', to: 'alice@example.com' }),
      'from the user',
    ],
  ])('does not reply to %s', (_name, msg, reason) => {
    const decision = decideVacation(action, msg, context);
    expect(decision.send).toBe(false);
    if (!decision.send) expect(decision.reason).toContain(reason);
  });

  it('replies to Auto-Submitted: no, and when the user is named through :addresses', () => {
    expect(decideVacation(action, withHeader('Auto-Submitted: no'), context).send).toBe(true);
    const other = message(MESSAGE.replace('alice@example.com', 'a.smith@example.com'));
    expect(decideVacation(action, other, context).send).toBe(false);
    const withAlias = vacationOf('require "vacation"; vacation :addresses "A.Smith@example.com" "away";');
    expect(decideVacation(withAlias, other, context).send).toBe(true);
  });
});

describe('the reply message (RFC 5230 §5, RFC 3834 §3)', () => {
  it('threads the reply, marks it auto-replied and prefixes the subject', () => {
    const action = vacationOf('require "vacation"; vacation text:\nI am away.\nBack Monday.\n.\n;');
    const bytes = buildVacationReply({
      action,
      message: message(),
      from: 'alice@example.com',
      to: 'tjs@example.edu',
      date: new Date(Date.UTC(2025, 11, 1, 12, 0, 0)),
      messageId: 'vac-1@example.com',
    });
    expect(Buffer.from(bytes).toString('utf8')).toBe(
      [
        'From: alice@example.com',
        'To: <tjs@example.edu>',
        'Subject: =?UTF-8?B?' +
          Buffer.from('Auto: Café plans: make lots of money fast').toString('base64') +
          '?=',
        'Date: Mon, 1 Dec 2025 12:00:00 +0000',
        'Message-ID: <vac-1@example.com>',
        'In-Reply-To: <orig-1@example.edu>',
        'References: <orig-1@example.edu>',
        'Auto-Submitted: auto-replied (vacation)',
        'Precedence: bulk',
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=us-ascii',
        'Content-Transfer-Encoding: 7bit',
        '',
        'I am away.',
        'Back Monday.',
        '',
      ].join('\r\n'),
    );
  });

  it('uses :subject and :from, and with :mime sends the reason as a MIME entity', () => {
    const action = vacationOf(`require "vacation";
vacation :subject "Gone fishing" :from "Alice <alice@example.com>" :mime text:
Content-Type: text/html; charset=us-ascii

<p>Gone fishing</p>
.
;`);
    const text = Buffer.from(
      buildVacationReply({
        action,
        message: message(),
        from: action.from ?? '',
        to: 'tjs@example.edu',
        date: new Date(0),
        messageId: 'm@x',
      }),
    ).toString('utf8');
    expect(text).toContain('\r\nSubject: Gone fishing\r\n');
    expect(text.startsWith('From: Alice <alice@example.com>\r\n')).toBe(true);
    expect(text).toContain(
      'MIME-Version: 1.0\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>Gone fishing</p>\r\n',
    );
  });

  it('refuses a :from that is not an address', () => {
    expect(() => compileScript('require "vacation"; vacation :from "nobody" "x";')).toThrow(
      /not a valid mail address/,
    );
  });
});
