import { describe, expect, it } from 'vitest';
import { holds, actions, message, IMPLICIT_KEEP, MESSAGE } from './helpers.js';

describe('RFC 5228 core tests', () => {
  it('header with :is, :contains, :matches and the default i;ascii-casemap comparator', () => {
    expect(holds('', 'header :is "X-Caffeine" "c8h10n4o2"')).toBe(true);
    expect(holds('', 'header :contains "X-Caffeine" "C8H10"')).toBe(true);
    // RFC 5228 §5.7 example: :comparator "i;octet" is case-sensitive.
    expect(holds('', 'header :contains :comparator "i;octet" "X-Caffeine" "c8h10"')).toBe(false);
    expect(holds('', 'header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"]')).toBe(true);
    expect(holds('', 'header :matches "subject" "caf? plans*"')).toBe(true);
    expect(holds('', 'header :matches "subject" "plans*"')).toBe(false);
    expect(holds('', 'header :is "x-missing" ""')).toBe(false);
  });

  it('decodes RFC 2047 encoded words before comparing (RFC 5228 §2.7.2)', () => {
    expect(holds('', 'header :contains "subject" "Café"')).toBe(true);
  });

  it(':matches honours "\\" escapes of "*" and "?"', () => {
    const m = message('Subject: what? *now*\r\n\r\n');
    expect(holds('', 'header :matches "subject" "what\\\\? \\\\*now\\\\*"', m)).toBe(true);
    expect(holds('', 'header :matches "subject" "what\\\\? \\\\*later\\\\*"', m)).toBe(false);
    expect(holds('', 'header :matches "subject" "*"', message('Subject:\r\n\r\n'))).toBe(true);
  });

  it('address with :all, :localpart and :domain, over groups and display names', () => {
    expect(holds('', 'address :is :all "from" "tjs@example.edu"')).toBe(true);
    expect(holds('', 'address :is :localpart "to" "bob"')).toBe(true);
    expect(holds('', 'address :is :domain "cc" "example.net"')).toBe(true);
    expect(holds('', 'address :is :all "to" "tim showalter"')).toBe(false);
    expect(holds('', 'address :matches :all ["to", "cc"] "dave@*"')).toBe(true);
  });

  it('exists needs every named header; size :over and :under are strict', () => {
    expect(holds('', 'exists ["From", "Date"]')).toBe(true);
    expect(holds('', 'exists ["From", "X-Nope"]')).toBe(false);
    const size = Buffer.byteLength(MESSAGE);
    expect(holds('', `size :over ${size - 1}`)).toBe(true);
    expect(holds('', `size :over ${size}`)).toBe(false);
    expect(holds('', `size :under ${size + 1}`)).toBe(true);
    expect(holds('', `size :under ${size}`)).toBe(false);
    expect(holds('', 'size :over 1K')).toBe(false);
  });

  it('allof, anyof, not, true and false', () => {
    expect(holds('', 'allof (true, not false)')).toBe(true);
    expect(holds('', 'allof (true, false)')).toBe(false);
    expect(holds('', 'anyof (false, false, true)')).toBe(true);
    expect(holds('', 'not anyof (false, false)')).toBe(true);
  });

  it('the extended example of RFC 5228 §9 files the list message into "filter"', () => {
    const script = `
#
# Example Sieve Filter
# Declare any optional features or extension used by the script
#
require ["fileinto"];

#
# Handle messages from known mailing lists
# Move messages from IETF filter discussion list to filter mailbox
#
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
#
# Keep all messages to or from people in my company
#
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }

#
# Try and catch unsolicited email.  If a message is not to me,
# or it contains a subject known to be spam, file it away.
#
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        # Move all other (non-company) mail to "personal"
        # mailbox.
        fileinto "personal";
        }
`;
    expect(actions(script)).toEqual([{ kind: 'fileinto', mailbox: 'filter', flags: [] }]);
    const company = message(MESSAGE.replace('Sender: owner-ietf-mta-filters@imc.org\r\n', ''));
    expect(actions(script, company)).toEqual([{ kind: 'keep', flags: [], implicit: false }]);
    const spam = message('From: x@spam.example\r\nTo: other@example.org\r\nSubject: hi\r\n\r\n');
    expect(actions(script, spam)).toEqual([{ kind: 'fileinto', mailbox: 'spam', flags: [] }]);
    const personal = message(
      'From: x@friend.example\r\nTo: y@friend.example\r\nCc: me@example.com\r\nSubject: hi\r\n\r\n',
    );
    expect(actions(script, personal)).toEqual([{ kind: 'fileinto', mailbox: 'personal', flags: [] }]);
  });

  it('RFC 5228 §4 and §5 examples: discard, redirect, stop, implicit keep', () => {
    expect(actions('if size :over 100 { discard; }')).toEqual([{ kind: 'discard' }]);
    expect(actions('if size :over 100K { discard; }')).toEqual([IMPLICIT_KEEP]);
    expect(
      actions('if header :contains ["from","cc"] "tjs@example.edu" { redirect "bart@example.com"; }'),
    ).toEqual([{ kind: 'redirect', address: 'bart@example.com' }]);
    expect(actions('if not exists ["From","Date"] { discard; }')).toEqual([IMPLICIT_KEEP]);
    expect(actions('keep; stop; discard;')).toEqual([{ kind: 'keep', flags: [], implicit: false }]);
    expect(actions('')).toEqual([IMPLICIT_KEEP]);
    // §4.3: discard alone cancels the implicit keep; a later explicit keep still keeps.
    expect(actions('discard; keep;')).toEqual([
      { kind: 'discard' },
      { kind: 'keep', flags: [], implicit: false },
    ]);
  });

  it('collapses repeated keeps and redirects to one action (RFC 5228 §2.10.3)', () => {
    expect(actions('keep; keep; redirect "a@b.example"; redirect "A@b.example";')).toEqual([
      { kind: 'keep', flags: [], implicit: false },
      { kind: 'redirect', address: 'a@b.example' },
    ]);
  });
});

describe('envelope (RFC 5228 §5.4)', () => {
  it('compares the envelope sender and recipient, and the null sender as ""', () => {
    expect(holds('"envelope"', 'envelope :all :is "from" "tjs@example.edu"')).toBe(true);
    expect(holds('"envelope"', 'envelope :domain :is "to" "EXAMPLE.COM"')).toBe(true);
    expect(holds('"envelope"', 'envelope :localpart :is "to" "alice"')).toBe(true);
    const bounce = message(MESSAGE, { from: '', to: 'alice@example.com' });
    expect(holds('"envelope"', 'envelope :is "from" ""', bounce)).toBe(true);
    expect(holds('"envelope"', 'envelope :is "from" ""')).toBe(false);
  });
});
