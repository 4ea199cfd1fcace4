/**
 * Semantic checks (RFC 5228 §2.10.6, §3.2, §8.3) that turn the syntax tree into a typed
 * program: every command and test is known, its extension was `require`d, tagged arguments
 * are known and not repeated, positional arguments have the right types, `require` comes first,
 * `elsif`/`else` follow an `if`. Errors carry the line and column of the offending token.
 */
import { SieveCompileError, type SourcePosition } from './errors.js';
import type { Argument, CommandNode, TestNode } from './parser.js';
import {
  SUPPORTED_EXTENSIONS,
  type AddressPart,
  type BodyTransform,
  type Command,
  type Comparator,
  type Extension,
  type Match,
  type MatchType,
  type Program,
  type Test,
} from './program.js';

type ValueKind = 'string' | 'strings' | 'number';

interface TagSpec {
  /** The extension that defines the tag, when it is not core. */
  readonly extension?: Extension;
  /** The value the tag takes, if any (":comparator" "i;octet", ":days" 7). */
  readonly value?: ValueKind;
  /** Tags of one group are mutually exclusive (RFC 5228 §2.7: one match type, one comparator). */
  readonly group?: string;
}

interface Signature {
  readonly extension?: Extension;
  readonly tags: Readonly<Record<string, TagSpec>>;
  readonly positional: readonly ValueKind[];
  readonly tests: 'none' | 'one' | 'list';
}

const COMPARATOR_TAG: Record<string, TagSpec> = { comparator: { value: 'string', group: 'comparator' } };
const MATCH_TAGS: Record<string, TagSpec> = {
  is: { group: 'match-type' },
  contains: { group: 'match-type' },
  matches: { group: 'match-type' },
};
const ADDRESS_PART_TAGS: Record<string, TagSpec> = {
  all: { group: 'address-part' },
  localpart: { group: 'address-part' },
  domain: { group: 'address-part' },
};

const COMMANDS: Readonly<Record<string, Signature>> = {
  stop: { tags: {}, positional: [], tests: 'none' },
  keep: { tags: { flags: { extension: 'imap4flags', value: 'strings' } }, positional: [], tests: 'none' },
  discard: { tags: {}, positional: [], tests: 'none' },
  redirect: { tags: { copy: { extension: 'copy' } }, positional: ['string'], tests: 'none' },
  fileinto: {
    extension: 'fileinto',
    tags: { copy: { extension: 'copy' }, flags: { extension: 'imap4flags', value: 'strings' } },
    positional: ['string'],
    tests: 'none',
  },
  setflag: { extension: 'imap4flags', tags: {}, positional: ['strings'], tests: 'none' },
  addflag: { extension: 'imap4flags', tags: {}, positional: ['strings'], tests: 'none' },
  removeflag: { extension: 'imap4flags', tags: {}, positional: ['strings'], tests: 'none' },
  reject: { extension: 'reject', tags: {}, positional: ['string'], tests: 'none' },
  ereject: { extension: 'ereject', tags: {}, positional: ['string'], tests: 'none' },
  vacation: {
    extension: 'vacation',
    tags: {
      days: { value: 'number' },
      subject: { value: 'string' },
      from: { value: 'string' },
      addresses: { value: 'strings' },
      mime: {},
      handle: { value: 'string' },
    },
    positional: ['string'],
    tests: 'none',
  },
};

const TESTS: Readonly<Record<string, Signature>> = {
  address: {
    tags: { ...COMPARATOR_TAG, ...MATCH_TAGS, ...ADDRESS_PART_TAGS },
    positional: ['strings', 'strings'],
    tests: 'none',
  },
  envelope: {
    extension: 'envelope',
    tags: { ...COMPARATOR_TAG, ...MATCH_TAGS, ...ADDRESS_PART_TAGS },
    positional: ['strings', 'strings'],
    tests: 'none',
  },
  header: { tags: { ...COMPARATOR_TAG, ...MATCH_TAGS }, positional: ['strings', 'strings'], tests: 'none' },
  exists: { tags: {}, positional: ['strings'], tests: 'none' },
  size: {
    tags: { over: { group: 'size' }, under: { group: 'size' } },
    positional: ['number'],
    tests: 'none',
  },
  allof: { tags: {}, positional: [], tests: 'list' },
  anyof: { tags: {}, positional: [], tests: 'list' },
  not: { tags: {}, positional: [], tests: 'one' },
  true: { tags: {}, positional: [], tests: 'none' },
  false: { tags: {}, positional: [], tests: 'none' },
  hasflag: {
    extension: 'imap4flags',
    tags: { ...COMPARATOR_TAG, ...MATCH_TAGS },
    positional: ['strings'],
    tests: 'none',
  },
  body: {
    extension: 'body',
    tags: {
      ...COMPARATOR_TAG,
      ...MATCH_TAGS,
      raw: { group: 'transform' },
      text: { group: 'transform' },
      content: { group: 'transform', value: 'strings' },
    },
    positional: ['strings'],
    tests: 'none',
  },
};

/**
 * RFC 5228 §5.1: the address test MUST be restricted to headers that hold addresses. These are
 * the address fields of RFC 5322 §3.6 plus the common trace and delivery fields that do.
 */
const ADDRESS_HEADERS = new Set([
  'from',
  'sender',
  'reply-to',
  'to',
  'cc',
  'bcc',
  'resent-from',
  'resent-sender',
  'resent-to',
  'resent-cc',
  'resent-bcc',
  'return-path',
  'delivered-to',
  'x-original-to',
  'envelope-to',
  'errors-to',
  'disposition-notification-to',
]);

const COMPARATORS: readonly Comparator[] = ['i;octet', 'i;ascii-casemap'];

interface Bound {
  readonly tags: ReadonlyMap<string, Argument | null>;
  readonly positional: readonly Argument[];
}

const fail = (reason: string, at: SourcePosition): never => {
  throw new SieveCompileError(reason, at);
};

export function validateScript(nodes: readonly CommandNode[]): Program {
  const extensions = new Set<Extension>();
  let index = 0;
  // RFC 5228 §3.2: require MUST appear before any other command.
  for (; index < nodes.length && nodes[index]?.name === 'require'; index++) {
    const node = nodes[index] as CommandNode;
    if (
      node.tests.length > 0 ||
      node.block !== null ||
      node.args.length !== 1 ||
      node.args[0]?.kind !== 'strings'
    )
      fail('require takes one string list: require ["fileinto", "vacation"];', node.at);
    const arg = node.args[0] as Argument & { kind: 'strings' };
    for (const name of arg.values) {
      // RFC 5228 §3.2: an unknown capability is an error (the script MUST NOT run).
      if (!(SUPPORTED_EXTENSIONS as readonly string[]).includes(name))
        fail(`unsupported extension "${name}" (supported: ${SUPPORTED_EXTENSIONS.join(', ')})`, arg.at);
      extensions.add(name as Extension);
    }
  }
  const commands = validateBlock(nodes.slice(index), extensions, 0);
  return { extensions, commands };
}

function validateBlock(nodes: readonly CommandNode[], ext: ReadonlySet<Extension>, depth: number): Command[] {
  const out: Command[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i] as CommandNode;
    if (node.name === 'require') fail('require must come before all other commands', node.at);
    if (node.name === 'elsif' || node.name === 'else')
      fail(`"${node.name}" without a preceding "if"`, node.at);
    if (node.name === 'if') {
      const branches: { test: Test | null; block: readonly Command[] }[] = [];
      branches.push(controlBranch(node, ext, depth, true));
      while (nodes[i + 1]?.name === 'elsif')
        branches.push(controlBranch(nodes[++i] as CommandNode, ext, depth, true));
      if (nodes[i + 1]?.name === 'else')
        branches.push(controlBranch(nodes[++i] as CommandNode, ext, depth, false));
      out.push({ kind: 'if', branches });
      continue;
    }
    out.push(validateCommand(node, ext));
  }
  return out;
}

function controlBranch(
  node: CommandNode,
  ext: ReadonlySet<Extension>,
  depth: number,
  withTest: boolean,
): { test: Test | null; block: readonly Command[] } {
  if (node.block === null) return fail(`"${node.name}" needs a block: ${node.name} ... { ... }`, node.at);
  if (node.args.length > 0) fail(`"${node.name}" takes no arguments`, (node.args[0] as Argument).at);
  if (withTest && node.tests.length !== 1) fail(`"${node.name}" needs exactly one test`, node.at);
  if (!withTest && node.tests.length > 0) fail('"else" takes no test', node.at);
  const test = withTest ? validateTest(node.tests[0] as TestNode, ext) : null;
  return { test, block: validateBlock(node.block, ext, depth + 1) };
}

function bind(
  name: string,
  what: 'command' | 'test',
  sig: Signature,
  node: CommandNode | TestNode,
  ext: ReadonlySet<Extension>,
): Bound {
  if (sig.extension !== undefined && !ext.has(sig.extension))
    fail(`the "${name}" ${what} needs require "${sig.extension}"`, node.at);
  const tags = new Map<string, Argument | null>();
  const groups = new Map<string, string>();
  const positional: Argument[] = [];
  const args = node.args;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as Argument;
    if (arg.kind !== 'tag') {
      positional.push(arg);
      continue;
    }
    // RFC 5228 §2.6.2: tagged arguments precede positional ones.
    if (positional.length > 0)
      fail(`tag ":${arg.name}" must come before the positional arguments of "${name}"`, arg.at);
    const spec = sig.tags[arg.name];
    if (spec === undefined) return fail(`unknown tag ":${arg.name}" for "${name}"`, arg.at);
    if (spec.extension !== undefined && !ext.has(spec.extension))
      fail(`":${arg.name}" on "${name}" needs require "${spec.extension}"`, arg.at);
    if (tags.has(arg.name)) fail(`":${arg.name}" given twice`, arg.at);
    if (spec.group !== undefined) {
      const other = groups.get(spec.group);
      if (other !== undefined) fail(`":${arg.name}" conflicts with ":${other}"`, arg.at);
      groups.set(spec.group, arg.name);
    }
    let value: Argument | null = null;
    if (spec.value !== undefined) {
      const v = args[i + 1];
      if (v === undefined || v.kind === 'tag' || !fits(v, spec.value))
        fail(`":${arg.name}" must be followed by ${article(spec.value)}`, v?.at ?? arg.at);
      value = v as Argument;
      i++;
    }
    tags.set(arg.name, value);
  }
  if (positional.length !== sig.positional.length)
    fail(
      `"${name}" takes ${sig.positional.length} positional argument${sig.positional.length === 1 ? '' : 's'}, found ${positional.length}`,
      positional[sig.positional.length]?.at ?? node.at,
    );
  sig.positional.forEach((kind, i) => {
    const arg = positional[i] as Argument;
    if (!fits(arg, kind)) fail(`argument ${i + 1} of "${name}" must be ${article(kind)}`, arg.at);
  });
  const count = node.tests.length;
  if (sig.tests === 'none' && count > 0) fail(`"${name}" takes no test`, (node.tests[0] as TestNode).at);
  if (sig.tests === 'one' && count !== 1) fail(`"${name}" takes exactly one test`, node.at);
  if (sig.tests === 'list' && count === 0) fail(`"${name}" takes a test list: ${name} (test, test)`, node.at);
  return { tags, positional };
}

function fits(arg: Argument, kind: ValueKind): boolean {
  if (kind === 'number') return arg.kind === 'number';
  if (kind === 'string') return arg.kind === 'strings' && !arg.list;
  return arg.kind === 'strings';
}

const article = (kind: ValueKind): string =>
  kind === 'number' ? 'a number' : kind === 'string' ? 'a string' : 'a string list';
const strings = (arg: Argument | null | undefined): readonly string[] =>
  arg?.kind === 'strings' ? arg.values : [];
const str = (arg: Argument | null | undefined): string => strings(arg)[0] ?? '';

function validateCommand(node: CommandNode, ext: ReadonlySet<Extension>): Command {
  const sig = COMMANDS[node.name];
  if (sig === undefined) return fail(`unknown command "${node.name}"`, node.at);
  if (node.block !== null) fail(`"${node.name}" takes no block; end it with ";"`, node.at);
  const b = bind(node.name, 'command', sig, node, ext);
  const flagsTag = b.tags.get('flags');
  const flags = flagsTag === undefined ? null : strings(flagsTag);
  switch (node.name) {
    case 'stop':
      return { kind: 'stop' };
    case 'keep':
      return { kind: 'keep', flags };
    case 'discard':
      return { kind: 'discard' };
    case 'redirect': {
      const address = str(b.positional[0]);
      // RFC 5228 §4.2: the address must be syntactically valid.
      if (!isMailbox(address))
        fail(`redirect address "${address}" is not a valid mail address`, (b.positional[0] as Argument).at);
      return { kind: 'redirect', address, copy: b.tags.has('copy') };
    }
    case 'fileinto': {
      const mailbox = str(b.positional[0]);
      if (mailbox === '') fail('fileinto needs a mailbox name', (b.positional[0] as Argument).at);
      return { kind: 'fileinto', mailbox, copy: b.tags.has('copy'), flags };
    }
    case 'setflag':
    case 'addflag':
    case 'removeflag':
      return { kind: node.name, flags: strings(b.positional[0]) };
    case 'reject':
    case 'ereject':
      return { kind: node.name, reason: str(b.positional[0]) };
    case 'vacation': {
      const daysArg = b.tags.get('days');
      const from = b.tags.has('from') ? str(b.tags.get('from')) : null;
      if (from !== null && !isMailbox(extractAddress(from)))
        fail(`vacation :from "${from}" is not a valid mail address`, (b.tags.get('from') as Argument).at);
      return {
        kind: 'vacation',
        days: daysArg?.kind === 'number' ? daysArg.value : null,
        subject: b.tags.has('subject') ? str(b.tags.get('subject')) : null,
        from,
        addresses: strings(b.tags.get('addresses')),
        mime: b.tags.has('mime'),
        handle: b.tags.has('handle') ? str(b.tags.get('handle')) : null,
        reason: str(b.positional[0]),
      };
    }
    default:
      return fail(`unknown command "${node.name}"`, node.at);
  }
}

function matchOf(b: Bound, keys: Argument | undefined, name: string): Match {
  const comparatorArg = b.tags.get('comparator');
  let comparator: Comparator = 'i;ascii-casemap';
  if (comparatorArg !== undefined) {
    const c = str(comparatorArg).toLowerCase();
    if (!(COMPARATORS as readonly string[]).includes(c))
      fail(
        `unknown comparator "${c}" for "${name}" (supported: ${COMPARATORS.join(', ')})`,
        (comparatorArg as Argument).at,
      );
    comparator = c as Comparator;
  }
  const type: MatchType = b.tags.has('contains') ? 'contains' : b.tags.has('matches') ? 'matches' : 'is';
  return { type, comparator, keys: strings(keys) };
}

const addressPartOf = (b: Bound): AddressPart =>
  b.tags.has('localpart') ? 'localpart' : b.tags.has('domain') ? 'domain' : 'all';

function validateTest(node: TestNode, ext: ReadonlySet<Extension>): Test {
  const sig = TESTS[node.name];
  if (sig === undefined) return fail(`unknown test "${node.name}"`, node.at);
  const b = bind(node.name, 'test', sig, node, ext);
  const sub = (): Test[] => node.tests.map((t) => validateTest(t, ext));
  switch (node.name) {
    case 'address': {
      const headers = strings(b.positional[0]).map((h) => h.toLowerCase());
      const bad = headers.find((h) => !ADDRESS_HEADERS.has(h));
      if (bad !== undefined)
        fail(`"${bad}" is not an address header; use the header test`, (b.positional[0] as Argument).at);
      return {
        kind: 'address',
        part: addressPartOf(b),
        match: matchOf(b, b.positional[1], node.name),
        headers,
      };
    }
    case 'envelope': {
      const parts = strings(b.positional[0]).map((p) => p.toLowerCase());
      const bad = parts.find((p) => p !== 'from' && p !== 'to');
      // RFC 5228 §5.4: "from" and "to" are defined; other envelope parts come from extensions.
      if (bad !== undefined)
        fail(`unsupported envelope part "${bad}" (supported: from, to)`, (b.positional[0] as Argument).at);
      return {
        kind: 'envelope',
        part: addressPartOf(b),
        match: matchOf(b, b.positional[1], node.name),
        parts: parts as ('from' | 'to')[],
      };
    }
    case 'header':
      return {
        kind: 'header',
        match: matchOf(b, b.positional[1], node.name),
        headers: strings(b.positional[0]).map((h) => h.toLowerCase()),
      };
    case 'exists':
      return { kind: 'exists', headers: strings(b.positional[0]).map((h) => h.toLowerCase()) };
    case 'size': {
      if (!b.tags.has('over') && !b.tags.has('under')) fail('size needs :over or :under', node.at);
      const limit = b.positional[0];
      return { kind: 'size', over: b.tags.has('over'), limit: limit?.kind === 'number' ? limit.value : 0 };
    }
    case 'allof':
    case 'anyof':
      return { kind: node.name, tests: sub() };
    case 'not':
      return { kind: 'not', test: sub()[0] as Test };
    case 'true':
    case 'false':
      return { kind: node.name };
    case 'hasflag':
      return { kind: 'hasflag', match: matchOf(b, b.positional[0], node.name) };
    case 'body': {
      const transform: BodyTransform = b.tags.has('raw')
        ? { kind: 'raw' }
        : b.tags.has('content')
          ? { kind: 'content', types: strings(b.tags.get('content')).map((t) => t.toLowerCase()) }
          : { kind: 'text' };
      return { kind: 'body', match: matchOf(b, b.positional[0], node.name), transform };
    }
    default:
      return fail(`unknown test "${node.name}"`, node.at);
  }
}

/** `Name <local@domain>` or `local@domain` → `local@domain`. */
export function extractAddress(value: string): string {
  const angle = /<([^<>]*)>/.exec(value);
  return (angle?.[1] ?? value).trim();
}

/** A deliberately plain check: one "@", a non-empty local part and a dotted or bare domain. */
export function isMailbox(address: string): boolean {
  return /^[^\s@<>()",;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(
    address,
  );
}
