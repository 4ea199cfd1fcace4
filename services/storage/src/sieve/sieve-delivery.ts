/**
 * Sieve at local delivery (RFC 5228 §2.10): each recipient's active script decides where their
 * copy goes (keep, fileinto with imap4flags flags, discard) before the batch commit, and what
 * else happens (redirect, reject DSN, vacation reply) once the commit is durable.
 *
 * - Never loses mail: a script that does not compile, fails at run time or exceeds its budget
 *   gets the implicit keep (RFC 5228 §2.10.6) and the user one notice in INBOX per script
 *   version.
 * - `fileinto` a mailbox that does not exist delivers to INBOX (the mailbox is not created: a
 *   typo in a script should not grow folders).
 * - Exactly once: every side effect has a ledger record `fx:<spoolId>:<userId>:<n>` written once
 *   it is queued, and a publish id derived from the same key, so a redelivered job sends
 *   nothing twice. Vacation replies are limited per (user, sender, handle) by a `vac:` record
 *   that only the job that claimed it may complete (RFC 5230 §4.2).
 */
import { createHash } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { Bus, InboundJob } from '@postmesh/bus';
import { buildDsn } from '@postmesh/mime';
import {
  buildVacationReply,
  compileScript,
  decideVacation,
  DEFAULT_LIMITS,
  runScript,
  SieveCompileError,
  sieveMessageFromRaw,
  type Program,
  type SieveLimits,
  type VacationAction,
} from '@postmesh/sieve';
import type { Logger } from '@postmesh/telemetry';
import { Collections, type SieveLedgerDoc } from '../db/schema.js';
import type { DirectoryService } from '../directory/directory-service.js';
import type { DeliveryRecipient } from '../mailstore/index.js';
import { queueMessage } from './queue-message.js';
import { SieveScripts, type ActiveScript } from './script-store.js';

const INBOX = 'INBOX';
const DUPLICATE_KEY = 11000;

/** One recipient's copy as planned before Sieve, with the address the message was sent to. */
export interface SieveTarget {
  readonly rcpt: string;
  readonly target: DeliveryRecipient;
}

type SieveEffect =
  | { readonly kind: 'redirect'; readonly userId: string; readonly user: string; readonly address: string }
  | { readonly kind: 'reject'; readonly userId: string; readonly user: string; readonly reason: string }
  | {
      readonly kind: 'vacation';
      readonly userId: string;
      readonly user: string;
      readonly rcpts: readonly string[];
      readonly action: VacationAction;
    }
  | {
      readonly kind: 'notice';
      readonly userId: string;
      readonly user: string;
      readonly script: ActiveScript;
      readonly error: string;
    };

export interface SievePlan {
  readonly targets: readonly DeliveryRecipient[];
  /** The whole message, read once for the scripts (and reused for the body's storage). */
  readonly raw: Uint8Array;
  readonly effects: readonly SieveEffect[];
}

export interface SieveDeliveryDeps {
  readonly db: Db;
  readonly bus: Bus;
  readonly directory: Pick<DirectoryService, 'resolveRecipient'>;
  readonly logger: Logger;
  /** Our host name in DSNs and notices. */
  readonly reportingMta: string;
  readonly limits?: SieveLimits;
  readonly now?: () => Date;
}

const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

export class SieveDelivery {
  readonly scripts: SieveScripts;
  private readonly ledger: Collection<SieveLedgerDoc>;
  /** Compiled scripts by version: most deliveries reuse a handful of scripts. */
  private readonly compiled = new Map<string, Program | SieveCompileError>();

  constructor(private readonly deps: SieveDeliveryDeps) {
    this.scripts = new SieveScripts(deps.db);
    this.ledger = deps.db.collection<SieveLedgerDoc>(Collections.sieveLedger);
  }

  /**
   * Where each recipient's copy goes by their active script; undefined when no recipient has one
   * (then nothing is read here and delivery goes on as without Sieve).
   */
  async plan(
    job: InboundJob,
    planned: readonly SieveTarget[],
    readBody: () => Promise<Uint8Array>,
    activeScripts: (userIds: readonly string[]) => Promise<ReadonlyMap<string, ActiveScript>> = (ids) =>
      this.scripts.active(ids),
  ): Promise<SievePlan | undefined> {
    const active = await activeScripts(planned.map((p) => p.target.userId));
    if (active.size === 0) return undefined;
    const raw = await readBody();
    const redirectedBy = redirectHops(raw);
    const targets: DeliveryRecipient[] = [];
    const effects: SieveEffect[] = [];
    for (const { target } of planned) {
      const script = active.get(target.userId);
      if (script === undefined) {
        targets.push(target);
        continue;
      }
      const user = target.recipient;
      const fail = (error: string): void => {
        this.deps.logger.info(
          { userId: target.userId, script: script.name, error },
          'sieve script failed; implicit keep',
        );
        targets.push(target);
        effects.push({ kind: 'notice', userId: target.userId, user, script, error });
      };
      const program = this.compile(script);
      if (program instanceof SieveCompileError) {
        fail(program.message);
        continue;
      }
      const result = runScript(
        program,
        sieveMessageFromRaw(raw, { from: job.envelope.mailFrom, to: user }),
        this.deps.limits ?? DEFAULT_LIMITS,
      );
      if (!result.ok) {
        fail(result.error);
        continue;
      }
      // The first copy keeps the plain recipient key of the `deliveries` idempotency record;
      // further copies (fileinto with keep, :copy) get one key per mailbox.
      const copies = new Map<string, DeliveryRecipient>();
      const deliverTo = (mailbox: string, flags: readonly string[], fallback: boolean): void => {
        const key = copies.size === 0 ? user : `${user}#sieve:${mailbox}`;
        const prior = copies.get(mailbox);
        copies.set(mailbox, {
          ...target,
          recipient: prior?.recipient ?? key,
          mailbox,
          ...(fallback ? { fallbackMailbox: INBOX } : {}),
          flags: [...new Set([...(prior?.flags ?? []), ...flags])],
        });
      };
      for (const action of result.actions) {
        switch (action.kind) {
          case 'keep':
            // The implicit keep goes where delivery would have put it (Junk for quarantined mail).
            deliverTo(target.mailbox ?? INBOX, action.flags, target.fallbackMailbox !== undefined);
            break;
          case 'fileinto':
            deliverTo(action.mailbox, action.flags, action.mailbox !== INBOX);
            break;
          case 'discard':
            break;
          case 'redirect':
            // Loop protection (RFC 5228 §4.2 asks for it): a message this user already redirected,
            // or one redirected too often, is kept instead of being sent round again.
            if (redirectedBy.includes(user.toLowerCase()) || redirectedBy.length >= MAX_REDIRECT_HOPS) {
              this.deps.logger.warn(
                { userId: target.userId, hops: redirectedBy.length, to: action.address },
                'sieve redirect would loop; kept in INBOX instead',
              );
              deliverTo(INBOX, [], false);
            } else {
              effects.push({ kind: 'redirect', userId: target.userId, user, address: action.address });
            }
            break;
          case 'reject':
          case 'ereject':
            effects.push({ kind: 'reject', userId: target.userId, user, reason: action.reason });
            break;
          case 'vacation':
            effects.push({
              kind: 'vacation',
              userId: target.userId,
              user,
              rcpts: planned.filter((p) => p.target.userId === target.userId).map((p) => p.rcpt),
              action,
            });
            break;
        }
      }
      targets.push(...copies.values());
    }
    return { targets, raw, effects };
  }

  /** Carries out the side effects of a committed delivery; throws to have the job retried. */
  async carryOut(job: InboundJob, plan: SievePlan): Promise<void> {
    let n = 0;
    for (const effect of plan.effects) {
      const key = `fx:${job.spoolId}:${effect.userId}:${n++}`;
      if ((await this.ledger.countDocuments({ _id: key }, { limit: 1 })) > 0) continue;
      const spoolId = `sv${sha(key).slice(0, 40)}`;
      switch (effect.kind) {
        case 'redirect':
          // RFC 5228 §4.2 leaves the envelope sender to us: the user's own address, so that
          // SPF holds for our domain and a bounce goes back to the user.
          await queueMessage(this.deps.bus, {
            spoolId,
            mailFrom: effect.user,
            rcptTo: effect.address,
            // One trace header per redirect, read by redirectHops() at the next delivery.
            bytes: Buffer.concat([Buffer.from(`${REDIRECT_HEADER}: ${effect.user}\r\n`), plan.raw]),
            local: await this.isLocal(effect.address),
            traceparent: job.traceparent,
            messageId: job.messageId,
          });
          break;
        case 'reject':
          await this.sendReject(job, plan, effect, spoolId);
          break;
        case 'vacation':
          await this.sendVacation(job, plan, effect, spoolId);
          break;
        case 'notice':
          await this.sendNotice(job, effect);
          break;
      }
      await this.ledger.updateOne({ _id: key }, { $set: { at: this.now() } }, { upsert: true });
    }
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  private compile(script: ActiveScript): Program | SieveCompileError {
    let program = this.compiled.get(script.version);
    if (program === undefined) {
      try {
        program = compileScript(script.content);
      } catch (e) {
        if (!(e instanceof SieveCompileError)) throw e;
        program = e;
      }
      if (this.compiled.size >= 256) this.compiled.delete(this.compiled.keys().next().value as string);
      this.compiled.set(script.version, program);
    }
    return program;
  }

  private async isLocal(address: string): Promise<boolean> {
    const answer = await this.deps.directory.resolveRecipient({ address, messageSize: 0 });
    if (!answer.ok) throw new Error(`directory: ${answer.error.message}`);
    const kind = answer.value.result?.$case;
    return kind === 'users' || kind === 'overQuota';
  }

  /** RFC 5429 §2.1/§2.2: after SMTP has ended, the refusal reaches the sender as a DSN. */
  private async sendReject(
    job: InboundJob,
    plan: SievePlan,
    effect: SieveEffect & { kind: 'reject' },
    spoolId: string,
  ): Promise<void> {
    const sender = job.envelope.mailFrom;
    // RFC 5429 §2.1 / RFC 5321 §4.5.5: never a notice to the null reverse-path.
    if (sender === '') return;
    const end = Buffer.from(plan.raw).indexOf('\r\n\r\n');
    const dsn = buildDsn({
      reportingMta: this.deps.reportingMta,
      sender,
      queueId: job.spoolId,
      arrival: new Date(job.receivedAt),
      recipients: [
        {
          rcpt: effect.user,
          action: 'failed',
          // RFC 3463 X.7.1: delivery not authorized, message refused.
          status: '5.7.1',
          diagnostic:
            `rejected by the recipient's filter: ${effect.reason.replace(/\s+/g, ' ').trim()}`.slice(0, 900),
          diagnosticType: 'x-postmesh',
          lastAttempt: this.now(),
        },
      ],
      originalHeaders: plan.raw.subarray(
        0,
        end < 0 ? Math.min(plan.raw.length, 16 * 1024) : Math.min(end + 2, 16 * 1024),
      ),
      date: this.now(),
    });
    await queueMessage(this.deps.bus, {
      spoolId,
      mailFrom: '',
      rcptTo: sender,
      bytes: dsn,
      local: await this.isLocal(sender),
      traceparent: job.traceparent,
    });
  }

  private async sendVacation(
    job: InboundJob,
    plan: SievePlan,
    effect: SieveEffect & { kind: 'vacation' },
    spoolId: string,
  ): Promise<void> {
    const message = sieveMessageFromRaw(plan.raw, { from: job.envelope.mailFrom, to: effect.user });
    const decision = decideVacation(effect.action, message, {
      recipient: effect.user,
      aliases: effect.rcpts,
    });
    if (!decision.send) {
      this.deps.logger.debug({ userId: effect.userId, reason: decision.reason }, 'no vacation reply');
      return;
    }
    // RFC 5230 §4.2: one reply per sender and handle within :days. The record is claimed by
    // this job; only this job (a redelivery of it) may claim it again before it expires.
    const now = this.now();
    const vacKey = `vac:${effect.userId}:${sha(`${decision.to.toLowerCase()}\u0000${effect.action.handle}`)}`;
    try {
      await this.ledger.updateOne(
        { _id: vacKey, $or: [{ until: { $lte: now } }, { spoolId: job.spoolId }] },
        {
          $set: {
            at: now,
            until: new Date(now.getTime() + effect.action.days * 86_400_000),
            spoolId: job.spoolId,
          },
        },
        { upsert: true },
      );
    } catch (error) {
      if ((error as { code?: unknown }).code === DUPLICATE_KEY) return; // replied within :days
      throw error;
    }
    const reply = buildVacationReply({
      action: effect.action,
      message,
      from: decision.from,
      to: decision.to,
      date: now,
      messageId: `${spoolId}@${this.deps.reportingMta}`,
    });
    // RFC 3834 §3.3 / RFC 5230 §5: automatic replies travel with the null reverse-path.
    await queueMessage(this.deps.bus, {
      spoolId,
      mailFrom: '',
      rcptTo: decision.to,
      bytes: reply,
      local: await this.isLocal(decision.to),
      traceparent: job.traceparent,
      messageId: `${spoolId}@${this.deps.reportingMta}`,
    });
  }

  /**
   * Tells the user once per script version that their filter failed. The notice's spoolId is
   * derived from (user, version), so storage's `(spoolId, recipient)` record keeps it to one
   * copy even if two deliveries send it at once.
   */
  private async sendNotice(job: InboundJob, effect: SieveEffect & { kind: 'notice' }): Promise<void> {
    const key = `notice:${effect.userId}:${effect.script.version}`;
    if ((await this.ledger.countDocuments({ _id: key }, { limit: 1 })) > 0) return;
    const spoolId = `sn${sha(key).slice(0, 40)}`;
    const now = this.now();
    const text = [
      `From: Mail filter <MAILER-DAEMON@${this.deps.reportingMta}>`,
      `To: <${effect.user}>`,
      `Subject: Your mail filter "${effect.script.name.replace(/[\r\n"]/g, ' ')}" failed`,
      `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
      `Message-ID: <${spoolId}@${this.deps.reportingMta}>`,
      'Auto-Submitted: auto-generated',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      `Your Sieve script "${effect.script.name}" could not be applied:`,
      '',
      `  ${effect.error}`,
      '',
      'Your mail is not lost: messages are delivered to INBOX until the script is fixed.',
      'You will not be told again about this version of the script.',
      '',
    ].join('\r\n');
    await queueMessage(this.deps.bus, {
      spoolId,
      mailFrom: '',
      rcptTo: effect.user,
      bytes: Buffer.from(text, 'utf8'),
      local: true,
      traceparent: job.traceparent,
    });
    await this.ledger.updateOne({ _id: key }, { $set: { at: now } }, { upsert: true });
  }
}

/** Added to a message each time a Sieve script redirects it; counted to stop redirect loops. */
export const REDIRECT_HEADER = 'X-Postmesh-Sieve-Redirected-By';
/** Redirects one message may go through before it is kept where it is. */
export const MAX_REDIRECT_HOPS = 5;

/** The (lower-cased) users that redirected this message so far, from its header section. */
export function redirectHops(raw: Uint8Array): string[] {
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const end = bytes.indexOf('\r\n\r\n');
  const head = bytes.subarray(0, end < 0 ? Math.min(bytes.length, 64 * 1024) : end).toString('latin1');
  const prefix = `${REDIRECT_HEADER.toLowerCase()}:`;
  return head
    .split('\r\n')
    .filter((line) => line.toLowerCase().startsWith(prefix))
    .map((line) => line.slice(prefix.length).trim().toLowerCase());
}
