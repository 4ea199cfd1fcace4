/**
 * Enforcement of RFC 4314 on the Mailstore API: every request that names an `acting_user_id`
 * other than its `user_id` (the owner) acts through the owner's ACL. The handlers in
 * mailstore/service.ts ask here before they run the owner's operation, so the imap service —
 * or any other caller — cannot do more through the API than the rights allow.
 *
 * Existence (RFC 4314 §6): a user with none of the rights that reveal a mailbox ("l", "r", "i",
 * "k", "x", "a") gets NOT_FOUND, exactly as for a mailbox that does not exist; a user who can
 * see it but lacks the right the call needs gets PERMISSION_DENIED (IMAP `NO [NOPERM]`).
 */
import { ErrorReason, mailstore } from '@postmesh/contracts';
import { MailstoreError } from '../mailstore/errors.js';
import type { MailboxRecord } from '../mailstore/types.js';
import type { MailboxRef } from '../mailstore/mailstore.js';
import { DELIMITER } from '../mailstore/paths.js';
import type { AclUser, MailboxAcls } from './acl-store.js';
import { ALL_RIGHTS, flagRight, has, maySeeRights, type Right, type Rights } from './rights.js';

/** What access needs of the mailstore: finding a mailbox of its owner. */
export interface MailboxFinder {
  resolveMailbox(userId: string, ref: MailboxRef, field?: string): Promise<MailboxRecord>;
}

export interface Grant {
  readonly mailbox: MailboxRecord;
  readonly owner: AclUser;
  readonly rights: Rights;
}

/** True when the request acts for its owner (no ACL applies). */
export function actsAsOwner(ownerId: string, actingUserId: string | undefined): boolean {
  return actingUserId === undefined || actingUserId === '' || actingUserId === ownerId;
}

function notFound(field: string): MailstoreError {
  return new MailstoreError(ErrorReason.NOT_FOUND, 'mailbox does not exist', field);
}

export function denied(right: Right): MailstoreError {
  return new MailstoreError(
    ErrorReason.PERMISSION_DENIED,
    `the "${right}" right on this mailbox is needed`,
    'acting_user_id',
  );
}

export class MailboxAccess {
  constructor(
    private readonly store: MailboxFinder,
    readonly acls: MailboxAcls,
  ) {}

  /** The owner as access control knows them; NOT_FOUND for an unknown user. */
  async owner(ownerId: string): Promise<AclUser> {
    const owner = await this.acls.userById(ownerId);
    if (owner === undefined) throw new MailstoreError(ErrorReason.NOT_FOUND, 'no such user', 'user_id');
    return owner;
  }

  /** The acting user's rights on a mailbox, or NOT_FOUND when they may not know it exists. */
  async grant(ownerId: string, actingUserId: string, ref: MailboxRef, field = 'mailbox'): Promise<Grant> {
    const owner = await this.owner(ownerId);
    const mailbox = await this.store.resolveMailbox(ownerId, ref, field);
    if (actsAsOwner(ownerId, actingUserId)) return { mailbox, owner, rights: ALL_RIGHTS };
    const rights = await this.acls.rightsOf(owner, mailbox._id.toHexString(), actingUserId);
    if (!maySeeRights(rights)) throw notFound(field);
    return { mailbox, owner, rights };
  }

  /**
   * Checks that the acting user has every one of `needed` on the mailbox; a no-op (no database
   * read) for the owner. Returns the rights (every right for the owner).
   */
  async require(
    ownerId: string,
    actingUserId: string,
    ref: MailboxRef,
    needed: readonly Right[],
    field = 'mailbox',
  ): Promise<Rights> {
    if (actsAsOwner(ownerId, actingUserId)) return ALL_RIGHTS;
    const { rights } = await this.grant(ownerId, actingUserId, ref, field);
    for (const right of needed) if (!has(rights, right)) throw denied(right);
    return rights;
  }

  /**
   * RFC 4314 §4 CREATE: "k" on the nearest existing parent. A grantee cannot create at the top
   * of the owner's hierarchy (that would need rights on the owner's account, not a mailbox).
   */
  async requireCreate(ownerId: string, actingUserId: string, path: string, field = 'path'): Promise<void> {
    if (actsAsOwner(ownerId, actingUserId)) return;
    const parts = path.replace(/\/+$/, '').split(DELIMITER);
    for (let n = parts.length - 1; n > 0; n--) {
      const parent = parts.slice(0, n).join(DELIMITER);
      let grant: Grant;
      try {
        grant = await this.grant(ownerId, actingUserId, { path: parent }, field);
      } catch (error) {
        if (error instanceof MailstoreError && error.reason === ErrorReason.NOT_FOUND) continue;
        throw error;
      }
      if (!has(grant.rights, 'k')) throw denied('k');
      return;
    }
    throw denied('k');
  }
}

/** What dropping flags after a grantee's COPY needs of the mailstore. */
export interface FlagStore {
  fetchMessages(
    userId: string,
    mailboxId: string,
    uids: mailstore.UidSet | undefined,
    changedSince: number | undefined,
    fields: readonly [],
  ): AsyncIterable<mailstore.MessageMetadata>;
  storeFlags(
    userId: string,
    mailboxId: string,
    uids: mailstore.UidSet,
    mode: typeof mailstore.StoreMode.REMOVE,
    flags: readonly string[],
    unchangedSince: undefined,
  ): Promise<unknown>;
}

const SYSTEM_NAMES: Readonly<Record<string, string>> = {
  [mailstore.Flag.SEEN]: '\\Seen',
  [mailstore.Flag.ANSWERED]: '\\Answered',
  [mailstore.Flag.FLAGGED]: '\\Flagged',
  [mailstore.Flag.DELETED]: '\\Deleted',
  [mailstore.Flag.DRAFT]: '\\Draft',
};

/**
 * RFC 4314 §4 COPY/MOVE: "Only when the user has a particular right are the corresponding flags
 * stored for the newly created message" — copies keep their source flags, so the ones the
 * grantee may not set at the destination ("s" \Seen, "t" \Deleted, "w" the rest) are removed
 * from the copies again, before the call answers. Nothing to do with all three rights.
 */
export async function dropUnpermittedFlags(
  store: FlagStore,
  ownerId: string,
  destinationMailboxId: string,
  destinationUids: readonly number[],
  rights: Rights,
): Promise<void> {
  if (destinationUids.length === 0 || (['s', 't', 'w'] as const).every((r) => has(rights, r))) return;
  const uids = { ranges: destinationUids.map((uid) => ({ first: uid, last: uid })) };
  const remove = new Set<string>();
  for await (const message of store.fetchMessages(ownerId, destinationMailboxId, uids, undefined, [])) {
    for (const flag of message.flags) {
      const name = SYSTEM_NAMES[flag];
      if (name !== undefined && !has(rights, flagRight(name))) remove.add(name);
    }
    if (!has(rights, 'w')) for (const keyword of message.keywords) remove.add(keyword);
  }
  if (remove.size === 0) return;
  await store.storeFlags(
    ownerId,
    destinationMailboxId,
    uids,
    mailstore.StoreMode.REMOVE,
    [...remove],
    undefined,
  );
}
