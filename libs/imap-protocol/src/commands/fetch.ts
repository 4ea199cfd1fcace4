/**
 * FETCH and UID FETCH — RFC 9051 §6.4.5 and §9 `fetch`, `fetch-att`, `section`, `partial`;
 * RFC 3501 §6.4.5 (RFC822, RFC822.HEADER, RFC822.TEXT); BINARY, BINARY.PEEK, BINARY.SIZE
 * (RFC 3516 §4.2); MODSEQ and the CHANGEDSINCE / VANISHED modifiers (RFC 7162 §3.1.4.1,
 * §3.2.6); PREVIEW with its LAZY modifier (RFC 8970 §3).
 */
import type { Cursor } from '../syntax.js';
import type { FetchAttribute, FetchCommand, FetchMacro, Partial, Section, SectionText } from './types.js';

const SIMPLE_ATTRIBUTES = [
  'FLAGS',
  'INTERNALDATE',
  'RFC822.SIZE',
  'ENVELOPE',
  'BODY',
  'BODYSTRUCTURE',
  'UID',
  'RFC822',
  'RFC822.HEADER',
  'RFC822.TEXT',
  'MODSEQ',
  // RFC 8474 §5.1, §5.2
  'EMAILID',
  'THREADID',
] as const;

/** RFC 9051 §6.4.5 macros. */
const MACROS: Record<FetchMacro, readonly FetchAttribute[]> = {
  ALL: [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }, { kind: 'ENVELOPE' }],
  FAST: [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }],
  FULL: [
    { kind: 'FLAGS' },
    { kind: 'INTERNALDATE' },
    { kind: 'RFC822.SIZE' },
    { kind: 'ENVELOPE' },
    { kind: 'BODY' },
  ],
};

/** Characters of a fetch attribute name: letters, digits, `.` and `-`. */
function isNameChar(ch: number): boolean {
  return (
    (ch >= 0x41 && ch <= 0x5a) ||
    (ch >= 0x61 && ch <= 0x7a) ||
    (ch >= 0x30 && ch <= 0x39) ||
    ch === 0x2e ||
    ch === 0x2d
  );
}

export function parseFetch(c: Cursor, tag: string, uid: boolean): FetchCommand {
  c.sp();
  const set = c.sequenceSet();
  c.sp();
  let macro: FetchMacro | null = null;
  const attributes: FetchAttribute[] = [];
  if (c.take(0x28)) {
    for (;;) {
      attributes.push(parseAttribute(c));
      if (c.take(0x29)) break;
      c.sp();
    }
  } else {
    const word = c.atom('fetch attribute', isNameChar).toUpperCase();
    if (word === 'ALL' || word === 'FAST' || word === 'FULL') {
      macro = word;
      attributes.push(...MACROS[word]);
    } else {
      attributes.push(attributeNamed(c, word));
    }
  }
  let changedSince: bigint | null = null;
  let vanished = false;
  if (c.take(0x20)) {
    // fetch-modifiers (RFC 4466 §2.4): "(" fetch-modifier *(SP fetch-modifier) ")"
    c.expect(0x28, '"(" before fetch modifiers');
    for (;;) {
      const modifier = c.keyword('fetch modifier');
      if (modifier === 'CHANGEDSINCE') {
        c.sp();
        changedSince = c.number64('mod-sequence');
      } else if (modifier === 'VANISHED') {
        vanished = true;
      } else {
        c.fail(`unknown fetch modifier ${modifier}`);
      }
      if (c.take(0x29)) break;
      c.sp();
    }
    // RFC 7162 §3.2.6: VANISHED only with UID FETCH and together with CHANGEDSINCE.
    if (vanished && (!uid || changedSince === null)) c.fail('VANISHED requires UID FETCH with CHANGEDSINCE');
  }
  // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ in the response.
  if (changedSince !== null && !attributes.some((a) => a.kind === 'MODSEQ'))
    attributes.push({ kind: 'MODSEQ' });
  c.expectEnd();
  return { name: 'FETCH', tag, uid, set, attributes, macro, changedSince, vanished };
}

function parseAttribute(c: Cursor): FetchAttribute {
  return attributeNamed(c, c.atom('fetch attribute', isNameChar).toUpperCase());
}

function attributeNamed(c: Cursor, word: string): FetchAttribute {
  switch (word) {
    case 'BODY':
    case 'BODY.PEEK': {
      if (!c.take(0x5b)) {
        if (word === 'BODY.PEEK') c.fail('BODY.PEEK needs a section');
        return { kind: 'BODY' };
      }
      const section = parseSection(c);
      return { kind: 'BODY[]', section, partial: parsePartial(c), peek: word === 'BODY.PEEK' };
    }
    case 'BINARY':
    case 'BINARY.PEEK':
    case 'BINARY.SIZE': {
      c.expect(0x5b, `"[" after ${word}`);
      const part = parsePartNumbers(c);
      c.expect(0x5d, '"]" after binary section');
      if (word === 'BINARY.SIZE') return { kind: 'BINARY.SIZE', part };
      return { kind: 'BINARY[]', part, partial: parsePartial(c), peek: word === 'BINARY.PEEK' };
    }
    case 'PREVIEW':
      return { kind: 'PREVIEW', lazy: parsePreviewModifiers(c) };
    default: {
      const simple = SIMPLE_ATTRIBUTES.find((a) => a === word);
      if (simple === undefined) c.fail(`unknown fetch attribute ${word}`);
      return { kind: simple };
    }
  }
}

/**
 * RFC 8970 §7: `"PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]`, preview-mod = "LAZY".
 * A parenthesized list after PREVIEW is its modifiers only when it starts with LAZY; otherwise it
 * is the command's fetch-modifiers (`FETCH 1 PREVIEW (CHANGEDSINCE 5)`).
 */
function parsePreviewModifiers(c: Cursor): boolean {
  const lazy = [0x20, 0x28, 0x4c, 0x41, 0x5a, 0x59];
  if (!lazy.every((ch, i) => (c.peek(i) & ~0x20) === (ch & ~0x20))) return false;
  c.sp();
  c.expect(0x28, '"(" before preview modifiers');
  for (;;) {
    const modifier = c.keyword('preview modifier');
    if (modifier !== 'LAZY') c.fail(`unknown preview modifier ${modifier}`);
    if (c.take(0x29)) return true;
    c.sp();
  }
}

/** section-part = nz-number *("." nz-number); empty when none. Leaves a trailing "." unread. */
function parsePartNumbers(c: Cursor): number[] {
  const part: number[] = [];
  if (c.peek() < 0x31 || c.peek() > 0x39) return part;
  part.push(c.nzNumber('section part'));
  while (c.peek() === 0x2e && c.peek(1) >= 0x30 && c.peek(1) <= 0x39) {
    c.take(0x2e);
    part.push(c.nzNumber('section part'));
  }
  return part;
}

/** section = "[" [section-spec] "]", the "[" already read. */
function parseSection(c: Cursor): Section {
  const part = parsePartNumbers(c);
  let text: SectionText = { kind: 'none' };
  if (part.length > 0 && !c.take(0x2e)) {
    c.expect(0x5d, '"]" after section');
    return { part, text };
  }
  if (!c.take(0x5d)) {
    const word = c.atom('section text', isNameChar).toUpperCase();
    switch (word) {
      case 'HEADER':
      case 'TEXT':
        text = { kind: word };
        break;
      case 'MIME':
        // RFC 9051 §9: "MIME" is only valid after a section-part.
        if (part.length === 0) c.fail('MIME needs a part number');
        text = { kind: 'MIME' };
        break;
      case 'HEADER.FIELDS':
      case 'HEADER.FIELDS.NOT': {
        c.sp();
        c.expect(0x28, '"(" before header field names');
        const fields: string[] = [];
        for (;;) {
          fields.push(c.astring('header field name').toString('latin1'));
          if (c.take(0x29)) break;
          c.sp();
        }
        text = { kind: word, fields };
        break;
      }
      default:
        c.fail(`unknown section text ${word}`);
    }
    c.expect(0x5d, '"]" after section');
  } else if (part.length > 0) {
    c.fail('section part followed by "."');
  }
  return { part, text };
}

/** partial = "<" number "." nz-number ">" */
function parsePartial(c: Cursor): Partial | null {
  if (!c.take(0x3c)) return null;
  const origin = c.number('partial origin');
  c.expect(0x2e, '"." in partial');
  const length = c.nzNumber('partial length');
  c.expect(0x3e, '">" after partial');
  return { origin, length };
}
