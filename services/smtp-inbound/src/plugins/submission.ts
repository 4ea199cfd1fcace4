/**
 * Message submission (RFC 6409) on the submission (587, STARTTLS) and submissions (465,
 * implicit TLS, RFC 8314 §3.3) listeners:
 *
 * - AUTH PLAIN (RFC 4616) and LOGIN, offered only once the session is encrypted (RFC 4954 §4,
 *   RFC 3207 §4, DESIGN §5), checked with Directory.Authenticate (passwords and app passwords).
 *   Failures are counted in the KV bucket `auth-failures` with IMAP's keys; each attempt waits a
 *   progressive delay, and a locked-out IP or account gets `454 4.7.0` (RFC 4954 §6).
 * - MAIL requires AUTH (`530 5.7.0`, RFC 4954 §6; also on the literal ports 587/465, where
 *   Haraka's own `cmd_mail` would answer `550` before any hook runs: see
 *   `answerMailWithoutAuthFirst`), and the MAIL FROM address and every From:
 *   mailbox must be addresses the authenticated user owns (aliases included), else `550 5.7.1`
 *   (DESIGN §5 anti-spoofing; RFC 6409 §6.1 lets the MSA enforce this).
 * - Recipients in our domains go through the usual RCPT checks (postmesh_rcpt); others are
 *   noted as remote, and postmesh_queue sends them to MAIL_OUTBOUND.
 * - Missing Message-ID and Date are added (RFC 6409 §8.2, §8.3; RFC 5322 §3.6.1 makes Date
 *   mandatory).
 */
import { randomBytes } from 'node:crypto';
import type { AuthThrottle } from '@postmesh/bus';
import { effectiveLimit, type SendQuota } from '../send-quota.js';
import type { Authenticator, RecipientDirectory, SendingLimits } from '../directory.js';
import {
  DSN,
  HookCode,
  type HarakaAddress,
  type HarakaConnection,
  type PluginHooks,
} from '../haraka/types.js';

/** The authenticated user of a session (connection.notes.postmeshUser). */
export interface SubmissionUser {
  readonly userId: string;
  readonly login: string;
  readonly senderAddresses: readonly string[];
  /** The user's own limits from the Directory (0 = the service default). */
  readonly limits: SendingLimits;
}

export interface SubmissionOptions {
  /** Local ports of the submission and submissions listeners. */
  readonly ports: readonly number[];
  readonly authenticator: Authenticator;
  readonly directory: Pick<RecipientDirectory, 'domainOwnership'>;
  readonly throttle: AuthThrottle;
  /** Per-user messages per hour (shared counter; the default is the quota's). */
  readonly quota?: SendQuota;
  /**
   * Default recipients per submitted message, for users without their own limit; 0 = only the
   * transaction limit of postmesh_rcpt.
   */
  readonly recipientsPerMessage?: number;
  readonly hostname: string;
  /** Failed AUTH attempts on one connection before it is closed. */
  readonly maxFailuresPerConnection?: number;
  readonly onAuth?: (event: { login: string; ip: string; outcome: string }) => void;
  readonly onError: (error: unknown) => void;
}

type AuthState =
  | { readonly step: 'plain' }
  | { readonly step: 'login-user' }
  | { readonly step: 'login-pass'; readonly user: string };

const LOGIN_USER = Buffer.from('Username:').toString('base64');
const LOGIN_PASS = Buffer.from('Password:').toString('base64');
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 (RFC 4954 §4: a malformed response is a 501). */
export function decodeBase64(text: string): string | undefined {
  const t = text.trim();
  if (t.length % 4 !== 0 || !BASE64.test(t)) return undefined;
  return Buffer.from(t, 'base64').toString('utf8');
}

/** RFC 4616 §2: `[authzid] NUL authcid NUL passwd`; we only let a user act as themselves. */
export function parsePlain(decoded: string): { user: string; password: string } | undefined {
  const parts = decoded.split('\0');
  if (parts.length !== 3) return undefined;
  const [authzid = '', user = '', password = ''] = parts;
  if (user === '' || password === '') return undefined;
  if (authzid !== '' && authzid.toLowerCase() !== user.toLowerCase()) return undefined;
  return { user, password };
}

/**
 * The addr-specs of a From: field (RFC 5322 §3.4, §3.6.2), lower-cased: angle-addrs when present,
 * else bare addresses between commas. Quoted display names and comments are dropped first.
 */
export function fromAddresses(field: string): string[] {
  const unfolded = field.replace(/\r?\n[ \t]/g, ' ');
  const plain = unfolded.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\((?:[^()\\]|\\.)*\)/g, ' ');
  const out: string[] = [];
  for (const part of plain.split(',')) {
    const angle = /<([^<>]*)>/.exec(part);
    const candidate = (angle?.[1] ?? part).trim().toLowerCase();
    if (candidate !== '') out.push(candidate);
  }
  return out;
}

/** RFC 5322 §3.3 date-time in UTC. */
export function rfc5322Date(date: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
  const months = [
    'Jan',
    'Feb',
    'Mar',
    'Apr',
    'May',
    'Jun',
    'Jul',
    'Aug',
    'Sep',
    'Oct',
    'Nov',
    'Dec',
  ] as const;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${days[date.getUTCDay()] ?? 'Sun'}, ${date.getUTCDate()} ${months[date.getUTCMonth()] ?? 'Jan'} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function submissionUser(connection: HarakaConnection): SubmissionUser | undefined {
  return connection.notes.postmeshUser as SubmissionUser | undefined;
}

/** Haraka's connection as far as the MAIL pre-check needs it (`cmd_mail`, `errors`). */
interface MailCommandOwner {
  cmd_mail?: (line: string) => void;
  errors?: number;
}

/**
 * Haraka 3.3.4 `Connection#cmd_mail` answers `550 Authentication required` to an unauthenticated
 * MAIL when the listener is literally port 587 or 465 (`[587, 465].includes(this.local.port)`),
 * before the `mail` hook runs, so our `530` never reached the client in production. RFC 4954 §6
 * says `530 5.7.0 Authentication required`. This wraps the connection's `cmd_mail` (Haraka
 * dispatches commands as `this["cmd_" + verb]`, so an own property wins over the prototype) and
 * answers 530 first for an unauthenticated submission session; everything else (no EHLO yet,
 * authenticated, MX port) goes to Haraka's own code.
 */
export function answerMailWithoutAuthFirst(
  connection: HarakaConnection,
  isSubmissionSession: (c: HarakaConnection) => boolean,
): void {
  const target = connection as HarakaConnection & MailCommandOwner;
  const original = target.cmd_mail;
  if (typeof original !== 'function') return;
  target.cmd_mail = (line: string) => {
    if (
      isSubmissionSession(connection) &&
      connection.hello.host !== undefined &&
      connection.hello.host !== null &&
      !connection.relaying &&
      submissionUser(connection) === undefined
    ) {
      target.errors = (target.errors ?? 0) + 1;
      // RFC 4954 §6: 530 5.7.0 Authentication required.
      connection.respond(530, '5.7.0 Authentication required');
      return;
    }
    original.call(connection, line);
  };
}

/** Remote recipients of the transaction (set by this plugin, read by postmesh_queue). */
export function remoteRecipients(notes: Record<string, unknown>): string[] {
  const value = notes.postmeshRemote;
  return Array.isArray(value) ? (value as string[]) : [];
}

export function submissionHooks(options: SubmissionOptions): PluginHooks {
  const isSubmission = (c: HarakaConnection) => options.ports.includes(c.local.port);
  const maxFailures = options.maxFailuresPerConnection ?? 5;

  const finish = (connection: HarakaConnection, next: () => void, code: number, text: string) => {
    connection.respond(code, text, () => next());
  };

  const verify = async (
    connection: HarakaConnection,
    user: string,
    password: string,
    method: string,
  ): Promise<{ code: number; text: string; close?: boolean }> => {
    const ip = connection.remote.ip;
    // Counts the attempt before the password is checked (libs/bus auth-throttle).
    const verdict = await options.throttle.attempt(ip, user);
    if (verdict.delayMs > 0) await sleep(verdict.delayMs);
    if (verdict.kind === 'locked') {
      options.onAuth?.({ login: user, ip, outcome: `locked-${verdict.scope}` });
      // RFC 4954 §6: 454 4.7.0 temporary authentication failure; try again later.
      return { code: 454, text: '4.7.0 Temporary authentication failure, too many failed attempts' };
    }
    const answer = await options.authenticator.authenticate(user, password, ip);
    switch (answer.kind) {
      case 'success':
        await options.throttle.succeeded(verdict.ticket);
        connection.notes.postmeshUser = {
          userId: answer.userId,
          login: user,
          senderAddresses: answer.senderAddresses,
          limits: answer.limits,
        } satisfies SubmissionUser;
        connection.relaying = true;
        options.onAuth?.({ login: user, ip, outcome: `success-${method}` });
        return { code: 235, text: '2.7.0 Authentication successful' };
      case 'failure': {
        options.throttle.failed(verdict.ticket);
        const fails = (Number(connection.notes.postmeshAuthFailures) || 0) + 1;
        connection.notes.postmeshAuthFailures = fails;
        options.onAuth?.({ login: user, ip, outcome: 'failure' });
        // RFC 4954 §6: 535 5.7.8 Authentication credentials invalid (one answer for every reason).
        return { code: 535, text: '5.7.8 Authentication credentials invalid', close: fails >= maxFailures };
      }
      case 'unavailable':
        options.onError(new Error(answer.reason));
        return { code: 454, text: '4.7.0 Temporary authentication failure' };
    }
  };

  const runVerify = (
    next: (code?: (typeof HookCode)[keyof typeof HookCode]) => void,
    connection: HarakaConnection,
    user: string,
    password: string,
    method: string,
  ) => {
    verify(connection, user, password, method)
      .then((r) => {
        connection.respond(r.code, r.text, () =>
          next(r.close === true ? HookCode.DENYDISCONNECT : HookCode.OK),
        );
      })
      .catch((error: unknown) => {
        options.onError(error);
        finish(connection, () => next(HookCode.OK), 454, '4.7.0 Temporary authentication failure');
      });
  };

  return {
    hook_connect_init(next, connection) {
      answerMailWithoutAuthFirst(connection, isSubmission);
      next();
    },

    hook_capabilities(next, connection) {
      // RFC 4954 §4 / DESIGN §5: AUTH is advertised only on an encrypted submission session.
      if (isSubmission(connection) && connection.tls.enabled && submissionUser(connection) === undefined) {
        connection.capabilities?.push('AUTH PLAIN LOGIN');
      }
      next();
    },

    hook_unrecognized_command(next, connection, params) {
      const args = Array.isArray(params) ? (params as string[]) : [];
      const state = connection.notes.postmeshAuthState as AuthState | undefined;
      const ok = () => next(HookCode.OK);
      if (state !== undefined) {
        // A continuation line of an AUTH exchange (RFC 4954 §4).
        connection.notes.postmeshAuthState = undefined;
        const line = args.join(' ').trim();
        if (line === '*') return finish(connection, ok, 501, '5.7.0 Authentication cancelled');
        const decoded = decodeBase64(line);
        if (decoded === undefined) return finish(connection, ok, 501, '5.5.2 Cannot decode response');
        switch (state.step) {
          case 'plain': {
            const creds = parsePlain(decoded);
            if (creds === undefined) return finish(connection, ok, 501, '5.5.2 Malformed PLAIN response');
            return runVerify(next, connection, creds.user, creds.password, 'plain');
          }
          case 'login-user':
            connection.notes.postmeshAuthState = { step: 'login-pass', user: decoded } satisfies AuthState;
            return finish(connection, ok, 334, LOGIN_PASS);
          case 'login-pass':
            return runVerify(next, connection, state.user, decoded, 'login');
        }
      }
      if ((args[0] ?? '').toUpperCase() !== 'AUTH' || !isSubmission(connection)) return next();
      // RFC 3207 §4: no AUTH before TLS; the 530 names what to do.
      if (!connection.tls.enabled)
        return finish(connection, ok, 530, '5.7.0 Must issue a STARTTLS command first');
      // RFC 4954 §4: AUTH once per session, never inside a mail transaction.
      if (submissionUser(connection) !== undefined)
        return finish(connection, ok, 503, '5.5.1 Already authenticated');
      if (connection.transaction !== null && connection.transaction.notes.postmeshSubmitter !== undefined)
        return finish(connection, ok, 503, '5.5.1 AUTH not permitted during a mail transaction');
      const [mechanism = '', initial] = (args[1] ?? '').trim().split(/\s+/);
      switch (mechanism.toUpperCase()) {
        case 'PLAIN': {
          if (initial === undefined || initial === '') {
            connection.notes.postmeshAuthState = { step: 'plain' } satisfies AuthState;
            return finish(connection, ok, 334, '');
          }
          const decoded = decodeBase64(initial === '=' ? '' : initial);
          const creds = decoded === undefined ? undefined : parsePlain(decoded);
          if (creds === undefined) return finish(connection, ok, 501, '5.5.2 Malformed PLAIN response');
          return runVerify(next, connection, creds.user, creds.password, 'plain');
        }
        case 'LOGIN': {
          if (initial !== undefined && initial !== '') {
            const user = decodeBase64(initial);
            if (user === undefined) return finish(connection, ok, 501, '5.5.2 Cannot decode response');
            connection.notes.postmeshAuthState = { step: 'login-pass', user } satisfies AuthState;
            return finish(connection, ok, 334, LOGIN_PASS);
          }
          connection.notes.postmeshAuthState = { step: 'login-user' } satisfies AuthState;
          return finish(connection, ok, 334, LOGIN_USER);
        }
        default:
          // RFC 4954 §4: 504 5.5.4 for a mechanism we do not offer.
          return finish(connection, ok, 504, '5.5.4 Unrecognized authentication type');
      }
    },

    hook_mail(next, connection, params) {
      if (!isSubmission(connection)) return next();
      const user = submissionUser(connection);
      // RFC 4954 §6: 530 5.7.0 Authentication required.
      if (user === undefined) return next(HookCode.DENY, new DSN(530, '5.7.0 Authentication required'));
      const from = Array.isArray(params) ? (params[0] as HarakaAddress | undefined) : undefined;
      const address = from === undefined || from.isNull() ? '' : from.address.toLowerCase();
      // DESIGN §5: submitted mail may only use the sender's own addresses.
      if (address === '' || !user.senderAddresses.includes(address)) {
        return next(HookCode.DENY, new DSN(550, '5.7.1 Sender address not owned by the authenticated user'));
      }
      const transaction = connection.transaction;
      if (transaction !== null) transaction.notes.postmeshSubmitter = user;
      if (options.quota === undefined) return next();
      options.quota
        .take(user.userId, user.limits.messagesPerHour)
        .then((allowed) => {
          // RFC 3463 §3.8 X.7.1: delivery not authorized (for now); temporary, the client retries later.
          if (allowed) next();
          else next(HookCode.DENYSOFT, new DSN(451, '4.7.1 Hourly sending limit reached, try again later'));
        })
        .catch((error: unknown) => {
          options.onError(error);
          next();
        });
    },

    hook_rcpt(next, connection, params) {
      if (!isSubmission(connection)) return next();
      const transaction = connection.transaction;
      const rcpt = Array.isArray(params) ? (params[0] as HarakaAddress | undefined) : undefined;
      if (transaction === null || rcpt === undefined || !rcpt.host) return next();
      // RFC 5321 §4.5.3.1.8 (the MSA's own recipient limit) and §4.5.3.1.10: 452 for too many
      // recipients (Haraka has already appended this one). The user's own limit, else the default.
      const submitter = submissionUser(connection);
      const perMessage = effectiveLimit(
        submitter?.limits.recipientsPerMessage,
        options.recipientsPerMessage ?? 0,
      );
      if (perMessage > 0 && transaction.rcpt_to.length > perMessage) {
        return next(HookCode.DENYSOFT, new DSN(452, '4.5.3 Too many recipients for one message'));
      }
      options.directory
        .domainOwnership(rcpt.host.toLowerCase())
        .then((owned) => {
          switch (owned.kind) {
            case 'ours':
              // Local: postmesh_rcpt resolves it as for MX mail.
              next();
              return;
            case 'not-ours':
              transaction.notes.postmeshRemote = [...remoteRecipients(transaction.notes), rcpt.address];
              next(HookCode.OK);
              return;
            case 'unavailable':
              options.onError(new Error(owned.reason));
              next(HookCode.DENYSOFT, new DSN(451, '4.3.0 Temporary directory failure, try again later'));
              return;
          }
        })
        .catch((error: unknown) => {
          options.onError(error);
          next(HookCode.DENYSOFT, new DSN(451, '4.3.0 Temporary directory failure, try again later'));
        });
    },

    hook_data_post(next, connection) {
      const transaction = connection.transaction;
      if (!isSubmission(connection) || transaction === null) return next();
      const user = submissionUser(connection);
      if (user === undefined) return next(HookCode.DENY, new DSN(530, '5.7.0 Authentication required'));
      const fromFields = transaction.header.get_all('From');
      const addresses = fromFields.flatMap(fromAddresses);
      // RFC 5322 §3.6: exactly one From:, and DESIGN §5: every mailbox in it is the user's own.
      if (fromFields.length !== 1 || addresses.length === 0) {
        return next(HookCode.DENY, new DSN(550, '5.6.0 The message needs exactly one From: header'));
      }
      if (!addresses.every((a) => user.senderAddresses.includes(a))) {
        return next(
          HookCode.DENY,
          new DSN(550, '5.7.1 From: header address not owned by the authenticated user'),
        );
      }
      // RFC 6409 §8.2 / §8.3: the MSA may add a missing Message-ID and Date.
      if (transaction.header.get('Message-ID').trim() === '') {
        transaction.add_header(
          'Message-ID',
          `<${Date.now().toString(36)}.${randomBytes(9).toString('base64url')}@${options.hostname}>`,
        );
      }
      if (transaction.header.get('Date').trim() === '') {
        transaction.add_header('Date', rfc5322Date(new Date()));
      }
      next();
    },
  };
}
