/**
 * Structured MIME header values: Content-Type (RFC 2045 §5.1), Content-Disposition (RFC 2183 §2),
 * their parameters with RFC 2231 continuations, charsets and languages (RFC 2231 §3, §4), and the
 * comment-and-quoted-string lexical rules of RFC 5322 §3.2.
 *
 * Lenient choices: an unquoted value runs to the next `;` with comments removed (so
 * `name=my file.pdf` keeps its space); an unterminated quoted string or comment runs to the end;
 * a parameter without `=` is ignored; for duplicated names the first wins, except that an RFC 2231
 * form (`name*` or `name*0…`) wins over the plain `name`.
 */

import type { BodyDisposition, BodyParams } from './types.js';
import { decodeCharset } from './charset.js';

export interface ContentType {
  /** Lower-cased. */
  readonly type: string;
  /** Lower-cased. */
  readonly subtype: string;
  readonly params: BodyParams;
}

/** Split at `;` outside quoted strings and comments. */
function splitSemicolons(value: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && (quoted || depth > 0)) {
      i++;
    } else if (quoted) {
      if (c === '"') quoted = false;
    } else if (c === '(') {
      depth++;
    } else if (c === ')' && depth > 0) {
      depth--;
    } else if (depth === 0 && c === '"') {
      quoted = true;
    } else if (depth === 0 && c === ';') {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

/** Remove comments (nested, with quoted-pairs) outside quoted strings. */
export function stripComments(value: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (depth > 0) {
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      continue;
    }
    if (quoted) {
      out += c;
      if (c === '\\' && i + 1 < value.length) out += value[++i] as string;
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '(') depth++;
    else {
      if (c === '"') quoted = true;
      out += c;
    }
  }
  return out;
}

/** Parse a quoted-string starting at `s[0] === '"'`; unterminated strings run to the end. */
function unquote(s: string): string {
  let out = '';
  for (let i = 1; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && i + 1 < s.length) out += s[++i] as string;
    else if (c === '"') break;
    else out += c;
  }
  return out;
}

interface RawParam {
  readonly name: string;
  readonly value: string;
}

function rawParams(segments: readonly string[]): RawParam[] {
  const out: RawParam[] = [];
  for (const seg of segments) {
    const eq = seg.indexOf('=');
    if (eq < 0) continue;
    const name = stripComments(seg.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    const rawValue = seg.slice(eq + 1).trim();
    const value = rawValue.startsWith('"') ? unquote(rawValue) : stripComments(rawValue).trim();
    out.push({ name, value });
  }
  return out;
}

interface Section {
  readonly index: number;
  readonly extended: boolean;
  readonly value: string;
}

/** Join parameters, resolving RFC 2231 continuations (§3) and charset/language encoding (§4). */
function assembleParams(raw: readonly RawParam[]): BodyParams {
  const order: string[] = [];
  const plain = new Map<string, string>();
  const sections = new Map<string, Section[]>();
  for (const p of raw) {
    const m = /^(.+?)\*(?:(\d{1,4})(\*)?)?$/.exec(p.name);
    const base = m?.[1] ?? p.name;
    if (!plain.has(base) && !sections.has(base)) order.push(base);
    if (m === null) {
      if (!plain.has(base)) plain.set(base, p.value);
      continue;
    }
    const list = sections.get(base) ?? [];
    sections.set(base, list);
    // `name*` is an extended single value; `name*N` / `name*N*` are sections (RFC 2231 §3, §4.1).
    const index = m[2] === undefined ? 0 : Number(m[2]);
    const extended = m[2] === undefined || m[3] === '*';
    if (!list.some((s) => s.index === index)) list.push({ index, extended, value: p.value });
  }
  return order.map((name) => {
    const list = sections.get(name);
    if (list === undefined) return [name, plain.get(name) ?? ''] as const;
    return [name, joinSections(list)] as const;
  });
}

function joinSections(list: Section[]): string {
  list.sort((a, b) => a.index - b.index);
  let charset: string | null = null;
  let out = '';
  let pending: number[] = [];
  const flushBytes = (): void => {
    if (pending.length > 0) out += decodeCharset(Uint8Array.from(pending), charset);
    pending = [];
  };
  list.forEach((s, i) => {
    if (!s.extended) {
      flushBytes();
      out += s.value;
      return;
    }
    let text = s.value;
    if (i === 0) {
      // charset'language'value (RFC 2231 §4); both may be empty, the quotes are required.
      const m = /^([^']*)'([^']*)'(.*)$/s.exec(text);
      if (m !== null) {
        charset = m[1] === '' ? null : (m[1] ?? null);
        text = m[3] ?? '';
      }
    }
    for (let j = 0; j < text.length; j++) {
      const c = text.charCodeAt(j);
      if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(text.slice(j + 1, j + 3))) {
        pending.push(parseInt(text.slice(j + 1, j + 3), 16));
        j += 2;
      } else if (c < 0x80) {
        pending.push(c);
      } else {
        pending.push(...Buffer.from(text[j] as string, 'utf8'));
      }
    }
  });
  flushBytes();
  return out;
}

/** Parse a Content-Type value; null when it is syntactically invalid (no `type/subtype`). */
export function parseContentType(value: string): ContentType | null {
  const [head = '', ...rest] = splitSemicolons(value);
  const m = /^([^\s/"]+)\/([^\s/"]+)$/.exec(stripComments(head).replace(/\s+/g, ''));
  if (m === null) return null;
  return {
    type: (m[1] ?? '').toLowerCase(),
    subtype: (m[2] ?? '').toLowerCase(),
    params: assembleParams(rawParams(rest)),
  };
}

/** Parse a Content-Disposition value (RFC 2183 §2); null when the type is missing. */
export function parseDisposition(value: string): BodyDisposition | null {
  const [head = '', ...rest] = splitSemicolons(value);
  const type = stripComments(head).trim().toLowerCase();
  if (type === '' || /[\s"=]/.test(type)) return null;
  return { type, params: assembleParams(rawParams(rest)) };
}

/** Look up a parameter by (lower-case) name. */
export function paramValue(params: BodyParams, name: string): string | null {
  for (const [n, v] of params) if (n === name) return v;
  return null;
}
