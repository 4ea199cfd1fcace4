/**
 * A client for rspamd's normal worker HTTP API (`POST /checkv2`, rspamd 3.x "Protocol" docs): the
 * message goes as the request body, the SMTP envelope as request headers, and rspamd answers
 * with JSON: the action it recommends, the score and the symbols that matched.
 *
 * Our own small client rather than Haraka's rspamd plugin: the verdict has to be combined with
 * our sender authentication and queue plugins (Junk delivery is a field of the queued job), and
 * an outage must have exactly the behaviour we document (accept unscanned, or 4xx).
 */
import { request } from 'node:http';
import type { Readable } from 'node:stream';

/** The actions rspamd can recommend (rspamd "Actions and scores"). */
export const RSPAMD_ACTIONS = [
  'no action',
  'greylist',
  'add header',
  'rewrite subject',
  'soft reject',
  'reject',
] as const;
export type RspamdAction = (typeof RSPAMD_ACTIONS)[number];

export interface RspamdVerdict {
  readonly action: RspamdAction;
  readonly score: number;
  readonly requiredScore: number;
  /** Names of the symbols that matched, highest score first (for headers and logs). */
  readonly symbols: readonly string[];
  /** The subject rspamd proposes for `rewrite subject`. */
  readonly subject?: string;
  /** rspamd's own text for the SMTP reply (`messages.smtp_message`), if any. */
  readonly smtpMessage?: string;
}

export interface ScanEnvelope {
  readonly ip: string;
  readonly helo: string;
  /** MAIL FROM, '' for the null reverse-path. */
  readonly from: string;
  readonly rcpt: readonly string[];
  readonly queueId: string;
  /** The authenticated submitter (outgoing mail), so rspamd applies its authenticated-user rules. */
  readonly user?: string;
}

export class RspamdError extends Error {
  override readonly name = 'RspamdError';
}

/** Header values must be one line of visible ASCII: anything else is left out, not sent raw. */
function headerValue(value: string): string | undefined {
  return /^[\x20-\x7e]{1,998}$/.test(value) ? value : undefined;
}

/** Parses a /checkv2 reply; anything unexpected is an error (then the outage policy applies). */
export function parseVerdict(body: string): RspamdVerdict {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new RspamdError('rspamd answered something that is not JSON');
  }
  if (typeof json !== 'object' || json === null) throw new RspamdError('rspamd answered a non-object');
  const o = json as Record<string, unknown>;
  const action = o.action;
  if (typeof action !== 'string' || !(RSPAMD_ACTIONS as readonly string[]).includes(action)) {
    throw new RspamdError(`rspamd answered an unknown action ${JSON.stringify(action)}`);
  }
  const score = typeof o.score === 'number' && Number.isFinite(o.score) ? o.score : 0;
  const requiredScore =
    typeof o.required_score === 'number' && Number.isFinite(o.required_score) ? o.required_score : 0;
  const symbols: { name: string; score: number }[] = [];
  if (typeof o.symbols === 'object' && o.symbols !== null) {
    for (const [name, value] of Object.entries(o.symbols as Record<string, unknown>)) {
      const s = (value as { score?: unknown } | null)?.score;
      symbols.push({ name, score: typeof s === 'number' ? s : 0 });
    }
  }
  symbols.sort((a, b) => b.score - a.score || a.name.localeCompare(b.name));
  const messages = o.messages as Record<string, unknown> | undefined;
  const smtpMessage =
    typeof messages === 'object' && messages !== null && typeof messages.smtp_message === 'string'
      ? messages.smtp_message
      : undefined;
  return {
    action: action as RspamdAction,
    score,
    requiredScore,
    symbols: symbols.map((s) => s.name),
    ...(typeof o.subject === 'string' ? { subject: o.subject } : {}),
    ...(smtpMessage === undefined ? {} : { smtpMessage }),
  };
}

export interface RspamdClientOptions {
  /** Base URL of the normal worker, e.g. http://127.0.0.1:11333. */
  readonly url: string;
  /** Whole request, body included. */
  readonly timeoutMs: number;
  /** Bytes of a reply read at most (a verdict is a few KB). */
  readonly maxReplyBytes?: number;
}

export class RspamdClient {
  readonly #base: URL;
  readonly #timeoutMs: number;
  readonly #maxReply: number;

  constructor(options: RspamdClientOptions) {
    this.#base = new URL(options.url);
    if (this.#base.protocol !== 'http:') throw new RspamdError('the rspamd URL must be http://');
    this.#timeoutMs = options.timeoutMs;
    this.#maxReply = options.maxReplyBytes ?? 1024 * 1024;
  }

  /** Scans one message; rejects with RspamdError on a timeout, a refused connection or a bad reply. */
  check(envelope: ScanEnvelope, message: Readable): Promise<RspamdVerdict> {
    const headers: Record<string, string | string[]> = {};
    const set = (name: string, value: string): void => {
      const v = headerValue(value);
      if (v !== undefined) headers[name] = v;
    };
    set('IP', envelope.ip);
    set('Helo', envelope.helo);
    set('From', envelope.from === '' ? '<>' : envelope.from);
    set('Queue-Id', envelope.queueId);
    if (envelope.user !== undefined) set('User', envelope.user);
    const rcpt = envelope.rcpt.map(headerValue).filter((r): r is string => r !== undefined);
    if (rcpt.length > 0) headers.Rcpt = rcpt;
    return new Promise<RspamdVerdict>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        req.destroy();
        message.unpipe(req);
        message.resume();
        reject(error instanceof RspamdError ? error : new RspamdError(error.message, { cause: error }));
      };
      const req = request(
        new URL('/checkv2', this.#base),
        { method: 'POST', headers, timeout: this.#timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.#maxReply) fail(new RspamdError('rspamd reply too large'));
            else chunks.push(chunk);
          });
          res.on('error', fail);
          res.on('end', () => {
            if (settled) return;
            if (res.statusCode !== 200) {
              fail(new RspamdError(`rspamd answered HTTP ${String(res.statusCode)}`));
              return;
            }
            try {
              const verdict = parseVerdict(Buffer.concat(chunks).toString('utf8'));
              settled = true;
              clearTimeout(deadline);
              resolve(verdict);
            } catch (error) {
              fail(error as Error);
            }
          });
        },
      );
      // `timeout` above is idle time on the socket; this bounds the whole scan.
      const deadline = setTimeout(
        () => fail(new RspamdError(`rspamd did not answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      req.on('timeout', () => fail(new RspamdError(`rspamd did not answer within ${this.#timeoutMs} ms`)));
      req.on('error', fail);
      message.on('error', fail);
      message.pipe(req);
    });
  }
}
