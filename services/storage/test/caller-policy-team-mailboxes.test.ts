/**
 * The admin service's share of the Mailstore for team mailboxes (docs/shared-mailboxes.md): it
 * creates one and reads and changes its ACL, and still reads no mail.
 */
import { describe, expect, it } from 'vitest';
import { mayCall } from '../src/grpc/caller-policy.js';

const MAILSTORE = '/postmesh.mailstore.v1.MailstoreService';

describe('caller policy: admin and team mailboxes', () => {
  it('lets admin create team mailboxes and manage their ACL', () => {
    for (const rpc of ['CreateSharedMailbox', 'GetMailboxAcl', 'SetMailboxAcl', 'DeleteMailboxAcl']) {
      expect(mayCall('admin', `${MAILSTORE}/${rpc}`), rpc).toBe(true);
    }
  });

  it('gives admin none of the other ACL or mailbox calls', () => {
    for (const rpc of [
      'ListSharedMailboxes',
      'ListMailboxRights',
      'GetMyRights',
      'CreateMailbox',
      'DeleteMailbox',
      'RenameMailbox',
      'GetMailboxStatus',
      'Search',
      'StoreFlags',
    ]) {
      expect(mayCall('admin', `${MAILSTORE}/${rpc}`), rpc).toBe(false);
    }
    // smtp-inbound still has no Mailstore access at all.
    expect(mayCall('smtp-inbound', `${MAILSTORE}/SetMailboxAcl`)).toBe(false);
  });
});
