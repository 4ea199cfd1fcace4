/**
 * The queue hook of DESIGN §2 steps 2–4: a message up to INLINE_MESSAGE_LIMIT travels inline in
 * the job; a larger one is streamed into the `mail-spool` object store first. The job is
 * published to MAIL_INBOUND with `Nats-Msg-Id = <spoolId>:MAIL_INBOUND`, and the client hears
 * `250 2.0.0 queued as <spoolId>` only once the PubAck is in (with `sync_interval: always`, after
 * fsync). Any failure before that is a 451 4.3.0: the sender keeps the message and retries
 * (RFC 5321 §4.2.5: a 250 after DATA means we have taken responsibility).
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import {
  INLINE_MESSAGE_LIMIT,
  PartitionedInbound,
  Streams,
  Subjects,
  encodeInboundJob,
  encodeOutboundJob,
  jobMessageId,
  mailEvent,
  NO_AUTH_VERDICT,
  outboundJobMessageId,
  PublishError,
  publishDurable,
  spoolObjectName,
  splitRecipientsByPartition,
  type DurablePublishOptions,
  type InboundAuthVerdict,
  type InboundJob,
  type MailEvent,
  type ObjectStore,
  type OutboundJob,
} from '@postmesh/bus';
import type { JetStreamClient } from '@nats-io/jetstream';
import { context, traceparentOf } from '@postmesh/telemetry';
import { transactionContext } from './trace.js';
import {
  DSN,
  HookCode,
  type HarakaConnection,
  type HookFunction,
  type HarakaMessageStream,
  type HookMessage,
  type PluginHooks,
} from '../haraka/types.js';
import { recipientUsers } from './recipients.js';

/**
 * Submitted mail (DESIGN §2 step 3): local recipients stay in the inbound job, remote ones are
 * grouped by domain, one MAIL_OUTBOUND job each (libs/bus outbound-job.ts). Pure, unit-tested.
 */
export function routeRecipients(
  rcptTo: readonly string[],
  remote: readonly string[],
): { local: string[]; remote: Map<string, string[]> } {
  const remoteSet = new Set(remote.map((r) => r.toLowerCase()));
  const local: string[] = [];
  const byDomain = new Map<string, string[]>();
  for (const rcpt of rcptTo) {
    if (!remoteSet.has(rcpt.toLowerCase())) {
      local.push(rcpt);
      continue;
    }
    const domain = rcpt.slice(rcpt.lastIndexOf('@') + 1).toLowerCase();
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), rcpt]);
  }
  return { local, remote: byDomain };
}

/** Time-ordered, URL-safe, unique: `<ms base36><80 random bits base64url>`. */
export function newSpoolId(now = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}${randomBytes(10).toString('base64url')}`;
}

/** The content filter's Junk verdict joins the sender-authentication one (either sends to Junk). */
export function withSpamVerdict(
  auth: InboundAuthVerdict,
  spam: { junk?: unknown } | undefined,
): InboundAuthVerdict {
  return spam?.junk === true && !auth.junk ? { ...auth, junk: true } : auth;
}

export interface QueueEvent {
  readonly spoolId: string;
  readonly job: InboundJob;
  readonly connection: HarakaConnection;
  /** The message's `queued` trace event. */
  readonly queuedEvent: MailEvent;
  /**
   * Whether a MAIL_INBOUND job carries `queuedEvent` (storage stores it with the delivery); when
   * none does (every recipient remote), the caller publishes it itself.
   */
  readonly eventCarried: boolean;
}

/**
 * The `queued` trace event of an accepted message (DESIGN §3). Built before the jobs are
 * published so that the inbound job can carry it (InboundJob.queuedEvent); its `eventId` is
 * derived from the spool id, so whichever way it travels it is stored once.
 */
export function queuedEvent(job: InboundJob, recipients: number, authenticatedAs?: string): MailEvent {
  return mailEvent({
    eventId: `${job.spoolId}:queued`,
    service: 'smtp-inbound',
    kind: 'queued',
    queueId: job.spoolId,
    ...(job.messageId === '' ? {} : { messageId: job.messageId }),
    ...(job.envelope.mailFrom === '' ? {} : { sender: job.envelope.mailFrom }),
    detail: `250 2.0.0 queued as ${job.spoolId}`,
    attributes: {
      // The message's receipt and, for submission, its authentication are recorded on this hop
      // rather than as events of their own: accepting a message pays one durable write.
      remote_ip: job.envelope.remoteIp,
      helo: job.envelope.helo,
      ...(authenticatedAs === undefined ? {} : { authenticated_as: authenticatedAs }),
      recipients: String(recipients),
      size: String(job.body.size),
      spf: job.authResults.spf,
      dkim: job.authResults.dkim,
      dmarc: job.authResults.dmarc,
      // Which domains' webhooks hear of it (libs/bus webhook-events.ts).
      recipient_domains: recipientDomains(job.envelope.rcptTo),
    },
  });
}

/**
 * The distinct domains of some recipients, comma-separated, as many as fit an event attribute
 * whole (never a domain cut in the middle).
 */
export function recipientDomains(recipients: readonly string[], max = 1_000): string {
  const domains = new Set(
    recipients
      .filter((a) => a.includes('@'))
      .map((a) => a.slice(a.lastIndexOf('@') + 1).toLowerCase())
      .filter((d) => d !== ''),
  );
  const out: string[] = [];
  let length = 0;
  for (const domain of domains) {
    if (length + domain.length + (out.length > 0 ? 1 : 0) > max) break;
    length += domain.length + (out.length > 0 ? 1 : 0);
    out.push(domain);
  }
  return out.join(',');
}

export interface QueuePluginOptions {
  readonly js: () => JetStreamClient;
  readonly spool: () => Promise<ObjectStore>;
  readonly timeoutMs: number;
  /**
   * Storage's partition count when storage runs one owner per mailbox (ADR 0007): local
   * recipients are then published as one job per partition of their users, on
   * `mail.inbound.<partition>.<spoolId>`. Undefined: one job on `mail.inbound.<spoolId>`.
   */
  readonly partitions?: number;
  readonly onQueued: (event: QueueEvent) => void;
  readonly onError: (error: unknown, connection: HarakaConnection) => void;
}

/** Reads the first `limit + 1` octets; says whether the whole message fit. */
async function readHead(
  iterator: AsyncIterator<Buffer>,
  limit: number,
): Promise<{ chunks: Buffer[]; size: number; complete: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  while (size <= limit) {
    const step: IteratorResult<Buffer> = await iterator.next();
    if (step.done === true) return { chunks, size, complete: true };
    chunks.push(step.value);
    size += step.value.length;
  }
  return { chunks, size, complete: false };
}

/**
 * Messages up to this size as received are read whole into memory in one pass, straight from
 * Haraka's message stream into a sink, rather than through a stream and an async iterator.
 */
const READ_WHOLE_LIMIT = 128 * 1024;

/** The whole message as `message_stream` writes it (dot-stuffing undone, RFC 5321 §4.5.2). */
function readWhole(messageStream: HarakaMessageStream): Promise<{ chunks: Buffer[]; size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const failed = (error: unknown): void =>
      reject(error instanceof Error ? error : new Error(String(error)));
    messageStream.once('error', failed);
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        size += chunk.length;
        done();
      },
      final(done) {
        messageStream.removeListener('error', failed);
        resolve({ chunks, size });
        done();
      },
    });
    sink.once('error', failed);
    messageStream.pipe(sink);
  });
}

const NOTHING_MORE: AsyncIterator<Buffer> = {
  next: () => Promise.resolve({ done: true, value: undefined }),
};

function webStream(first: Buffer[], rest: AsyncIterator<Buffer>): ReadableStream<Uint8Array> {
  const pending = [...first];
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const head = pending.shift();
      if (head !== undefined) {
        controller.enqueue(new Uint8Array(head.buffer, head.byteOffset, head.byteLength));
        return;
      }
      const step: IteratorResult<Buffer> = await rest.next();
      if (step.done === true) controller.close();
      else
        controller.enqueue(new Uint8Array(step.value.buffer, step.value.byteOffset, step.value.byteLength));
    },
  });
}

/**
 * Name of the `mail-spool` object the outbound jobs of a large submitted message share. It is a
 * separate object from the inbound job's (`spoolObjectName`): storage deletes the inbound
 * object as soon as the local recipients have their copy, while mta-delivery may need its own
 * for days; the last outbound job to become final deletes it (`body.sharedBy`).
 */
export function outboundSpoolObjectName(spoolId: string): string {
  return `out/${spoolId}`;
}

/** The job and its frame; a JSON overhead margin keeps the frame below the inline limit. */
const JSON_MARGIN = 16 * 1024;

/** RFC 5321 §4.2.3 451 "local error in processing"; RFC 3463 X.3.0 (mail system). */
export const COULD_NOT_QUEUE = new DSN(451, '4.3.0 Could not queue the message, try again later');

/** Haraka's Connection methods (connection.js) that answer the result of a queue hook. */
export interface QueueResultResponder {
  queue_respond(retval: number, msg?: HookMessage): void;
  queue_outbound_respond(retval: number, msg?: HookMessage): void;
}

/**
 * Makes every queue result end as 250, 550 or 451, on every port. Haraka answers the `queue`
 * hook in `queue_respond` and the `queue_outbound` hook (relaying, i.e. authenticated
 * submission) in `queue_outbound_respond`, which hands any result other than OK, DENY* or
 * DENYSOFT* (a CONT, a hook that threw) to Haraka's own outbound: it writes the message to
 * `$HARAKA/queue` and answers `250 Message Queued`, for mail that never reached JetStream. And
 * both answer DENYSOFT with 450 ("mailbox unavailable"), the wrong reason for a queue failure.
 * Postmesh never uses Haraka's outbound, so both results are answered here the same way:
 * OK → 250 with our text, DENY → 550, anything else → `451 4.3.0` (RFC 5321 §4.2.5: we have not
 * taken responsibility; the sender keeps the message and retries).
 */
export function answerQueueResults(connection: QueueResultResponder): void {
  const harakaRespond = connection.queue_respond.bind(connection);
  const answer = (retval: number, msg?: HookMessage): void => {
    switch (retval) {
      case HookCode.OK:
      case HookCode.DENY:
      case HookCode.DENYDISCONNECT:
        harakaRespond(retval, msg);
        return;
      default: {
        const reply =
          msg instanceof DSN && msg.code >= 400 && msg.code < 500 ? msg.reply : COULD_NOT_QUEUE.reply;
        // Haraka's queue_respond answers a declined (CONT) queue hook with 451 and this text,
        // then resets the transaction: the session goes on.
        harakaRespond(HookCode.CONT, reply);
      }
    }
  };
  connection.queue_respond = answer;
  connection.queue_outbound_respond = answer;
}

export function queueHooks(options: QueuePluginOptions): PluginHooks {
  const queue: HookFunction = (next, connection) => {
    const transaction = connection.transaction;
    if (transaction === null) {
      next(HookCode.DENYSOFT, COULD_NOT_QUEUE);
      return;
    }
    const spoolId = newSpoolId();
    // The SMTP transaction's span: the jobs published below carry it (field and NATS header).
    const traceContext = transactionContext(transaction);
    const objectNames: string[] = [];
    /** Objects a stored (or possibly stored) job references: never deleted here. */
    const referenced = new Set<string>();
    const run = async (): Promise<void> => {
      // haraka-message-stream's default (`dot_stuffed: true`: the spool is dot-stuffed, undo it)
      // yields the message as the client meant it (RFC 5321 §4.5.2).
      let iterator = NOTHING_MORE;
      let head: { chunks: Buffer[]; size: number; complete: boolean };
      if (transaction.data_bytes <= READ_WHOLE_LIMIT) {
        const whole = await readWhole(transaction.message_stream);
        head = { ...whole, complete: whole.size <= INLINE_MESSAGE_LIMIT - JSON_MARGIN };
      } else {
        const stream = transaction.message_stream.pipe(new PassThrough({ highWaterMark: 256 * 1024 }));
        iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        head = await readHead(iterator, INLINE_MESSAGE_LIMIT - JSON_MARGIN);
      }
      const base = {
        version: 1 as const,
        spoolId,
        envelope: {
          mailFrom: transaction.mail_from.isNull() ? '' : transaction.mail_from.address,
          rcptTo: transaction.rcpt_to.map((r) => r.address),
          remoteIp: connection.remote.ip,
          helo: connection.hello.host ?? '',
        },
        authResults: withSpamVerdict(
          (transaction.notes.postmeshAuth as InboundAuthVerdict | undefined) ?? NO_AUTH_VERDICT,
          transaction.notes.postmeshSpam as { junk?: unknown } | undefined,
        ),
        receivedAt: new Date().toISOString(),
        messageId: (transaction.header.get('Message-ID') || '').trim().replace(/^<|>$/g, '').slice(0, 998),
        traceparent: traceparentOf(traceContext),
      };
      const remoteList = transaction.notes.postmeshRemote;
      const routes = routeRecipients(
        base.envelope.rcptTo,
        Array.isArray(remoteList) ? (remoteList as string[]) : [],
      );
      let inline: Buffer | undefined;
      let inboundBody: InboundJob['body'];
      let outboundBody: OutboundJob['body'];
      if (head.complete) {
        inline = Buffer.concat(head.chunks, head.size);
        inboundBody = outboundBody = { kind: 'inline', size: inline.length };
      } else {
        // A large message: one object for the inbound job, another for the outbound jobs (each
        // side deletes its own when done), written from one pass over the message.
        const wantIn = routes.local.length > 0;
        const wantOut = routes.remote.size > 0;
        const inName = spoolObjectName(spoolId);
        const outName = outboundSpoolObjectName(spoolId);
        const store = await options.spool();
        const source = webStream(head.chunks, iterator);
        const [forIn, forOut] = wantIn && wantOut ? source.tee() : [source, source];
        if (wantIn) objectNames.push(inName);
        if (wantOut) objectNames.push(outName);
        const [inInfo, outInfo] = await Promise.all([
          wantIn ? store.put({ name: inName }, forIn) : undefined,
          wantOut ? store.put({ name: outName }, forOut) : undefined,
        ]);
        const size = inInfo?.size ?? outInfo?.size ?? 0;
        inboundBody = { kind: 'object', size, object: inName };
        outboundBody = { kind: 'object', size, object: outName, sharedBy: [...routes.remote.keys()] };
      }
      const submitter = transaction.notes.postmeshSubmitter as { login?: unknown } | undefined;
      const event = queuedEvent(
        { ...base, body: inboundBody },
        base.envelope.rcptTo.length,
        typeof submitter?.login === 'string' ? submitter.login : undefined,
      );
      const job: InboundJob = {
        ...base,
        envelope: { ...base.envelope, rcptTo: routes.local },
        body: inboundBody,
        queuedEvent: event,
      };
      // Each publish records the object its job references once the job is certainly or
      // possibly in a stream: an acknowledged job needs its object, and so may one whose
      // PubAck never came (the server may have stored it; PublishError.notStored).
      const publishes: Promise<unknown>[] = [];
      const publish = (
        referencing: string | undefined,
        subject: string,
        frame: Uint8Array,
        publishOptions: DurablePublishOptions,
      ): Promise<unknown> =>
        publishDurable(options.js(), subject, frame, publishOptions).then(
          (ack) => {
            if (referencing !== undefined) referenced.add(referencing);
            return ack;
          },
          (error: unknown) => {
            if (referencing !== undefined && !(error instanceof PublishError && error.notStored))
              referenced.add(referencing);
            throw error;
          },
        );
      const inboundObject = inboundBody.kind === 'object' ? inboundBody.object : undefined;
      const split =
        options.partitions === undefined || routes.local.length === 0
          ? undefined
          : splitRecipientsByPartition(
              routes.local,
              (rcpt) => recipientUsers(transaction.notes)[rcpt.toLowerCase()],
              options.partitions,
            );
      // One job per partition of the recipients' users, each pulled by that partition's owner;
      // the shares use one spool object (the last to be delivered deletes it).
      for (const [partition, rcptTo] of split?.byPartition ?? []) {
        const share: InboundJob = {
          ...job,
          envelope: { ...job.envelope, rcptTo },
          users: split?.users ?? [],
        };
        publishes.push(
          publish(
            inboundObject,
            PartitionedInbound.subject(partition, spoolId),
            encodeInboundJob(share, inline),
            {
              msgId: PartitionedInbound.messageId(spoolId, partition),
              expectStream: Streams.MAIL_INBOUND,
              timeoutMs: options.timeoutMs,
            },
          ),
        );
      }
      const unpartitioned = split === undefined ? routes.local : split.unresolved;
      if (unpartitioned.length > 0) {
        const whole: InboundJob = { ...job, envelope: { ...job.envelope, rcptTo: unpartitioned } };
        publishes.push(
          publish(inboundObject, Subjects.inbound(spoolId), encodeInboundJob(whole, inline), {
            msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND),
            expectStream: Streams.MAIL_INBOUND,
            timeoutMs: options.timeoutMs,
          }),
        );
      }
      for (const [domain, rcptTo] of routes.remote) {
        const outbound: OutboundJob = {
          version: 1,
          spoolId,
          domain,
          envelope: { mailFrom: base.envelope.mailFrom, rcptTo },
          body: outboundBody,
          queuedAt: base.receivedAt,
          messageId: base.messageId,
          traceparent: base.traceparent,
        };
        publishes.push(
          publish(
            outboundBody.kind === 'object' ? outboundBody.object : undefined,
            Subjects.outbound(domain),
            encodeOutboundJob(outbound, inline),
            {
              msgId: outboundJobMessageId(spoolId, domain),
              expectStream: Streams.MAIL_OUTBOUND,
              timeoutMs: options.timeoutMs,
            },
          ),
        );
      }
      // DESIGN §2 step 4: 250 only once every job is acknowledged. allSettled, not all: the
      // cleanup below must know the fate of every publish, not only the first to fail.
      const results = await Promise.allSettled(publishes);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      options.onQueued({
        spoolId,
        job,
        connection,
        queuedEvent: event,
        eventCarried: routes.local.length > 0,
      });
      // RFC 3463 X.0.0 success; the id lets the sender and the trace find the message.
      next(HookCode.OK, `2.0.0 queued as ${spoolId}`);
    };
    context.with(traceContext, run).catch((error: unknown) => {
      options.onError(error, connection);
      // Delete only objects no job can reference: when one publish of a message that goes to
      // both MAIL_INBOUND and MAIL_OUTBOUND (or to several domains) was acknowledged and another
      // failed, the acknowledged job is delivered (the client's retry is a new message) and
      // needs its object. Whatever is kept and ends up unreferenced, the spool sweeper removes.
      const unreferenced = objectNames.filter((name) => !referenced.has(name));
      if (unreferenced.length > 0) {
        void options
          .spool()
          .then(async (store) => {
            for (const name of unreferenced) await store.delete(name);
          })
          .catch(() => undefined);
      }
      next(HookCode.DENYSOFT, COULD_NOT_QUEUE);
    });
  };
  // Haraka runs `queue_outbound` instead of `queue` for a relaying (authenticated submission)
  // session; both end here, and `answerQueueResults` keeps Haraka's own outbound out of reach.
  return {
    hook_connect_init(next, connection) {
      answerQueueResults(connection as HarakaConnection & QueueResultResponder);
      next();
    },
    hook_queue: queue,
    hook_queue_outbound: queue,
  };
}
