// The hand-checked corpus: ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2), section byte ranges
// (RFC 9051 §6.4.5) and decoded bodies for each test/corpus/*.eml.
import { describe, expect, it } from 'vitest';
import {
  applyPartial,
  decodePartBody,
  decodePartText,
  findSectionPart,
  indexMessage,
  resolveSection,
  selectHeaderFields,
} from '../src/index.js';
import {
  allParts,
  expandEnvelope,
  expandPart,
  loadCorpus,
  withoutOffsets,
  type CorpusCase,
} from './corpus-helpers.js';

const corpus = loadCorpus();

describe('corpus', () => {
  it('has at least 15 messages, stored byte for byte (CRLF kept)', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(15);
    expect(corpus.find((c) => c.name === '01-simple-text')!.raw.includes('\r\n')).toBe(true);
    expect(corpus.find((c) => c.name === '11-bare-lf')!.raw.includes('\r')).toBe(false);
  });

  describe.each(corpus.map((c) => [c.name, c] as const))('%s', (_name, c: CorpusCase) => {
    const result = indexMessage(c.raw);

    it('has the expected ENVELOPE', () => {
      expect(result.envelope).toEqual(expandEnvelope(c.expected.envelope));
    });

    it('has the expected BODYSTRUCTURE', () => {
      expect(withoutOffsets(result.bodystructure)).toEqual(expandPart(c.expected.bodystructure));
      expect(result.size).toBe(c.raw.length);
    });

    it('has consistent offsets for every part', () => {
      const root = result.bodystructure;
      expect(root.offsets.headerStart).toBe(0);
      expect(root.offsets.bodyEnd).toBe(c.raw.length);
      for (const p of allParts(root)) {
        expect(p.offsets.headerStart).toBeLessThanOrEqual(p.offsets.bodyStart);
        expect(p.offsets.bodyStart).toBeLessThanOrEqual(p.offsets.bodyEnd);
        if (p.kind !== 'multipart') expect(p.size).toBe(p.offsets.bodyEnd - p.offsets.bodyStart);
      }
    });

    if (c.expected.headers !== undefined) {
      const expectedHeaders = c.expected.headers;
      it('has the expected searchable headers', () => {
        const { date, ...rest } = result.headers;
        const { date: expectedDate, ...expectedRest } = expectedHeaders;
        expect(rest).toEqual(expectedRest);
        expect(date === null ? null : new Date(date).toISOString()).toBe(expectedDate);
      });
    }

    for (const [spec, want] of Object.entries(c.expected.sections ?? {})) {
      it(`resolves BODY[${spec}]`, () => {
        const m = /^(.*?)(?:<(\d+)(?:\.(\d+))?>)?$/.exec(spec)!;
        const resolved = resolveSection(result.bodystructure, m[1]!);
        if (typeof want !== 'string') {
          expect(resolved).toEqual({ ok: false, error: want.error });
          return;
        }
        if (!resolved.ok) throw new Error(`unexpected ${resolved.error}`);
        const range =
          m[2] === undefined
            ? resolved.range
            : applyPartial(resolved.range, Number(m[2]), m[3] === undefined ? undefined : Number(m[3]));
        let bytes: Uint8Array = c.raw.subarray(range.start, range.end);
        if (resolved.fields !== null)
          bytes = selectHeaderFields(bytes, resolved.fields.names, resolved.fields.not);
        expect(Buffer.from(bytes).toString('latin1')).toBe(want);
      });
    }

    for (const [partId, want] of Object.entries(c.expected.decoded ?? {})) {
      it(`decodes part ${partId}`, () => {
        const part = findSectionPart(result.bodystructure, partId)!;
        const body = c.raw.subarray(part.offsets.bodyStart, part.offsets.bodyEnd);
        if ('text' in want) {
          expect(decodePartText(part, body)).toBe(want.text);
        } else if ('bytes' in want) {
          const decoded = decodePartBody(part, body);
          expect(decoded.ok && Buffer.from(decoded.bytes).toString('latin1')).toBe(want.bytes);
        } else {
          expect(decodePartBody(part, body)).toEqual({ ok: false, error: want.error });
        }
      });
    }
  });
});
