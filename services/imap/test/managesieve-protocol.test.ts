/**
 * The ManageSieve command parser and string encoder (RFC 5804 §4): every split of the input
 * gives the same command once complete, quoted strings and literals, limits, and the bare SASL
 * response line.
 */
import { describe, expect, it } from 'vitest';
import { parseCommand, response, sieveString } from '../src/managesieve/protocol.js';

const limits = { maxLine: 200, maxLiteral: 64 };

describe('ManageSieve parser', () => {
  it('reads a command only when all of it has arrived, whatever the split', () => {
    const input = Buffer.from('putScript "a \\"b\\" \\\\" {5+}\r\nkeep;\r\n');
    for (let cut = 0; cut < input.length; cut++) {
      expect(parseCommand(input.subarray(0, cut), limits).kind, `cut at ${cut}`).toBe('incomplete');
    }
    const parsed = parseCommand(Buffer.concat([input, Buffer.from('NOOP\r\n')]), limits);
    expect(parsed.kind).toBe('command');
    if (parsed.kind !== 'command') return;
    expect(parsed.consumed).toBe(input.length);
    expect(parsed.command.name).toBe('PUTSCRIPT');
    expect(parsed.command.args.map((a) => (a.kind === 'string' ? a.value.toString() : a.value))).toEqual([
      'a "b" \\',
      'keep;',
    ]);
  });

  it('reads numbers, synchronizing literals and bare SASL lines', () => {
    const havespace = parseCommand(Buffer.from('HAVESPACE {3}\r\nabc 4294967295\r\n'), limits);
    expect(havespace).toMatchObject({ kind: 'command', command: { name: 'HAVESPACE' } });
    if (havespace.kind === 'command') {
      expect(havespace.command.args[1]).toEqual({ kind: 'number', value: 4_294_967_295 });
    }
    const bare = parseCommand(Buffer.from('"AGJvYgBwdw=="\r\n'), limits, true);
    expect(bare).toMatchObject({ kind: 'command', command: { name: '' }, consumed: 16 });
  });

  it('reports errors through the end of the line, and over-limit input', () => {
    expect(parseCommand(Buffer.from('GETSCRIPT foo\r\nNOOP\r\n'), limits)).toEqual({
      kind: 'error',
      message: 'expected a string or a number',
      consumed: 15,
    });
    expect(parseCommand(Buffer.from('NOOP 4294967296\r\n'), limits)).toMatchObject({
      kind: 'error',
      message: 'number out of range',
    });
    expect(parseCommand(Buffer.from('PUTSCRIPT "x" {65+}\r\n'), limits)).toEqual({
      kind: 'literal-too-large',
      literal: 65,
      consumed: 21,
    });
    // A bad line still arriving is waited for, up to the line limit.
    expect(parseCommand(Buffer.from('GETSCRIPT foo'), limits).kind).toBe('incomplete');
    expect(parseCommand(Buffer.from(`NOOP ${'1 '.repeat(101)}`), limits).kind).toBe('line-too-long');
    // Literal octets do not count towards the line limit.
    const long = 'x'.repeat(64);
    const withLiteral = `PUTSCRIPT "${'n'.repeat(150)}" {64+}\r\n${long} ${'1 '.repeat(40)}1\r\n`;
    expect(parseCommand(Buffer.from(withLiteral), limits).kind).toBe('command');
  });
});

describe('ManageSieve strings', () => {
  it('quotes what it can and sends the rest as a literal', () => {
    expect(sieveString('a "b" \\')).toBe('"a \\"b\\" \\\\"');
    expect(sieveString('line\r\nnext')).toBe('{10}\r\nline\r\nnext');
    expect(sieveString('é'.repeat(600))).toBe(`{1200}\r\n${'é'.repeat(600)}`);
    expect(response('NO', 'gone', 'NONEXISTENT')).toBe('NO (NONEXISTENT) "gone"\r\n');
    expect(response('OK')).toBe('OK\r\n');
  });
});
