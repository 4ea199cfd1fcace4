/**
 * The pure SORT / THREAD pieces: base subject extraction (RFC 5256 §2.1), THREAD=REFERENCES
 * corner cases (missing parents, reference loops, duplicate Message-IDs; RFC 5256 §3) and the
 * THREAD response syntax with the RFC's own example (RFC 5256 §4).
 */
import { serializeThread, type ThreadNode } from '@postmesh/imap-protocol';
import { describe, expect, it } from 'vitest';
import { baseSubject, threadReferences, type SortableMessage } from '../src/sort-thread.js';

describe('base subject (RFC 5256 §2.1)', () => {
  it.each([
    ['Budget', 'Budget', false],
    ['Re: Budget', 'Budget', true],
    ['RE: re: Fwd: FW: Budget', 'Budget', true],
    ['Re [list]: Budget', 'Budget', true],
    ['[list] Re: Budget (fwd)', 'Budget', true],
    ['[list] Budget', 'Budget', false],
    ['[only a blob]', '[only a blob]', false],
    ['[fwd: Re: Budget]', 'Budget', true],
    ['  Re:   spaced\tout  ', 'spaced out', true],
    ['=?UTF-8?Q?Re=3A_R=C3=A9sum=C3=A9?=', 'Résumé', true],
    ['Fwd:', '', true],
    ['Budget (fwd) (fwd)', 'Budget', true],
    ['Reply: not a leader', 'Reply: not a leader', false],
  ])('%j → %j', (raw, base, isReply) => {
    expect(baseSubject(raw)).toEqual({ base, isReply });
  });
  it('takes a missing subject as empty', () => {
    expect(baseSubject(null)).toEqual({ base: '', isReply: false });
  });
});

function msg(msn: number, fields: Partial<SortableMessage>): SortableMessage {
  return {
    msn,
    uid: msn,
    size: 0,
    internalDate: msn * 1000,
    sentDate: null,
    subject: `s${msn}`,
    from: null,
    to: null,
    cc: null,
    messageId: `<m${msn}@x>`,
    inReplyTo: null,
    references: [],
    ...fields,
  };
}

describe('THREAD=REFERENCES (RFC 5256 §3)', () => {
  const id = (m: SortableMessage): number => m.msn;
  it('keeps siblings of a missing parent under a dummy, ordered by date', () => {
    const threads = threadReferences(
      [
        msg(1, { references: ['<gone@x>'], subject: 'a' }),
        msg(2, { references: ['<gone@x>'], subject: 'b' }),
      ],
      id,
    );
    expect(serializeThread(threads).toString()).toBe('* THREAD ((1)(2))\r\n');
  });
  // 1 names 2 as its parent first; 2 then naming 1 would close a loop and is ignored.
  it('survives a reference loop and a duplicate Message-ID', () => {
    const threads = threadReferences(
      [
        msg(1, { messageId: '<a@x>', references: ['<b@x>'] }),
        msg(2, { messageId: '<b@x>', references: ['<a@x>'] }),
        msg(3, { messageId: '<a@x>' }),
      ],
      id,
    );
    expect(serializeThread(threads).toString()).toBe('* THREAD (2 1)(3)\r\n');
  });
  it('threads by In-Reply-To when there is no References', () => {
    const threads = threadReferences(
      [msg(1, { messageId: '<p@x>' }), msg(2, { inReplyTo: '<p@x>' }), msg(3, { inReplyTo: '<p@x>' })],
      id,
    );
    expect(serializeThread(threads).toString()).toBe('* THREAD (1 (2)(3))\r\n');
  });
});

describe('THREAD response syntax (RFC 5256 §4)', () => {
  const leaf = (n: number, ...children: ThreadNode[]): ThreadNode => ({ id: n, children });
  it('writes the RFC example', () => {
    const threads = [leaf(2), leaf(3, leaf(6, leaf(4, leaf(23)), leaf(44, leaf(7, leaf(96)))))];
    expect(serializeThread(threads).toString()).toBe('* THREAD (2)(3 6 (4 23)(44 7 96))\r\n');
  });
  it('leaves out a dummy parent and writes no threads as a bare THREAD', () => {
    expect(serializeThread([{ id: 0, children: [leaf(3), leaf(5)] }]).toString()).toBe(
      '* THREAD ((3)(5))\r\n',
    );
    expect(serializeThread([]).toString()).toBe('* THREAD\r\n');
  });
});
