import { describe, expect, it } from 'vitest';
import { CommandReceiver, findLiteralMarker, type ReceiverEvent } from '../src/index.js';
import { drain } from './helpers.js';

const text = (b: Buffer): string => b.toString('latin1');

function summarize(events: ReceiverEvent[]): unknown[] {
  return events.map((e) => {
    switch (e.kind) {
      case 'command':
        return { lines: e.command.lines.map(text), literals: e.command.literals.map((l) => text(l.data)) };
      case 'continue':
        return { continue: e.size, tag: e.tag };
      case 'error':
        return { error: e.error.code, tag: e.error.tag, recovery: e.error.recovery };
      case 'needMore':
        return 'needMore';
    }
  });
}

/** Feeds `input` in pieces of `size` bytes, collecting all events. */
function feedInPieces(input: Buffer, size: number, receiver = new CommandReceiver()): ReceiverEvent[] {
  const events: ReceiverEvent[] = [];
  for (let i = 0; i < input.length; i += size) {
    receiver.push(input.subarray(i, i + size));
    events.push(...drain(receiver));
  }
  return events;
}

describe('CommandReceiver', () => {
  it('emits a simple command line without CRLF', () => {
    const r = new CommandReceiver();
    r.push(Buffer.from('a1 NOOP\r\n'));
    expect(summarize(drain(r))).toEqual([{ lines: ['a1 NOOP'], literals: [] }]);
    expect(r.next()).toEqual({ kind: 'needMore' });
  });

  it('answers needMore for a partial line and completes it later', () => {
    const r = new CommandReceiver();
    r.push(Buffer.from('a1 NO'));
    expect(r.next()).toEqual({ kind: 'needMore' });
    r.push(Buffer.from('OP\r'));
    expect(r.next()).toEqual({ kind: 'needMore' });
    r.push(Buffer.from('\n'));
    expect(summarize([r.next()])).toEqual([{ lines: ['a1 NOOP'], literals: [] }]);
  });

  it('emits several pipelined commands from one chunk', () => {
    const r = new CommandReceiver();
    r.push(Buffer.from('a1 NOOP\r\na2 CAPABILITY\r\na3 LOGOUT\r\n'));
    expect(summarize(drain(r))).toEqual([
      { lines: ['a1 NOOP'], literals: [] },
      { lines: ['a2 CAPABILITY'], literals: [] },
      { lines: ['a3 LOGOUT'], literals: [] },
    ]);
  });

  it('asks for a continuation before a synchronizing literal (RFC 9051 §7.5)', () => {
    const r = new CommandReceiver();
    r.push(Buffer.from('A003 APPEND saved-messages (\\Seen) {5}\r\n'));
    expect(r.next()).toMatchObject({ kind: 'continue', size: 5, tag: 'A003' });
    expect(r.next()).toEqual({ kind: 'needMore' });
    r.push(Buffer.from('hello\r\n'));
    expect(summarize(drain(r))).toEqual([
      { lines: ['A003 APPEND saved-messages (\\Seen) {5}', ''], literals: ['hello'] },
    ]);
  });

  it('takes a non-synchronizing literal without a continuation (RFC 7888)', () => {
    const r = new CommandReceiver();
    r.push(Buffer.from('a LOGIN {4+}\r\nuser {6+}\r\nsecret\r\n'));
    const events = drain(r);
    expect(summarize(events)).toEqual([
      { lines: ['a LOGIN {4+}', ' {6+}', ''], literals: ['user', 'secret'] },
    ]);
    const first = events[0]!;
    const command = first.kind === 'command' ? first.command : null;
    expect(command?.literals.map((l) => l.nonSynchronizing)).toEqual([true, true]);
  });

  it('takes a literal8 (RFC 3516) holding NUL bytes', () => {
    const r = new CommandReceiver();
    r.push(Buffer.from('a APPEND INBOX ~{3}\r\n'));
    expect(r.next()).toMatchObject({ kind: 'continue', size: 3 });
    r.push(Buffer.from([0, 1, 0, 0x0d, 0x0a]));
    const event = r.next();
    expect(event.kind).toBe('command');
    if (event.kind !== 'command') return;
    expect(event.command.literals[0]).toEqual({
      data: Buffer.from([0, 1, 0]),
      binary: true,
      nonSynchronizing: false,
    });
  });

  it('accepts a bare LF line ending', () => {
    const r = new CommandReceiver();
    r.push(Buffer.from('a NOOP\n'));
    expect(summarize(drain(r))).toEqual([{ lines: ['a NOOP'], literals: [] }]);
  });

  it('ignores a literal marker inside a quoted string', () => {
    expect(findLiteralMarker(Buffer.from('a LOGIN "x {5}'))).toBeNull();
    expect(findLiteralMarker(Buffer.from('a LOGIN "x" {5}'))).toEqual({
      size: 5,
      binary: false,
      nonSynchronizing: false,
    });
    expect(findLiteralMarker(Buffer.from('a LOGIN "x\\" {5}'))).toBeNull();
    expect(findLiteralMarker(Buffer.from('a X {}'))).toBeNull();
    expect(findLiteralMarker(Buffer.from('a X {1234567890123456}'))).toBeNull();
  });

  it('refuses an overlong line and resumes with the next command', () => {
    const r = new CommandReceiver({ maxLineLength: 20 });
    r.push(Buffer.from('a1 LOGIN ' + 'x'.repeat(40)));
    expect(summarize(drain(r))).toEqual([{ error: 'lineTooLong', tag: 'a1', recovery: 'discardLine' }]);
    r.push(Buffer.from('yyyy\r\na2 NOOP\r\n'));
    expect(summarize(drain(r))).toEqual([{ lines: ['a2 NOOP'], literals: [] }]);
    expect(r.buffered).toBe(0);
  });

  it('refuses an overlong line that arrived complete', () => {
    const r = new CommandReceiver({ maxLineLength: 10 });
    r.push(Buffer.from('a1 NOOP NOOP NOOP\r\na2 NOOP\r\n'));
    expect(summarize(drain(r))).toEqual([
      { error: 'lineTooLong', tag: 'a1', recovery: 'resume' },
      { lines: ['a2 NOOP'], literals: [] },
    ]);
  });

  it('refuses a too large synchronizing literal without waiting for it (RFC 7888 §4, TOOBIG)', () => {
    const r = new CommandReceiver({ maxLiteralSize: 10 });
    r.push(Buffer.from('a1 APPEND INBOX {11}\r\na2 NOOP\r\n'));
    const events = drain(r);
    expect(summarize(events)).toEqual([
      { error: 'literalTooLarge', tag: 'a1', recovery: 'resume' },
      { lines: ['a2 NOOP'], literals: [] },
    ]);
    expect(events[0]).toMatchObject({ error: { size: 11, limit: 10 } });
  });

  it('skips a too large non-synchronizing literal and the rest of its command (RFC 7888 §4)', () => {
    const r = new CommandReceiver({ maxLiteralSize: 10 });
    const input = Buffer.from(
      'a1 APPEND INBOX {20+}\r\n' + 'z'.repeat(20) + ' more {3+}\r\nabc\r\na2 NOOP\r\n',
    );
    const events = feedInPieces(input, 3, r);
    expect(summarize(events)).toEqual([
      { error: 'literalTooLarge', tag: 'a1', recovery: 'skipping' },
      { lines: ['a2 NOOP'], literals: [] },
    ]);
  });

  it('applies changed limits to the next command, for both literal kinds', () => {
    const r = new CommandReceiver({ maxLiteralSize: 1000 });
    r.setLimits({ maxLiteralSize: 8, maxCommandSize: 100 });
    expect(r.limits.maxLiteralSize).toBe(8);
    r.push(Buffer.from('a1 LOGIN {9+}\r\n123456789 x\r\na2 LOGIN {9}\r\na3 LOGIN {8+}\r\n12345678 x\r\n'));
    expect(summarize(drain(r))).toEqual([
      { error: 'literalTooLarge', tag: 'a1', recovery: 'skipping' },
      { error: 'literalTooLarge', tag: 'a2', recovery: 'resume' },
      { lines: ['a3 LOGIN {8+}', ' x'], literals: ['12345678'] },
    ]);
  });

  it('tells which literal is in progress and can skip it, dropping the command', () => {
    const r = new CommandReceiver();
    r.push(Buffer.from('a1 APPEND INBOX {10+}\r\n12345'));
    expect(drain(r)).toEqual([]);
    const pending = r.pendingLiteral;
    expect(pending).toMatchObject({ size: 10, received: 5, nonSynchronizing: true, tag: 'a1' });
    r.push(Buffer.from('6'));
    drain(r);
    expect(r.pendingLiteral?.marker).toBe(pending?.marker);
    r.skipLiteral();
    expect(r.pendingLiteral).toBeNull();
    r.push(Buffer.from('7890 (\\Seen)\r\na2 NOOP\r\n'));
    expect(summarize(drain(r))).toEqual([{ lines: ['a2 NOOP'], literals: [] }]);
    expect(() => r.skipLiteral()).toThrow(TypeError);
  });

  it('never holds more than one line plus a literal, whatever the client sends', () => {
    const r = new CommandReceiver({ maxLineLength: 100, maxLiteralSize: 100, maxCommandSize: 300 });
    let maxBuffered = 0;
    const line = 'a1 APPEND INBOX {1000000+}\r\n';
    r.push(Buffer.from(line));
    drain(r);
    for (let i = 0; i < 1000; i++) {
      r.push(Buffer.alloc(1000, 0x41));
      drain(r);
      maxBuffered = Math.max(maxBuffered, r.buffered);
    }
    expect(maxBuffered).toBe(0);
    r.push(Buffer.from('\r\na2 NOOP\r\n'));
    expect(summarize(drain(r))).toEqual([{ lines: ['a2 NOOP'], literals: [] }]);
  });

  it('limits the total size of a command made of many literals', () => {
    const r = new CommandReceiver({ maxLiteralSize: 10, maxCommandSize: 40 });
    r.push(Buffer.from('a1 ID ({5+}\r\n12345 {5+}\r\n12345 {5+}\r\n12345 {5+}\r\n12345)\r\na2 NOOP\r\n'));
    expect(summarize(drain(r))).toEqual([
      { error: 'commandTooLarge', tag: 'a1', recovery: 'skipping' },
      { lines: ['a2 NOOP'], literals: [] },
    ]);
  });

  it('gives the same commands for every split of the input (byte by byte)', () => {
    const input = Buffer.from(
      'a1 LOGIN {4}\r\nuser "pass"\r\na2 APPEND INBOX {5+}\r\nhello\r\na3 APPEND X ~{2}\r\n\0\0\r\na4 NOOP\n',
    );
    const whole = summarize(feedInPieces(input, input.length));
    expect(whole).toEqual([
      { continue: 4, tag: 'a1' },
      { lines: ['a1 LOGIN {4}', ' "pass"'], literals: ['user'] },
      { lines: ['a2 APPEND INBOX {5+}', ''], literals: ['hello'] },
      { continue: 2, tag: 'a3' },
      { lines: ['a3 APPEND X ~{2}', ''], literals: ['\0\0'] },
      { lines: ['a4 NOOP'], literals: [] },
    ]);
    for (let size = 1; size < input.length; size++) {
      expect(summarize(feedInPieces(input, size))).toEqual(whole);
    }
  });

  it('assembles a large literal sent in many small chunks', () => {
    const r = new CommandReceiver();
    const body = Buffer.alloc(1_000_000);
    for (let i = 0; i < body.length; i++) body[i] = 0x20 + (i % 90);
    r.push(Buffer.from(`a APPEND INBOX {${body.length}+}\r\n`));
    expect(r.next()).toEqual({ kind: 'needMore' });
    for (let i = 0; i < body.length; i += 1000) {
      r.push(body.subarray(i, i + 1000));
      expect(r.next()).toEqual({ kind: 'needMore' });
      expect(r.buffered).toBe(`a APPEND INBOX {${body.length}+}`.length + i + 1000);
    }
    r.push(Buffer.from('\r\n'));
    const event = r.next();
    expect(event.kind).toBe('command');
    if (event.kind === 'command') expect(event.command.literals[0]!.data.equals(body)).toBe(true);
    expect(r.inCommand).toBe(false);
  });

  it('lets the server refuse a synchronizing literal instead of sending "+"', () => {
    const r = new CommandReceiver();
    r.push(Buffer.from('a1 APPEND Missing (\\Seen) {500}\r\n'));
    const event = r.next();
    expect(event).toMatchObject({ kind: 'continue', size: 500, tag: 'a1' });
    if (event.kind === 'continue') {
      expect(event.partial.lines.map(text)).toEqual(['a1 APPEND Missing (\\Seen) {500}']);
    }
    r.refuseLiteral();
    r.push(Buffer.from('a2 NOOP\r\n'));
    expect(summarize(drain(r))).toEqual([{ lines: ['a2 NOOP'], literals: [] }]);
    expect(() => r.refuseLiteral()).toThrow(TypeError);
  });

  it('reports no tag when the line does not start with one', () => {
    const r = new CommandReceiver({ maxLineLength: 5 });
    r.push(Buffer.from('+bad line\r\n'));
    expect(summarize(drain(r))).toEqual([{ error: 'lineTooLong', tag: null, recovery: 'resume' }]);
  });
});
