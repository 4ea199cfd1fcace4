/**
 * The admin service's share of the Mailstore: a mail user's Sieve scripts (the console's filters
 * and vacation reply), and nothing that reads or changes mail.
 */
import { describe, expect, it } from 'vitest';
import { mayCall } from '../src/grpc/caller-policy.js';

const MAILSTORE = '/postmesh.mailstore.v1.MailstoreService';

describe('caller policy: admin and Sieve scripts', () => {
  it('lets admin manage Sieve scripts but not read or change mail', () => {
    for (const rpc of [
      'PutSieveScript',
      'GetSieveScript',
      'ListSieveScripts',
      'SetActiveSieveScript',
      'DeleteSieveScript',
    ]) {
      expect(mayCall('admin', `${MAILSTORE}/${rpc}`), rpc).toBe(true);
    }
    for (const rpc of ['ListMailboxes', 'FetchMessages', 'GetMessageContent', 'AppendMessage', 'Expunge']) {
      expect(mayCall('admin', `${MAILSTORE}/${rpc}`), rpc).toBe(false);
    }
    // smtp-inbound still has no Mailstore access at all.
    expect(mayCall('smtp-inbound', `${MAILSTORE}/GetSieveScript`)).toBe(false);
  });
});
