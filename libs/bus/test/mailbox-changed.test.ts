/**
 * The `mailbox.changed.<userId>` payload: what storage encodes decodes to the same change, and
 * anything else (empty, malformed, out of range) decodes to "anything changed", which makes a
 * session catch up as it did before payloads existed. And the in-process hub of storage-imap:
 * local listeners at once, NATS coalesced per user.
 */
import { describe, expect, it } from 'vitest';
import {
  LocalMailboxChanges,
  decodeMailboxChange,
  encodeMailboxChange,
  type MailboxChange,
} from '../src/mailbox-changed.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('mailbox change payload', () => {
  it('round-trips a change', () => {
    const change = { mailboxId: '65a0c0ffee0000000000beef', highestModseq: 42 };
    expect(decodeMailboxChange(bytes(encodeMailboxChange(change)))).toEqual(change);
  });

  it('treats an empty or unusable payload as "anything changed"', () => {
    for (const payload of [
      '',
      'not json',
      'null',
      '[]',
      '{"mailboxId":"m"}',
      '{"mailboxId":"","highestModseq":3}',
      '{"mailboxId":"m","highestModseq":0}',
      '{"mailboxId":"m","highestModseq":1.5}',
      '{"mailboxId":"m","highestModseq":"7"}',
      `{"mailboxId":"${'x'.repeat(300)}","highestModseq":7}`,
    ]) {
      expect(decodeMailboxChange(bytes(payload)), payload).toBeUndefined();
    }
  });
});

describe('LocalMailboxChanges', () => {
  const change = (mailboxId: string, highestModseq: number): MailboxChange => ({ mailboxId, highestModseq });

  it("tells this process's listeners of each change at once, and NATS once per user per window", async () => {
    const published: [string, MailboxChange | undefined, string][] = [];
    const hub = new LocalMailboxChanges((...args) => published.push(args), 30);
    const heard: (MailboxChange | undefined)[] = [];
    const stop = hub.listen('u1', (c) => heard.push(c));
    hub.changed('u1', change('a', 5));
    hub.changed('u1', change('a', 6));
    hub.changed('u2', change('b', 9));
    hub.changed('u2', change('c', 2)); // two mailboxes of u2 in the window: "anything"
    expect(heard).toEqual([]); // after the current task, not inside the writer's
    await Promise.resolve();
    expect(heard).toEqual([change('a', 5), change('a', 6)]);
    expect(published).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(published).toEqual([
      ['u1', change('a', 6), hub.origin],
      ['u2', undefined, hub.origin],
    ]);
    hub.changed('u1'); // "anything" stays anything
    hub.changed('u1', change('a', 7));
    stop();
    hub.changed('u3', change('d', 1));
    hub.flush(); // at stop: at once
    expect(published.slice(2)).toEqual([
      ['u1', undefined, hub.origin],
      ['u3', change('d', 1), hub.origin],
    ]);
    await Promise.resolve();
    expect(heard).toHaveLength(2); // unsubscribed before the microtask: not told
    expect(new LocalMailboxChanges(() => undefined).origin).not.toBe(hub.origin);
  });
});
