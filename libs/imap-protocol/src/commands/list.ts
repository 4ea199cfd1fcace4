/**
 * LIST — RFC 9051 §6.3.9 and LIST-EXTENDED (RFC 5258 §3): selection options (§3.1), multiple
 * patterns, return options (§3.2) including STATUS (RFC 5819 §2) and SPECIAL-USE (RFC 6154 §3).
 * LSUB — RFC 3501 §6.3.9.
 */
import type { Cursor } from '../syntax.js';
import { decodeWireName, parseStatusItems } from './common.js';
import type {
  ListCommand,
  ListReturnOption,
  ListSelectionOption,
  LsubCommand,
  ParseOptions,
} from './types.js';

const SELECTION_OPTIONS: readonly ListSelectionOption[] = [
  'SUBSCRIBED',
  'REMOTE',
  'RECURSIVEMATCH',
  'SPECIAL-USE',
];

export function parseList(c: Cursor, tag: string, options: ParseOptions): ListCommand {
  c.sp();
  let extended = false;
  const selectionOptions: ListSelectionOption[] = [];
  if (c.take(0x28)) {
    extended = true;
    if (!c.take(0x29)) {
      for (;;) {
        const word = c.keyword('selection option');
        const option = SELECTION_OPTIONS.find((o) => o === word);
        if (option === undefined) c.fail(`unknown LIST selection option ${word}`);
        if (!selectionOptions.includes(option)) selectionOptions.push(option);
        if (c.take(0x29)) break;
        c.sp();
      }
    }
    // RFC 5258 §3.1: RECURSIVEMATCH alone, or with REMOTE only (which selects nothing by
    // itself), "MUST" be rejected with BAD.
    if (
      selectionOptions.includes('RECURSIVEMATCH') &&
      selectionOptions.every((o) => o === 'RECURSIVEMATCH' || o === 'REMOTE')
    ) {
      c.fail('RECURSIVEMATCH needs another selection option');
    }
    c.sp();
  }
  const reference = decodeWireName(c, c.astring('reference'), options);
  c.sp();
  const patterns: string[] = [];
  if (c.take(0x28)) {
    extended = true;
    for (;;) {
      patterns.push(decodeWireName(c, c.listMailbox(), options));
      if (c.take(0x29)) break;
      c.sp();
    }
  } else {
    patterns.push(decodeWireName(c, c.listMailbox(), options));
  }
  const returnOptions: ListReturnOption[] = [];
  if (c.take(0x20)) {
    if (!c.takeWord('RETURN')) c.fail('expected RETURN');
    extended = true;
    c.sp();
    c.expect(0x28, '"(" after RETURN');
    if (!c.take(0x29)) {
      for (;;) {
        const word = c.keyword('return option');
        switch (word) {
          case 'SUBSCRIBED':
          case 'CHILDREN':
          case 'SPECIAL-USE':
            returnOptions.push({ option: word });
            break;
          case 'STATUS':
            c.sp();
            returnOptions.push({ option: 'STATUS', items: parseStatusItems(c) });
            break;
          default:
            c.fail(`unknown LIST return option ${word}`);
        }
        if (c.take(0x29)) break;
        c.sp();
      }
    }
  }
  c.expectEnd();
  return { name: 'LIST', tag, reference, patterns, selectionOptions, returnOptions, extended };
}

export function parseLsub(c: Cursor, tag: string, options: ParseOptions): LsubCommand {
  c.sp();
  const reference = decodeWireName(c, c.astring('reference'), options);
  c.sp();
  const pattern = decodeWireName(c, c.listMailbox(), options);
  c.expectEnd();
  return { name: 'LSUB', tag, reference, pattern };
}
