/**
 * The message cache keeps only the bytes of what it caches. The sealed metadata it holds is
 * usually a view into a larger ArrayBuffer: a Buffer.concat of a cipher's output lives in Node's
 * 8 KiB allocation pool, and a Binary decoded from a database reply is a view into the whole
 * reply. A cached view keeps all of that alive, so the cache must hold copies of its own.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { BSON, Binary } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { MessageCache } from '../src/mailstore/message-cache.js';
import type { MessageRecord } from '../src/mailstore/types.js';

/** Bytes a Binary keeps reachable: its whole ArrayBuffer, not just its own length. */
const retained = (binary: Binary): number => binary.buffer.buffer.byteLength;

describe('MessageCache memory', () => {
  it('does not keep the pool slab of a sealed field alive', () => {
    const cipher = createCipheriv('aes-256-gcm', randomBytes(32), randomBytes(12));
    const sealed = Buffer.concat([cipher.update(randomBytes(900)), cipher.final(), cipher.getAuthTag()]);
    expect(sealed.buffer.byteLength).toBeGreaterThan(sealed.byteLength); // a view into the pool
    const key = Buffer.concat([randomBytes(12), randomBytes(48)]);
    const doc = {
      _id: 'm1',
      meta: new Binary(sealed),
      contentKey: { iv: new Binary(key.subarray(0, 12)), ciphertext: new Binary(key.subarray(12)) },
    } as unknown as MessageRecord;
    const cache = new MessageCache(1024 * 1024);
    cache.put('m1', doc);
    const cached = cache.get('m1')?.doc as unknown as typeof doc & {
      contentKey: { iv: Binary; ciphertext: Binary };
    };
    expect(retained(cached.meta)).toBe(sealed.byteLength);
    expect(Buffer.from(cached.meta.value()).equals(sealed)).toBe(true);
    expect(retained(cached.contentKey.ciphertext)).toBe(48);
    expect(Buffer.from(cached.contentKey.ciphertext.value()).equals(key.subarray(12))).toBe(true);
    // The caller's document is left as it was.
    expect(doc.meta.buffer.byteOffset).toBe(sealed.byteOffset);
  });

  it('does not keep a whole database reply alive through a decoded document', () => {
    const meta = randomBytes(1000);
    const reply = BSON.serialize({
      cursor: {
        firstBatch: [
          { _id: 'a', filler: 'x'.repeat(20_000) },
          { _id: 'm2', meta: new Binary(meta) },
        ],
      },
    });
    const decoded = BSON.deserialize(reply) as { cursor: { firstBatch: MessageRecord[] } };
    const doc = decoded.cursor.firstBatch[1];
    if (doc === undefined) throw new Error('no document');
    expect(retained(doc.meta)).toBeGreaterThan(20_000); // a view into the reply
    const cache = new MessageCache(1024 * 1024);
    cache.put('m2', doc);
    const cached = cache.get('m2')?.doc;
    expect(cached === undefined ? 0 : retained(cached.meta)).toBe(1000);
    expect(Buffer.from(cached?.meta.value() ?? []).equals(meta)).toBe(true);
  });
});
