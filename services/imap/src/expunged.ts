/**
 * Telling a session that messages are gone: `* n EXPUNGE` per message (RFC 9051 §7.5.1), or,
 * once QRESYNC is enabled, one `* VANISHED <uids>` (RFC 7162 §3.2.10: the server MUST use it
 * instead of EXPUNGE then). Either way the session's MSN map drops the messages.
 */
import { serializeExpunge, serializeVanished } from '@postmesh/imap-protocol';
import type { MessageMap } from './message-map.js';
import { toRanges } from './commands/selection.js';

export function expungeResponses(map: MessageMap, uids: Iterable<number>, qresync: boolean): Buffer[] {
  if (!qresync) return map.removeMany(uids).map((msn) => serializeExpunge(msn));
  // Only UIDs the session knows: VANISHED without EARLIER lowers the message count by one per
  // UID it names (RFC 7162 §3.2.10).
  const known = [...new Set(uids)].filter((uid) => map.has(uid)).sort((a, b) => a - b);
  if (known.length === 0) return [];
  map.removeMany(known);
  return [serializeVanished(toRanges(known), false)];
}
