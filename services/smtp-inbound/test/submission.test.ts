/** Pure pieces of submission: SASL decoding, From: parsing, recipient routing, shared throttle keys. */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DEFAULT_THROTTLE_POLICY, accountKey, delayFor, ipKey, type AuthThrottle } from '@postmesh/bus';
import type { HarakaConnection } from '../src/haraka/types.js';
import { harakaConfigFiles } from '../src/haraka/config-dir.js';
import { routeRecipients } from '../src/plugins/queue.js';
import {
  answerMailWithoutAuthFirst,
  decodeBase64,
  fromAddresses,
  parsePlain,
  rfc5322Date,
  submissionHooks,
} from '../src/plugins/submission.js';

describe('AUTH decoding (RFC 4616, RFC 4954)', () => {
  it('parses PLAIN with and without an authorization identity; refuses acting as someone else', () => {
    expect(parsePlain('\0alice@example.test\0secret')).toEqual({
      user: 'alice@example.test',
      password: 'secret',
    });
    expect(parsePlain('alice@example.test\0alice@example.test\0secret')).toEqual({
      user: 'alice@example.test',
      password: 'secret',
    });
    expect(parsePlain('bob@example.test\0alice@example.test\0secret')).toBeUndefined();
    expect(parsePlain('\0alice@example.test\0')).toBeUndefined();
    expect(parsePlain('alice secret')).toBeUndefined();
  });
  it('accepts only well-formed base64', () => {
    expect(decodeBase64(Buffer.from('user').toString('base64'))).toBe('user');
    expect(decodeBase64('dXNlcg')).toBeUndefined();
    expect(decodeBase64('d$Nlcg==')).toBeUndefined();
  });
});

describe('From: addresses (RFC 5322 §3.4)', () => {
  it('takes angle-addrs, bare addresses and groups of mailboxes, ignoring display names and comments', () => {
    expect(fromAddresses('Alice <Alice@Example.TEST>')).toEqual(['alice@example.test']);
    expect(fromAddresses('bob@example.test (Bob)')).toEqual(['bob@example.test']);
    expect(fromAddresses('"Mallory, <demo@example.test>" <mallory@evil.test>')).toEqual([
      'mallory@evil.test',
    ]);
    expect(fromAddresses('a@x.test, "B" <b@y.test>')).toEqual(['a@x.test', 'b@y.test']);
    expect(fromAddresses('A\r\n <a@x.test>')).toEqual(['a@x.test']);
  });
  it('formats Date as RFC 5322 §3.3 date-time', () => {
    expect(rfc5322Date(new Date(Date.UTC(2026, 10, 27, 9, 5, 3)))).toBe('Fri, 27 Nov 2026 09:05:03 +0000');
  });
});

describe('routing submitted mail', () => {
  it('keeps local recipients together and groups remote ones by lower-case domain', () => {
    const r = routeRecipients(
      ['a@example.test', 'x@Remote.test', 'y@remote.test', 'z@other.test'],
      ['x@Remote.test', 'y@remote.test', 'z@other.test'],
    );
    expect(r.local).toEqual(['a@example.test']);
    expect([...r.remote]).toEqual([
      ['remote.test', ['x@Remote.test', 'y@remote.test']],
      ['other.test', ['z@other.test']],
    ]);
  });
});

describe('failed-login counters shared with imap', () => {
  it('keeps the KV key scheme imap has always written (libs/bus auth-throttle)', () => {
    expect(ipKey('2001:db8::1')).toBe('ip.2001_db8__1');
    // sha256("alice@example.test"), first 40 hex digits: the key imap writes for this login.
    expect(accountKey(' Alice@Example.TEST')).toBe('account.69b1145a03334875161ea18c1373b5703aeeff14');
    expect(delayFor(1, DEFAULT_THROTTLE_POLICY)).toBe(0);
    expect(delayFor(3, DEFAULT_THROTTLE_POLICY)).toBe(1_000);
    expect(delayFor(30, DEFAULT_THROTTLE_POLICY)).toBe(8_000);
  });
});

describe('Haraka listeners', () => {
  it('listens on MX, submission and submissions, with implicit TLS on the submissions port', () => {
    const smtp =
      harakaConfigFiles(
        {
          listenHost: '127.0.0.1',
          listenPort: 2525,
          submissionPort: 2587,
          submissionsPort: 2465,
          hostname: 'mx.example.test',
          maxMessageBytes: 1024,
          idleTimeoutSeconds: 60,
          tls: { certFile: 'c', keyFile: 'k', dhparamFile: 'd' },
          proxyProtocol: false,
          queueTimeoutSeconds: 30,
        },
        '/s',
      ).get('smtp.ini') ?? '';
    expect(smtp).toContain('listen=127.0.0.1:2525,127.0.0.1:2587,127.0.0.1:2465');
    expect(smtp).toContain('smtps_port=2465');
  });
});

describe('MAIL without AUTH on the literal ports 587/465 (RFC 4954 §6)', () => {
  // Haraka's real Connection class: its cmd_mail is the code path that answered 550.
  const { Connection } = createRequire(import.meta.url)('Haraka/connection.js') as {
    Connection: { prototype: object };
  };
  const SUBMISSION_PORTS = [587, 465];
  const isSubmission = (c: HarakaConnection) => SUBMISSION_PORTS.includes(c.local.port);

  function harakaConnection(port: number, over: Record<string, unknown> = {}) {
    const replies: [number, string][] = [];
    let transactions = 0;
    const conn = Object.assign(Object.create(Connection.prototype) as object, {
      local: { port },
      remote: { ip: '192.0.2.1', port: 40000 },
      hello: { host: 'client.example.test', verb: 'EHLO' },
      esmtp: true,
      tls: { enabled: true },
      notes: {},
      transaction: null,
      _relaying: false,
      errors: 0,
      respond: (code: number, message: string) => replies.push([code, message]),
      // Haraka's next step after its checks: count that MAIL went on to the hooks.
      init_transaction: () => (transactions += 1),
      lognotice: () => undefined,
      logerror: () => undefined,
      ...over,
    }) as unknown as HarakaConnection & { cmd_mail: (line: string) => void; errors: number };
    return { conn, replies, transactions: () => transactions };
  }

  it.each([587, 465])(
    'Haraka core alone answers 550 on port %i; with our pre-check the client gets 530 5.7.0',
    (port) => {
      const bare = harakaConnection(port);
      bare.conn.cmd_mail('FROM:<demo@example.test>');
      expect(bare.replies).toEqual([[550, 'Authentication required']]);

      const wrapped = harakaConnection(port);
      const hooks = submissionHooksForTest();
      hooks.hook_connect_init?.(() => undefined, wrapped.conn);
      wrapped.conn.cmd_mail('FROM:<demo@example.test>');
      expect(wrapped.replies).toEqual([[530, '5.7.0 Authentication required']]);
      expect(wrapped.conn.errors).toBe(1);
      expect(wrapped.transactions()).toBe(0);
    },
  );

  it('leaves everything else to Haraka: no EHLO yet (503), an authenticated user, the MX port', () => {
    const early = harakaConnection(587, { hello: { host: null, verb: null } });
    answerMailWithoutAuthFirst(early.conn, isSubmission);
    early.conn.cmd_mail('FROM:<demo@example.test>');
    expect(early.replies).toEqual([[503, 'Use EHLO/HELO before MAIL']]);

    const authed = harakaConnection(587, {
      _relaying: true,
      notes: { postmeshUser: { userId: 'u1', login: 'demo@example.test', senderAddresses: [], limits: {} } },
    });
    answerMailWithoutAuthFirst(authed.conn, isSubmission);
    authed.conn.cmd_mail('FROM:<demo@example.test>');
    expect(authed.replies).toEqual([]);
    expect(authed.transactions()).toBe(1);

    const mx = harakaConnection(25);
    answerMailWithoutAuthFirst(mx.conn, isSubmission);
    mx.conn.cmd_mail('FROM:<someone@remote.test>');
    expect(mx.replies).toEqual([]);
    expect(mx.transactions()).toBe(1);
  });

  /** The plugin's hooks with inert dependencies (only hook_connect_init is used here). */
  function submissionHooksForTest() {
    return submissionHooks({
      ports: SUBMISSION_PORTS,
      authenticator: { authenticate: () => Promise.resolve({ kind: 'failure', reason: 'unused' }) },
      directory: { domainOwnership: () => Promise.resolve({ kind: 'not-ours' }) },
      throttle: {} as AuthThrottle,
      hostname: 'mx.example.test',
      onError: () => undefined,
    });
  }
});
