/**
 * Loading the hand-checked corpus (test/corpus/*.eml + *.expected.json) and expanding the compact
 * expectation format: addresses as `[name, adl, mailbox, host]`, omitted envelope fields are NIL,
 * omitted body fields take their IMAP defaults (no params, NIL, `7BIT`).
 */

import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BodyPart, Envelope, EnvelopeAddress } from '../src/index.js';

export const CORPUS_DIR = fileURLToPath(new URL('./corpus/', import.meta.url));

type CompactAddress = [string | null, string | null, string | null, string | null];

export interface CompactPart {
  kind: BodyPart['kind'];
  partId: string;
  type?: string;
  subtype: string;
  params?: [string, string][];
  disposition?: { type: string; params: [string, string][] };
  language?: string[];
  location?: string;
  id?: string;
  description?: string;
  encoding?: string;
  size?: number;
  md5?: string;
  lines?: number;
  parts?: CompactPart[];
  envelope?: Record<string, unknown>;
  body?: CompactPart;
}

export type SectionExpectation = string | { error: string };
export type DecodedExpectation = { text: string } | { bytes: string } | { error: string };

export interface CorpusCase {
  name: string;
  raw: Buffer;
  expected: {
    description: string;
    envelope: Record<string, unknown>;
    bodystructure: CompactPart;
    headers?: Record<string, unknown>;
    sections?: Record<string, SectionExpectation>;
    decoded?: Record<string, DecodedExpectation>;
  };
}

export function loadCorpus(): CorpusCase[] {
  return readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.eml'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.eml'.length);
      return {
        name,
        raw: readFileSync(`${CORPUS_DIR}${f}`),
        expected: JSON.parse(
          readFileSync(`${CORPUS_DIR}${name}.expected.json`, 'utf8'),
        ) as CorpusCase['expected'],
      };
    });
}

function address([name, adl, mailbox, host]: CompactAddress): EnvelopeAddress {
  return { name, adl, mailbox, host };
}

export function expandEnvelope(e: Record<string, unknown>): Envelope {
  const list = (k: string): EnvelopeAddress[] | null => {
    const v = e[k] as CompactAddress[] | undefined;
    return v === undefined ? null : v.map(address);
  };
  const str = (k: string): string | null => (e[k] as string | undefined) ?? null;
  return {
    date: str('date'),
    subject: str('subject'),
    from: list('from'),
    sender: list('sender'),
    replyTo: list('replyTo'),
    to: list('to'),
    cc: list('cc'),
    bcc: list('bcc'),
    inReplyTo: str('inReplyTo'),
    messageId: str('messageId'),
  };
}

/** The expected part as a BodyPart without `offsets` (those are checked through sections). */
export function expandPart(p: CompactPart): Record<string, unknown> {
  const common = {
    kind: p.kind,
    partId: p.partId,
    subtype: p.subtype,
    params: p.params ?? [],
    disposition: p.disposition ?? null,
    language: p.language ?? null,
    location: p.location ?? null,
  };
  if (p.kind === 'multipart') return { ...common, parts: (p.parts ?? []).map(expandPart) };
  const single = {
    ...common,
    type: p.type,
    id: p.id ?? null,
    description: p.description ?? null,
    encoding: p.encoding ?? '7BIT',
    size: p.size,
    md5: p.md5 ?? null,
  };
  switch (p.kind) {
    case 'text':
      return { ...single, lines: p.lines };
    case 'message':
      return {
        ...single,
        lines: p.lines,
        envelope: expandEnvelope(p.envelope ?? {}),
        body: expandPart(p.body!),
      };
    case 'basic':
      return single;
  }
}

/** Drop `offsets` everywhere, to compare with {@link expandPart}. */
export function withoutOffsets(part: BodyPart): Record<string, unknown> {
  const { offsets: _offsets, ...rest } = part;
  switch (part.kind) {
    case 'multipart':
      return { ...rest, parts: part.parts.map(withoutOffsets) };
    case 'message':
      return { ...rest, body: withoutOffsets(part.body) };
    case 'text':
    case 'basic':
      return rest;
  }
}

/** Every part of the tree, message bodies included. */
export function allParts(root: BodyPart): BodyPart[] {
  const children = root.kind === 'multipart' ? root.parts : root.kind === 'message' ? [root.body] : [];
  return [root, ...children.flatMap(allParts)];
}
