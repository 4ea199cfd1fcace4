/**
 * The blind search index (src/mailstore/search-terms.ts, docs/adr/0003): a query's required
 * trigrams are always a subset of the trigrams of any text that contains it as a substring
 * (RFC 9051 §6.4.4 substring semantics), so the index never loses a match.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  TermField,
  TermHasher,
  asciiTokens,
  foldForSearch,
  requiredTrigrams,
  trigramsOf,
  unicodeTokens,
} from '../src/mailstore/search-terms.js';

describe('search trigrams', () => {
  it('indexes tokens as trigrams, short tokens whole, case-folded', () => {
    expect([...trigramsOf('Hello, Wo')].sort()).toEqual(['=wo', 'ell', 'hel', 'llo']);
    expect([...requiredTrigrams('ELLO w')]).toEqual(['ell', 'llo']);
  });

  it('never requires a trigram a containing text lacks (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.nat(), fc.nat(), (text, a, b) => {
        const folded = foldForSearch(text);
        const start = Math.min(a, folded.length);
        const end = Math.min(folded.length, start + (b % 20));
        const query = folded.slice(start, end);
        const have = trigramsOf(text);
        for (const t of requiredTrigrams(query)) expect(have.has(t)).toBe(true);
      }),
    );
  });

  it('tokenises ASCII text by its character codes exactly as by the Unicode regex (property)', () => {
    const ascii = fc.string({
      unit: fc.oneof(
        fc.constantFrom('a', 'Z', '0', '9', ' ', '\n', '-', '_', '@', '.'),
        fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
      ),
      maxLength: 80,
    });
    fc.assert(
      fc.property(ascii, (text) => {
        expect([...asciiTokens(text)].sort()).toEqual([...unicodeTokens(text)].sort());
      }),
    );
    expect([...asciiTokens('Re: MEETING at 10:30, room B-2')]).toEqual([
      're',
      'meeting',
      'at',
      '10',
      '30',
      'room',
      'b',
      '2',
    ]);
  });

  it('hashes depend on the key and the field', () => {
    const a = new TermHasher(Buffer.alloc(32, 1));
    const b = new TermHasher(Buffer.alloc(32, 2));
    expect(a.hash(TermField.subject, 'abc')).not.toBe(b.hash(TermField.subject, 'abc'));
    expect(a.hash(TermField.subject, 'abc')).not.toBe(a.hash(TermField.body, 'abc'));
    expect(a.hash(TermField.subject, 'abc')).toBe(a.hash(TermField.subject, 'abc'));
    expect(a.hash(TermField.subject, 'abc')).not.toContain('abc');
  });
});
