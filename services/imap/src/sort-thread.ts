/**
 * SORT and THREAD as pure algorithms over message metadata the Mailstore already returns
 * (ENVELOPE, the raw header for References, size, INTERNALDATE):
 * - base subject extraction, RFC 5256 §2.1 (with the reply/forward indicator of §2.1 step 7);
 * - SORT, RFC 5256 §3 (ARRIVAL, CC, DATE, FROM, REVERSE, SIZE, SUBJECT, TO; the message sequence
 *   number breaks ties) and DISPLAYFROM / DISPLAYTO, RFC 5957 §3;
 * - THREAD=ORDEREDSUBJECT and THREAD=REFERENCES, RFC 5256 §3 (the latter the JWZ algorithm as
 *   the RFC gives it: link by References / In-Reply-To, prune dummies, group the roots by base
 *   subject, sort siblings by sent date).
 */
import type { SortCriterion, ThreadNode } from '@postmesh/imap-protocol';
import { decodeEncodedWords, type EnvelopeAddress } from '@postmesh/mime';

export interface SortableMessage {
  /** Message sequence number (the final tie-breaker, RFC 5256 §3). */
  readonly msn: number;
  readonly uid: number;
  readonly size: number;
  /** INTERNALDATE, ms since the epoch. */
  readonly internalDate: number;
  /** The Date: header in UTC ms, or null when absent or unparsable (then INTERNALDATE counts). */
  readonly sentDate: number | null;
  /** The Subject: header as written (encoded words not yet decoded), or null. */
  readonly subject: string | null;
  readonly from: readonly EnvelopeAddress[] | null;
  readonly to: readonly EnvelopeAddress[] | null;
  readonly cc: readonly EnvelopeAddress[] | null;
  readonly messageId: string | null;
  readonly inReplyTo: string | null;
  /** Message-IDs listed in References, in order. */
  readonly references: readonly string[];
}

// ---- Base subject (RFC 5256 §2.1) -----------------------------------------------------------

const BLOB = /^\[[^[\]]*\][ ]*/;
const REFWD = /^(?:re|fwd?)[ ]*(?:\[[^[\]]*\][ ]*)?:/i;

/**
 * The base subject and whether the subject marked a reply or forward (RFC 5256 §2.1: step 7
 * "is-reply-or-forward" is set when a subj-refwd, a "(fwd)" trailer or a "[fwd: ...]" wrapper
 * was removed).
 */
export function baseSubject(raw: string | null): { readonly base: string; readonly isReply: boolean } {
  // (1) Decode encoded words, then tabs and folding become one space each, runs of spaces one.
  let s = decodeEncodedWords(raw ?? '')
    .replace(/\r?\n/g, '')
    .replace(/\t/g, ' ')
    .replace(/ {2,}/g, ' ');
  let isReply = false;
  for (;;) {
    // (2) Trailing "(fwd)" and whitespace (subj-trailer), repeatedly.
    for (;;) {
      const trimmed = s.replace(/ +$/, '');
      if (/\(fwd\)$/i.test(trimmed)) {
        s = trimmed.slice(0, -5);
        isReply = true;
      } else {
        s = trimmed;
        break;
      }
    }
    // (3)-(5) Leaders: blobs followed by "Re:", "Fw:", "Fwd:", leading space; then a lone blob
    // when something remains after it.
    for (;;) {
      let changed = false;
      for (;;) {
        if (s.startsWith(' ')) {
          s = s.replace(/^ +/, '');
          changed = true;
          continue;
        }
        const leader = leaderLength(s);
        if (leader > 0) {
          s = s.slice(leader);
          isReply = true;
          changed = true;
          continue;
        }
        break;
      }
      const blob = BLOB.exec(s);
      if (blob !== null && s.length > blob[0].length) {
        s = s.slice(blob[0].length);
        changed = true;
      }
      if (!changed) break;
    }
    // (6) "[fwd: ... ]" wrapper: unwrap and start over at (2).
    if (/^\[fwd:/i.test(s) && s.endsWith(']')) {
      s = s.slice(5, -1);
      isReply = true;
      continue;
    }
    break;
  }
  return { base: s, isReply };
}

/** Length of `*subj-blob subj-refwd` at the start, or 0. */
function leaderLength(s: string): number {
  let offset = 0;
  for (;;) {
    const refwd = REFWD.exec(s.slice(offset));
    if (refwd !== null) return offset + refwd[0].length;
    const blob = BLOB.exec(s.slice(offset));
    if (blob === null) return 0;
    offset += blob[0].length;
  }
}

// ---- SORT -----------------------------------------------------------------------------------

function firstAddress(list: readonly EnvelopeAddress[] | null): EnvelopeAddress | null {
  // Group markers have no host; the first real mailbox counts.
  return list?.find((a) => a.host !== null) ?? null;
}

/** RFC 5256 §3: the addr-mailbox of the first address, compared case-insensitively. */
function mailboxKey(list: readonly EnvelopeAddress[] | null): string {
  return (firstAddress(list)?.mailbox ?? '').toUpperCase();
}

/** RFC 5957 §3: the display name of the first address, or its addr-spec when it has none. */
function displayKey(list: readonly EnvelopeAddress[] | null): string {
  const first = firstAddress(list);
  if (first === null) return '';
  const name = first.name === null ? '' : decodeEncodedWords(first.name).trim();
  if (name !== '') return name.toUpperCase();
  return `${first.mailbox ?? ''}@${first.host ?? ''}`.toUpperCase();
}

function sentDate(m: SortableMessage): number {
  return m.sentDate ?? m.internalDate;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareBy(key: SortCriterion['key'], a: SortableMessage, b: SortableMessage): number {
  switch (key) {
    case 'ARRIVAL':
      return a.internalDate - b.internalDate;
    case 'DATE':
      return sentDate(a) - sentDate(b);
    case 'SIZE':
      return a.size - b.size;
    case 'SUBJECT':
      return compareStrings(
        baseSubject(a.subject).base.toUpperCase(),
        baseSubject(b.subject).base.toUpperCase(),
      );
    case 'FROM':
      return compareStrings(mailboxKey(a.from), mailboxKey(b.from));
    case 'TO':
      return compareStrings(mailboxKey(a.to), mailboxKey(b.to));
    case 'CC':
      return compareStrings(mailboxKey(a.cc), mailboxKey(b.cc));
    case 'DISPLAYFROM':
      return compareStrings(displayKey(a.from), displayKey(b.from));
    case 'DISPLAYTO':
      return compareStrings(displayKey(a.to), displayKey(b.to));
  }
}

/** RFC 5256 §3 SORT: by each criterion in turn, then by message sequence number. */
export function sortMessages(
  messages: readonly SortableMessage[],
  criteria: readonly SortCriterion[],
): SortableMessage[] {
  return [...messages].sort((a, b) => {
    for (const { key, reverse } of criteria) {
      const order = compareBy(key, a, b);
      if (order !== 0) return reverse ? -order : order;
    }
    return a.msn - b.msn;
  });
}

// ---- THREAD ---------------------------------------------------------------------------------

/** Messages by sent date, then by sequence number (RFC 5256 §3). */
function byDate(a: SortableMessage, b: SortableMessage): number {
  return sentDate(a) - sentDate(b) || a.msn - b.msn;
}

type Numbering = (m: SortableMessage) => number;

/**
 * THREAD=ORDEREDSUBJECT (RFC 5256 §3): messages grouped by base subject; in each group the
 * earliest (by sent date) is the parent and the others its children in date order; the groups
 * ordered by the date of their first message.
 */
export function threadOrderedSubject(messages: readonly SortableMessage[], id: Numbering): ThreadNode[] {
  const sorted = [...messages].sort(
    (a, b) =>
      compareStrings(baseSubject(a.subject).base.toUpperCase(), baseSubject(b.subject).base.toUpperCase()) ||
      byDate(a, b),
  );
  const groups: SortableMessage[][] = [];
  let key: string | null = null;
  for (const m of sorted) {
    const k = baseSubject(m.subject).base.toUpperCase();
    if (k !== key || groups.length === 0) {
      groups.push([m]);
      key = k;
    } else {
      groups[groups.length - 1]!.push(m);
    }
  }
  return groups
    .sort((a, b) => byDate(a[0]!, b[0]!))
    .map(([first, ...rest]) => ({
      id: id(first!),
      children: rest.map((m) => ({ id: id(m), children: [] })),
    }));
}

interface Container {
  message: SortableMessage | null;
  parent: Container | null;
  children: Container[];
}

function isAncestor(maybeAncestor: Container, of: Container): boolean {
  for (let c: Container | null = of; c !== null; c = c.parent) if (c === maybeAncestor) return true;
  return false;
}

function unlink(child: Container): void {
  const parent = child.parent;
  if (parent === null) return;
  parent.children = parent.children.filter((c) => c !== child);
  child.parent = null;
}

function link(parent: Container, child: Container): void {
  unlink(child);
  child.parent = parent;
  parent.children.push(child);
}

/** A container's date for sibling order: its message's, or its first child's (a dummy). */
function containerDate(c: Container): SortableMessage | null {
  if (c.message !== null) return c.message;
  return c.children.length > 0 ? containerDate(c.children[0]!) : null;
}

function compareContainers(a: Container, b: Container): number {
  const x = containerDate(a);
  const y = containerDate(b);
  if (x === null || y === null) return (x === null ? 1 : 0) - (y === null ? 1 : 0);
  return byDate(x, y);
}

function normalizeId(id: string | null): string | null {
  if (id === null) return null;
  const match = /<[^<>]+>/.exec(id);
  return match === null ? null : match[0];
}

/** THREAD=REFERENCES (RFC 5256 §3). */
export function threadReferences(messages: readonly SortableMessage[], id: Numbering): ThreadNode[] {
  // (1) Link messages by their references.
  const table = new Map<string, Container>();
  const containerFor = (messageId: string): Container => {
    let c = table.get(messageId);
    if (c === undefined) {
      c = { message: null, parent: null, children: [] };
      table.set(messageId, c);
    }
    return c;
  };
  const all: Container[] = [];
  for (const message of [...messages].sort((a, b) => a.msn - b.msn)) {
    // References, or else the first message-id of In-Reply-To (§3 step 1).
    let refs = message.references.map(normalizeId).filter((r): r is string => r !== null);
    if (refs.length === 0) {
      const replyTo = normalizeId(message.inReplyTo);
      if (replyTo !== null) refs = [replyTo];
    }
    // (1A) Every referenced message gets a container; consecutive references become parent and
    // child, unless one already has a parent or the link would make a loop.
    for (const ref of refs) containerFor(ref);
    for (let i = 0; i + 1 < refs.length; i++) {
      const parent = containerFor(refs[i]!);
      const child = containerFor(refs[i + 1]!);
      if (child.parent === null && parent !== child && !isAncestor(child, parent)) link(parent, child);
    }
    // (1B) The message's own container; a missing or duplicate Message-ID gets a unique one.
    const ownId = normalizeId(message.messageId);
    let own: Container;
    const existing = ownId === null ? undefined : table.get(ownId);
    if (ownId !== null && existing !== undefined && existing.message === null) {
      own = existing;
    } else {
      own = { message: null, parent: null, children: [] };
      if (ownId !== null && existing === undefined) table.set(ownId, own);
    }
    own.message = message;
    all.push(own);
    // (1C) Its parent is the last reference (unless that makes a loop).
    const last = refs.length > 0 ? table.get(refs[refs.length - 1]!) : undefined;
    if (last !== undefined && last !== own && !isAncestor(own, last)) link(last, own);
    else if (last === undefined || last === own) unlink(own);
  }
  // (2) The root set: containers without a parent (the table holds every container).
  const containers = new Set<Container>([...table.values(), ...all]);
  let roots = [...containers].filter((c) => c.parent === null);
  // (4) Prune dummies.
  roots = prune(roots, true);
  for (const r of roots) r.parent = null;
  // (5) Group the roots by base subject.
  const subjectOf = (c: Container): SortableMessage | null => {
    if (c.message !== null) return c.message;
    const kids = [...c.children].sort(compareContainers);
    return kids[0]?.message ?? null;
  };
  const bySubject = new Map<string, Container>();
  for (const root of roots) {
    const m = subjectOf(root);
    if (m === null) continue;
    const { base, isReply } = baseSubject(m.subject);
    if (base === '') continue;
    const key = base.toUpperCase();
    const old = bySubject.get(key);
    if (
      old === undefined ||
      (root.message === null && old.message !== null) ||
      (old.message !== null && baseSubject(old.message.subject).isReply && !isReply && root.message !== null)
    ) {
      bySubject.set(key, root);
    }
  }
  const merged: Container[] = [];
  for (const root of roots) {
    const m = subjectOf(root);
    const key = m === null ? '' : baseSubject(m.subject).base.toUpperCase();
    const target = key === '' ? undefined : bySubject.get(key);
    if (target === undefined || target === root) {
      merged.push(root);
      continue;
    }
    if (target.message === null && root.message === null) {
      for (const child of [...root.children]) link(target, child);
    } else if (target.message === null) {
      link(target, root);
    } else if (
      root.message !== null &&
      baseSubject(root.message.subject).isReply &&
      !baseSubject(target.message.subject).isReply
    ) {
      link(target, root);
    } else {
      // Neither is the obvious parent: a new dummy holds both, in the target's place.
      const dummy: Container = { message: null, parent: null, children: [] };
      const index = merged.indexOf(target);
      link(dummy, target);
      link(dummy, root);
      bySubject.set(key, dummy);
      if (index >= 0) merged[index] = dummy;
      else merged.push(dummy);
      target.parent = dummy;
    }
  }
  const finalRoots = merged.filter((c) => c.parent === null);
  // (6) Siblings in date order, recursively.
  const sortTree = (list: Container[]): Container[] => {
    for (const c of list) c.children = sortTree(c.children);
    return list.sort(compareContainers);
  };
  return sortTree(finalRoots).map((c) => toNode(c, id));
}

/**
 * RFC 5256 §3 step 4: a dummy without children goes; a dummy's children take its place, except
 * that at the root level a dummy with several children stays (they would all become roots).
 */
function prune(list: Container[], atRoot: boolean): Container[] {
  const out: Container[] = [];
  for (const c of list) {
    c.children = prune(c.children, false);
    for (const child of c.children) child.parent = c;
    if (c.message !== null) {
      out.push(c);
    } else if (c.children.length === 0) {
      continue;
    } else if (!atRoot || c.children.length === 1) {
      out.push(...c.children);
    } else {
      out.push(c);
    }
  }
  return out;
}

function toNode(c: Container, id: Numbering): ThreadNode {
  return { id: c.message === null ? 0 : id(c.message), children: c.children.map((k) => toNode(k, id)) };
}
