/**
 * The access-control RPCs of `MailstoreService` (RFC 4314 §3: SETACL, DELETEACL, GETACL,
 * LISTRIGHTS, MYRIGHTS) and the listing of mailboxes shared with a user (the "Other Users"
 * namespace, RFC 2342 §5). Storage's one adapter maps their failures (../grpc/unary.ts).
 */
import {
  ErrorReason,
  grpcCodeFor,
  toGrpcError,
  mailstore,
  type MailstoreServiceServer,
} from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import { ObjectId } from 'mongodb';
import { serveUnary } from '../grpc/unary.js';
import { MailstoreError } from '../mailstore/errors.js';
import { DELIMITER } from '../mailstore/paths.js';
import { specialUseValue } from '../mailstore/mailboxes.js';
import type { MailboxRef } from '../mailstore/mailstore.js';
import type { MailboxRecord } from '../mailstore/types.js';
import { mailboxes } from '../mailstore/mailboxes.js';
import type { MailboxAccess } from './access.js';
import { denied } from './access.js';
import { ANYONE, type AclUser } from './acl-store.js';
import {
  applyModification,
  flagRight,
  has,
  listRights,
  maySeeRights,
  parseModification,
  withVirtualRights,
  ALL_RIGHTS,
  type Right,
  type Rights,
} from './rights.js';

type AclRpcs = Pick<
  MailstoreServiceServer,
  | 'setMailboxAcl'
  | 'deleteMailboxAcl'
  | 'getMailboxAcl'
  | 'listMailboxRights'
  | 'getMyRights'
  | 'listSharedMailboxes'
  | 'createSharedMailbox'
>;

/** What CreateSharedMailbox needs of the mailstore. */
export interface TeamMailboxStore {
  createMailbox(
    userId: string,
    path: string,
    specialUse: typeof mailstore.SpecialUse.UNSPECIFIED,
    subscribe: boolean,
  ): Promise<unknown>;
  resolveMailbox(userId: string, ref: MailboxRef, field?: string): Promise<MailboxRecord>;
}

function mailboxMessage(doc: MailboxRecord, hasChildren: boolean): mailstore.Mailbox {
  return {
    id: doc._id.toHexString(),
    path: doc.path,
    delimiter: DELIMITER,
    specialUse: specialUseValue(doc.specialUse),
    subscribed: false,
    hasChildren,
    uidValidity: doc.uidValidity,
    uidNext: doc.uidNext,
    highestModseq: doc.highestModseq,
    nonexistent: false,
  };
}

const SYSTEM_FLAG_NAMES: Readonly<Record<string, string>> = {
  [mailstore.Flag.SEEN]: '\\Seen',
  [mailstore.Flag.DELETED]: '\\Deleted',
};

/**
 * RFC 4314 §4 (APPEND, COPY, STORE): the flags of a request the rights allow, and the rights
 * that were missing for the others.
 */
export function permittedFlags(
  rights: Rights,
  flags: readonly mailstore.Flag[],
  keywords: readonly string[],
): { flags: mailstore.Flag[]; keywords: string[]; missing: Right[] } {
  const missing = new Set<Right>();
  const keep = (right: Right): boolean => {
    if (has(rights, right)) return true;
    missing.add(right);
    return false;
  };
  return {
    flags: flags.filter((flag) => keep(flagRight(SYSTEM_FLAG_NAMES[flag] ?? '\\Answered'))),
    keywords: keywords.filter(() => keep('w')),
    missing: [...missing],
  };
}

function selectorOf(value: mailstore.MailboxSelector | undefined): MailboxRef {
  const s = value?.selector;
  if (s === undefined)
    throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'mailbox is required', 'mailbox');
  return s.$case === 'id' ? { id: s.value } : { path: s.value };
}

function ownerOf(request: { userId: string }): string {
  if (request.userId === '')
    throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'user_id is required', 'user_id');
  return request.userId;
}

function expected(error: unknown): Error | undefined {
  if (!(error instanceof MailstoreError)) return undefined;
  return toGrpcError(grpcCodeFor(error.reason), {
    reason: error.reason,
    message: error.message,
    field: error.field,
  });
}

function isOwnerIdentifier(owner: AclUser, identifier: string): boolean {
  return identifier.toLowerCase() === owner.address.toLowerCase();
}

/** `access` throws when this server keeps no ACLs. */
export function aclHandlers(access: () => MailboxAccess, logger: Logger, store: TeamMailboxStore): AclRpcs {
  const unary = <Req, Res>(rpc: string, run: (request: Req) => Promise<Res>) =>
    serveUnary(logger, rpc, run, expected);

  /** The caller's grant, refused without "a" (RFC 4314 §4: SETACL, DELETEACL, GETACL, LISTRIGHTS). */
  const administer = async (r: {
    userId: string;
    actingUserId?: string | undefined;
    mailbox?: mailstore.MailboxSelector | undefined;
  }) => {
    const grant = await access().grant(ownerOf(r), r.actingUserId ?? '', selectorOf(r.mailbox));
    if (!has(grant.rights, 'a')) throw denied('a');
    return grant;
  };

  const aclOf = async (owner: AclUser, mailboxId: string): Promise<mailstore.AclEntry[]> => {
    const entries = (await access().acls.entries(mailboxId))
      .sort((a, b) => (a.identifierKey < b.identifierKey ? -1 : a.identifierKey > b.identifierKey ? 1 : 0))
      .map((entry) => ({ identifier: entry.identifier, rights: withVirtualRights(entry.rights) }));
    return [{ identifier: owner.address, rights: withVirtualRights(ALL_RIGHTS) }, ...entries];
  };

  return {
    createSharedMailbox: unary('CreateSharedMailbox', async (r: mailstore.CreateSharedMailboxRequest) => {
      const owner = await access().owner(ownerOf(r));
      // Everything is checked first, so a bad member changes nothing.
      const grants = [];
      for (const [i, member] of r.members.entries()) {
        const change = parseModification(member.rights);
        if (!change.ok || change.mode !== 'replace') {
          const message = change.ok ? 'rights must be a plain set, without + or -' : change.message;
          throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, message, `members[${i}].rights`);
        }
        if (isOwnerIdentifier(owner, member.identifier)) {
          throw new MailstoreError(
            ErrorReason.NOT_ALLOWED,
            "the owner's rights cannot change",
            `members[${i}]`,
          );
        }
        const grantee = await access().acls.lookupIdentifier(member.identifier);
        if (grantee.kind === 'unknown') {
          throw new MailstoreError(ErrorReason.NOT_FOUND, 'no such user', `members[${i}].identifier`);
        }
        grants.push({ grantee, change });
      }
      try {
        await store.createMailbox(owner.id, r.path, mailstore.SpecialUse.UNSPECIFIED, false);
      } catch (error) {
        if (!(error instanceof MailstoreError && error.reason === ErrorReason.ALREADY_EXISTS)) throw error;
      }
      const mailbox = await store.resolveMailbox(owner.id, { path: r.path.replace(/\/+$/, '') }, 'path');
      const mailboxId = mailbox._id.toHexString();
      for (const { grantee, change } of grants) await access().acls.set(owner, mailboxId, grantee, change);
      return { mailbox: mailboxMessage(mailbox, false), entries: await aclOf(owner, mailboxId) };
    }),
    setMailboxAcl: unary('SetMailboxAcl', async (r: mailstore.SetMailboxAclRequest) => {
      const change = parseModification(r.rights);
      if (!change.ok) throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, change.message, 'rights');
      const grant = await administer(r);
      if (isOwnerIdentifier(grant.owner, r.identifier)) {
        // The owner keeps every right: an owner locked out of their own mailbox helps no one.
        throw new MailstoreError(ErrorReason.NOT_ALLOWED, "the owner's rights cannot change", 'identifier');
      }
      const grantee = await access().acls.lookupIdentifier(r.identifier);
      if (grantee.kind === 'unknown')
        throw new MailstoreError(ErrorReason.NOT_FOUND, 'no such user', 'identifier');
      const rights = await access().acls.set(grant.owner, grant.mailbox._id.toHexString(), grantee, change);
      return { rights: withVirtualRights(rights) };
    }),
    deleteMailboxAcl: unary('DeleteMailboxAcl', async (r: mailstore.DeleteMailboxAclRequest) => {
      const grant = await administer(r);
      if (isOwnerIdentifier(grant.owner, r.identifier)) {
        throw new MailstoreError(ErrorReason.NOT_ALLOWED, "the owner's rights cannot change", 'identifier');
      }
      await access().acls.remove(grant.mailbox._id.toHexString(), r.identifier);
      return {};
    }),
    getMailboxAcl: unary('GetMailboxAcl', async (r: mailstore.GetMailboxAclRequest) => {
      const grant = await administer(r);
      return { entries: await aclOf(grant.owner, grant.mailbox._id.toHexString()) };
    }),
    listMailboxRights: unary('ListMailboxRights', async (r: mailstore.ListMailboxRightsRequest) => {
      const grant = await administer(r);
      return listRights(isOwnerIdentifier(grant.owner, r.identifier));
    }),
    getMyRights: unary('GetMyRights', async (r: mailstore.GetMyRightsRequest) => {
      const grant = await access().grant(ownerOf(r), r.actingUserId ?? '', selectorOf(r.mailbox));
      if (!maySeeRights(grant.rights))
        throw new MailstoreError(ErrorReason.NOT_FOUND, 'mailbox does not exist', 'mailbox');
      return { rights: withVirtualRights(grant.rights) };
    }),
    listSharedMailboxes: unary('ListSharedMailboxes', async (r: mailstore.ListSharedMailboxesRequest) => {
      const grantee = await access().owner(ownerOf(r));
      const byMailbox = new Map<string, { ownerId: string; rights: Rights }>();
      for (const entry of await access().acls.sharedWith(grantee)) {
        if (entry.ownerId === grantee.id) continue;
        if (entry.identifierKey === ANYONE && entry.ownerDomain !== grantee.domain) continue;
        const known = byMailbox.get(entry.mailboxId);
        const rights = applyModification(known?.rights ?? '', { mode: 'add', rights: entry.rights });
        byMailbox.set(entry.mailboxId, { ownerId: entry.ownerId, rights });
      }
      const visible = [...byMailbox].filter(([, shared]) => has(shared.rights, 'l'));
      if (visible.length === 0) return { mailboxes: [] };
      const docs = await mailboxes(access().acls.db)
        .find({ _id: { $in: visible.map(([id]) => new ObjectId(id)) } })
        .toArray();
      const byId = new Map(docs.map((doc) => [doc._id.toHexString(), doc]));
      const out: mailstore.SharedMailbox[] = [];
      for (const [id, shared] of visible) {
        const doc = byId.get(id);
        const owner = await access().acls.userById(shared.ownerId);
        if (doc === undefined || owner === undefined || doc.userId !== shared.ownerId) continue;
        out.push({
          ownerUserId: owner.id,
          ownerAddress: owner.address,
          rights: withVirtualRights(shared.rights),
          mailbox: {
            id,
            path: doc.path,
            delimiter: DELIMITER,
            specialUse: specialUseValue(doc.specialUse),
            subscribed: false,
            hasChildren: visible.some(([other]) => {
              const child = byId.get(other);
              return (
                child !== undefined &&
                child.userId === doc.userId &&
                child.path.startsWith(`${doc.path}${DELIMITER}`)
              );
            }),
            uidValidity: doc.uidValidity,
            uidNext: doc.uidNext,
            highestModseq: doc.highestModseq,
            nonexistent: false,
          },
        });
      }
      out.sort((a, b) =>
        a.ownerAddress === b.ownerAddress
          ? (a.mailbox?.path ?? '') < (b.mailbox?.path ?? '')
            ? -1
            : 1
          : a.ownerAddress < b.ownerAddress
            ? -1
            : 1,
      );
      return { mailboxes: out };
    }),
  };
}
