/**
 * Extension commands: COMPRESS (RFC 4978 §3), GETQUOTA / GETQUOTAROOT (RFC 9208 §4.2-§4.3),
 * SORT with ESORT return options (RFC 5256 §3, RFC 5267 §3.2, RFC 5957 §3) and THREAD
 * (RFC 5256 §3).
 */
import type { Cursor } from '../syntax.js';
import { decodeWireName } from './common.js';
import { parseCharset, parseSearchKeys } from './search.js';
import type {
  CompressCommand,
  GetQuotaCommand,
  GetQuotaRootCommand,
  ParseOptions,
  SearchReturnOption,
  SortCommand,
  SortCriterion,
  SortKey,
  ThreadCommand,
} from './types.js';

export function parseCompress(c: Cursor, tag: string): CompressCommand {
  c.sp();
  const mechanism = c.keyword('compression mechanism');
  c.expectEnd();
  return { name: 'COMPRESS', tag, mechanism };
}

export function parseGetQuota(c: Cursor, tag: string): GetQuotaCommand {
  c.sp();
  const root = c.astring('quota root').toString('utf8');
  c.expectEnd();
  return { name: 'GETQUOTA', tag, root };
}

export function parseGetQuotaRoot(c: Cursor, tag: string, options: ParseOptions): GetQuotaRootCommand {
  c.sp();
  const mailbox = decodeWireName(c, c.astring('mailbox'), options);
  c.expectEnd();
  return { name: 'GETQUOTAROOT', tag, mailbox };
}

const SORT_KEYS: readonly SortKey[] = [
  'ARRIVAL',
  'CC',
  'DATE',
  'FROM',
  'SIZE',
  'SUBJECT',
  'TO',
  'DISPLAYFROM',
  'DISPLAYTO',
];
/** RFC 5267 §3.2: the ESEARCH options that make sense for SORT. */
const SORT_RETURN_OPTIONS: readonly SearchReturnOption[] = ['MIN', 'MAX', 'ALL', 'COUNT'];

/** `SORT [RETURN (opts)] (criteria) charset search-keys` — RFC 5256 §5, RFC 5267 §3.2. */
export function parseSort(c: Cursor, tag: string, uid: boolean): SortCommand {
  c.sp();
  let returnOptions: SearchReturnOption[] | null = null;
  if (c.takeWord('RETURN')) {
    c.sp();
    c.expect(0x28, '"(" after RETURN');
    returnOptions = [];
    if (!c.take(0x29)) {
      for (;;) {
        const word = c.keyword('sort return option');
        const option = SORT_RETURN_OPTIONS.find((o) => o === word);
        if (option === undefined) c.fail(`unknown sort return option ${word}`);
        if (!returnOptions.includes(option)) returnOptions.push(option);
        if (c.take(0x29)) break;
        c.sp();
      }
    }
    c.sp();
  }
  c.expect(0x28, '"(" before sort criteria');
  const criteria: SortCriterion[] = [];
  for (;;) {
    let word = c.keyword('sort key');
    let reverse = false;
    if (word === 'REVERSE') {
      reverse = true;
      c.sp();
      word = c.keyword('sort key');
    }
    const key = SORT_KEYS.find((k) => k === word);
    if (key === undefined) c.fail(`unknown sort key ${word}`);
    criteria.push({ key, reverse });
    if (c.take(0x29)) break;
    c.sp();
  }
  c.sp();
  const charset = parseCharset(c);
  c.sp();
  return { name: 'SORT', tag, uid, criteria, charset, returnOptions, search: parseSearchKeys(c, charset) };
}

/** `THREAD algorithm charset search-keys` — RFC 5256 §5. */
export function parseThread(c: Cursor, tag: string, uid: boolean): ThreadCommand {
  c.sp();
  const word = c.keyword('thread algorithm');
  if (word !== 'ORDEREDSUBJECT' && word !== 'REFERENCES') c.fail(`unknown thread algorithm ${word}`);
  c.sp();
  const charset = parseCharset(c);
  c.sp();
  return { name: 'THREAD', tag, uid, algorithm: word, charset, search: parseSearchKeys(c, charset) };
}
