/** The PREVIEW text rules (RFC 8970 §3) on their own: character limit and cut reads. */
import { describe, expect, it } from 'vitest';
import type { BodyPart } from '@postmesh/mime';
import { PREVIEW_CHARACTERS, PREVIEW_OCTETS, previewSource, previewText } from '../src/preview.js';

const utf8Plain = { section: '1', html: false, charset: 'utf-8' } as const;

describe('previewText', () => {
  it('counts characters, not UTF-16 units, and never splits a surrogate pair', () => {
    const text = '😀'.repeat(300);
    const preview = previewText(Buffer.from(text, 'utf8'), utf8Plain);
    expect([...preview]).toHaveLength(PREVIEW_CHARACTERS);
    expect(preview).toBe('😀'.repeat(PREVIEW_CHARACTERS));
  });

  it('drops a UTF-8 sequence cut by the read limit instead of falling back to Latin-1', () => {
    // 2 + 3n octets: the read ends after the first two octets of a three-octet character.
    const cut = Buffer.from(`ab${'€'.repeat(PREVIEW_OCTETS)}`, 'utf8').subarray(0, PREVIEW_OCTETS);
    expect(cut.subarray(-2)).toEqual(Buffer.from([0xe2, 0x82]));
    expect(previewText(cut, { section: '1', html: false, charset: null })).toBe(
      `ab${'€'.repeat(PREVIEW_CHARACTERS - 2)}`,
    );
  });
});

describe('previewSource', () => {
  const text = (partId: string, subtype: string, disposition: string | null = null): BodyPart => ({
    kind: 'text',
    partId,
    type: 'text',
    subtype,
    params: [['charset', 'us-ascii']],
    disposition: disposition === null ? null : { type: disposition, params: [] },
    language: null,
    location: null,
    offsets: { headerStart: 0, bodyStart: 0, bodyEnd: 0 },
    id: null,
    description: null,
    encoding: '7BIT',
    size: 0,
    md5: null,
    lines: 0,
  });

  it('reads part 1 of a single-part message and skips attachments', () => {
    expect(previewSource(text('', 'plain'))).toEqual({ section: '1', html: false, charset: 'us-ascii' });
    expect(previewSource(text('', 'plain', 'attachment'))).toBeNull();
    expect(previewSource(text('', 'calendar'))).toBeNull();
  });

  it('prefers text/plain inside multipart/alternative, else the first text part', () => {
    const multipart = (subtype: string, parts: BodyPart[]): BodyPart => ({
      kind: 'multipart',
      partId: '',
      subtype,
      params: [],
      disposition: null,
      language: null,
      location: null,
      offsets: { headerStart: 0, bodyStart: 0, bodyEnd: 0 },
      parts,
    });
    expect(previewSource(multipart('alternative', [text('1', 'html'), text('2', 'plain')]))?.section).toBe(
      '2',
    );
    expect(previewSource(multipart('mixed', [text('1', 'html'), text('2', 'plain')]))?.section).toBe('1');
    expect(previewSource(multipart('mixed', [text('1', 'plain', 'attachment')]))).toBeNull();
  });
});
