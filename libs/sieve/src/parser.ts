/**
 * Sieve grammar, RFC 5228 §8.2:
 *
 *   commands  = *command
 *   command   = identifier arguments (";" / block)
 *   block     = "{" commands "}"
 *   arguments = *argument [ test / test-list ]
 *   argument  = string-list / number / tag
 *   string-list = "[" string *("," string) "]" / string
 *   test-list = "(" test *("," test) ")"
 *   test      = identifier arguments
 *
 * The parser only builds the tree; what a command means is the validator's business.
 */
import { SieveCompileError, type SourcePosition } from './errors.js';
import { tokenize, type Token } from './lexer.js';

export type Argument =
  | { readonly kind: 'tag'; readonly name: string; readonly at: SourcePosition }
  | { readonly kind: 'number'; readonly value: number; readonly at: SourcePosition }
  | {
      readonly kind: 'strings';
      readonly values: readonly string[];
      readonly list: boolean;
      readonly at: SourcePosition;
    };

export interface TestNode {
  readonly name: string;
  readonly args: readonly Argument[];
  readonly tests: readonly TestNode[];
  readonly at: SourcePosition;
}

export interface CommandNode {
  readonly name: string;
  readonly args: readonly Argument[];
  readonly tests: readonly TestNode[];
  /** The block for control commands (`if`, `elsif`, `else`); null when the command ends with ";". */
  readonly block: readonly CommandNode[] | null;
  readonly at: SourcePosition;
}

export interface ParseOptions {
  /** Nesting of blocks and tests; deeper scripts are refused (bounded recursion). */
  readonly maxNesting?: number;
}

export function parseScript(source: string, options: ParseOptions = {}): CommandNode[] {
  const maxNesting = options.maxNesting ?? 32;
  const tokens = tokenize(source);
  let pos = 0;
  const peek = (): Token => tokens[pos] as Token;
  const next = (): Token => tokens[pos++] as Token;
  const fail = (reason: string, at: SourcePosition): never => {
    throw new SieveCompileError(reason, at);
  };
  const describe = (t: Token): string =>
    t.kind === 'end'
      ? 'end of script'
      : t.kind === 'tag'
        ? `":${t.value}"`
        : t.kind === 'string'
          ? 'a string'
          : `"${String(t.value)}"`;
  const isPunct = (t: Token, p: string): boolean => t.kind === 'punct' && t.value === p;

  const commands = parseCommands(0);
  const last = peek();
  if (last.kind !== 'end') fail(`unexpected ${describe(last)}`, last.at);
  return commands;

  function parseCommands(depth: number): CommandNode[] {
    const out: CommandNode[] = [];
    for (;;) {
      const t = peek();
      if (t.kind === 'end' || isPunct(t, '}')) return out;
      out.push(parseCommand(depth));
    }
  }

  function parseCommand(depth: number): CommandNode {
    const name = next();
    if (name.kind !== 'identifier') return fail(`expected a command, found ${describe(name)}`, name.at);
    const { args, tests } = parseArguments(depth);
    const end = next();
    if (isPunct(end, ';')) return { name: name.value, args, tests, block: null, at: name.at };
    if (isPunct(end, '{')) {
      if (depth + 1 > maxNesting) fail(`blocks nested deeper than ${maxNesting}`, end.at);
      const block = parseCommands(depth + 1);
      const close = next();
      if (!isPunct(close, '}'))
        fail(`expected "}" to close the block opened at line ${end.at.line}`, close.at);
      return { name: name.value, args, tests, block, at: name.at };
    }
    return fail(`expected ";" after the "${name.value}" command, found ${describe(end)}`, end.at);
  }

  function parseArguments(depth: number): { args: Argument[]; tests: TestNode[] } {
    const args: Argument[] = [];
    for (;;) {
      const t = peek();
      if (t.kind === 'tag') {
        next();
        args.push({ kind: 'tag', name: t.value, at: t.at });
      } else if (t.kind === 'number') {
        next();
        args.push({ kind: 'number', value: t.value, at: t.at });
      } else if (t.kind === 'string') {
        next();
        args.push({ kind: 'strings', values: [t.value], list: false, at: t.at });
      } else if (isPunct(t, '[')) {
        next();
        args.push({ kind: 'strings', values: parseStringList(t.at), list: true, at: t.at });
      } else break;
    }
    const t = peek();
    if (t.kind === 'identifier') return { args, tests: [parseTest(depth + 1)] };
    if (isPunct(t, '(')) {
      next();
      const tests: TestNode[] = [parseTest(depth + 1)];
      while (isPunct(peek(), ',')) {
        next();
        tests.push(parseTest(depth + 1));
      }
      const close = next();
      if (!isPunct(close, ')'))
        fail(`expected "," or ")" in the test list, found ${describe(close)}`, close.at);
      return { args, tests };
    }
    return { args, tests: [] };
  }

  function parseStringList(open: SourcePosition): string[] {
    const values: string[] = [];
    for (;;) {
      const s = next();
      if (s.kind !== 'string')
        return fail(`expected a string in the list opened at line ${open.line}, found ${describe(s)}`, s.at);
      values.push(s.value);
      const sep = next();
      if (isPunct(sep, ']')) return values;
      if (!isPunct(sep, ','))
        return fail(`expected "," or "]" in the string list, found ${describe(sep)}`, sep.at);
    }
  }

  function parseTest(depth: number): TestNode {
    const name = next();
    if (name.kind !== 'identifier') return fail(`expected a test, found ${describe(name)}`, name.at);
    if (depth > maxNesting) fail(`tests nested deeper than ${maxNesting}`, name.at);
    const { args, tests } = parseArguments(depth);
    return { name: name.value, args, tests, at: name.at };
  }
}
