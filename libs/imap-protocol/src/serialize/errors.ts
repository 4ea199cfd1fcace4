/**
 * The wire answer to a command that failed before it ran (STYLE.md: syntax errors map to BAD,
 * refusals to NO with a code): a syntax error is `<tag> BAD <reason>` (RFC 9051 §7.1.3), or
 * `* BAD` when no tag could be read; an unknown SEARCH charset is `NO [BADCHARSET (...)]`
 * (§6.4.4); a mailbox name that is a valid astring but not valid modified UTF-7 / UTF-8 is
 * `NO [CANNOT]` (RFC 5530 §3); a literal over the limit is `NO [TOOBIG]` when the client waited for our `+`,
 * and `BAD [TOOBIG]` for a non-synchronizing literal it already sent (RFC 7888 §4).
 */
import type { CommandParseError } from '../commands/types.js';
import type { ReceiverError } from '../receiver.js';
import type { StatusResponse } from './status.js';

export function parseErrorResponse(error: CommandParseError): StatusResponse {
  const code = error.responseCode;
  if (code === null) return { tag: error.tag, condition: 'BAD', text: error.message };
  switch (code.code) {
    case 'BADCHARSET':
      return {
        tag: error.tag,
        condition: 'NO',
        code: { code: 'BADCHARSET', charsets: code.charsets },
        text: error.message,
      };
    case 'CLIENTBUG':
      return { tag: error.tag, condition: 'BAD', code: { code: 'CLIENTBUG' }, text: error.message };
    case 'CANNOT':
      // RFC 5530 §3: the command was well formed, but the server cannot do it with that name.
      return { tag: error.tag, condition: 'NO', code: { code: 'CANNOT' }, text: error.message };
  }
}

export function receiverErrorResponse(error: ReceiverError): StatusResponse {
  switch (error.code) {
    case 'literalTooLarge':
    case 'commandTooLarge':
      return {
        tag: error.tag,
        condition: error.recovery === 'skipping' ? 'BAD' : 'NO',
        code: { code: 'TOOBIG' },
        text: error.message,
      };
    case 'lineTooLong':
      return { tag: error.tag, condition: 'BAD', text: error.message };
  }
}
