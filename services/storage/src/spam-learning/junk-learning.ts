/**
 * Users teach the content filter by sorting their mail: a message copied or moved into the
 * `\Junk` mailbox (RFC 6154) is learned as spam, one moved out of Junk (anywhere but `\Trash`)
 * as ham. The Mailstore's COPY/MOVE answers first; the learning request goes through JetStream
 * (stream SPAM_LEARN, a work queue), so an IMAP client never waits on rspamd and a learning
 * request survives restarts and rspamd outages. The consumer reads each message and hands it to
 * rspamd's controller (`POST /learnspam` or `/learnham`).
 */
import { request } from 'node:http';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import {
  ConsumerLoop,
  Consumers,
  JobOutcomes,
  Streams,
  Subjects,
  publishDurable,
  type Bus,
  type JobOutcome,
} from '@postmesh/bus';
import type { MailstoreServiceServer, mailstore } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { Db } from 'mongodb';
import { listMailboxes } from '../mailstore/mailboxes.js';
import type { Mailstore } from '../mailstore/mailstore.js';

export type LearnVerdict = 'spam' | 'ham';

export interface LearnJob {
  readonly version: 1;
  readonly userId: string;
  /** Where the messages are now (the destination of the COPY/MOVE). */
  readonly mailboxId: string;
  readonly uids: readonly number[];
  readonly verdict: LearnVerdict;
}

/** RFC 6154 special uses of the source and destination decide what, if anything, is learned. */
export function learnVerdictOf(source: string | null, destination: string | null): LearnVerdict | undefined {
  if (destination === '\\Junk' && source !== '\\Junk') return 'spam';
  // Out of Junk into Trash is a deletion, not a judgement.
  if (source === '\\Junk' && destination !== '\\Junk' && destination !== '\\Trash') return 'ham';
  return undefined;
}

const UIDS_PER_JOB = 500;

export function parseLearnJob(data: Uint8Array): LearnJob | undefined {
  try {
    const o = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;
    if (
      o.version === 1 &&
      typeof o.userId === 'string' &&
      typeof o.mailboxId === 'string' &&
      Array.isArray(o.uids) &&
      o.uids.length <= UIDS_PER_JOB &&
      o.uids.every((u) => Number.isInteger(u) && (u as number) > 0) &&
      (o.verdict === 'spam' || o.verdict === 'ham')
    ) {
      return o as unknown as LearnJob;
    }
  } catch {
    // fall through
  }
  return undefined;
}

export interface JunkLearningDeps {
  readonly db: Db;
  readonly bus: Bus;
  readonly logger: Logger;
}

/**
 * Wraps the Mailstore service's CopyMessages and MoveMessages: after a successful answer, a
 * transfer into or out of Junk publishes a learning request. Failing to publish is logged and
 * costs only the lesson, never the COPY/MOVE the client was told succeeded.
 */
export function withJunkLearning(
  service: MailstoreServiceServer,
  deps: JunkLearningDeps,
): MailstoreServiceServer {
  const specialUses = async (userId: string): Promise<Map<string, string | null>> => {
    const listed = await listMailboxes(deps.db, {
      userId,
      reference: '',
      pattern: '*',
      subscribedOnly: false,
      specialUse: [],
    });
    const map = new Map<string, string | null>();
    for (const m of listed) if (m.record !== null) map.set(m.record._id.toHexString(), m.record.specialUse);
    return map;
  };
  const schedule = async (
    userId: string,
    sourceId: string,
    response: { destinationMailboxId: string; mappings: readonly { destinationUid: number }[] },
  ): Promise<void> => {
    if (response.mappings.length === 0) return;
    const uses = await specialUses(userId);
    const verdict = learnVerdictOf(
      uses.get(sourceId) ?? null,
      uses.get(response.destinationMailboxId) ?? null,
    );
    if (verdict === undefined) return;
    const uids = response.mappings.map((m) => m.destinationUid);
    for (let i = 0; i < uids.length; i += UIDS_PER_JOB) {
      const job: LearnJob = {
        version: 1,
        userId,
        mailboxId: response.destinationMailboxId,
        uids: uids.slice(i, i + UIDS_PER_JOB),
        verdict,
      };
      await publishDurable(
        deps.bus.js,
        Subjects.spamLearn(userId),
        new TextEncoder().encode(JSON.stringify(job)),
        {
          msgId: `learn:${job.mailboxId}:${String(job.uids[0])}:${String(job.uids.length)}:${verdict}`,
          expectStream: Streams.SPAM_LEARN,
        },
      );
    }
    deps.logger.info(
      { userId, verdict, messages: uids.length },
      'queued messages for the content filter to learn',
    );
  };
  const after =
    <Req extends { userId: string; mailboxId: string }, Res extends Parameters<typeof schedule>[2]>(
      handler: (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void,
    ) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      handler(call, (error, response, ...rest) => {
        callback(error, response, ...rest);
        if (error === null && response !== undefined && response !== null) {
          schedule(call.request.userId, call.request.mailboxId, response).catch((e: unknown) =>
            deps.logger.warn({ err: e, userId: call.request.userId }, 'could not queue a learning request'),
          );
        }
      });
    };
  return {
    ...service,
    copyMessages: after<mailstore.CopyMessagesRequest, mailstore.CopyMessagesResponse>(service.copyMessages),
    moveMessages: after<mailstore.MoveMessagesRequest, mailstore.MoveMessagesResponse>(service.moveMessages),
  };
}

export interface SpamLearnerDeps {
  readonly bus: Bus;
  readonly mailstore: Mailstore;
  /** rspamd's controller, e.g. http://127.0.0.1:11334 (trusted from storage's address). */
  readonly controllerUrl: string;
  readonly logger: Logger;
  readonly timeoutMs?: number;
}

/** POSTs one message to the controller; resolves with the HTTP status and rspamd's answer. */
function postToController(
  url: URL,
  body: Buffer,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (chunks.length < 64) chunks.push(c);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () =>
      req.destroy(new Error(`rspamd controller did not answer within ${timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The consumer of SPAM_LEARN: reads each message and teaches rspamd. */
export function createSpamLearner(deps: SpamLearnerDeps): ConsumerLoop {
  const timeoutMs = deps.timeoutMs ?? 30_000;
  return new ConsumerLoop({
    js: deps.bus.js,
    stream: Streams.SPAM_LEARN,
    consumer: Consumers.STORAGE_SPAM_LEARN,
    logger: deps.logger,
    concurrency: 2,
    maxDeliver: 10,
    backoffMs: [5_000, 30_000, 120_000],
    async handler(msg): Promise<JobOutcome> {
      const job = parseLearnJob(msg.data);
      if (job === undefined) return JobOutcomes.reject('malformed learning request');
      const url = new URL(job.verdict === 'spam' ? '/learnspam' : '/learnham', deps.controllerUrl);
      let learned = 0;
      for (const uid of job.uids) {
        let body: Buffer;
        try {
          const content = await deps.mailstore.getMessageContent(
            job.userId,
            job.mailboxId,
            uid,
            '',
            undefined,
            false,
          );
          const parts: Buffer[] = [];
          for await (const chunk of content.chunks) parts.push(chunk);
          body = Buffer.concat(parts);
        } catch (error) {
          // Deleted since (or the mailbox is gone): nothing left to learn from.
          deps.logger.info({ err: error, userId: job.userId, uid }, 'message to learn from is gone; skipped');
          continue;
        }
        const answer = await postToController(url, body, timeoutMs);
        // rspamd refuses to learn a message twice (it answers with an error saying so): done.
        if (answer.status !== 200 && !/already learned/i.test(answer.text)) {
          return JobOutcomes.retry(
            `rspamd controller answered ${answer.status}: ${answer.text.slice(0, 200)}`,
          );
        }
        learned += 1;
      }
      deps.logger.info(
        { userId: job.userId, verdict: job.verdict, learned },
        'content filter learned from the user',
      );
      return JobOutcomes.ack;
    },
  });
}
