/**
 * Runs operators' SMTP plugins (../operator-plugins/api.ts) inside Haraka's chain, in two places:
 * `postmesh_operator` (connect, HELO/EHLO, MAIL, RCPT) before our own recipient checks, and
 * `postmesh_operator_data` at end of DATA after sender authentication and content filtering,
 * right before the queue. Each hook call is bounded in time; a plugin that throws or overruns
 * makes the command fail with 451 (the client retries; nothing accepted is lost) and is logged.
 */
import type { InboundAuthVerdict } from '@postmesh/bus';
import type {
  DataVerdictExtras,
  MessageView,
  PostmeshSmtpPlugin,
  SessionView,
  TransactionView,
  Verdict,
} from '../operator-plugins/api.js';
import {
  DSN,
  HookCode,
  type HarakaAddress,
  type HarakaConnection,
  type HookCodeValue,
  type Next,
  type PluginHooks,
} from '../haraka/types.js';
import type { SubmissionUser } from './submission.js';

export interface OperatorPluginOptions {
  readonly plugins: readonly PostmeshSmtpPlugin[];
  readonly timeoutMs: number;
  readonly onError: (error: unknown, plugin: string, hook: string) => void;
  readonly onVerdict: (plugin: string, hook: string, verdict: string, text: string) => void;
}

const printable = (text: string, fallback: string): string =>
  /^[\x20-\x7e]{1,200}$/.test(text) ? text : fallback;

/** The SMTP answer for a verdict, or undefined to continue. Codes outside the class are clamped. */
export function answerFor(verdict: Verdict): { code: HookCodeValue; dsn: DSN } | undefined {
  if (verdict === undefined || verdict.action === 'continue') return undefined;
  switch (verdict.action) {
    case 'reject': {
      const code =
        verdict.code !== undefined && verdict.code >= 550 && verdict.code <= 554 ? verdict.code : 550;
      const status =
        verdict.status !== undefined && /^5\.\d{1,3}\.\d{1,3}$/.test(verdict.status)
          ? verdict.status
          : '5.7.1';
      return {
        code: HookCode.DENY,
        dsn: new DSN(code, `${status} ${printable(verdict.text, 'Refused by local policy')}`),
      };
    }
    case 'tempfail': {
      const code =
        verdict.code !== undefined && verdict.code >= 450 && verdict.code <= 452 ? verdict.code : 451;
      const status =
        verdict.status !== undefined && /^4\.\d{1,3}\.\d{1,3}$/.test(verdict.status)
          ? verdict.status
          : '4.7.1';
      return {
        code: HookCode.DENYSOFT,
        dsn: new DSN(code, `${status} ${printable(verdict.text, 'Deferred by local policy')}`),
      };
    }
    case 'disconnect':
      return {
        code: HookCode.DENYSOFTDISCONNECT,
        dsn: new DSN(421, `4.7.0 ${printable(verdict.text, 'Closing by local policy')}`),
      };
    default:
      // A plugin returned something outside the contract: treated as a plugin error.
      throw new Error(`unknown verdict ${JSON.stringify(verdict)}`);
  }
}

function sessionOf(connection: HarakaConnection): SessionView {
  const user = connection.notes.postmeshUser as SubmissionUser | undefined;
  return Object.freeze({
    remoteIp: connection.remote.ip,
    remotePort: connection.remote.port,
    localPort: connection.local.port,
    tls: connection.tls.enabled,
    helo: connection.hello.host ?? '',
    authenticatedUser: user?.login,
  });
}

function transactionOf(connection: HarakaConnection): TransactionView {
  const t = connection.transaction;
  return Object.freeze({
    mailFrom: t === null || t.mail_from.isNull() ? '' : t.mail_from.address,
    recipients: Object.freeze(t === null ? [] : t.rcpt_to.map((r) => r.address)),
  });
}

function withDeadline<T>(work: () => T | Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    Promise.resolve()
      .then(work)
      .then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
  });
}

const PLUGIN_FAILED = new DSN(451, '4.3.0 Temporary local problem, try again later');

/** Runs one hook of every plugin in order; the first verdict other than continue answers. */
function runChain(
  options: OperatorPluginOptions,
  hook: 'connect' | 'helo' | 'mail' | 'rcpt',
  call: (plugin: PostmeshSmtpPlugin) => Verdict | Promise<Verdict> | undefined,
  next: Next,
): void {
  const run = async (): Promise<void> => {
    for (const plugin of options.plugins) {
      if (plugin.hooks[hook] === undefined) continue;
      let answer: ReturnType<typeof answerFor>;
      try {
        const verdict = await withDeadline(
          () => call(plugin),
          options.timeoutMs,
          `plugin ${plugin.name} (${hook})`,
        );
        answer = answerFor(verdict);
      } catch (error) {
        options.onError(error, plugin.name, hook);
        next(HookCode.DENYSOFT, PLUGIN_FAILED);
        return;
      }
      if (answer !== undefined) {
        options.onVerdict(plugin.name, hook, String(answer.dsn.code), answer.dsn.reply);
        next(answer.code, answer.dsn);
        return;
      }
    }
    next();
  };
  void run();
}

const addressOf = (params: unknown): string => {
  const a = Array.isArray(params) ? (params[0] as HarakaAddress | undefined) : undefined;
  return a === undefined || a.isNull() ? '' : a.address;
};

export function operatorHooks(options: OperatorPluginOptions): PluginHooks {
  if (options.plugins.length === 0) return {};
  return {
    hook_connect(next, connection) {
      runChain(options, 'connect', (p) => p.hooks.connect?.(sessionOf(connection)), next);
    },
    hook_helo(next, connection) {
      runChain(options, 'helo', (p) => p.hooks.helo?.(sessionOf(connection)), next);
    },
    hook_ehlo(next, connection) {
      runChain(options, 'helo', (p) => p.hooks.helo?.(sessionOf(connection)), next);
    },
    hook_mail(next, connection, params) {
      // The sender is not in the transaction yet when MAIL's hooks run.
      const view = { ...transactionOf(connection), mailFrom: addressOf(params) };
      runChain(options, 'mail', (p) => p.hooks.mail?.(sessionOf(connection), view), next);
    },
    hook_rcpt(next, connection, params) {
      runChain(
        options,
        'rcpt',
        (p) => p.hooks.rcpt?.(sessionOf(connection), transactionOf(connection), addressOf(params)),
        next,
      );
    },
  };
}

export function operatorDataHooks(options: OperatorPluginOptions): PluginHooks {
  if (!options.plugins.some((p) => p.hooks.data !== undefined)) return {};
  return {
    hook_data_post(next, connection) {
      const transaction = connection.transaction;
      if (transaction === null) {
        next();
        return;
      }
      const auth = transaction.notes.postmeshAuth as InboundAuthVerdict | undefined;
      const spam = transaction.notes.postmeshSpam as { action: string; score?: number } | undefined;
      const message: MessageView = Object.freeze({
        ...transactionOf(connection),
        header: (name: string) =>
          Object.freeze(transaction.header.get_all(name).map((v) => v.replace(/\r?\n[ \t]+/g, ' ').trim())),
        size: transaction.data_bytes,
        auth:
          auth === undefined
            ? undefined
            : Object.freeze({ spf: auth.spf, dkim: auth.dkim, dmarc: auth.dmarc }),
        spam:
          spam === undefined
            ? undefined
            : Object.freeze({
                action: spam.action,
                ...(spam.score === undefined ? {} : { score: spam.score }),
              }),
      });
      const session = sessionOf(connection);
      const run = async (): Promise<void> => {
        for (const plugin of options.plugins) {
          const hook = plugin.hooks.data;
          if (hook === undefined) continue;
          let answer: ReturnType<typeof answerFor>;
          let extras: DataVerdictExtras;
          try {
            const result = await withDeadline(
              () => hook(session, message),
              options.timeoutMs,
              `plugin ${plugin.name} (data)`,
            );
            extras = result ?? {};
            const verdict = result !== undefined && 'action' in result ? (result as Verdict) : undefined;
            answer = answerFor(verdict);
          } catch (error) {
            options.onError(error, plugin.name, 'data');
            next(HookCode.DENYSOFT, PLUGIN_FAILED);
            return;
          }
          if (answer !== undefined) {
            options.onVerdict(plugin.name, 'data', String(answer.dsn.code), answer.dsn.reply);
            next(answer.code, answer.dsn);
            return;
          }
          for (const [name, value] of extras.addHeaders ?? []) {
            // RFC 5322 §2.2: a field name is printable ASCII without ':'; the value one line.
            if (/^[!-9;-~]{1,76}$/.test(name) && /^[^\r\n]{0,998}$/.test(value))
              transaction.add_header(name, value);
            else options.onError(new Error(`refused header ${JSON.stringify(name)}`), plugin.name, 'data');
          }
        }
        next();
      };
      void run();
    },
  };
}
