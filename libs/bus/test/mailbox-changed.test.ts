/**
 * The `mailbox.changed.<userId>` payload: what storage encodes decodes to the same change, and
 * anything else (empty, malformed, out of range) decodes to "anything changed", which makes a
 * session catch up as it did before payloads existed.
 */
import { describe, expect, it } from 'vitest';
import { decodeMailboxChange, encodeMailboxChange } from '../src/mailbox-changed.js';

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
