// Streaming: the index must not depend on how the message is cut into chunks (one byte at a time,
// random sizes, any split point), since SMTP and the spool deliver arbitrary chunks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MimeIndexer, indexMessage, type IndexResult } from '../src/index.js';
import { loadCorpus } from './corpus-helpers.js';
import { mimeishMessage } from './generators.js';

function indexInChunks(raw: Uint8Array, sizes: (i: number) => number): IndexResult {
  const indexer = new MimeIndexer({ searchTextBytes: 4096 });
  let pos = 0;
  let i = 0;
  while (pos < raw.length) {
    const n = Math.max(1, sizes(i++));
    indexer.write(raw.subarray(pos, pos + n));
    pos += n;
  }
  return indexer.end();
}

/** Small deterministic PRNG (mulberry32) so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('chunking invariance', () => {
  const corpus = loadCorpus();

  it.each(corpus.map((c) => [c.name, c.raw] as const))('%s: one byte at a time equals whole', (_n, raw) => {
    const whole = indexMessage(raw, { searchTextBytes: 4096 });
    expect(indexInChunks(raw, () => 1)).toEqual(whole);
  });

  it.each(corpus.map((c) => [c.name, c.raw] as const))('%s: random chunk sizes equal whole', (_n, raw) => {
    const whole = indexMessage(raw, { searchTextBytes: 4096 });
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = prng(seed);
      expect(indexInChunks(raw, () => 1 + Math.floor(rnd() * 40))).toEqual(whole);
    }
  });

  it('holds for generated MIME-like messages split at arbitrary points', () => {
    fc.assert(
      fc.property(
        mimeishMessage(),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }),
        (raw, sizes) => {
          const whole = indexMessage(raw, { searchTextBytes: 4096 });
          expect(indexInChunks(raw, (i) => sizes[i % sizes.length]!)).toEqual(whole);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('holds for a delimiter line longer than the kept line prefix', () => {
    const padding = ' '.repeat(3000);
    const raw = Buffer.from(
      `Content-Type: multipart/mixed; boundary=b\r\n\r\n--b${padding}\r\n\r\none\r\n--b--${padding}x\r\n--b--\r\n`,
    );
    const whole = indexMessage(raw, { searchTextBytes: 4096 });
    expect(whole.bodystructure.kind).toBe('multipart');
    // The padded open delimiter counts; the close delimiter followed by text does not.
    expect(whole.bodystructure.kind === 'multipart' && whole.bodystructure.parts.length).toBe(1);
    const part =
      whole.bodystructure.kind === 'multipart' ? whole.bodystructure.parts[0]! : whole.bodystructure;
    expect(raw.subarray(part.offsets.bodyStart, part.offsets.bodyEnd).toString()).toBe(
      `one\r\n--b--${padding}x`,
    );
    expect(indexInChunks(raw, () => 1)).toEqual(whole);
    expect(indexInChunks(raw, () => 7)).toEqual(whole);
  });
});
