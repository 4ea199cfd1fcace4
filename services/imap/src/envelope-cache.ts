/**
 * ENVELOPE responses by content: the serialized `envelope` (RFC 9051 §9) for an ENVELOPE JSON
 * from storage, so `FETCH 1:* (FLAGS ENVELOPE)` of a large mailbox, which every client sends on
 * each sync, does not parse JSON and rebuild the same bytes for every message every time (that
 * was most of imap's CPU for such a FETCH). The key is the JSON itself (plus the string options
 * that change the bytes), so an entry can never be stale: a message's envelope never changes, and
 * another message with the same envelope has the same bytes. Bounded by bytes, least recently used
 * first out; shared by all sessions of the process.
 */
import type { Envelope } from '@postmesh/mime';
import { serializeEnvelope } from '@postmesh/imap-protocol';

export class EnvelopeCache {
  /**
   * One map per string mode (plain, UTF-8), keyed by the JSON itself: a key built per lookup
   * (a prefix plus the JSON) would be a new string to copy and hash on every message.
   */
  readonly #entries = [new Map<string, Buffer>(), new Map<string, Buffer>()] as const;
  #bytes = 0;

  /** @param maxBytes approximate memory held (keys counted at 2 bytes a character); 0 caches nothing. */
  constructor(readonly maxBytes: number) {}

  get size(): number {
    return this.#entries[0].size + this.#entries[1].size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The envelope of `json` serialized with `utf8` on or off. */
  serialized(json: string, utf8: boolean): Buffer {
    const entries = this.#entries[utf8 ? 1 : 0];
    const hit = entries.get(json);
    if (hit !== undefined) {
      // Most recently used last (Map keeps insertion order).
      entries.delete(json);
      entries.set(json, hit);
      return hit;
    }
    const bytes = serializeEnvelope(JSON.parse(json) as Envelope, { utf8 });
    const cost = json.length * 2 + bytes.length;
    if (cost > this.maxBytes) return bytes;
    entries.set(json, bytes);
    this.#bytes += cost;
    // Least recently used first out, from this mode's entries first.
    for (const map of [entries, this.#entries[utf8 ? 0 : 1]]) {
      for (const [oldest, value] of map) {
        if (this.#bytes <= this.maxBytes) return bytes;
        map.delete(oldest);
        this.#bytes -= oldest.length * 2 + value.length;
      }
    }
    return bytes;
  }
}

/** 16 MiB: the envelopes of some 40,000 messages, a few large mailboxes' worth. */
export const envelopeCache = new EnvelopeCache(16 * 1024 * 1024);
