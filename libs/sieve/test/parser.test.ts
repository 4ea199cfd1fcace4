import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileScript, SieveCompileError } from '../src/index.js';
import { tokenize } from '../src/lexer.js';
import { parseScript } from '../src/parser.js';

function compileError(script: string): SieveCompileError {
  try {
    compileScript(script);
  } catch (e) {
    if (e instanceof SieveCompileError) return e;
    throw e;
  }
  throw new Error('expected a compile error');
}

describe('lexer (RFC 5228 §2.2-§2.4)', () => {
  it('reads quoted strings with the two defined escapes and treats other escapes as the character', () => {
    const [t] = tokenize('"a\\"b\\\\c\\d"');
    expect(t).toMatchObject({ kind: 'string', value: 'a"b\\cd' });
  });

  it('reads multi-line strings with dot-unstuffing and CRLF line ends, after a hash comment on the text: line', () => {
    const [t] = tokenize('text: # comment\r\nline one\r\n..dotted\r\n.\r\n');
    expect(t).toMatchObject({ kind: 'string', value: 'line one\r\n.dotted\r\n' });
    const [u] = tokenize('text:\nunix line\n.\n');
    expect(u).toMatchObject({ kind: 'string', value: 'unix line\r\n' });
  });

  it('applies K, M and G quantifiers (powers of 1024) and refuses numbers beyond 2^31-1', () => {
    expect(
      tokenize('100K 2m 1G')
        .slice(0, 3)
        .map((t) => (t.kind === 'number' ? t.value : null)),
    ).toEqual([102400, 2 * 1024 * 1024, 1024 ** 3]);
    expect(() => tokenize('4G')).toThrow(/too large/);
  });

  it('skips hash and bracket comments and lower-cases identifiers and tags', () => {
    const tokens = tokenize('# hi\nIF /* a\n* b */ Header :IS');
    expect(tokens.map((t) => (t.kind === 'end' || t.kind === 'number' ? t.kind : t.value))).toEqual([
      'if',
      'header',
      'is',
      'end',
    ]);
    expect(tokens[1]?.at).toEqual({ line: 3, column: 8 });
  });

  it('reports unterminated strings and comments at the position where they start', () => {
    expect(compileError('keep;\n  "abc').message).toBe(
      'line 2, column 3: unterminated string (missing closing quote)',
    );
    expect(compileError('/* open').message).toBe('line 1, column 1: unterminated comment (missing "*/")');
    expect(compileError('require "vacation";\nvacation text:\nno end\n').line).toBe(2);
  });
});

describe('parser (RFC 5228 §8.2)', () => {
  it('builds commands, nested blocks, string lists and test lists', () => {
    const tree = parseScript('if anyof (true, not false) { keep; } else { discard; }');
    expect(tree).toHaveLength(2);
    expect(tree[0]).toMatchObject({
      name: 'if',
      tests: [{ name: 'anyof', tests: [{ name: 'true' }, { name: 'not', tests: [{ name: 'false' }] }] }],
    });
    expect(tree[0]?.block?.[0]).toMatchObject({ name: 'keep' });
  });

  it.each([
    ['keep', 'line 1, column 5: expected ";" after the "keep" command, found end of script'],
    ['if true { keep;', 'line 1, column 16: expected "}" to close the block opened at line 1'],
    [
      'if header :is ["a", ] "b" { keep; }',
      'line 1, column 21: expected a string in the list opened at line 1, found "]"',
    ],
    ['if anyof (true false) { keep; }', 'line 1, column 16: "true" takes no test'],
    [
      'if anyof (true; false) { keep; }',
      'line 1, column 15: expected "," or ")" in the test list, found ";"',
    ],
    ['keep;\n}', 'line 2, column 1: unexpected "}"'],
    ['keep; @', 'line 1, column 7: unexpected character "@"'],
  ])('reports %j with line and column', (script, message) => {
    expect(compileError(script).message).toBe(message);
  });

  it('refuses nesting beyond the limit instead of recursing without bound', () => {
    const deep = 'if true { '.repeat(40) + 'keep;' + ' }'.repeat(40);
    expect(compileError(deep).message).toMatch(/nested deeper than 32/);
    const deepTests = 'if ' + 'not '.repeat(100) + 'true { keep; }';
    expect(compileError(deepTests).message).toMatch(/nested deeper than 32/);
  });

  it('refuses scripts larger than the size limit', () => {
    expect(() => compileScript('#'.repeat(70_000))).toThrow(/limit is 65536/);
    expect(() => compileScript('keep;', { maxScriptBytes: 4 })).toThrow(/limit is 4/);
  });

  it('never throws anything but a SieveCompileError on arbitrary input', () => {
    const alphabet = fc.constantFrom(
      ...'ifelsrequiretext:"\\[](){},;#/*\n\r 0123456789KkeepfileintoaddressheaderallofnotG'.split(''),
    );
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 80 }).map((a) => a.join('')),
        (script) => {
          try {
            compileScript(script);
          } catch (e) {
            expect(e).toBeInstanceOf(SieveCompileError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('validator (RFC 5228 §2.10.6, §3.2, §8.3)', () => {
  it.each([
    ['fileinto "x";', 'line 1, column 1: the "fileinto" command needs require "fileinto"'],
    [
      'require "regex";',
      'line 1, column 9: unsupported extension "regex" (supported: fileinto, envelope, imap4flags, vacation, reject, ereject, copy, body, comparator-i;octet, comparator-i;ascii-casemap)',
    ],
    ['keep;\nrequire "fileinto";', 'line 2, column 1: require must come before all other commands'],
    ['frobnicate;', 'line 1, column 1: unknown command "frobnicate"'],
    ['if frob { keep; }', 'line 1, column 4: unknown test "frob"'],
    ['if header :is :contains "a" "b" { keep; }', 'line 1, column 15: ":contains" conflicts with ":is"'],
    ['if header :regex "a" "b" { keep; }', 'line 1, column 11: unknown tag ":regex" for "header"'],
    ['if header "a" { keep; }', 'line 1, column 4: "header" takes 2 positional arguments, found 1'],
    ['if size 10 { keep; }', 'line 1, column 4: size needs :over or :under'],
    ['if size :over "10" { keep; }', 'line 1, column 15: argument 1 of "size" must be a number'],
    [
      'if header :comparator "i;ascii-numeric" "a" "b" { keep; }',
      'line 1, column 23: unknown comparator "i;ascii-numeric" for "header" (supported: i;octet, i;ascii-casemap)',
    ],
    [
      'if address "subject" "x" { keep; }',
      'line 1, column 12: "subject" is not an address header; use the header test',
    ],
    ['else { keep; }', 'line 1, column 1: "else" without a preceding "if"'],
    ['if true keep;', 'line 1, column 1: "if" needs a block: if ... { ... }'],
    ['if true { keep; } keep { }', 'line 1, column 19: "keep" takes no block; end it with ";"'],
    ['if true { keep; } elsif { keep; }', 'line 1, column 19: "elsif" needs exactly one test'],
    [
      'redirect "not an address";',
      'line 1, column 10: redirect address "not an address" is not a valid mail address',
    ],
    ['redirect :copy "a@b.example";', 'line 1, column 10: ":copy" on "redirect" needs require "copy"'],
    ['keep :flags "\\\\Seen";', 'line 1, column 6: ":flags" on "keep" needs require "imap4flags"'],
    [
      'require "vacation"; vacation :days "7" "x";',
      'line 1, column 36: ":days" must be followed by a number',
    ],
    [
      'if header "a" :is "b" { keep; }',
      'line 1, column 15: tag ":is" must come before the positional arguments of "header"',
    ],
  ])('rejects %j', (script, message) => {
    expect(compileError(script).message).toBe(message);
  });

  it('accepts the comparator capabilities and case-insensitive names', () => {
    expect(() =>
      compileScript(
        'require ["comparator-i;octet", "comparator-i;ascii-casemap"]; IF Header :Is :Comparator "i;octet" "a" "b" { KEEP; }',
      ),
    ).not.toThrow();
  });
});
