/**
 * Helpers for the mailstore integration suites: users with real data keys, typed calls of every
 * Mailstore RPC over a real gRPC connection (unary, client-streaming AppendMessage and the
 * server-streaming Fetch/GetMessageContent), on top of the shared storage harness.
 */
import type { ServiceError } from '@grpc/grpc-js';
import {
  errorDetailOf,
  type MailstoreServiceClient,
  type ErrorReason,
  type mailstore,
} from '@postmesh/contracts';
import { ObjectId, type Db } from 'mongodb';
import { newUserDataKey } from '../src/crypto/index.js';
import { Collections, type UserDoc } from '../src/db/schema.js';
import { Mailstore, createDefaultMailboxes } from '../src/mailstore/index.js';
import {
  call,
  callError,
  callOptions,
  startStorageHarness,
  type StorageHarness,
  type StorageHarnessOptions,
} from './harness.js';

export interface MailstoreHarness {
  readonly h: StorageHarness;
  readonly client: MailstoreServiceClient;
  /** The same store the server uses, for calls the pipeline makes in-process (delivery). */
  readonly store: Mailstore;
  readonly changed: string[];
  stop(): Promise<void>;
}

/**
 * The storage harness (the real storage app, its gRPC server and FerretDB), its Mailstore
 * client, and an in-process Mailstore over the same database for what the delivery consumer calls
 * directly (`deliverToMailboxes`), recording its change notifications.
 */
export async function startMailstoreHarness(
  options: Pick<StorageHarnessOptions, 'logLevel' | 'blobStore' | 'sqlite'> = {},
): Promise<MailstoreHarness> {
  const h = await startStorageHarness(options);
  const changed: string[] = [];
  const store = new Mailstore({
    db: h.db,
    runtime: h.app.mailstoreRuntime,
    blobs: h.app.blobs,
    keyring: h.app.keyring,
    logger: h.logger,
    onMailboxChanged: (userId) => changed.push(userId),
  });
  return { h, client: h.mailstore, store, changed, stop: () => h.stop() };
}

/** A user document with a real data key (as the directory writes it) and the default mailboxes. */
export async function createUser(h: StorageHarness, quotaBytes = 0): Promise<string> {
  const id = new ObjectId();
  const userId = id.toHexString();
  const { dataKey, dataKeyVersion } = await newUserDataKey(h.keyProvider, userId);
  const now = new Date();
  const doc: UserDoc = {
    _id: id,
    address: `u${userId}@example.test`,
    addressKey: `u${userId}@example.test`,
    domain: 'example.test',
    domainId: new ObjectId().toHexString(),
    displayName: 'Test User',
    passwordHash: 'unused',
    status: 'active',
    quotaBytes,
    limits: { messagesPerHour: 100, recipientsPerMessage: 50 },
    dataKey,
    dataKeyVersion,
    createdAt: now,
    updatedAt: now,
  };
  await h.db.collection<UserDoc>(Collections.users).insertOne(doc);
  await createDefaultMailboxes(h.db, userId);
  return userId;
}

export const byPath = (path: string): mailstore.MailboxSelector => ({
  selector: { $case: 'path', value: path },
});
export const byId = (id: string): mailstore.MailboxSelector => ({ selector: { $case: 'id', value: id } });
export const uids = (...ranges: [number, number][]): mailstore.UidSet => ({
  ranges: ranges.map(([first, last]) => ({ first, last })),
});
export const ALL_UIDS = uids([1, 0]);

export interface AppendOptions {
  readonly flags?: mailstore.Flag[];
  readonly keywords?: string[];
  readonly internalDate?: Date;
  /** Declared size; defaults to the real one. */
  readonly size?: number;
  readonly chunkSize?: number;
}

/** AppendMessage over the client stream: header, then the message in chunks. */
export function append(
  client: MailstoreServiceClient,
  userId: string,
  mailbox: mailstore.MailboxSelector,
  raw: Uint8Array,
  options: AppendOptions = {},
): Promise<mailstore.AppendMessageResponse> {
  return new Promise((resolve, reject) => {
    const stream = client.appendMessage(callOptions(), (error, response) =>
      error === null ? resolve(response) : reject(error),
    );
    stream.write({
      part: {
        $case: 'header',
        value: {
          userId,
          mailbox,
          flags: options.flags ?? [],
          keywords: options.keywords ?? [],
          internalDate: options.internalDate,
          size: options.size ?? raw.length,
        },
      },
    });
    const step = options.chunkSize ?? 7_000;
    for (let i = 0; i < raw.length; i += step) {
      stream.write({ part: { $case: 'chunk', value: Buffer.from(raw.subarray(i, i + step)) } });
    }
    stream.end();
  });
}

export async function fetchMessages(
  client: MailstoreServiceClient,
  request: Partial<mailstore.FetchMessagesRequest> & { userId: string; mailboxId: string },
): Promise<mailstore.MessageMetadata[]> {
  const stream = client.fetchMessages({ fields: [], uids: ALL_UIDS, ...request }, callOptions());
  const out: mailstore.MessageMetadata[] = [];
  for await (const item of stream as AsyncIterable<mailstore.FetchMessagesResponse>) {
    if (item.message !== undefined) out.push(item.message);
  }
  return out;
}

export async function content(
  client: MailstoreServiceClient,
  request: Partial<mailstore.GetMessageContentRequest> & { userId: string; mailboxId: string; uid: number },
): Promise<{ info: mailstore.ContentInfo; bytes: Buffer }> {
  const stream = client.getMessageContent(
    { section: '', decodeTransferEncoding: false, ...request },
    callOptions(),
  );
  let info: mailstore.ContentInfo | undefined;
  const chunks: Buffer[] = [];
  for await (const item of stream as AsyncIterable<mailstore.GetMessageContentResponse>) {
    if (item.part?.$case === 'info') info = item.part.value;
    else if (item.part?.$case === 'chunk') chunks.push(item.part.value);
  }
  if (info === undefined) throw new Error('no info');
  return { info, bytes: Buffer.concat(chunks) };
}

/** The reason and gRPC code a failed call carried. */
export async function failureOf(
  promise: Promise<unknown>,
): Promise<{ code: number; reason: ErrorReason | undefined; field: string | undefined }> {
  const error: ServiceError = await callError(promise);
  const detail = errorDetailOf(error);
  return { code: error.code, reason: detail?.reason, field: detail?.field };
}

export { call };

/** Builds an RFC 5322 message with CRLF line ends. */
export function message(lines: readonly string[]): Buffer {
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

/** A message as the database holds it once its pending records are folded in. */
export interface FoldedMessage {
  readonly uid: number;
  readonly modseq: number;
  readonly flags: string[];
  readonly size: number;
}

/**
 * The messages of a mailbox read straight from the database, past every cache: the message
 * documents, with the appended flag records (`message_changes`, the latest MODSEQ wins when above
 * the document's) and the pending tombstones (expunged, document not deleted yet) folded in — what
 * any owner rebuilding its index from the database must arrive at.
 */
export async function foldedDocuments(db: Db, mailboxId: string): Promise<FoldedMessage[]> {
  const docs = await db
    .collection<{ uid: number; modseq: number; flags: string[]; size: number }>('messages')
    .find({ mailboxId })
    .sort({ uid: 1 })
    .toArray();
  const changes = await db
    .collection<{ uid: number; modseq: number; flags: string[] }>('message_changes')
    .find({ mailboxId })
    .toArray();
  const expunged = new Set(
    (await db.collection<{ uid: number }>('tombstones').find({ mailboxId, pending: true }).toArray()).map(
      (t) => t.uid,
    ),
  );
  const latest = new Map<number, { modseq: number; flags: string[] }>();
  for (const c of changes) {
    if ((latest.get(c.uid)?.modseq ?? 0) < c.modseq) latest.set(c.uid, c);
  }
  return docs
    .filter((d) => !expunged.has(d.uid))
    .map((d) => {
      const change = latest.get(d.uid);
      const folded = change !== undefined && change.modseq > d.modseq ? change : d;
      return { uid: d.uid, modseq: folded.modseq, flags: [...folded.flags], size: d.size };
    });
}
