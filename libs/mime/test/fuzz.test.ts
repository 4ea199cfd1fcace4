// Robustness: any byte sequence yields a result, never an exception, and the result is coherent.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexMessage, resolveSection, type BodyPart, type IndexResult } from '../src/index.js';
import { allParts } from './corpus-helpers.js';
import { mimeishMessage } from './generators.js';

function checkCoherent(raw: Uint8Array, r: IndexResult): void {
  expect(r.size).toBe(raw.length);
  const root = r.bodystructure;
  expect(root.offsets.headerStart).toBe(0);
  expect(root.offsets.bodyEnd).toBe(raw.length);
  for (const p of allParts(root)) {
    expect(0 <= p.offsets.headerStart && p.offsets.headerStart <= p.offsets.bodyStart).toBe(true);
    expect(p.offsets.bodyStart <= p.offsets.bodyEnd && p.offsets.bodyEnd <= raw.length).toBe(true);
    if (p.kind !== 'multipart') expect(p.size).toBe(p.offsets.bodyEnd - p.offsets.bodyStart);
    if (p.kind === 'multipart') expect(p.parts.length).toBeGreaterThan(0);
    if (p.kind === 'text' || p.kind === 'message') {
      const body = raw.subarray(p.offsets.bodyStart, p.offsets.bodyEnd);
      const lfs = body.reduce((n, b) => n + (b === 0x0a ? 1 : 0), 0);
      // Independent count of IMAP body lines: line breaks plus an unterminated last line.
      expect(p.lines).toBe(body.length === 0 ? 0 : lfs + (body[body.length - 1] === 0x0a ? 0 : 1));
    }
  }
  // Every numbered part resolves, and BODY[n] is exactly that part's body.
  const visit = (part: BodyPart, section: string): void => {
    const res = resolveSection(root, section);
    expect(res.ok).toBe(true);
    if (part.kind === 'multipart') part.parts.forEach((c, i) => visit(c, `${section}.${i + 1}`));
  };
  if (root.kind === 'multipart') root.parts.forEach((c, i) => visit(c, `${i + 1}`));
  else visit(root, '1');
  for (const s of ['', 'HEADER', 'TEXT', '1', '1.MIME', '2.1.HEADER', '9.9.9'])
    expect(() => resolveSection(root, s)).not.toThrow();
}

describe('never throws', () => {
  it('on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (raw) => {
        checkCoherent(raw, indexMessage(raw, { searchTextBytes: 1024 }));
      }),
      { numRuns: 500 },
    );
  });

  it('on MIME-shaped input full of near-misses', () => {
    fc.assert(
      fc.property(mimeishMessage(), (raw) => {
        checkCoherent(raw, indexMessage(raw, { searchTextBytes: 1024 }));
      }),
      { numRuns: 1000 },
    );
  });

  it('bounds nesting depth and part count instead of growing without limit', () => {
    const deep = Buffer.from('Content-Type: message/rfc822\r\n\r\n'.repeat(200) + 'body\r\n');
    const r = indexMessage(deep, { maxDepth: 10 });
    let depth = 0;
    for (let p: BodyPart = r.bodystructure; p.kind === 'message'; p = p.body) depth++;
    expect(depth).toBe(10);
    checkCoherent(deep, r);

    const many = Buffer.from(
      'Content-Type: multipart/mixed; boundary=x\r\n\r\n' + '--x\r\n\r\nz\r\n'.repeat(500) + '--x--\r\n',
    );
    const limited = indexMessage(many, { maxParts: 101 });
    expect(limited.bodystructure.kind === 'multipart' && limited.bodystructure.parts.length).toBe(100);
    checkCoherent(many, limited);
  });

  it('keeps at most maxHeaderBytes of a huge header block', () => {
    const raw = Buffer.from(
      `Subject: ${'s'.repeat(5000)}\r\nX-Pad: ${'p'.repeat(5000)}\r\nFrom: late@example.com\r\n\r\nbody`,
    );
    const r = indexMessage(raw, { maxHeaderBytes: 1024 });
    expect(r.envelope.subject).toBe('s'.repeat(1024 - 'Subject: '.length));
    expect(r.envelope.from).toBeNull(); // beyond the kept bytes
    expect(raw.subarray(r.bodystructure.offsets.bodyStart).toString()).toBe('body');
  });

  it.each([
    ['whitespace inside a Date', `Date: 1${' '.repeat(200_000)}x\r\n\r\n`],
    ['whitespace inside any field', `Subject: a${' '.repeat(200_000)}b\r\n\r\n`],
    ['angle brackets in an address list', `From: ${'<'.repeat(200_000)}\r\n\r\n`],
    ['unclosed comments in a Content-Type', `Content-Type: text/plain; ${'('.repeat(200_000)}\r\n\r\n`],
    ['RFC 2231 section names', `Content-Type: text/plain; ${'a*'.repeat(100_000)}=1\r\n\r\n`],
    ['encoded-word starts', `Subject: ${'=?a?q?'.repeat(30_000)}\r\n\r\n`],
  ])('stays fast on adversarial headers: %s', (_name, raw) => {
    const started = performance.now();
    indexMessage(Buffer.from(raw));
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
