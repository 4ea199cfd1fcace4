/**
 * Content filtering at end of DATA, before the 250: every message (MX and submission) is scanned
 * by rspamd and its recommended action is honoured. Runs after sender authentication (so rspamd
 * sees our Authentication-Results) and before the queue plugin (which carries the Junk verdict in
 * the job).
 *
 * - `reject` → 550 5.7.1; `soft reject` and `greylist` → 451 4.7.1 (RFC 3463 X.7.1: delivery not
 *   authorized, message refused).
 * - `add header` / `rewrite subject` → accepted, delivered to the recipients' Junk mailbox with
 *   `X-Spam-*` headers (and the subject rspamd proposes). Submitted mail is not junked for remote
 *   recipients; it is sent with the headers and logged.
 * - rspamd unreachable, slow or answering nonsense → accepted with `X-Spam-Status: Unknown`
 *   saying it was not scanned, or 451 4.7.0 when the operator chose `tempfail`. Either way no
 *   accepted mail depends on rspamd being up.
 */
import { PassThrough, type Readable } from 'node:stream';
import { DSN, HookCode, type HarakaTransaction, type PluginHooks } from '../haraka/types.js';
import type { RspamdVerdict, ScanEnvelope } from '../content-filter/rspamd.js';
import type { SubmissionUser } from './submission.js';

export interface ContentScanner {
  check(envelope: ScanEnvelope, message: Readable): Promise<RspamdVerdict>;
}

/** What to do when the scanner cannot give a verdict. */
export type ScanFailurePolicy = 'accept' | 'tempfail';

/** The verdict the queue plugin reads from `transaction.notes.postmeshSpam`. */
export interface SpamNote {
  readonly junk: boolean;
  readonly action: RspamdVerdict['action'] | 'not scanned';
  readonly score?: number;
}

export type ContentDecision =
  | { readonly kind: 'refuse'; readonly code: 'DENY' | 'DENYSOFT'; readonly dsn: DSN }
  | {
      readonly kind: 'accept';
      readonly junk: boolean;
      readonly headers: readonly (readonly [string, string])[];
      readonly subject?: string;
    };

/** Headers a sender could forge to look scanned: removed before ours are added. */
export const SPAM_HEADERS = [
  'X-Spam',
  'X-Spam-Flag',
  'X-Spam-Status',
  'X-Spam-Score',
  'X-Spam-Action',
  'X-Spam-Symbols',
];

/** SMTP text is one line of visible ASCII; rspamd's own message is used only when it is. */
function replyText(fallback: string, proposed: string | undefined): string {
  return proposed !== undefined && /^[\x20-\x7e]{1,200}$/.test(proposed) ? proposed : fallback;
}

/** Pure policy from a verdict (or a scan failure) to the SMTP answer and the headers. */
export function contentDecision(
  result: { readonly verdict: RspamdVerdict } | { readonly failure: string },
  context: { readonly submitted: boolean; readonly onFailure: ScanFailurePolicy; readonly hostname: string },
): ContentDecision {
  if ('failure' in result) {
    if (context.onFailure === 'tempfail') {
      return {
        kind: 'refuse',
        code: 'DENYSOFT',
        dsn: new DSN(451, '4.7.0 Content scanner unavailable, try again later'),
      };
    }
    return {
      kind: 'accept',
      junk: false,
      headers: [['X-Spam-Status', `Unknown, not scanned by ${context.hostname} (${result.failure})`]],
    };
  }
  const v = result.verdict;
  const score = `${v.score.toFixed(2)} / ${v.requiredScore.toFixed(2)}`;
  switch (v.action) {
    case 'reject':
      return {
        kind: 'refuse',
        code: 'DENY',
        dsn: new DSN(550, `5.7.1 ${replyText('Message refused: it looks like spam', v.smtpMessage)}`),
      };
    case 'soft reject':
    case 'greylist':
      return {
        kind: 'refuse',
        code: 'DENYSOFT',
        dsn: new DSN(
          451,
          `4.7.1 ${replyText('Message deferred by the content filter, try again later', v.smtpMessage)}`,
        ),
      };
    case 'add header':
    case 'rewrite subject': {
      const symbols = v.symbols.slice(0, 20).join(', ');
      return {
        kind: 'accept',
        // Our own users' outgoing mail is not moved to Junk (the recipients' servers judge it);
        // it still carries the verdict, and the plugin logs it.
        junk: !context.submitted,
        headers: [
          ['X-Spam', 'Yes'],
          ['X-Spam-Status', `Yes, score=${score}, action=${v.action} by ${context.hostname}`],
          ...(symbols === '' ? [] : ([['X-Spam-Symbols', symbols]] as const)),
        ],
        ...(v.action === 'rewrite subject' && v.subject !== undefined ? { subject: v.subject } : {}),
      };
    }
    case 'no action':
      return {
        kind: 'accept',
        junk: false,
        headers: [['X-Spam-Status', `No, score=${score} by ${context.hostname}`]],
      };
  }
}

export interface ContentFilterOptions {
  readonly scanner: ContentScanner;
  readonly hostname: string;
  readonly onFailure: ScanFailurePolicy;
  /** Scan authenticated submissions too (default true). */
  readonly scanSubmissions: boolean;
  readonly onVerdict: (event: {
    readonly queueId: string;
    readonly submitted: boolean;
    readonly action: string;
    readonly score?: number;
    readonly symbols?: readonly string[];
  }) => void;
  readonly onFailureLogged: (error: unknown, queueId: string) => void;
  /** A message refused because of its content (not for a scanner failure): for the trace. */
  readonly onRefused?: (event: {
    readonly queueId: string;
    readonly sender: string;
    readonly recipients: readonly string[];
    readonly action: string;
    readonly score?: number;
    readonly reply: string;
  }) => void;
}

function applyHeaders(transaction: HarakaTransaction, decision: ContentDecision & { kind: 'accept' }): void {
  for (const name of SPAM_HEADERS) transaction.remove_header(name);
  for (const [name, value] of decision.headers) transaction.add_header(name, value);
  if (decision.subject !== undefined && /^[^\r\n]{0,998}$/.test(decision.subject)) {
    transaction.remove_header('Subject');
    transaction.add_header('Subject', decision.subject);
  }
}

export function contentFilterHooks(options: ContentFilterOptions): PluginHooks {
  return {
    hook_data_post(next, connection) {
      const transaction = connection.transaction;
      if (transaction === null) {
        next();
        return;
      }
      const submitter = transaction.notes.postmeshSubmitter as SubmissionUser | undefined;
      const submitted = submitter !== undefined;
      if (submitted && !options.scanSubmissions) {
        next();
        return;
      }
      const envelope: ScanEnvelope = {
        ip: connection.remote.ip,
        helo: connection.hello.host ?? '',
        from: transaction.mail_from.isNull() ? '' : transaction.mail_from.address,
        rcpt: transaction.rcpt_to.map((r) => r.address),
        queueId: transaction.uuid,
        ...(submitter === undefined ? {} : { user: submitter.login }),
      };
      const run = async (): Promise<ContentDecision> => {
        const input = new PassThrough({ highWaterMark: 256 * 1024 });
        transaction.message_stream.pipe(input);
        try {
          const verdict = await options.scanner.check(envelope, input);
          options.onVerdict({
            queueId: transaction.uuid,
            submitted,
            action: verdict.action,
            score: verdict.score,
            symbols: verdict.symbols.slice(0, 20),
          });
          transaction.notes.postmeshSpam = {
            junk: false,
            action: verdict.action,
            score: verdict.score,
          } satisfies SpamNote;
          return contentDecision(
            { verdict },
            { submitted, onFailure: options.onFailure, hostname: options.hostname },
          );
        } catch (error) {
          options.onFailureLogged(error, transaction.uuid);
          transaction.notes.postmeshSpam = { junk: false, action: 'not scanned' } satisfies SpamNote;
          const reason =
            error instanceof Error && error.name === 'RspamdError' ? 'scanner unavailable' : 'scan failed';
          return contentDecision(
            { failure: reason },
            { submitted, onFailure: options.onFailure, hostname: options.hostname },
          );
        }
      };
      run().then(
        (decision) => {
          if (decision.kind === 'refuse') {
            const note = transaction.notes.postmeshSpam as SpamNote | undefined;
            if (note !== undefined && note.action !== 'not scanned') {
              options.onRefused?.({
                queueId: transaction.uuid,
                sender: envelope.from,
                recipients: envelope.rcpt,
                action: note.action,
                ...(note.score === undefined ? {} : { score: note.score }),
                reply: `${decision.dsn.code} ${decision.dsn.reply}`,
              });
            }
            next(decision.code === 'DENY' ? HookCode.DENY : HookCode.DENYSOFT, decision.dsn);
            return;
          }
          applyHeaders(transaction, decision);
          const note = transaction.notes.postmeshSpam as SpamNote;
          transaction.notes.postmeshSpam = { ...note, junk: decision.junk } satisfies SpamNote;
          next();
        },
        () =>
          next(HookCode.DENYSOFT, new DSN(451, '4.3.0 Temporary failure while scanning, try again later')),
      );
    },
  };
}
