import { describe, expect, it } from 'vitest';
import { CommandReceiver, parseErrorResponse, receiverErrorResponse, serializeStatus } from '../src/index.js';
import { drain, parseErr } from './helpers.js';

const wire = (b: Buffer): string => b.toString('latin1');

describe('answers to commands that failed before they ran', () => {
  it('a syntax error is a tagged BAD with the reason', () => {
    expect(wire(serializeStatus(parseErrorResponse(parseErr('a7 FETCH 1 FOO\r\n'))))).toBe(
      'a7 BAD unknown fetch attribute FOO\r\n',
    );
  });

  it('an unreadable tag gives an untagged BAD', () => {
    expect(wire(serializeStatus(parseErrorResponse(parseErr('+++\r\n'))))).toBe(
      '* BAD expected tag at "+++"\r\n',
    );
  });

  it('an unknown charset is NO [BADCHARSET] (RFC 9051 §6.4.4)', () => {
    expect(wire(serializeStatus(parseErrorResponse(parseErr('s SEARCH CHARSET KLINGON ALL\r\n'))))).toBe(
      's NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset KLINGON\r\n',
    );
  });

  it('a NUL in a literal is BAD [CLIENTBUG]', () => {
    expect(wire(serializeStatus(parseErrorResponse(parseErr('c LOGIN {1}\r\n\0 x\r\n'))))).toBe(
      'c BAD [CLIENTBUG] NUL in literal\r\n',
    );
  });

  it('a too large literal is NO [TOOBIG] when synchronizing, BAD [TOOBIG] when not (RFC 7888 §4)', () => {
    const r = new CommandReceiver({ maxLiteralSize: 4 });
    r.push(Buffer.from('a1 APPEND INBOX {5}\r\na2 APPEND INBOX {5+}\r\nhello\r\n'));
    const answers = drain(r).map((e) =>
      e.kind === 'error' ? wire(serializeStatus(receiverErrorResponse(e.error))) : e.kind,
    );
    expect(answers).toEqual([
      'a1 NO [TOOBIG] literal of 5 octets is larger than 4\r\n',
      'a2 BAD [TOOBIG] literal of 5 octets is larger than 4\r\n',
    ]);
  });

  it('an overlong line is BAD', () => {
    const r = new CommandReceiver({ maxLineLength: 8 });
    r.push(Buffer.from('t LOGIN aaaaaaaa bbbbbbbb\r\n'));
    const [event] = drain(r);
    expect(event?.kind).toBe('error');
    if (event?.kind === 'error') {
      expect(wire(serializeStatus(receiverErrorResponse(event.error)))).toBe(
        't BAD line longer than 8 octets\r\n',
      );
    }
  });
});
