/**
 * An in-memory Mailstore for in-process IMAP tests: the same contract as storage
 * (proto/postmesh/mailstore/v1/mailstore.proto) with the semantics the IMAP commands rely on —
 * per-mailbox UIDVALIDITY and strictly ascending UIDs (RFC 9051 §2.3.1.1), one new MODSEQ per
 * changing call and tombstones for expunged UIDs (RFC 7162 §3.1.1, §3.2.10), \Recent claimed by
 * one session (RFC 3501 §2.3.2), quota (RFC 9208) and RFC 4314 rights for mailboxes shared with
 * other users. ENVELOPE, BODYSTRUCTURE and sections come from @postmesh/mime, as in storage.
 *
 * Not a second storage: no persistence, no partitions, no encryption. Where storage refuses
 * something, this refuses it with the same `ErrorReason` and field, so the IMAP layer's error
 * mapping (src/errors.ts) is exercised as in production.
 */
import { randomBytes } from 'node:crypto';
import { Metadata, status } from '@grpc/grpc-js';
import { ErrorReason, mailstore, resolveUidSet, uidSetFromUids, type UidInterval } from '@postmesh/contracts';
import {
  applyPartial,
  decodeEncodedWords,
  decodePartBody,
  findSectionPart,
  indexMessage,
  parseHeaderBlock,
  parseSectionSpec,
  resolveSection,
  selectHeaderFields,
  type IndexResult,
  type SearchAddress,
} from '@postmesh/mime';
import { compileListPattern } from '@postmesh/imap-protocol';
import {
  StorageError,
  StorageUnavailableError,
  type AppendInput,
  type Mailstore,
} from '../../src/storage.js';

const DELIMITER = '/';
/** RFC 4314 §2.1, in the order responses list them. */
const RIGHTS = 'lrswipkxtea';
const DAY_MS = 86_400_000;
/** New users' mailboxes, as storage creates them (RFC 6154 §2). */
const DEFAULT_MAILBOXES: readonly [string, mailstore.SpecialUse][] = [
  ['INBOX', mailstore.SpecialUse.UNSPECIFIED],
  ['Drafts', mailstore.SpecialUse.DRAFTS],
  ['Sent', mailstore.SpecialUse.SENT],
  ['Junk', mailstore.SpecialUse.JUNK],
  ['Trash', mailstore.SpecialUse.TRASH],
  ['Archive', mailstore.SpecialUse.ARCHIVE],
];

export interface FakeUser {
  readonly id: string;
  readonly address: string;
  readonly password: string;
  /** Quota limits; 0 is unlimited (GetQuota). */
  limitBytes: number;
  limitMessages: number;
  readonly subscriptions: Set<string>;
  readonly sieve: Map<string, string>;
  activeSieve: string | null;
}

interface StoredMessage {
  readonly uid: number;
  modseq: number;
  flags: Set<mailstore.Flag>;
  keywords: Set<string>;
  readonly internalDate: Date;
  readonly body: Buffer;
  readonly index: IndexResult;
  readonly emailId: string;
  readonly threadId: string;
}

interface FakeMailbox {
  readonly id: string;
  readonly ownerId: string;
  path: string;
  readonly specialUse: mailstore.SpecialUse;
  readonly uidValidity: number;
  uidNext: number;
  highestModseq: number;
  /** Ascending by UID. */
  messages: StoredMessage[];
  readonly tombstones: { readonly uid: number; readonly modseq: number }[];
  recentFloor: number;
  /** Grantee user id (or `anyone`) → rights, canonical letters of RIGHTS. */
  readonly acl: Map<string, { identifier: string; rights: string }>;
}

function refusal(rpc: string, reason: ErrorReason, message: string, field: string): StorageError {
  const code =
    reason === ErrorReason.NOT_FOUND
      ? status.NOT_FOUND
      : reason === ErrorReason.ALREADY_EXISTS
        ? status.ALREADY_EXISTS
        : reason === ErrorReason.PERMISSION_DENIED
          ? status.PERMISSION_DENIED
          : reason === ErrorReason.INVALID_ARGUMENT || reason === ErrorReason.INVALID_NAME
            ? status.INVALID_ARGUMENT
            : status.FAILED_PRECONDITION;
  return new StorageError(rpc, code, { reason, message, field }, new Metadata());
}

/** `INBOX` in any case as a first level is `INBOX` (RFC 9051 §5.1). */
function canonicalPath(path: string): string {
  const slash = path.indexOf(DELIMITER);
  const first = slash < 0 ? path : path.slice(0, slash);
  if (first.toUpperCase() !== 'INBOX') return path;
  return slash < 0 ? 'INBOX' : `INBOX${path.slice(slash)}`;
}

function canonicalRights(letters: Iterable<string>): string {
  const set = new Set(letters);
  return [...RIGHTS].filter((r) => set.has(r)).join('');
}

/** RFC 4314 §2.1.1: "c" with any of k, "d" with any of x t e (storage's reading). */
function withVirtualRights(rights: string): string {
  let out = rights;
  if (rights.includes('k')) out += 'c';
  if ([...'xte'].some((r) => rights.includes(r))) out += 'd';
  return out;
}

/** Messages per fetchMessageBatches batch. */
const FAKE_BATCH = 7;

/** RFC 9051 §6.4.4 string matching: case-insensitive substring. */
function contains(haystack: string, needle: string): boolean {
  return haystack.toLowerCase().includes(needle.toLowerCase());
}

function addressText(list: readonly SearchAddress[]): string {
  return list.map((a) => `${a.name ?? ''} <${a.address ?? ''}>`).join(', ');
}

function inIntervals(uid: number, intervals: readonly UidInterval[]): boolean {
  return intervals.some(([a, b]) => uid >= a && uid <= b);
}

function dayStart(date: mailstore.CalendarDate | undefined): number {
  return Date.UTC(date?.year ?? 0, (date?.month ?? 1) - 1, date?.day ?? 1);
}

function dayOf(ms: number | null): number {
  if (ms === null) return 0;
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

export class FakeMailstore implements Mailstore {
  readonly users = new Map<string, FakeUser>();
  readonly #mailboxes = new Map<string, FakeMailbox>();
  readonly #listeners = new Map<string, Set<() => void>>();
  /**
   * Ids are unique across instances, as storage's are across users and time: a cache in the
   * imap process keyed by mailbox id must never see one id name two mailboxes.
   */
  readonly #idPrefix = randomBytes(8).toString('hex');
  #nextId = 1;
  #nextUidValidity = 1000;
  /** Calls by RPC name, so a test can tell what a command asked storage for. */
  readonly calls: string[] = [];
  /** When set, the next call of that RPC fails as if storage were unreachable. */
  failNext: string | null = null;

  /** Adds a user with storage's default mailboxes (INBOX, Drafts, Sent, Junk, Trash, Archive). */
  addUser(address: string, password: string): FakeUser {
    const user: FakeUser = {
      id: `u${this.users.size + 1}`,
      address,
      password,
      limitBytes: 0,
      limitMessages: 0,
      subscriptions: new Set(),
      sieve: new Map(),
      activeSieve: null,
    };
    this.users.set(user.id, user);
    for (const [path, specialUse] of DEFAULT_MAILBOXES) {
      this.#newMailbox(user.id, path, specialUse);
      user.subscriptions.add(path);
    }
    return user;
  }

  userByAddress(address: string): FakeUser | undefined {
    return [...this.users.values()].find((u) => u.address.toLowerCase() === address.toLowerCase());
  }

  /** Change events for a user, as storage publishes `mailbox.changed.<user>` on NATS. */
  subscribe(userId: string, onChange: () => void): () => void {
    const set = this.#listeners.get(userId) ?? new Set();
    set.add(onChange);
    this.#listeners.set(userId, set);
    return () => set.delete(onChange);
  }

  /** Delivers a message as the SMTP path would (not through a session). */
  async deliver(
    userId: string,
    path: string,
    message: string | Buffer,
    options: { flags?: mailstore.Flag[]; keywords?: string[]; internalDate?: Date } = {},
  ): Promise<number> {
    const response = await this.appendMessage({
      userId,
      mailbox: { selector: { $case: 'path', value: path } },
      flags: options.flags ?? [],
      keywords: options.keywords ?? [],
      internalDate: options.internalDate,
      message: typeof message === 'string' ? Buffer.from(message, 'latin1') : message,
    });
    return response.uid;
  }

  #changed(userId: string): void {
    for (const listener of this.#listeners.get(userId) ?? []) listener();
  }

  #call(rpc: string): void {
    this.calls.push(rpc);
    if (this.failNext === rpc) {
      this.failNext = null;
      throw new StorageUnavailableError(
        rpc,
        status.UNAVAILABLE,
        'storage unreachable (test)',
        new Metadata(),
      );
    }
  }

  #newMailbox(userId: string, path: string, specialUse: mailstore.SpecialUse): FakeMailbox {
    const mailbox: FakeMailbox = {
      id: this.#idPrefix + (this.#nextId++).toString(16).padStart(8, '0'),
      ownerId: userId,
      path,
      specialUse,
      uidValidity: this.#nextUidValidity++,
      uidNext: 1,
      highestModseq: 1,
      messages: [],
      tombstones: [],
      recentFloor: 1,
      acl: new Map(),
    };
    this.#mailboxes.set(mailbox.id, mailbox);
    return mailbox;
  }

  #mailboxesOf(userId: string): FakeMailbox[] {
    return [...this.#mailboxes.values()].filter((m) => m.ownerId === userId);
  }

  #byPath(userId: string, path: string): FakeMailbox | undefined {
    const canonical = canonicalPath(path);
    return this.#mailboxesOf(userId).find((m) => m.path === canonical);
  }

  #user(rpc: string, userId: string): FakeUser {
    const user = this.users.get(userId);
    if (user === undefined) throw refusal(rpc, ErrorReason.NOT_FOUND, 'no such user', 'user_id');
    return user;
  }

  /** The caller's rights: all for the owner, the ACL's for an acting user (RFC 4314 §2). */
  #rights(mailbox: FakeMailbox, actingUserId: string | undefined): string {
    if (actingUserId === undefined || actingUserId === '' || actingUserId === mailbox.ownerId) return RIGHTS;
    const own = mailbox.acl.get(actingUserId)?.rights ?? '';
    const anyone = mailbox.acl.get('anyone')?.rights ?? '';
    return canonicalRights([...own, ...anyone]);
  }

  /**
   * The mailbox a request names, checked for `right` when another user acts on it. Without "l"
   * or "r" the mailbox is as absent as a missing one (RFC 4314 §6: do not reveal it exists).
   */
  #resolve(
    rpc: string,
    request: { userId: string; actingUserId?: string | undefined },
    selector: mailstore.MailboxSelector | undefined,
    right: string | null,
    field = 'mailbox',
  ): FakeMailbox {
    this.#user(rpc, request.userId);
    const s = selector?.selector;
    const mailbox =
      s === undefined
        ? undefined
        : s.$case === 'id'
          ? this.#mailboxes.get(s.value)
          : this.#byPath(request.userId, s.value);
    if (mailbox?.ownerId !== request.userId) {
      throw refusal(rpc, ErrorReason.NOT_FOUND, 'mailbox does not exist', field);
    }
    const rights = this.#rights(mailbox, request.actingUserId);
    if (!rights.includes('l') && !rights.includes('r')) {
      throw refusal(rpc, ErrorReason.NOT_FOUND, 'mailbox does not exist', field);
    }
    if (right !== null && !rights.includes(right)) {
      throw refusal(rpc, ErrorReason.PERMISSION_DENIED, `right "${right}" missing`, field);
    }
    return mailbox;
  }

  #byId(
    rpc: string,
    request: { userId: string; mailboxId: string; actingUserId?: string | undefined },
    right: string | null,
  ): FakeMailbox {
    return this.#resolve(
      rpc,
      request,
      { selector: { $case: 'id', value: request.mailboxId } },
      right,
      'mailbox_id',
    );
  }

  #validateNewPath(rpc: string, raw: string, field: string): string {
    let path = raw;
    if (path.endsWith(DELIMITER)) path = path.slice(0, -1);
    const invalid = (why: string): never => {
      throw refusal(rpc, ErrorReason.INVALID_NAME, `mailbox name ${why}`, field);
    };
    if (path === '') invalid('is empty');
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(path)) invalid('contains a control character');
    if (/[*%]/.test(path)) invalid('contains a LIST wildcard');
    if (path.startsWith(DELIMITER) || path.split(DELIMITER).some((c) => c === '')) {
      invalid('has an empty hierarchy level');
    }
    return canonicalPath(path);
  }

  #ensureParents(userId: string, path: string): string[] {
    const created: string[] = [];
    const parts = path.split(DELIMITER);
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join(DELIMITER);
      if (this.#byPath(userId, parent) === undefined) {
        this.#newMailbox(userId, parent, mailstore.SpecialUse.UNSPECIFIED);
        created.push(parent);
      }
    }
    return created;
  }

  #describe(mailbox: FakeMailbox): mailstore.Mailbox {
    const user = this.users.get(mailbox.ownerId);
    return {
      id: mailbox.id,
      path: mailbox.path,
      delimiter: DELIMITER,
      specialUse: mailbox.specialUse,
      subscribed: user?.subscriptions.has(mailbox.path) ?? false,
      hasChildren: this.#mailboxesOf(mailbox.ownerId).some((m) =>
        m.path.startsWith(mailbox.path + DELIMITER),
      ),
      uidValidity: mailbox.uidValidity,
      uidNext: mailbox.uidNext,
      highestModseq: mailbox.highestModseq,
      nonexistent: false,
    };
  }

  #usage(userId: string): { bytes: number; messages: number } {
    let bytes = 0;
    let messages = 0;
    for (const mailbox of this.#mailboxesOf(userId)) {
      for (const m of mailbox.messages) {
        bytes += m.body.length;
        messages++;
      }
    }
    return { bytes, messages };
  }

  /** RFC 9208 §4.1: refused before anything is written when it would pass a limit. */
  #checkQuota(rpc: string, userId: string, bytes: number, messages: number): void {
    const user = this.#user(rpc, userId);
    const used = this.#usage(userId);
    if (
      (user.limitBytes > 0 && used.bytes + bytes > user.limitBytes) ||
      (user.limitMessages > 0 && used.messages + messages > user.limitMessages)
    ) {
      throw refusal(rpc, ErrorReason.OVER_QUOTA, 'over quota', 'message');
    }
  }

  #select(mailbox: FakeMailbox, uids: mailstore.UidSet | undefined): StoredMessage[] {
    const intervals = resolveUidSet(uids ?? { ranges: [{ first: 1, last: 0 }] }, mailbox.uidNext - 1);
    return mailbox.messages.filter((m) => inIntervals(m.uid, intervals));
  }

  #add(
    mailbox: FakeMailbox,
    source: Omit<StoredMessage, 'uid' | 'modseq' | 'flags' | 'keywords'>,
    flags: Iterable<mailstore.Flag>,
    keywords: Iterable<string>,
    modseq: number,
  ): StoredMessage {
    const message: StoredMessage = {
      ...source,
      uid: mailbox.uidNext++,
      modseq,
      flags: new Set(flags),
      keywords: new Set(keywords),
    };
    mailbox.messages.push(message);
    return message;
  }

  #remove(mailbox: FakeMailbox, gone: readonly StoredMessage[]): number {
    const modseq = ++mailbox.highestModseq;
    const uids = new Set(gone.map((m) => m.uid));
    mailbox.messages = mailbox.messages.filter((m) => !uids.has(m.uid));
    for (const uid of uids) mailbox.tombstones.push({ uid, modseq });
    return modseq;
  }

  // --- Mailboxes ------------------------------------------------------------------------------

  listMailboxes(request: mailstore.ListMailboxesRequest): Promise<mailstore.ListMailboxesResponse> {
    this.#call('ListMailboxes');
    const user = this.#user('ListMailboxes', request.userId);
    const matcher = compileListPattern(request.reference + request.pattern);
    const existing = this.#mailboxesOf(user.id)
      .filter((m) => request.specialUse.length === 0 || request.specialUse.includes(m.specialUse))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const out: mailstore.Mailbox[] = [];
    if (request.subscribedOnly) {
      // RFC 5258 §3.1: a subscription to a mailbox that does not exist is listed \NonExistent.
      for (const path of [...user.subscriptions].sort()) {
        if (!matcher(path)) continue;
        const found = existing.find((m) => m.path === path);
        if (found !== undefined) out.push(this.#describe(found));
        else if (request.specialUse.length === 0) {
          out.push(
            mailstore.Mailbox.fromPartial({
              path,
              delimiter: DELIMITER,
              subscribed: true,
              nonexistent: true,
            }),
          );
        }
      }
    } else {
      for (const mailbox of existing) if (matcher(mailbox.path)) out.push(this.#describe(mailbox));
    }
    return Promise.resolve({ mailboxes: out });
  }

  createMailbox(request: mailstore.CreateMailboxRequest): Promise<mailstore.CreateMailboxResponse> {
    this.#call('CreateMailbox');
    const rpc = 'CreateMailbox';
    const user = this.#user(rpc, request.userId);
    const path = this.#validateNewPath(rpc, request.path, 'path');
    if (this.#byPath(user.id, path) !== undefined) {
      throw refusal(rpc, ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'path');
    }
    if (
      request.specialUse !== mailstore.SpecialUse.UNSPECIFIED &&
      this.#mailboxesOf(user.id).some((m) => m.specialUse === request.specialUse)
    ) {
      throw refusal(
        rpc,
        ErrorReason.NOT_ALLOWED,
        'special use already given to another mailbox',
        'special_use',
      );
    }
    const createdParents = this.#ensureParents(user.id, path);
    if (request.subscribe) user.subscriptions.add(path);
    const mailbox = this.#newMailbox(user.id, path, request.specialUse);
    this.#changed(user.id);
    return Promise.resolve({ mailbox: this.#describe(mailbox), createdParents });
  }

  renameMailbox(request: mailstore.RenameMailboxRequest): Promise<mailstore.RenameMailboxResponse> {
    const rpc = 'RenameMailbox';
    this.#call(rpc);
    const source = this.#resolve(rpc, request, request.mailbox, 'x');
    const newPath = this.#validateNewPath(rpc, request.newPath, 'new_path');
    const userId = source.ownerId;
    if (newPath === 'INBOX' || this.#byPath(userId, newPath) !== undefined) {
      throw refusal(rpc, ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
    }
    if (source.path === 'INBOX') {
      // RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox; INBOX stays, empty.
      this.#ensureParents(userId, newPath);
      const target = this.#newMailbox(userId, newPath, mailstore.SpecialUse.UNSPECIFIED);
      target.uidNext = source.uidNext;
      target.highestModseq = source.highestModseq + 1;
      target.messages = source.messages;
      target.recentFloor = source.uidNext;
      this.#remove(source, [...source.messages]);
      this.#changed(userId);
      return Promise.resolve({ mailbox: this.#describe(target) });
    }
    if (newPath.startsWith(source.path + DELIMITER)) {
      throw refusal(rpc, ErrorReason.NOT_ALLOWED, 'cannot rename a mailbox into itself', 'new_path');
    }
    this.#ensureParents(userId, newPath);
    const old = source.path;
    for (const mailbox of this.#mailboxesOf(userId)) {
      if (mailbox.path === old || mailbox.path.startsWith(old + DELIMITER)) {
        mailbox.path = newPath + mailbox.path.slice(old.length);
      }
    }
    this.#changed(userId);
    return Promise.resolve({ mailbox: this.#describe(source) });
  }

  deleteMailbox(request: mailstore.DeleteMailboxRequest): Promise<mailstore.DeleteMailboxResponse> {
    const rpc = 'DeleteMailbox';
    this.#call(rpc);
    const mailbox = this.#resolve(rpc, request, request.mailbox, 'x');
    if (mailbox.path === 'INBOX') {
      throw refusal(rpc, ErrorReason.NOT_ALLOWED, 'INBOX cannot be deleted', 'mailbox');
    }
    if (this.#mailboxesOf(mailbox.ownerId).some((m) => m.path.startsWith(mailbox.path + DELIMITER))) {
      throw refusal(rpc, ErrorReason.NOT_ALLOWED, 'mailbox has children', 'mailbox');
    }
    this.#mailboxes.delete(mailbox.id);
    this.#changed(mailbox.ownerId);
    return Promise.resolve({ mailboxId: mailbox.id });
  }

  setSubscribed(request: mailstore.SetSubscribedRequest): Promise<mailstore.SetSubscribedResponse> {
    this.#call('SetSubscribed');
    const user = this.#user('SetSubscribed', request.userId);
    const path = canonicalPath(request.path);
    if (request.subscribed) user.subscriptions.add(path);
    else user.subscriptions.delete(path);
    return Promise.resolve({});
  }

  getMailboxStatus(request: mailstore.GetMailboxStatusRequest): Promise<mailstore.GetMailboxStatusResponse> {
    this.#call('GetMailboxStatus');
    const mailbox = this.#resolve('GetMailboxStatus', request, request.mailbox, null);
    const recent = mailbox.messages.filter((m) => m.uid >= mailbox.recentFloor).length;
    let firstRecentUid = 0;
    if (request.claimRecent) {
      // RFC 3501 §6.3.1: the session that SELECTs claims \Recent; later ones see none.
      firstRecentUid = Math.min(mailbox.recentFloor, mailbox.uidNext);
      mailbox.recentFloor = Math.max(mailbox.recentFloor, mailbox.uidNext);
    }
    const unseen = mailbox.messages.filter((m) => !m.flags.has(mailstore.Flag.SEEN));
    return Promise.resolve({
      status: {
        mailboxId: mailbox.id,
        path: mailbox.path,
        messages: mailbox.messages.length,
        recent,
        uidNext: mailbox.uidNext,
        uidValidity: mailbox.uidValidity,
        unseen: unseen.length,
        deleted: mailbox.messages.filter((m) => m.flags.has(mailstore.Flag.DELETED)).length,
        highestModseq: mailbox.highestModseq,
        size: mailbox.messages.reduce((s, m) => s + m.body.length, 0),
        firstUnseenUid: unseen[0]?.uid ?? 0,
      },
      specialUse: mailbox.specialUse,
      firstRecentUid,
    });
  }

  // --- Messages -------------------------------------------------------------------------------

  appendMessage(input: AppendInput): Promise<mailstore.AppendMessageResponse> {
    const rpc = 'AppendMessage';
    this.#call(rpc);
    const mailbox = this.#resolve(rpc, input, input.mailbox, 'i');
    this.#checkQuota(rpc, mailbox.ownerId, input.message.length, 1);
    const body = Buffer.from(input.message);
    const index = indexMessage(body, { searchTextBytes: 1 << 20 });
    const modseq = ++mailbox.highestModseq;
    const emailId = `M${this.#idPrefix}${(this.#nextId++).toString(16).padStart(8, '0')}`;
    const message = this.#add(
      mailbox,
      {
        internalDate: input.internalDate ?? new Date(),
        body,
        index,
        emailId,
        threadId: this.#threadOf(mailbox.ownerId, index) ?? `T${emailId.slice(1)}`,
      },
      input.flags,
      input.keywords,
      modseq,
    );
    this.#changed(mailbox.ownerId);
    return Promise.resolve({
      mailboxId: mailbox.id,
      uidValidity: mailbox.uidValidity,
      uid: message.uid,
      modseq,
    });
  }

  /** RFC 8474 §5.2 THREADID: the thread of a message this one references, if any. */
  #threadOf(userId: string, index: IndexResult): string | undefined {
    const refs = new Set([...index.headers.references, index.headers.inReplyTo ?? '']);
    for (const mailbox of this.#mailboxesOf(userId)) {
      for (const m of mailbox.messages) {
        const id = m.index.headers.messageId;
        if (id !== null && refs.has(id)) return m.threadId;
      }
    }
    return undefined;
  }

  /**
   * fetchMessages in batches of FAKE_BATCH, a size unlike storage's and IMAP's own, so that the
   * commands are run across batch boundaries.
   */
  async *fetchMessageBatches(
    request: mailstore.FetchMessagesRequest,
  ): AsyncGenerator<readonly mailstore.MessageMetadata[], void> {
    let batch: mailstore.MessageMetadata[] = [];
    for await (const message of this.fetchMessages(request)) {
      batch.push(message);
      if (batch.length >= FAKE_BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  async *fetchMessages(
    request: mailstore.FetchMessagesRequest,
  ): AsyncGenerator<mailstore.MessageMetadata, void> {
    this.#call('FetchMessages');
    const mailbox = this.#byId('FetchMessages', request, 'r');
    const fields = new Set(request.fields);
    // A snapshot: messages added while the caller iterates are not part of this answer.
    for (const m of this.#select(mailbox, request.uids)) {
      if (request.changedSince !== undefined && m.modseq <= request.changedSince) continue;
      yield {
        uid: m.uid,
        modseq: m.modseq,
        flags: [...m.flags],
        keywords: [...m.keywords],
        internalDate: m.internalDate,
        size: m.body.length,
        envelopeJson: fields.has(mailstore.FetchField.ENVELOPE) ? JSON.stringify(m.index.envelope) : '',
        bodystructureJson: fields.has(mailstore.FetchField.BODYSTRUCTURE)
          ? JSON.stringify(m.index.bodystructure)
          : '',
        header: fields.has(mailstore.FetchField.HEADER)
          ? m.body.subarray(
              m.index.bodystructure.offsets.headerStart,
              m.index.bodystructure.offsets.bodyStart,
            )
          : Buffer.alloc(0),
        emailId: fields.has(mailstore.FetchField.OBJECT_IDS) ? m.emailId : '',
        threadId: fields.has(mailstore.FetchField.OBJECT_IDS) ? m.threadId : '',
      };
      await Promise.resolve();
    }
  }

  getMessageContent(
    request: mailstore.GetMessageContentRequest,
  ): Promise<{ info: mailstore.ContentInfo; chunks: AsyncGenerator<Buffer, void> }> {
    const rpc = 'GetMessageContent';
    this.#call(rpc);
    const mailbox = this.#byId(rpc, request, 'r');
    const m = mailbox.messages.find((x) => x.uid === request.uid);
    if (m === undefined) throw refusal(rpc, ErrorReason.NOT_FOUND, 'no such message', 'uid');
    const spec = parseSectionSpec(request.section);
    if (spec === null) throw refusal(rpc, ErrorReason.INVALID_ARGUMENT, 'not a section-spec', 'section');
    const resolved = resolveSection(m.index.bodystructure, spec);
    if (!resolved.ok) {
      if (resolved.error === 'syntax') {
        throw refusal(rpc, ErrorReason.INVALID_ARGUMENT, 'not a section-spec', 'section');
      }
      throw refusal(rpc, ErrorReason.NOT_FOUND, 'no such section', 'section');
    }
    const partial = request.partial;
    const slice = (bytes: Buffer): Buffer => {
      if (partial === undefined) return bytes;
      const start = Math.min(partial.offset, bytes.length);
      return bytes.subarray(start, Math.min(bytes.length, start + partial.length));
    };
    const answer = (out: Buffer, sectionSize: number, containsNul: boolean) => {
      async function* chunks(): AsyncGenerator<Buffer, void> {
        await Promise.resolve();
        if (out.length > 0) yield out;
      }
      return Promise.resolve({
        info: { size: out.length, sectionSize, modseq: m.modseq, containsNul },
        chunks: chunks(),
      });
    };
    if (resolved.fields !== null) {
      const header = m.body.subarray(resolved.range.start, resolved.range.end);
      const selected = Buffer.from(selectHeaderFields(header, resolved.fields.names, resolved.fields.not));
      return answer(slice(selected), selected.length, false);
    }
    if (request.decodeTransferEncoding && spec.part.length > 0 && spec.text === null) {
      const part = findSectionPart(m.index.bodystructure, spec.part);
      if (part === null) throw refusal(rpc, ErrorReason.NOT_FOUND, 'no such section', 'section');
      const decoded = decodePartBody(part, m.body.subarray(resolved.range.start, resolved.range.end));
      if (!decoded.ok) {
        // RFC 3516 §4.3: UNKNOWN-CTE.
        throw refusal(
          rpc,
          ErrorReason.INVALID_ARGUMENT,
          `cannot decode: ${decoded.error}`,
          'decode_transfer_encoding',
        );
      }
      const bytes = Buffer.from(decoded.bytes);
      const out = slice(bytes);
      return answer(out, bytes.length, out.includes(0));
    }
    const range =
      partial === undefined ? resolved.range : applyPartial(resolved.range, partial.offset, partial.length);
    return answer(m.body.subarray(range.start, range.end), resolved.range.end - resolved.range.start, false);
  }

  storeFlags(request: mailstore.StoreFlagsRequest): Promise<mailstore.StoreFlagsResponse> {
    const rpc = 'StoreFlags';
    this.#call(rpc);
    const mailbox = this.#byId(rpc, request, null);
    const rights = this.#rights(mailbox, request.actingUserId);
    // RFC 4314 §4: \Seen needs "s", \Deleted "t", any other flag "w".
    const needed = new Set<string>();
    for (const flag of request.flags) {
      needed.add(flag === mailstore.Flag.SEEN ? 's' : flag === mailstore.Flag.DELETED ? 't' : 'w');
    }
    if (request.keywords.length > 0) needed.add('w');
    for (const right of needed) {
      if (!rights.includes(right))
        throw refusal(rpc, ErrorReason.PERMISSION_DENIED, `right "${right}" missing`, 'flags');
    }
    const apply = <T>(current: Set<T>, given: readonly T[]): Set<T> => {
      switch (request.mode) {
        case mailstore.StoreMode.ADD:
          return new Set([...current, ...given]);
        case mailstore.StoreMode.REMOVE:
          return new Set([...current].filter((f) => !given.includes(f)));
        case mailstore.StoreMode.REPLACE:
          return new Set(given);
        default:
          throw refusal(rpc, ErrorReason.INVALID_ARGUMENT, 'store mode not set', 'mode');
      }
    };
    const same = <T>(a: Set<T>, b: Set<T>): boolean => a.size === b.size && [...a].every((x) => b.has(x));
    const modified: number[] = [];
    const updates: { m: StoredMessage; flags: Set<mailstore.Flag>; keywords: Set<string> }[] = [];
    for (const m of this.#select(mailbox, request.uids)) {
      // RFC 7162 §3.1.3: a message changed after UNCHANGEDSINCE is left alone and reported.
      if (request.unchangedSince !== undefined && m.modseq > request.unchangedSince) {
        modified.push(m.uid);
        continue;
      }
      const flags = apply(m.flags, request.flags);
      const keywords = apply(m.keywords, request.keywords);
      if (!same(flags, m.flags) || !same(keywords, m.keywords)) updates.push({ m, flags, keywords });
    }
    const changed: mailstore.MessageFlags[] = [];
    if (updates.length > 0) {
      // RFC 7162 §3.1.1: one new mod-sequence for the command's changes.
      const modseq = ++mailbox.highestModseq;
      for (const { m, flags, keywords } of updates) {
        m.flags = flags;
        m.keywords = keywords;
        m.modseq = modseq;
        changed.push({ uid: m.uid, modseq, flags: [...flags], keywords: [...keywords] });
      }
      this.#changed(mailbox.ownerId);
    }
    return Promise.resolve({ changed, modifiedUids: modified, highestModseq: mailbox.highestModseq });
  }

  #copyInto(
    rpc: string,
    request: mailstore.CopyMessagesRequest,
    source: FakeMailbox,
  ): { destination: FakeMailbox; mappings: mailstore.UidMapping[]; moved: StoredMessage[] } {
    const destination = this.#resolve(rpc, request, request.destination, 'i', 'destination');
    const moved = this.#select(source, request.uids);
    this.#checkQuota(
      rpc,
      destination.ownerId,
      moved.reduce((s, m) => s + m.body.length, 0),
      moved.length,
    );
    const mappings: mailstore.UidMapping[] = [];
    if (moved.length > 0) {
      const modseq = ++destination.highestModseq;
      for (const m of moved) {
        const copy = this.#add(destination, m, m.flags, m.keywords, modseq);
        mappings.push({ sourceUid: m.uid, destinationUid: copy.uid });
      }
      this.#changed(destination.ownerId);
    }
    return { destination, mappings, moved };
  }

  copyMessages(request: mailstore.CopyMessagesRequest): Promise<mailstore.CopyMessagesResponse> {
    this.#call('CopyMessages');
    const source = this.#byId('CopyMessages', request, 'r');
    const { destination, mappings } = this.#copyInto('CopyMessages', request, source);
    return Promise.resolve({
      destinationMailboxId: destination.id,
      destinationUidValidity: destination.uidValidity,
      mappings,
    });
  }

  moveMessages(request: mailstore.MoveMessagesRequest): Promise<mailstore.MoveMessagesResponse> {
    this.#call('MoveMessages');
    // RFC 6851 §3.3 with RFC 4314 §4: MOVE needs "r", "t" and "e" on the source.
    const source = this.#byId('MoveMessages', request, 'r');
    const rights = this.#rights(source, request.actingUserId);
    if (!rights.includes('t') || !rights.includes('e')) {
      throw refusal('MoveMessages', ErrorReason.PERMISSION_DENIED, 'rights "t" and "e" needed', 'mailbox_id');
    }
    const { destination, mappings, moved } = this.#copyInto('MoveMessages', request, source);
    if (moved.length > 0) {
      this.#remove(source, moved);
      this.#changed(source.ownerId);
    }
    return Promise.resolve({
      destinationMailboxId: destination.id,
      destinationUidValidity: destination.uidValidity,
      mappings,
      sourceHighestModseq: source.highestModseq,
    });
  }

  expunge(request: mailstore.ExpungeRequest): Promise<mailstore.ExpungeResponse> {
    this.#call('Expunge');
    const mailbox = this.#byId('Expunge', request, 'e');
    const gone = this.#select(mailbox, request.uids).filter((m) => m.flags.has(mailstore.Flag.DELETED));
    if (gone.length > 0) {
      this.#remove(mailbox, gone);
      this.#changed(mailbox.ownerId);
    }
    return Promise.resolve({ expungedUids: gone.map((m) => m.uid), highestModseq: mailbox.highestModseq });
  }

  search(request: mailstore.SearchRequest): Promise<mailstore.SearchResponse> {
    this.#call('Search');
    const mailbox = this.#byId('Search', request, 'r');
    const highestUid = mailbox.uidNext - 1;
    const now = Date.now();
    const matches = (key: mailstore.SearchKey | undefined, m: StoredMessage): boolean => {
      const k = key?.key;
      if (k === undefined) return false;
      const internal = m.internalDate.getTime();
      const headers = m.index.headers;
      switch (k.$case) {
        case 'all':
          return true;
        case 'uid':
          return inIntervals(m.uid, resolveUidSet(k.value, highestUid));
        case 'flag':
          return m.flags.has(k.value);
        case 'keyword':
          return m.keywords.has(k.value);
        case 'before':
          return internal < dayStart(k.value);
        case 'on':
          return internal >= dayStart(k.value) && internal < dayStart(k.value) + DAY_MS;
        case 'since':
          return internal >= dayStart(k.value);
        case 'sentBefore':
          return dayOf(headers.date) < dayStart(k.value);
        case 'sentOn':
          return dayOf(headers.date) === dayStart(k.value);
        case 'sentSince':
          return dayOf(headers.date) >= dayStart(k.value);
        case 'larger':
          return m.body.length > k.value;
        case 'smaller':
          return m.body.length < k.value;
        case 'modseq':
          return m.modseq >= k.value;
        case 'olderThanSeconds':
          return internal < now - k.value * 1000;
        case 'youngerThanSeconds':
          return internal >= now - k.value * 1000;
        case 'subject':
          return contains(headers.subject ?? '', k.value);
        case 'from':
          return contains(addressText(headers.from), k.value);
        case 'to':
          return contains(addressText(headers.to), k.value);
        case 'cc':
          return contains(addressText(headers.cc), k.value);
        case 'bcc':
          return contains(addressText(headers.bcc), k.value);
        case 'body':
          return contains(m.index.textForSearch ?? '', k.value);
        case 'text':
          return contains(this.#headerText(m), k.value) || contains(m.index.textForSearch ?? '', k.value);
        case 'header': {
          const name = k.value.field.toLowerCase();
          const fields = this.#headerFields(m).filter((f) => f.name === name);
          // RFC 9051 §6.4.4 HEADER: an empty string matches every message that has the field.
          if (k.value.value === '') return fields.length > 0;
          return fields.some((f) => contains(decodeEncodedWords(f.value), k.value.value));
        }
        case 'emailId':
          return m.emailId === k.value;
        case 'threadId':
          return m.threadId === k.value;
        case 'not':
          return !matches(k.value, m);
        case 'and':
          return k.value.keys.every((child) => matches(child, m));
        case 'or':
          return k.value.keys.some((child) => matches(child, m));
      }
    };
    const uids = mailbox.messages.filter((m) => matches(request.query, m)).map((m) => m.uid);
    return Promise.resolve({ uids, highestModseq: mailbox.highestModseq });
  }

  #headerFields(m: StoredMessage): { name: string; value: string }[] {
    const offsets = m.index.bodystructure.offsets;
    return parseHeaderBlock(m.body.subarray(offsets.headerStart, offsets.bodyStart)).map((f) => ({
      name: f.name.toLowerCase(),
      value: f.value,
    }));
  }

  #headerText(m: StoredMessage): string {
    return this.#headerFields(m)
      .map((f) => `${f.name}: ${decodeEncodedWords(f.value)}`)
      .join('\n');
  }

  getQuota(request: mailstore.GetQuotaRequest): Promise<mailstore.GetQuotaResponse> {
    this.#call('GetQuota');
    const user = this.#user('GetQuota', request.userId);
    const used = this.#usage(user.id);
    return Promise.resolve({
      usedBytes: used.bytes,
      limitBytes: user.limitBytes,
      usedMessages: used.messages,
      limitMessages: user.limitMessages,
    });
  }

  getChanges(request: mailstore.GetChangesRequest): Promise<mailstore.GetChangesResponse> {
    this.#call('GetChanges');
    const mailbox = this.#byId('GetChanges', request, null);
    const base = {
      highestModseq: mailbox.highestModseq,
      uidValidity: mailbox.uidValidity,
      uidNext: mailbox.uidNext,
    };
    if (request.uidValidity !== 0 && request.uidValidity !== mailbox.uidValidity) {
      // RFC 7162 §3.2.5.2: the client's cache is void.
      return Promise.resolve({ ...base, changed: [], vanished: { ranges: [] }, uidValidityChanged: true });
    }
    const known =
      request.knownUids === undefined
        ? null
        : resolveUidSet(request.knownUids, Math.max(1, mailbox.uidNext - 1));
    const changed = mailbox.messages
      .filter((m) => m.modseq > request.sinceModseq)
      .map((m) => ({ uid: m.uid, modseq: m.modseq, flags: [...m.flags], keywords: [...m.keywords] }));
    const vanished = mailbox.tombstones
      .filter((t) => t.modseq > request.sinceModseq && (known === null || inIntervals(t.uid, known)))
      .map((t) => t.uid);
    return Promise.resolve({
      ...base,
      changed,
      vanished: uidSetFromUids(vanished),
      uidValidityChanged: false,
    });
  }

  // --- Access control (RFC 4314) --------------------------------------------------------------

  #grantee(rpc: string, identifier: string): string {
    if (identifier.toLowerCase() === 'anyone') return 'anyone';
    const user = this.userByAddress(identifier);
    if (user === undefined) throw refusal(rpc, ErrorReason.NOT_FOUND, 'no such user', 'identifier');
    return user.id;
  }

  #parseRights(rpc: string, text: string): { mode: 'replace' | 'add' | 'remove'; rights: string } {
    const mode = text.startsWith('+') ? 'add' : text.startsWith('-') ? 'remove' : 'replace';
    const body = mode === 'replace' ? text : text.slice(1);
    const letters: string[] = [];
    for (const ch of body) {
      if (RIGHTS.includes(ch)) letters.push(ch);
      else if (ch === 'c') letters.push('k');
      else if (ch === 'd') letters.push('x', 't', 'e');
      // RFC 4314 §3.1: an unrecognised right MUST fail the command.
      else throw refusal(rpc, ErrorReason.INVALID_ARGUMENT, `the right "${ch}" is not supported`, 'rights');
    }
    return { mode, rights: canonicalRights(letters) };
  }

  #administered(
    rpc: string,
    request: {
      userId: string;
      actingUserId?: string | undefined;
      mailbox?: mailstore.MailboxSelector | undefined;
    },
  ): FakeMailbox {
    return this.#resolve(rpc, request, request.mailbox, 'a');
  }

  #isOwner(mailbox: FakeMailbox, identifier: string): boolean {
    return this.users.get(mailbox.ownerId)?.address.toLowerCase() === identifier.toLowerCase();
  }

  setMailboxAcl(request: mailstore.SetMailboxAclRequest): Promise<mailstore.SetMailboxAclResponse> {
    const rpc = 'SetMailboxAcl';
    this.#call(rpc);
    const change = this.#parseRights(rpc, request.rights);
    const mailbox = this.#administered(rpc, request);
    if (this.#isOwner(mailbox, request.identifier)) {
      throw refusal(rpc, ErrorReason.NOT_ALLOWED, "the owner's rights cannot change", 'identifier');
    }
    const grantee = this.#grantee(rpc, request.identifier);
    const current = mailbox.acl.get(grantee)?.rights ?? '';
    const next =
      change.mode === 'replace'
        ? change.rights
        : change.mode === 'add'
          ? canonicalRights([...current, ...change.rights])
          : canonicalRights([...current].filter((r) => !change.rights.includes(r)));
    mailbox.acl.set(grantee, { identifier: request.identifier, rights: next });
    return Promise.resolve({ rights: withVirtualRights(next) });
  }

  deleteMailboxAcl(request: mailstore.DeleteMailboxAclRequest): Promise<mailstore.DeleteMailboxAclResponse> {
    const rpc = 'DeleteMailboxAcl';
    this.#call(rpc);
    const mailbox = this.#administered(rpc, request);
    if (this.#isOwner(mailbox, request.identifier)) {
      throw refusal(rpc, ErrorReason.NOT_ALLOWED, "the owner's rights cannot change", 'identifier');
    }
    mailbox.acl.delete(this.#grantee(rpc, request.identifier));
    return Promise.resolve({});
  }

  getMailboxAcl(request: mailstore.GetMailboxAclRequest): Promise<mailstore.GetMailboxAclResponse> {
    this.#call('GetMailboxAcl');
    const mailbox = this.#administered('GetMailboxAcl', request);
    const owner = this.users.get(mailbox.ownerId)?.address ?? '';
    const entries = [...mailbox.acl.values()]
      .sort((a, b) => (a.identifier < b.identifier ? -1 : 1))
      .map((e) => ({ identifier: e.identifier, rights: withVirtualRights(e.rights) }));
    return Promise.resolve({
      entries: [{ identifier: owner, rights: withVirtualRights(RIGHTS) }, ...entries],
    });
  }

  listMailboxRights(
    request: mailstore.ListMailboxRightsRequest,
  ): Promise<mailstore.ListMailboxRightsResponse> {
    this.#call('ListMailboxRights');
    const mailbox = this.#administered('ListMailboxRights', request);
    // RFC 4314 §3.7: the owner has every right; others may get each right alone.
    if (this.#isOwner(mailbox, request.identifier)) {
      return Promise.resolve({ required: withVirtualRights(RIGHTS), optional: [] });
    }
    return Promise.resolve({ required: '', optional: [...RIGHTS, 'c', 'd'] });
  }

  getMyRights(request: mailstore.GetMyRightsRequest): Promise<mailstore.GetMyRightsResponse> {
    this.#call('GetMyRights');
    const mailbox = this.#resolve('GetMyRights', request, request.mailbox, null);
    return Promise.resolve({ rights: withVirtualRights(this.#rights(mailbox, request.actingUserId)) });
  }

  listSharedMailboxes(
    request: mailstore.ListSharedMailboxesRequest,
  ): Promise<mailstore.ListSharedMailboxesResponse> {
    this.#call('ListSharedMailboxes');
    const grantee = this.#user('ListSharedMailboxes', request.userId);
    const out: mailstore.SharedMailbox[] = [];
    for (const mailbox of this.#mailboxes.values()) {
      if (mailbox.ownerId === grantee.id) continue;
      const rights = this.#rights(mailbox, grantee.id);
      if (!rights.includes('l')) continue;
      const owner = this.users.get(mailbox.ownerId);
      if (owner === undefined) continue;
      out.push({
        ownerUserId: owner.id,
        ownerAddress: owner.address,
        rights: withVirtualRights(rights),
        mailbox: { ...this.#describe(mailbox), subscribed: false },
      });
    }
    return Promise.resolve({ mailboxes: out });
  }

  createSharedMailbox(
    request: mailstore.CreateSharedMailboxRequest,
  ): Promise<mailstore.CreateSharedMailboxResponse> {
    this.#call('CreateSharedMailbox');
    const rpc = 'CreateSharedMailbox';
    const owner = this.#user(rpc, request.userId);
    const path = this.#validateNewPath(rpc, request.path, 'path');
    const mailbox =
      this.#byPath(owner.id, path) ?? this.#newMailbox(owner.id, path, mailstore.SpecialUse.UNSPECIFIED);
    for (const member of request.members) {
      mailbox.acl.set(this.#grantee(rpc, member.identifier), {
        identifier: member.identifier,
        rights: this.#parseRights(rpc, member.rights).rights,
      });
    }
    return Promise.resolve({ mailbox: this.#describe(mailbox), entries: [] });
  }

  // --- Sieve scripts (ManageSieve; not used by IMAP commands) --------------------------------

  putSieveScript(request: mailstore.PutSieveScriptRequest): Promise<mailstore.PutSieveScriptResponse> {
    this.#call('PutSieveScript');
    if (!request.checkOnly)
      this.#user('PutSieveScript', request.userId).sieve.set(request.name, request.content);
    return Promise.resolve({});
  }

  getSieveScript(request: mailstore.GetSieveScriptRequest): Promise<mailstore.GetSieveScriptResponse> {
    this.#call('GetSieveScript');
    const content = this.#user('GetSieveScript', request.userId).sieve.get(request.name);
    if (content === undefined)
      throw refusal('GetSieveScript', ErrorReason.NOT_FOUND, 'no such script', 'name');
    return Promise.resolve({ content });
  }

  listSieveScripts(request: mailstore.ListSieveScriptsRequest): Promise<mailstore.ListSieveScriptsResponse> {
    this.#call('ListSieveScripts');
    const user = this.#user('ListSieveScripts', request.userId);
    return Promise.resolve({
      scripts: [...user.sieve.keys()].map((name) => ({ name, active: name === user.activeSieve })),
    });
  }

  setActiveSieveScript(
    request: mailstore.SetActiveSieveScriptRequest,
  ): Promise<mailstore.SetActiveSieveScriptResponse> {
    this.#call('SetActiveSieveScript');
    const user = this.#user('SetActiveSieveScript', request.userId);
    if (request.name !== '' && !user.sieve.has(request.name)) {
      throw refusal('SetActiveSieveScript', ErrorReason.NOT_FOUND, 'no such script', 'name');
    }
    user.activeSieve = request.name === '' ? null : request.name;
    return Promise.resolve({});
  }

  deleteSieveScript(
    request: mailstore.DeleteSieveScriptRequest,
  ): Promise<mailstore.DeleteSieveScriptResponse> {
    this.#call('DeleteSieveScript');
    const user = this.#user('DeleteSieveScript', request.userId);
    if (!user.sieve.delete(request.name)) {
      throw refusal('DeleteSieveScript', ErrorReason.NOT_FOUND, 'no such script', 'name');
    }
    return Promise.resolve({});
  }
}
