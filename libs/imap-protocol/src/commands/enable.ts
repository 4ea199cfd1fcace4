/** ENABLE — RFC 5161 §3.1, RFC 9051 §6.3.1: `ENABLE 1*(SP capability)`. */
import type { Cursor } from '../syntax.js';
import type { EnableCommand } from './types.js';

export function parseEnable(c: Cursor, tag: string): EnableCommand {
  const capabilities: string[] = [];
  do {
    c.sp();
    capabilities.push(c.keyword('capability'));
  } while (!c.atEnd());
  return { name: 'ENABLE', tag, capabilities };
}
