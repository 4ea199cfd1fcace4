/**
 * The queue hook of DESIGN §2 steps 2–4: a message up to INLINE_MESSAGE_LIMIT travels inline in
 * the job; a larger one is streamed into the `mail-spool` object store first. The job is
 * published to MAIL_INBOUND with `Nats-Msg-Id = <spoolId>:MAIL_INBOUND`, and the client hears
 * `250 2.0.0 queued as <spoolId>` only once the PubAck is in (with `sync_interval: always`, after
 * fsync). Any failure before that is a 451 4.3.0: the sender keeps the message and retries
 * (RFC 5321 §4.2.5: a 250 after DATA means we have taken responsibility).
 */
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import {
  INLINE_MESSAGE_LIMIT,
  Streams,
  Subjects,
  encodeInboundJob,
  encodeOutboundJob,
  jobMessageId,
  outboundJobMessageId,
  publishDurable,
  spoolObjectName,
  type InboundAuthVerdict,
  type InboundJob,
  type ObjectStore,
  type OutboundJob,
} from '@postmesh/bus';
import type { JetStreamClient } from '@nats-io/jetstream';
import { HookCode, type HarakaConnection, type HookFunction, type PluginHooks } from '../haraka/types.js';

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

export const NO_VERDICT: InboundAuthVerdict = {
  spf: 'none',
  dkim: 'none',
  dmarc: 'none',
  arc: 'none',
  dmarcPolicy: '',
  junk: false,
};

export interface QueueEvent {
  readonly spoolId: string;
  readonly job: InboundJob;
  readonly connection: HarakaConnection;
}

export interface QueuePluginOptions {
  readonly js: () => JetStreamClient;
  readonly spool: () => Promise<ObjectStore>;
  readonly timeoutMs: number;
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

export function queueHooks(options: QueuePluginOptions): PluginHooks {
  const queue: HookFunction = (next, connection) => {
    const transaction = connection.transaction;
    if (transaction === null) {
      next(HookCode.CONT, '4.3.0 Internal error, try again later');
      return;
    }
    const spoolId = newSpoolId();
    const objectNames: string[] = [];
    const run = async (): Promise<void> => {
      // haraka-message-stream's default (`dot_stuffed: true`: the spool is dot-stuffed, undo it)
      // yields the message as the client meant it (RFC 5321 §4.5.2).
      const stream = transaction.message_stream.pipe(new PassThrough({ highWaterMark: 256 * 1024 }));
      const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const head = await readHead(iterator, INLINE_MESSAGE_LIMIT - JSON_MARGIN);
      const base = {
        version: 1 as const,
        spoolId,
        envelope: {
          mailFrom: transaction.mail_from.isNull() ? '' : transaction.mail_from.address,
          rcptTo: transaction.rcpt_to.map((r) => r.address),
          remoteIp: connection.remote.ip,
          helo: connection.hello.host ?? '',
        },
        authResults: (transaction.notes.postmeshAuth as InboundAuthVerdict | undefined) ?? NO_VERDICT,
        receivedAt: new Date().toISOString(),
        messageId: (transaction.header.get('Message-ID') || '').trim().replace(/^<|>$/g, '').slice(0, 998),
        traceparent: '',
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
      const job: InboundJob = {
        ...base,
        envelope: { ...base.envelope, rcptTo: routes.local },
        body: inboundBody,
      };
      const publishes: Promise<unknown>[] = [];
      if (routes.local.length > 0) {
        publishes.push(
          publishDurable(options.js(), Subjects.inbound(spoolId), encodeInboundJob(job, inline), {
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
          publishDurable(options.js(), Subjects.outbound(domain), encodeOutboundJob(outbound, inline), {
            msgId: outboundJobMessageId(spoolId, domain),
            expectStream: Streams.MAIL_OUTBOUND,
            timeoutMs: options.timeoutMs,
          }),
        );
      }
      // DESIGN §2 step 4: 250 only once every job is acknowledged.
      await Promise.all(publishes);
      options.onQueued({ spoolId, job, connection });
      // RFC 3463 X.0.0 success; the id lets the sender and the trace find the message.
      next(HookCode.OK, `2.0.0 queued as ${spoolId}`);
    };
    run().catch((error: unknown) => {
      options.onError(error, connection);
      for (const name of objectNames) {
        // Nothing references it: the job was not stored. Best effort; a sweep can find leftovers.
        // (If some jobs were acknowledged before another publish failed, they find their object
        // missing and retry until their DLQ; the client retries with a new spoolId.)
        void options
          .spool()
          .then((store) => store.delete(name))
          .catch(() => undefined);
      }
      // Haraka answers a queue hook that ends in CONT with 451 and our text (RFC 3463 X.3.0).
      next(HookCode.CONT, '4.3.0 Could not queue the message, try again later');
    });
  };
  // Haraka runs `queue_outbound` instead of `queue` for a relaying (authenticated submission)
  // session; both must end here, or Haraka's own (disabled) outbound would answer 250.
  return { hook_queue: queue, hook_queue_outbound: queue };
}
