/**
 * The "Other Users" namespace (RFC 2342 §5, RFC 9051 §6.3.10) over the Mailstore API: a session's
 * view of storage in which `Other Users/<owner address>/<path>` names the mailbox `<path>` of
 * another user who shared it (RFC 4314 ACL). Calls on such a mailbox go to its owner — so to the
 * storage replica that owns the owner's partition (ADR 0007 routing keys on `user_id`) — with
 * the session's user as `acting_user_id`, and storage checks the rights; nothing here grants
 * anything. Calls on the user's own mailboxes pass through unchanged.
 *
 * Mailbox ids are unique across users, so an id-addressed call (FETCH, STORE, EXPUNGE …) finds
 * its owner in the ids this view has handed out. COPY and MOVE between two owners cannot be one
 * storage call (each owner's partition may live on another replica): they are done here as
 * reads from the source and appends to the destination, each checked by storage.
 */
import { Metadata, status } from '@grpc/grpc-js';
import { compileListPattern } from '@postmesh/imap-protocol';
import { ErrorReason, mailstore } from '@postmesh/contracts';
import { StorageError, type AppendInput, type Mailstore } from './storage.js';

/** The namespace prefix (without its delimiter) as NAMESPACE announces it. */
export const OTHER_USERS = 'Other Users';
const DELIMITER = '/';
const PREFIX = `${OTHER_USERS}${DELIMITER}`;

interface Owner {
  readonly id: string;
  readonly address: string;
}

/** Where an IMAP mailbox name lives. */
export type Location =
  | { readonly kind: 'personal'; readonly path: string }
  | { readonly kind: 'shared'; readonly owner: Owner; readonly path: string }
  /** Under the prefix but naming no owner who shares anything with the user. */
  | { readonly kind: 'unknown' };

function refusal(rpc: string, reason: ErrorReason, message: string): StorageError {
  const code = reason === ErrorReason.NOT_FOUND ? status.NOT_FOUND : status.FAILED_PRECONDITION;
  return new StorageError(rpc, code, { reason, message, field: 'mailbox' }, new Metadata());
}

/** `Other Users/<address>/<path>` for a shared mailbox. */
export function sharedName(ownerAddress: string, path: string): string {
  return `${PREFIX}${ownerAddress}${DELIMITER}${path}`;
}

type Selector = mailstore.MailboxSelector | undefined;

export class SharedNamespaceMailstore implements Mailstore {
  /** Mailbox id → owner, for every shared mailbox this view has seen. */
  readonly #owners = new Map<string, Owner>();
  /** Owner address (lower case) → owner. */
  readonly #byAddress = new Map<string, Owner>();

  constructor(
    private readonly base: Mailstore,
    private readonly userId: string,
  ) {}

  /** The mailboxes shared with the user, read again from storage. */
  async shared(): Promise<mailstore.SharedMailbox[]> {
    const { mailboxes } = await this.base.listSharedMailboxes({ userId: this.userId });
    for (const shared of mailboxes) {
      const owner = { id: shared.ownerUserId, address: shared.ownerAddress };
      this.#byAddress.set(owner.address.toLowerCase(), owner);
      if (shared.mailbox !== undefined) this.#owners.set(shared.mailbox.id, owner);
    }
    return mailboxes;
  }

  /** The owner of a mailbox id when it is another user's, else undefined. */
  ownerOf(mailboxId: string): Owner | undefined {
    return this.#owners.get(mailboxId);
  }

  async locate(name: string): Promise<Location> {
    if (!name.startsWith(PREFIX)) return { kind: 'personal', path: name };
    const rest = name.slice(PREFIX.length);
    const slash = rest.indexOf(DELIMITER);
    if (slash <= 0 || slash === rest.length - 1) return { kind: 'unknown' };
    const key = rest.slice(0, slash).toLowerCase();
    let owner = this.#byAddress.get(key);
    if (owner === undefined) {
      await this.shared();
      owner = this.#byAddress.get(key);
    }
    if (owner === undefined || owner.id === this.userId) return { kind: 'unknown' };
    return { kind: 'shared', owner, path: rest.slice(slash + 1) };
  }

  /** The owner and the owner's selector for a selector of this view. */
  async #target(
    rpc: string,
    selector: Selector,
  ): Promise<{ userId: string; actingUserId?: string; selector: Selector; owner?: Owner }> {
    const s = selector?.selector;
    if (s?.$case === 'id') {
      const owner = this.#owners.get(s.value);
      return owner === undefined
        ? { userId: this.userId, selector }
        : { userId: owner.id, actingUserId: this.userId, selector, owner };
    }
    if (s?.$case !== 'path') return { userId: this.userId, selector };
    const where = await this.locate(s.value);
    switch (where.kind) {
      case 'personal':
        return { userId: this.userId, selector };
      case 'unknown':
        throw refusal(rpc, ErrorReason.NOT_FOUND, 'mailbox does not exist');
      case 'shared':
        return {
          userId: where.owner.id,
          actingUserId: this.userId,
          selector: { selector: { $case: 'path', value: where.path } },
          owner: where.owner,
        };
    }
  }

  /** Owner and acting user of an id-addressed request. */
  #byId<R extends { userId: string; mailboxId: string }>(request: R): R & { actingUserId?: string } {
    const owner = this.#owners.get(request.mailboxId);
    return owner === undefined ? request : { ...request, userId: owner.id, actingUserId: this.userId };
  }

  #remember(mailbox: { id: string } | undefined, owner: Owner | undefined): void {
    if (mailbox !== undefined && owner !== undefined && mailbox.id !== '')
      this.#owners.set(mailbox.id, owner);
  }

  #rename<T extends { path: string }>(value: T, owner: Owner | undefined): T {
    return owner === undefined ? value : { ...value, path: sharedName(owner.address, value.path) };
  }

  async listMailboxes(request: mailstore.ListMailboxesRequest): Promise<mailstore.ListMailboxesResponse> {
    const personal = await this.base.listMailboxes(request);
    const pattern = request.reference + request.pattern;
    // Subscriptions and special-use filters are the user's own; the shared tree has neither.
    if (request.subscribedOnly || request.specialUse.length > 0 || request.pattern === '') return personal;
    const matches = compileListPattern(pattern);
    // Cheap test first: a pattern that cannot reach the prefix costs no storage call.
    if (!couldReachPrefix(pattern)) return personal;
    const shared = await this.shared();
    if (shared.length === 0) return personal;
    const extra: mailstore.Mailbox[] = [];
    const levels = new Map<string, boolean>();
    const level = (path: string): void => {
      if (!levels.has(path)) levels.set(path, true);
    };
    for (const entry of shared) {
      if (entry.mailbox === undefined) continue;
      level(OTHER_USERS);
      level(`${PREFIX}${entry.ownerAddress}`);
      // RFC 4314 §4 LIST: a parent the user cannot look up is listed as if it did not exist,
      // which for a hierarchy level means \Noselect.
      const parts = entry.mailbox.path.split(DELIMITER);
      for (let n = 1; n < parts.length; n++)
        level(sharedName(entry.ownerAddress, parts.slice(0, n).join(DELIMITER)));
      const path = sharedName(entry.ownerAddress, entry.mailbox.path);
      levels.set(path, false);
      if (matches(path)) extra.push({ ...entry.mailbox, path, subscribed: false });
    }
    const personalPaths = new Set(personal.mailboxes.map((m) => m.path));
    for (const [path, virtual] of levels) {
      if (!virtual || !matches(path) || personalPaths.has(path)) continue;
      // A \Noselect level: no id, not \NonExistent (it has children).
      extra.push(mailstore.Mailbox.fromPartial({ path, delimiter: DELIMITER, hasChildren: true }));
    }
    const all = [
      ...personal.mailboxes.filter((m) => !m.path.startsWith(PREFIX) && m.path !== OTHER_USERS),
      ...extra,
    ];
    all.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { mailboxes: all };
  }

  async createMailbox(request: mailstore.CreateMailboxRequest): Promise<mailstore.CreateMailboxResponse> {
    const t = await this.#target('CreateMailbox', { selector: { $case: 'path', value: request.path } });
    if (t.owner === undefined) {
      // The prefix is reserved: a personal "Other Users" would hide the namespace.
      if (request.path === OTHER_USERS || request.path.startsWith(PREFIX))
        throw refusal('CreateMailbox', ErrorReason.NOT_ALLOWED, 'reserved for shared mailboxes');
      return this.base.createMailbox(request);
    }
    const path = t.selector?.selector?.$case === 'path' ? t.selector.selector.value : request.path;
    const created = await this.base.createMailbox({
      ...request,
      userId: t.userId,
      actingUserId: this.userId,
      path,
      // The owner's subscriptions are not the grantee's to change.
      subscribe: false,
    });
    this.#remember(created.mailbox, t.owner);
    return {
      mailbox: created.mailbox === undefined ? undefined : this.#rename(created.mailbox, t.owner),
      createdParents: created.createdParents.map((p) => sharedName(t.owner?.address ?? '', p)),
    };
  }

  async renameMailbox(request: mailstore.RenameMailboxRequest): Promise<mailstore.RenameMailboxResponse> {
    const from = await this.#target('RenameMailbox', request.mailbox);
    const to = await this.#target('RenameMailbox', { selector: { $case: 'path', value: request.newPath } });
    if (from.owner?.id !== to.owner?.id) {
      throw refusal('RenameMailbox', ErrorReason.NOT_ALLOWED, 'a mailbox cannot move to another user');
    }
    const newPath = to.selector?.selector?.$case === 'path' ? to.selector.selector.value : request.newPath;
    const renamed = await this.base.renameMailbox({
      ...request,
      userId: from.userId,
      ...(from.actingUserId === undefined ? {} : { actingUserId: from.actingUserId }),
      mailbox: from.selector,
      newPath,
    });
    return {
      mailbox: renamed.mailbox === undefined ? undefined : this.#rename(renamed.mailbox, from.owner),
    };
  }

  async deleteMailbox(request: mailstore.DeleteMailboxRequest): Promise<mailstore.DeleteMailboxResponse> {
    const t = await this.#target('DeleteMailbox', request.mailbox);
    return this.base.deleteMailbox({
      ...request,
      userId: t.userId,
      ...(t.actingUserId === undefined ? {} : { actingUserId: t.actingUserId }),
      mailbox: t.selector,
    });
  }

  async setSubscribed(request: mailstore.SetSubscribedRequest): Promise<mailstore.SetSubscribedResponse> {
    // Subscriptions are the user's own list of names (RFC 9051 §6.3.7), shared names included.
    return this.base.setSubscribed(request);
  }

  async getMailboxStatus(
    request: mailstore.GetMailboxStatusRequest,
  ): Promise<mailstore.GetMailboxStatusResponse> {
    const t = await this.#target('GetMailboxStatus', request.mailbox);
    const response = await this.base.getMailboxStatus({
      ...request,
      userId: t.userId,
      ...(t.actingUserId === undefined ? {} : { actingUserId: t.actingUserId }),
      mailbox: t.selector,
    });
    if (t.owner === undefined || response.status === undefined) return response;
    this.#owners.set(response.status.mailboxId, t.owner);
    return { ...response, status: this.#rename(response.status, t.owner) };
  }

  async appendMessage(input: AppendInput): Promise<mailstore.AppendMessageResponse> {
    const t = await this.#target('AppendMessage', input.mailbox);
    if (t.owner === undefined || t.selector === undefined) return this.base.appendMessage(input);
    return this.base.appendMessage({
      ...input,
      userId: t.userId,
      actingUserId: this.userId,
      mailbox: t.selector,
    });
  }

  fetchMessages(request: mailstore.FetchMessagesRequest): AsyncGenerator<mailstore.MessageMetadata, void> {
    return this.base.fetchMessages(this.#byId(request));
  }

  fetchMessageBatches(
    request: mailstore.FetchMessagesRequest,
  ): AsyncGenerator<readonly mailstore.MessageMetadata[], void> {
    return this.base.fetchMessageBatches(this.#byId(request));
  }

  getMessageContent(
    request: mailstore.GetMessageContentRequest,
  ): Promise<{ info: mailstore.ContentInfo; chunks: AsyncGenerator<Buffer, void> }> {
    return this.base.getMessageContent(this.#byId(request));
  }

  storeFlags(request: mailstore.StoreFlagsRequest): Promise<mailstore.StoreFlagsResponse> {
    return this.base.storeFlags(this.#byId(request));
  }

  async copyMessages(request: mailstore.CopyMessagesRequest): Promise<mailstore.CopyMessagesResponse> {
    const source = this.#byId(request);
    const destination = await this.#target('CopyMessages', request.destination);
    if (source.userId === destination.userId) {
      return this.base.copyMessages({
        ...source,
        destination: destination.selector,
        ...(source.userId === this.userId ? {} : { actingUserId: this.userId }),
      });
    }
    return this.#copyAcross(source, destination);
  }

  async moveMessages(request: mailstore.MoveMessagesRequest): Promise<mailstore.MoveMessagesResponse> {
    const source = this.#byId(request);
    const destination = await this.#target('MoveMessages', request.destination);
    if (source.userId === destination.userId) {
      return this.base.moveMessages({
        ...source,
        destination: destination.selector,
        ...(source.userId === this.userId ? {} : { actingUserId: this.userId }),
      });
    }
    // RFC 6851 §3.3 allows MOVE as COPY + STORE \Deleted + EXPUNGE of exactly the copied UIDs
    // when it cannot be atomic; storage checks "t" and "e" at a shared source.
    const copied = await this.#copyAcross(source, destination);
    let highestModseq = 0;
    if (copied.mappings.length > 0) {
      const uids = { ranges: copied.mappings.map((m) => ({ first: m.sourceUid, last: m.sourceUid })) };
      await this.base.storeFlags({
        ...source,
        uids,
        mode: mailstore.StoreMode.ADD,
        flags: [mailstore.Flag.DELETED],
        keywords: [],
        unchangedSince: undefined,
      });
      highestModseq = (await this.base.expunge({ ...source, uids })).highestModseq;
    }
    return { ...copied, sourceHighestModseq: highestModseq };
  }

  /** COPY between two owners: each message read from the source and appended at the destination. */
  async #copyAcross(
    source: mailstore.CopyMessagesRequest,
    destination: { userId: string; actingUserId?: string; selector: Selector },
  ): Promise<mailstore.CopyMessagesResponse> {
    if (destination.selector === undefined)
      throw refusal('CopyMessages', ErrorReason.NOT_FOUND, 'no destination');
    // Checks "i" (and existence) before anything is read: the status call needs "r", so MYRIGHTS.
    const rights = await this.base.getMyRights({
      userId: destination.userId,
      actingUserId: destination.actingUserId ?? this.userId,
      mailbox: destination.selector,
    });
    if (!rights.rights.includes('i')) {
      throw new StorageError(
        'CopyMessages',
        status.PERMISSION_DENIED,
        { reason: ErrorReason.PERMISSION_DENIED, message: 'the "i" right is needed', field: 'destination' },
        new Metadata(),
      );
    }
    const mappings: mailstore.UidMapping[] = [];
    let destinationMailboxId = '';
    let destinationUidValidity = 0;
    const messages: mailstore.MessageMetadata[] = [];
    for await (const message of this.base.fetchMessages({
      userId: source.userId,
      ...(source.actingUserId === undefined ? {} : { actingUserId: source.actingUserId }),
      mailboxId: source.mailboxId,
      uids: source.uids,
      changedSince: undefined,
      fields: [],
    })) {
      messages.push(message);
    }
    for (const message of messages) {
      const content = await this.base.getMessageContent({
        userId: source.userId,
        ...(source.actingUserId === undefined ? {} : { actingUserId: source.actingUserId }),
        mailboxId: source.mailboxId,
        uid: message.uid,
        section: '',
        partial: undefined,
        decodeTransferEncoding: false,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of content.chunks) chunks.push(chunk);
      const appended = await this.base.appendMessage({
        userId: destination.userId,
        ...(destination.actingUserId === undefined ? {} : { actingUserId: destination.actingUserId }),
        mailbox: destination.selector,
        flags: message.flags,
        keywords: message.keywords,
        internalDate: message.internalDate,
        message: Buffer.concat(chunks),
      });
      destinationMailboxId = appended.mailboxId;
      destinationUidValidity = appended.uidValidity;
      mappings.push({ sourceUid: message.uid, destinationUid: appended.uid });
    }
    return { destinationMailboxId, destinationUidValidity, mappings };
  }

  expunge(request: mailstore.ExpungeRequest): Promise<mailstore.ExpungeResponse> {
    return this.base.expunge(this.#byId(request));
  }

  search(request: mailstore.SearchRequest): Promise<mailstore.SearchResponse> {
    return this.base.search(this.#byId(request));
  }

  getQuota(request: mailstore.GetQuotaRequest): Promise<mailstore.GetQuotaResponse> {
    return this.base.getQuota(request);
  }

  getChanges(request: mailstore.GetChangesRequest): Promise<mailstore.GetChangesResponse> {
    return this.base.getChanges(this.#byId(request));
  }

  async setMailboxAcl(request: mailstore.SetMailboxAclRequest): Promise<mailstore.SetMailboxAclResponse> {
    const t = await this.#target('SetMailboxAcl', request.mailbox);
    return this.base.setMailboxAcl({
      ...request,
      userId: t.userId,
      actingUserId: this.userId,
      mailbox: t.selector,
    });
  }

  async deleteMailboxAcl(
    request: mailstore.DeleteMailboxAclRequest,
  ): Promise<mailstore.DeleteMailboxAclResponse> {
    const t = await this.#target('DeleteMailboxAcl', request.mailbox);
    return this.base.deleteMailboxAcl({
      ...request,
      userId: t.userId,
      actingUserId: this.userId,
      mailbox: t.selector,
    });
  }

  async getMailboxAcl(request: mailstore.GetMailboxAclRequest): Promise<mailstore.GetMailboxAclResponse> {
    const t = await this.#target('GetMailboxAcl', request.mailbox);
    return this.base.getMailboxAcl({
      ...request,
      userId: t.userId,
      actingUserId: this.userId,
      mailbox: t.selector,
    });
  }

  async listMailboxRights(
    request: mailstore.ListMailboxRightsRequest,
  ): Promise<mailstore.ListMailboxRightsResponse> {
    const t = await this.#target('ListMailboxRights', request.mailbox);
    return this.base.listMailboxRights({
      ...request,
      userId: t.userId,
      actingUserId: this.userId,
      mailbox: t.selector,
    });
  }

  async getMyRights(request: mailstore.GetMyRightsRequest): Promise<mailstore.GetMyRightsResponse> {
    const t = await this.#target('GetMyRights', request.mailbox);
    return this.base.getMyRights({
      ...request,
      userId: t.userId,
      actingUserId: this.userId,
      mailbox: t.selector,
    });
  }

  listSharedMailboxes(
    request: mailstore.ListSharedMailboxesRequest,
  ): Promise<mailstore.ListSharedMailboxesResponse> {
    return this.base.listSharedMailboxes(request);
  }

  createSharedMailbox(
    request: mailstore.CreateSharedMailboxRequest,
  ): Promise<mailstore.CreateSharedMailboxResponse> {
    return this.base.createSharedMailbox(request);
  }

  // Sieve scripts are the user's own, whatever is shared with them.
  putSieveScript(request: mailstore.PutSieveScriptRequest): Promise<mailstore.PutSieveScriptResponse> {
    return this.base.putSieveScript(request);
  }

  getSieveScript(request: mailstore.GetSieveScriptRequest): Promise<mailstore.GetSieveScriptResponse> {
    return this.base.getSieveScript(request);
  }

  listSieveScripts(request: mailstore.ListSieveScriptsRequest): Promise<mailstore.ListSieveScriptsResponse> {
    return this.base.listSieveScripts(request);
  }

  setActiveSieveScript(
    request: mailstore.SetActiveSieveScriptRequest,
  ): Promise<mailstore.SetActiveSieveScriptResponse> {
    return this.base.setActiveSieveScript(request);
  }

  deleteSieveScript(
    request: mailstore.DeleteSieveScriptRequest,
  ): Promise<mailstore.DeleteSieveScriptResponse> {
    return this.base.deleteSieveScript(request);
  }
}

/**
 * Whether a LIST pattern may match a name under the prefix: it starts with the prefix, or a
 * wildcard comes before the prefix ends (`*`, `%`, `Other%`).
 */
function couldReachPrefix(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*' || ch === '%') return true;
    if (i >= OTHER_USERS.length) return true;
    if (ch !== OTHER_USERS[i]) return false;
  }
  return pattern.length >= OTHER_USERS.length;
}
