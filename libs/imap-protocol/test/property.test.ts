import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CommandReceiver,
  ResponseBuilder,
  formatSequenceSet,
  parseCommand,
  resolveSequenceSet,
  sequenceSetHas,
  serializeList,
  type ReceiverEvent,
  type SequenceSet,
} from '../src/index.js';
import { drain, parseOk } from './helpers.js';

/** Everything the receiver and parser make of the input when fed in the given pieces. */
function process(
  input: Uint8Array,
  cuts: readonly number[],
  limits = { maxLineLength: 200, maxLiteralSize: 300 },
): unknown[] {
  const receiver = new CommandReceiver({ ...limits, maxCommandSize: 1000 });
  const events: ReceiverEvent[] = [];
  let start = 0;
  for (const cut of [...cuts, input.length]) {
    receiver.push(input.subarray(start, Math.max(start, cut)));
    start = Math.max(start, cut);
    events.push(...drain(receiver));
  }
  return events.map((e) => {
    if (e.kind !== 'command') return e;
    const result = parseCommand(e.command, { utf8: false });
    return result.ok ? { ok: result.command } : { error: result.error.message, tag: result.error.tag };
  });
}

/** Byte strings built from IMAP-looking pieces, so the fuzzer reaches deep into the grammar. */
const imapish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'a1 ',
        'UID ',
        'FETCH ',
        'SEARCH ',
        'STORE ',
        'APPEND ',
        'LIST ',
        'SELECT ',
        'LOGIN ',
        'ID ',
        'STATUS ',
        'BODY.PEEK[',
        'HEADER.FIELDS (',
        ']',
        '<0.10>',
        '1:*',
        '$',
        ',',
        '(',
        ')',
        '"',
        '\\',
        '{3}\r\n',
        '{2+}\r\n',
        '~{1}\r\n',
        '{99999999}\r\n',
        '\r\n',
        '\n',
        ' ',
        'OR ',
        'NOT ',
        'CHARSET ',
        'RETURN (',
        'INBOX',
        '&AOQ-',
        '&',
        '\0',
        'NIL',
        '1-Feb-1994',
        ' 7-Feb-1994 21:52:25 -0800',
      ),
      fc.string({ maxLength: 4 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'utf8'));

const anyInput = fc.oneof(
  imapish,
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
);

describe('receiver + parser never throw (fuzzing)', () => {
  it('turns any bytes, in any chunking, into the same commands or errors', () => {
    fc.assert(
      fc.property(anyInput, fc.array(fc.nat({ max: 300 }), { maxLength: 8 }), (input, rawCuts) => {
        const cuts = [...rawCuts].sort((a, b) => a - b);
        const whole = process(input, []);
        expect(process(input, cuts)).toEqual(whole);
      }),
      { numRuns: 3000 },
    );
  });

  it('gives the same result byte by byte as all at once', () => {
    fc.assert(
      fc.property(imapish, (input) => {
        const everyByte = Array.from({ length: input.length }, (_, i) => i);
        expect(process(input, everyByte)).toEqual(process(input, []));
      }),
      { numRuns: 500 },
    );
  });
});

describe('serialize → parse round trips', () => {
  // NUL cannot be sent in a string at all (RFC 9051 §4.3); everything else must survive.
  const text = fc.string({ unit: 'binary', maxLength: 60 }).filter((s) => !s.includes('\0'));

  it('strings written by the serializer parse back to the same value', () => {
    fc.assert(
      fc.property(text, text, fc.boolean(), (user, pass, utf8) => {
        const b = new ResponseBuilder({ utf8 }).text('a LOGIN ').astring(user).sp().string(pass).crlf();
        expect(parseOk(b.bytes())).toMatchObject({ name: 'LOGIN', username: user, password: pass });
      }),
      { numRuns: 1000 },
    );
  });

  it('mailbox names written in LIST parse back in SELECT, in modified UTF-7 and in UTF-8', () => {
    fc.assert(
      fc.property(text, fc.boolean(), (name, utf8) => {
        fc.pre(!(utf8 && name.includes('\0')));
        const list = serializeList({ kind: 'LIST', attributes: [], delimiter: '/', name }, { utf8 }).toString(
          'latin1',
        );
        // "* LIST () "/" <mailbox>\r\n" → "a SELECT <mailbox>\r\n"
        const wire = Buffer.from('a SELECT ' + list.slice('* LIST () "/" '.length), 'latin1');
        const expected = name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
        expect(parseOk(wire, { utf8 })).toMatchObject({ name: 'SELECT', mailbox: expected });
      }),
      { numRuns: 1000 },
    );
  });

  const seqNumber = fc.oneof(fc.integer({ min: 1, max: 50 }), fc.constant('*' as const));
  const sequenceSet: fc.Arbitrary<SequenceSet> = fc
    .array(fc.tuple(seqNumber, seqNumber), { minLength: 1, maxLength: 6 })
    .map((pairs) => ({ kind: 'ranges', ranges: pairs.map(([start, end]) => ({ start, end })) }));

  it('sequence sets format and parse back, and resolve agrees with membership', () => {
    fc.assert(
      fc.property(sequenceSet, fc.integer({ min: 0, max: 60 }), (set, max) => {
        const parsed = parseOk(`a FETCH ${formatSequenceSet(set)} UID\r\n`);
        expect(parsed).toMatchObject({ name: 'FETCH', set });
        const resolved = resolveSequenceSet(set, max);
        for (let n = 1; n <= max; n++) {
          const inRanges = resolved.some(([lo, hi]) => n >= lo && n <= hi);
          expect(inRanges).toBe(sequenceSetHas(set, n, max));
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('ResponseBuilder strings', () => {
  // Text given as a JS string takes a shortcut for 7-bit quotable text; it must produce exactly
  // the bytes the same text gives as UTF-8 octets (quoted, escaped, or a literal).
  const text = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: fc.constantFrom('a', ' ', '"', '\\', '\r', '\n', '\0', 'é', '\u{1F600}', '~') }),
    fc.string({ minLength: 1020, maxLength: 1030 }),
  );
  it('a string and its UTF-8 bytes serialize alike', () => {
    fc.assert(
      fc.property(text, fc.boolean(), (s, utf8) => {
        const fromString = new ResponseBuilder({ utf8 }).text('A ').string(s).sp().nstring(s).bytes();
        const bytes = Buffer.from(s, 'utf8');
        const fromBytes = new ResponseBuilder({ utf8 }).text('A ').string(bytes).sp().nstring(bytes).bytes();
        expect(fromString.toString('latin1')).toBe(fromBytes.toString('latin1'));
      }),
    );
  });
});
