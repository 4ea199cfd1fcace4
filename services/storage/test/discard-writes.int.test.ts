/**
 * The clean-up of writes that were never confirmed (ADR 0007, Rebuild), as a replica that starts
 * runs it for every partition it gains: calls that arrive while one runs are done together in one
 * read of the messages (on FerretDB each read is a decoding scan of the whole collection), and
 * every document any of them names is removed, with its mailbox's counts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandStartedEvent } from 'mongodb';
import {
  append,
  byPath,
  call,
  createUser,
  message,
  startMailstoreHarness,
  type MailstoreHarness,
} from './mailstore-helpers.js';
import { messageKey } from '../src/mailstore/mailstore.js';

let m: MailstoreHarness;

beforeAll(async () => {
  m = await startMailstoreHarness();
});

afterAll(async () => {
  await m?.stop();
});

describe('discarding unconfirmed writes', () => {
  it('does the clean-ups that arrive while one runs in one read, removing what each names', async () => {
    const userId = await createUser(m.h);
    for (let i = 0; i < 6; i++) {
      await append(m.client, userId, byPath('INBOX'), message([`Subject: m${i}`, '', `body ${i}`]));
    }
    const status = await call(m.client.getMailboxStatus.bind(m.client), {
      userId,
      mailbox: byPath('INBOX'),
      claimRecent: false,
    });
    const mailboxId = status.status?.mailboxId ?? '';
    expect(status.status?.messages).toBe(6);
    const finds: string[] = [];
    // The reads that look for what to remove (not the claim and deletion of what they found).
    const listener = (e: CommandStartedEvent) => {
      const filter = JSON.stringify(e.command.filter);
      if (e.commandName === 'find' && e.command.find === 'messages' && !filter.includes('expungeClaim')) {
        finds.push(filter);
      }
    };
    m.h.mongo.on('commandStarted', listener);
    let removed: number[] = [];
    try {
      // One per partition gained, as at start: the first runs at once, the rest wait for it and
      // then go together.
      const first = m.store.discardWrites({ _id: messageKey(mailboxId, 1) });
      await new Promise((resolve) => setImmediate(resolve));
      const rest = [2, 3, 5].map((uid) => m.store.discardWrites({ _id: messageKey(mailboxId, uid) }));
      removed = await Promise.all([first, ...rest]);
    } finally {
      m.h.mongo.off('commandStarted', listener);
    }
    expect(finds).toHaveLength(2);
    expect(finds[1]).toContain('$or');
    expect(removed[0]).toBe(1);
    expect(removed.slice(1)).toEqual([3, 3, 3]); // each of the batched calls gets their total
    const left = await m.h.db
      .collection<{ uid: number; mailboxId: string }>('messages')
      .find({ mailboxId })
      .toArray();
    expect(left.map((d) => d.uid).sort((a, b) => a - b)).toEqual([4, 6]);
    const after = await call(m.client.getMailboxStatus.bind(m.client), {
      userId,
      mailbox: byPath('INBOX'),
      claimRecent: false,
    });
    expect(after.status?.messages).toBe(2);
  });
});
