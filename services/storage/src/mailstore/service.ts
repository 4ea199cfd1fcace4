/**
 * The `MailstoreService` gRPC server (proto/postmesh/mailstore/v1/mailstore.proto): thin
 * handlers that validate the request, call the Mailstore and map expected failures onto a gRPC
 * status with an `ErrorDetail` (errors.proto). Unexpected failures are logged with their cause
 * and answered INTERNAL (UNAVAILABLE when the database is unreachable) without it, by storage's
 * one adapter (../grpc/unary.ts); a body that fails authentication is DATA_LOSS.
 */
import { status, type ServerWritableStream } from '@grpc/grpc-js';
import {
  ErrorReason,
  grpcCodeFor,
  toGrpcError,
  mailstore,
  type MailstoreServiceServer,
} from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import { failureStatus, serveUnary } from '../grpc/unary.js';
import { BlobIntegrityError, MailstoreError } from './errors.js';
import { storedFlags } from './flags.js';
import type { Mailstore, MailboxRef } from './mailstore.js';
import type { ListedMailbox } from './mailboxes.js';
import { DELIMITER } from './paths.js';
import { specialUseValue } from './mailboxes.js';
import type { SieveScripts } from '../sieve/script-store.js';
import { checkScript } from '@postmesh/sieve';
import { MailboxAccess, actsAsOwner, denied, dropUnpermittedFlags } from '../acl/access.js';
import { aclHandlers, permittedFlags } from '../acl/handlers.js';
import type { MailboxAcls } from '../acl/acl-store.js';

/** Messages per FetchMessages response at most, whatever the client asks. */
const FETCH_BATCH_MAX = 4096;
/** Approximate bytes per batched response (gRPC's default limit on a message is 4 MiB). */
const FETCH_BATCH_BYTES = 1024 * 1024;

/** The mailstore's refusals; everything else goes through storage's one adapter (grpc/unary.ts). */
function expectedFailure(error: unknown): Error | undefined {
  if (error instanceof MailstoreError) {
    return toGrpcError(grpcCodeFor(error.reason), {
      reason: error.reason,
      message: error.message,
      field: error.field,
    });
  }
  if (error instanceof BlobIntegrityError) {
    return Object.assign(new Error('stored message failed an integrity check'), { code: status.DATA_LOSS });
  }
  return undefined;
}

function failure(error: unknown, logger: Logger, rpc: string): Error {
  if (error instanceof BlobIntegrityError)
    logger.error({ err: error, rpc }, 'stored message failed authentication');
  return failureStatus(error, logger, rpc, expectedFailure);
}

function unary<Req, Res>(logger: Logger, rpc: string, run: (request: Req) => Promise<Res>) {
  return serveUnary(logger, rpc, run, expectedFailure);
}

function required<T>(value: T | undefined, field: string): T {
  if (value === undefined)
    throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, `${field} is required`, field);
  return value;
}

function userOf(request: { userId: string }): string {
  if (request.userId === '')
    throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'user_id is required', 'user_id');
  return request.userId;
}

function selector(value: mailstore.MailboxSelector | undefined, field: string): MailboxRef {
  const s = value?.selector;
  if (s === undefined) throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, `${field} is required`, field);
  return s.$case === 'id' ? { id: s.value } : { path: s.value };
}

export function toMailbox(listed: ListedMailbox): mailstore.Mailbox {
  const r = listed.record;
  return {
    id: r?._id.toHexString() ?? '',
    path: listed.path,
    delimiter: DELIMITER,
    specialUse: specialUseValue(r?.specialUse ?? null),
    subscribed: listed.subscribed,
    hasChildren: listed.hasChildren,
    uidValidity: r?.uidValidity ?? 0,
    uidNext: r?.uidNext ?? 0,
    highestModseq: r?.highestModseq ?? 0,
    nonexistent: r === null,
  };
}

async function streamOut<Req, Res>(
  call: ServerWritableStream<Req, Res>,
  logger: Logger,
  rpc: string,
  items: () => AsyncIterable<Res>,
): Promise<void> {
  try {
    for await (const item of items()) {
      if (call.cancelled) return;
      if (!call.write(item)) await new Promise<void>((resolve) => call.once('drain', resolve));
    }
    call.end();
  } catch (error) {
    // grpc-js ends a server stream with a status (and its trailers) on an 'error' event.
    call.emit('error', failure(error, logger, rpc));
  }
}

/** The grpc-js implementation of `MailstoreService` over a Mailstore. */
/** The user's Sieve scripts (docs/sieve.md); absent, the script RPCs answer UNIMPLEMENTED. */
function sieveScripts(scripts: SieveScripts | undefined): SieveScripts {
  if (scripts === undefined)
    throw Object.assign(new Error('Sieve scripts are not served here'), { code: status.UNIMPLEMENTED });
  return scripts;
}

export function mailstoreServer(
  store: Mailstore,
  logger: Logger,
  scripts?: SieveScripts,
  acls?: MailboxAcls,
): MailstoreServiceServer {
  // RFC 4314: calls naming another acting user are checked against the owner's ACL (../acl).
  const access = acls === undefined ? undefined : new MailboxAccess(store, acls);
  const gate = (): MailboxAccess => {
    if (access === undefined)
      throw new MailstoreError(
        ErrorReason.NOT_ALLOWED,
        'shared mailboxes are not served here',
        'acting_user_id',
      );
    return access;
  };
  /** Owner's calls skip the ACL (and its reads); others need `rights` on the mailbox. */
  const allow = async (
    r: { userId: string; actingUserId?: string | undefined },
    ref: MailboxRef,
    rights: Parameters<MailboxAccess['require']>[3],
    field = 'mailbox',
  ): Promise<string> => {
    if (actsAsOwner(r.userId, r.actingUserId)) return 'lrswipkxtea';
    return gate().require(userOf(r), r.actingUserId ?? '', ref, rights, field);
  };
  return {
    ...aclHandlers(gate, logger, store),
    listMailboxes: unary(logger, 'ListMailboxes', async (r: mailstore.ListMailboxesRequest) => ({
      mailboxes: (
        await store.listMailboxes({
          userId: userOf(r),
          reference: r.reference,
          pattern: r.pattern,
          subscribedOnly: r.subscribedOnly,
          specialUse: r.specialUse,
        })
      ).map(toMailbox),
    })),
    createMailbox: unary(logger, 'CreateMailbox', async (r: mailstore.CreateMailboxRequest) => {
      if (!actsAsOwner(r.userId, r.actingUserId))
        await gate().requireCreate(userOf(r), r.actingUserId ?? '', r.path);
      const created = await store.createMailbox(userOf(r), r.path, r.specialUse, r.subscribe);
      return { mailbox: toMailbox(created.mailbox), createdParents: created.createdParents };
    }),
    renameMailbox: unary(logger, 'RenameMailbox', async (r: mailstore.RenameMailboxRequest) => {
      // RFC 4314 §4 RENAME: "x" on the mailbox and "k" on the new parent.
      if (!actsAsOwner(r.userId, r.actingUserId)) {
        await allow(r, selector(r.mailbox, 'mailbox'), ['x']);
        await gate().requireCreate(userOf(r), r.actingUserId ?? '', r.newPath, 'new_path');
      }
      return {
        mailbox: toMailbox(await store.renameMailbox(userOf(r), selector(r.mailbox, 'mailbox'), r.newPath)),
      };
    }),
    deleteMailbox: unary(logger, 'DeleteMailbox', async (r: mailstore.DeleteMailboxRequest) => {
      await allow(r, selector(r.mailbox, 'mailbox'), ['x']);
      const mailboxId = await store.deleteMailbox(userOf(r), selector(r.mailbox, 'mailbox'));
      // RFC 4314 §4: DELETE MUST delete the mailbox's ACL.
      await acls?.removeMailbox(mailboxId);
      return { mailboxId };
    }),
    setSubscribed: unary(logger, 'SetSubscribed', async (r: mailstore.SetSubscribedRequest) => {
      await store.setSubscribed(userOf(r), r.path, r.subscribed);
      return {};
    }),
    getMailboxStatus: unary(
      logger,
      'GetMailboxStatus',
      async (r: mailstore.GetMailboxStatusRequest): Promise<mailstore.GetMailboxStatusResponse> => {
        await allow(r, selector(r.mailbox, 'mailbox'), ['r']);
        return store.getMailboxStatus(userOf(r), selector(r.mailbox, 'mailbox'), r.claimRecent);
      },
    ),
    appendMessage(call, callback) {
      const chunks = call as AsyncIterable<mailstore.AppendMessageRequest>;
      const run = async (): Promise<mailstore.AppendMessageResponse> => {
        const iterator = chunks[Symbol.asyncIterator]();
        const first = await iterator.next();
        const header =
          first.done === true || first.value.part?.$case !== 'header' ? undefined : first.value.part.value;
        if (header === undefined) {
          throw new MailstoreError(
            ErrorReason.INVALID_ARGUMENT,
            'the first message must be the header',
            'header',
          );
        }
        const body = (async function* () {
          for (;;) {
            const next = await iterator.next();
            if (next.done === true) return;
            const part = next.value.part;
            if (part?.$case !== 'chunk') {
              throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'header sent twice', 'header');
            }
            yield part.value;
          }
        })();
        // RFC 4314 §4: "i" to append; flags the user has no right to set are dropped, not refused.
        const rights = await allow(
          header,
          selector(header.mailbox, 'header.mailbox'),
          ['i'],
          'header.mailbox',
        );
        const flags = permittedFlags(rights, header.flags, header.keywords);
        return store.appendMessage(
          {
            userId: userOf(header),
            mailbox: selector(header.mailbox, 'header.mailbox'),
            flags: storedFlags(flags.flags, flags.keywords, 'header'),
            ...(header.internalDate === undefined ? {} : { internalDate: header.internalDate }),
            ...(header.size > 0 ? { declaredSize: header.size } : {}),
          },
          body,
        );
      };
      run().then(
        (response) => callback(null, response),
        (error: unknown) => callback(failure(error, logger, 'AppendMessage')),
      );
    },
    fetchMessages(call) {
      const r = call.request;
      void streamOut(call, logger, 'FetchMessages', async function* () {
        await allow(r, { id: r.mailboxId }, ['r'], 'mailbox_id');
        const batches = store.fetchMessageBatches(userOf(r), r.mailboxId, r.uids, r.changedSince, r.fields);
        const maxBatch = Math.min(r.maxBatch ?? 0, FETCH_BATCH_MAX);
        if (maxBatch <= 1) {
          for await (const messages of batches) {
            for (const message of messages) yield { message, messages: [] };
          }
          return;
        }
        // Batched (SELECT, FETCH 1:*): few stream messages, each under FETCH_BATCH_BYTES.
        let batch: mailstore.MessageMetadata[] = [];
        let bytes = 0;
        for await (const messages of batches) {
          for (const message of messages) {
            batch.push(message);
            bytes +=
              64 + message.envelopeJson.length + message.bodystructureJson.length + message.header.length;
            if (batch.length >= maxBatch || bytes >= FETCH_BATCH_BYTES) {
              yield { message: undefined, messages: batch };
              batch = [];
              bytes = 0;
            }
          }
        }
        if (batch.length > 0) yield { message: undefined, messages: batch };
      });
    },
    getMessageContent(call) {
      const r = call.request;
      void streamOut(call, logger, 'GetMessageContent', async function* () {
        await allow(r, { id: r.mailboxId }, ['r'], 'mailbox_id');
        const content = await store.getMessageContent(
          userOf(r),
          r.mailboxId,
          r.uid,
          r.section,
          r.partial,
          r.decodeTransferEncoding,
        );
        if (r.acceptContentInInfo === true && Array.isArray(content.chunks)) {
          // Read and authenticated in memory already (a small section): one response, not two
          // or more, each of which costs its own encoding, write and stream bookkeeping.
          const chunks = content.chunks as readonly Buffer[];
          const whole = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
          yield { part: { $case: 'info' as const, value: { ...content.info, content: whole } } };
          return;
        }
        yield { part: { $case: 'info' as const, value: content.info } };
        for await (const chunk of content.chunks) yield { part: { $case: 'chunk' as const, value: chunk } };
      });
    },
    storeFlags: unary(logger, 'StoreFlags', async (r: mailstore.StoreFlagsRequest) => {
      let flags: { flags: mailstore.Flag[]; keywords: string[] } = { flags: r.flags, keywords: r.keywords };
      if (!actsAsOwner(r.userId, r.actingUserId)) {
        const rights = await allow(r, { id: r.mailboxId }, ['r'], 'mailbox_id');
        // RFC 4314 §4 STORE: "s" for \Seen, "t" for \Deleted, "w" for the others. FLAGS (replace)
        // touches every kind, so it needs all three; +FLAGS/-FLAGS change what the user may and
        // fail only when that is nothing ("SHOULD NOT fail if … at least one flag").
        if (r.mode === mailstore.StoreMode.REPLACE) {
          for (const right of ['s', 'w', 't'] as const) if (!rights.includes(right)) throw denied(right);
        } else {
          const permitted = permittedFlags(rights, r.flags, r.keywords);
          const asked = r.flags.length + r.keywords.length;
          if (asked > 0 && permitted.flags.length + permitted.keywords.length === 0)
            throw denied(permitted.missing[0] ?? 'w');
          flags = permitted;
        }
      }
      return store.storeFlags(
        userOf(r),
        r.mailboxId,
        required(r.uids, 'uids'),
        r.mode,
        storedFlags(flags.flags, flags.keywords, 'request'),
        r.unchangedSince,
      );
    }),
    copyMessages: unary(logger, 'CopyMessages', async (r: mailstore.CopyMessagesRequest) => {
      await allow(r, { id: r.mailboxId }, ['r'], 'mailbox_id');
      const rights = await allow(r, selector(r.destination, 'destination'), ['i'], 'destination');
      const copied = await store.copyMessages(
        userOf(r),
        r.mailboxId,
        required(r.uids, 'uids'),
        selector(r.destination, 'destination'),
      );
      const copies = copied.mappings.map((m) => m.destinationUid);
      await dropUnpermittedFlags(store, userOf(r), copied.destinationMailboxId, copies, rights);
      return copied;
    }),
    moveMessages: unary(logger, 'MoveMessages', async (r: mailstore.MoveMessagesRequest) => {
      // RFC 6851 §4.4 / RFC 4314 §4: MOVE is COPY, STORE \Deleted and EXPUNGE at the source.
      await allow(r, { id: r.mailboxId }, ['r', 't', 'e'], 'mailbox_id');
      const rights = await allow(r, selector(r.destination, 'destination'), ['i'], 'destination');
      const moved = await store.moveMessages(
        userOf(r),
        r.mailboxId,
        required(r.uids, 'uids'),
        selector(r.destination, 'destination'),
      );
      const copies = moved.mappings.map((m) => m.destinationUid);
      await dropUnpermittedFlags(store, userOf(r), moved.destinationMailboxId, copies, rights);
      return moved;
    }),
    expunge: unary(logger, 'Expunge', async (r: mailstore.ExpungeRequest) => {
      await allow(r, { id: r.mailboxId }, ['e'], 'mailbox_id');
      return store.expunge(userOf(r), r.mailboxId, r.uids);
    }),
    search: unary(logger, 'Search', async (r: mailstore.SearchRequest) => {
      await allow(r, { id: r.mailboxId }, ['r'], 'mailbox_id');
      return store.search(userOf(r), r.mailboxId, required(r.query, 'query'));
    }),
    getQuota: unary(logger, 'GetQuota', async (r: mailstore.GetQuotaRequest) => store.getQuota(userOf(r))),
    getChanges: unary(logger, 'GetChanges', async (r: mailstore.GetChangesRequest) => {
      await allow(r, { id: r.mailboxId }, ['r'], 'mailbox_id');
      return store.getChanges(userOf(r), r.mailboxId, r.sinceModseq, r.uidValidity, r.knownUids);
    }),
    putSieveScript: unary(logger, 'PutSieveScript', async (r: mailstore.PutSieveScriptRequest) => {
      const userId = userOf(r);
      if (r.checkOnly) {
        const check = checkScript(r.content);
        if (!check.ok) throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, check.error.message, 'content');
        return {};
      }
      const put = await sieveScripts(scripts).put(userId, r.name, r.content);
      if (put.ok) return {};
      switch (put.code) {
        case 'invalid':
          throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, put.message, 'content');
        case 'name':
          throw new MailstoreError(ErrorReason.INVALID_NAME, put.message, 'name');
        case 'quota':
          throw new MailstoreError(ErrorReason.LIMIT_EXCEEDED, put.message, 'name');
      }
    }),
    getSieveScript: unary(logger, 'GetSieveScript', async (r: mailstore.GetSieveScriptRequest) => {
      const content = await sieveScripts(scripts).get(userOf(r), r.name);
      if (content === null) throw new MailstoreError(ErrorReason.NOT_FOUND, 'no such script', 'name');
      return { content };
    }),
    listSieveScripts: unary(logger, 'ListSieveScripts', async (r: mailstore.ListSieveScriptsRequest) => ({
      scripts: await sieveScripts(scripts).list(userOf(r)),
    })),
    setActiveSieveScript: unary(
      logger,
      'SetActiveSieveScript',
      async (r: mailstore.SetActiveSieveScriptRequest) => {
        if (!(await sieveScripts(scripts).setActive(userOf(r), r.name === '' ? null : r.name)))
          throw new MailstoreError(ErrorReason.NOT_FOUND, 'no such script', 'name');
        return {};
      },
    ),
    deleteSieveScript: unary(logger, 'DeleteSieveScript', async (r: mailstore.DeleteSieveScriptRequest) => {
      const result = await sieveScripts(scripts).delete(userOf(r), r.name);
      if (result === 'missing') throw new MailstoreError(ErrorReason.NOT_FOUND, 'no such script', 'name');
      // RFC 5804 §2.10: the active script cannot be deleted.
      if (result === 'active')
        throw new MailstoreError(ErrorReason.NOT_ALLOWED, 'the active script cannot be deleted', 'name');
      return {};
    }),
  };
}
