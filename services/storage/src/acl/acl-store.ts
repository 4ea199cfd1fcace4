/**
 * Mailbox access control lists (RFC 4314) in the collection `mailbox_acls`: one document per
 * (mailbox, identifier). The identifier is a user's primary address or `anyone`, which Postmesh
 * scopes to the users of the owner's domain (docs/shared-mailboxes.md): a hosted server must not
 * let one customer's user open a mailbox to every other customer.
 *
 * Reads go to the database rather than a cache: only calls made on another user's mailbox read
 * it (the owner's own calls never do), and a replica that gains a partition then needs no
 * rebuild of ACLs. Rights are the union of the user's entry and the `anyone` entry (RFC 4314
 * §2: no negative rights here, so the order of entries does not matter).
 */
import { ObjectId, type Collection, type Db } from 'mongodb';
import { Collections, type UserDoc } from '../db/schema.js';
import { parseAddress } from '../directory/names.js';
import { ALL_RIGHTS, applyModification, type Rights } from './rights.js';

export const ANYONE = 'anyone';

export interface AclDoc {
  /** `<mailboxId>:<identifier key>`. */
  _id: string;
  mailboxId: string;
  ownerId: string;
  /** The owner's domain: whom `anyone` covers. */
  ownerDomain: string;
  /** `anyone`, or the grantee's address as the directory spells it. */
  identifier: string;
  /** `anyone`, or the grantee's address lower-cased. */
  identifierKey: string;
  /** The grantee's user id; null for `anyone`. */
  granteeId: string | null;
  rights: Rights;
  updatedAt: Date;
}

export const ACL_COLLECTION = 'mailbox_acls';

/** A user as access control needs them. */
export interface AclUser {
  readonly id: string;
  readonly address: string;
  readonly domain: string;
}

export type IdentifierLookup =
  | { readonly kind: 'anyone' }
  | { readonly kind: 'user'; readonly user: AclUser }
  | { readonly kind: 'unknown' };

/** Users are read once per process: an id's domain never changes, its address rarely. */
const USER_CACHE_MAX = 10_000;

export class MailboxAcls {
  private readonly acls: Collection<AclDoc>;
  private readonly users: Collection<UserDoc>;
  private readonly userCache = new Map<string, AclUser>();

  constructor(readonly db: Db) {
    this.acls = db.collection<AclDoc>(ACL_COLLECTION);
    this.users = db.collection<UserDoc>(Collections.users);
  }

  async userById(id: string): Promise<AclUser | undefined> {
    const cached = this.userCache.get(id);
    if (cached !== undefined) return cached;
    if (!/^[0-9a-f]{24}$/i.test(id)) return undefined;
    const doc = await this.users.findOne({ _id: new ObjectId(id) });
    if (doc === null) return undefined;
    const user = { id, address: doc.address, domain: doc.domain };
    if (this.userCache.size >= USER_CACHE_MAX) this.userCache.clear();
    this.userCache.set(id, user);
    return user;
  }

  /** `anyone` (any case) or a user's primary address. */
  async lookupIdentifier(identifier: string): Promise<IdentifierLookup> {
    if (identifier.toLowerCase() === ANYONE) return { kind: 'anyone' };
    const address = parseAddress(identifier);
    if (address === undefined) return { kind: 'unknown' };
    const doc = await this.users.findOne({ addressKey: address.key });
    if (doc === null) return { kind: 'unknown' };
    return { kind: 'user', user: { id: doc._id.toHexString(), address: doc.address, domain: doc.domain } };
  }

  entries(mailboxId: string): Promise<AclDoc[]> {
    return this.acls.find({ mailboxId }).toArray();
  }

  /** The acting user's rights on a mailbox of `owner`: every right for the owner. */
  async rightsOf(owner: AclUser, mailboxId: string, actingUserId: string): Promise<Rights> {
    if (actingUserId === owner.id) return ALL_RIGHTS;
    const acting = await this.userById(actingUserId);
    if (acting === undefined) return '';
    let rights = '';
    for (const entry of await this.entries(mailboxId)) {
      const applies =
        entry.granteeId === actingUserId ||
        (entry.identifierKey === ANYONE && entry.ownerDomain === acting.domain);
      if (applies) rights = applyModification(rights, { mode: 'add', rights: entry.rights });
    }
    return rights;
  }

  /**
   * Sets an entry's rights (empty removes it); returns the rights now. The caller has checked
   * "a" and that the identifier is not the owner.
   */
  async set(
    owner: AclUser,
    mailboxId: string,
    grantee: Exclude<IdentifierLookup, { kind: 'unknown' }>,
    change: Parameters<typeof applyModification>[1],
  ): Promise<Rights> {
    const identifier = grantee.kind === 'anyone' ? ANYONE : grantee.user.address;
    const identifierKey = identifier.toLowerCase();
    const id = `${mailboxId}:${identifierKey}`;
    const current = (await this.acls.findOne({ _id: id }))?.rights ?? '';
    const rights = applyModification(current, change);
    if (rights === '') {
      await this.acls.deleteOne({ _id: id });
      return rights;
    }
    await this.acls.replaceOne(
      { _id: id },
      {
        mailboxId,
        ownerId: owner.id,
        ownerDomain: owner.domain,
        identifier,
        identifierKey,
        granteeId: grantee.kind === 'anyone' ? null : grantee.user.id,
        rights,
        updatedAt: new Date(),
      },
      { upsert: true },
    );
    return rights;
  }

  async remove(mailboxId: string, identifierKey: string): Promise<void> {
    await this.acls.deleteOne({ _id: `${mailboxId}:${identifierKey.toLowerCase()}` });
  }

  /** RFC 4314 §4: DELETE removes the mailbox's ACL. */
  async removeMailbox(mailboxId: string): Promise<void> {
    await this.acls.deleteMany({ mailboxId });
  }

  /** Entries that give `grantee` rights on other users' mailboxes, directly or as `anyone`. */
  sharedWith(grantee: AclUser): Promise<AclDoc[]> {
    return this.acls
      .find({
        $or: [{ granteeId: grantee.id }, { identifierKey: ANYONE, ownerDomain: grantee.domain }],
      })
      .toArray();
  }
}
