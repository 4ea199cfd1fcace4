import { describe, expect, it } from 'vitest';
import { DEFAULT_THROTTLE_POLICY, accountKey, delayFor, ipKey } from '@postmesh/bus';
import { capabilityList } from '@postmesh/imap-protocol';
import { filterHeader } from '../src/commands/fetch.js';
import { toRanges } from '../src/commands/selection.js';
import { imapFlags, splitFlags } from '../src/flags.js';
import { parseProxyHeader } from '../src/proxy-protocol.js';
import { mailstore } from '@postmesh/contracts';

describe('auth throttle policy (DESIGN §5)', () => {
  it('lets the first failures through without delay, then doubles up to the cap', () => {
    const delays = [0, 1, 2, 3, 4, 5, 10].map((n) => delayFor(n, DEFAULT_THROTTLE_POLICY));
    expect(delays).toEqual([0, 0, 500, 1000, 2000, 4000, 8000]);
  });
  it('uses KV-safe keys and never stores the login in clear', () => {
    expect(ipKey('::ffff:10.0.0.1')).toBe('ip.__ffff_10.0.0.1');
    expect(ipKey('2001:db8::1')).toBe('ip.2001_db8__1');
    expect(accountKey('Alice@Example.TEST ')).toBe(accountKey('alice@example.test'));
    expect(accountKey('alice@example.test')).toMatch(/^account\.[0-9a-f]{40}$/);
  });
});

describe('capabilities (RFC 9051 §6.1.1, §6.2.3)', () => {
  const base = { starttls: true, appendLimit: 1000 };
  it('offers STARTTLS and LOGINDISABLED before TLS, AUTH= after', () => {
    const before = capabilityList({ ...base, state: 'notAuthenticated', tls: false, allowPlaintext: false });
    expect(before).toContain('LOGINDISABLED');
    expect(before).toContain('STARTTLS');
    expect(before.some((c) => c.startsWith('AUTH='))).toBe(false);
    const after = capabilityList({ ...base, state: 'notAuthenticated', tls: true, allowPlaintext: false });
    expect(after).toEqual(expect.arrayContaining(['AUTH=PLAIN', 'AUTH=LOGIN']));
    expect(after).not.toContain('STARTTLS');
    const authed = capabilityList({ ...base, state: 'authenticated', tls: true, allowPlaintext: false });
    expect(authed.at(-1)).toBe('APPENDLIMIT=1000');
    expect(authed.some((c) => c.startsWith('AUTH=') || c === 'STARTTLS')).toBe(false);
  });
});

describe('HEADER.FIELDS (RFC 9051 §6.4.5)', () => {
  const header = Buffer.from('From: a@b\r\nSubject: one\r\n two\r\nX-Other: x\r\nsubject: again\r\n\r\n');
  it('keeps matching fields with their continuation lines and ends with the blank line', () => {
    expect(filterHeader(header, ['SUBJECT'], false).toString()).toBe(
      'Subject: one\r\n two\r\nsubject: again\r\n\r\n',
    );
    expect(filterHeader(header, ['subject', 'x-other'], true).toString()).toBe('From: a@b\r\n\r\n');
    expect(filterHeader(header, ['Missing'], false).toString()).toBe('\r\n');
  });
  it('takes a header with bare LF line ends too, as a message stored that way has', () => {
    const bare = Buffer.from('From: a@b\nSubject: one\n two\nX-Other: x\n\n');
    expect(filterHeader(bare, ['subject'], false).toString()).toBe('Subject: one\n two\n\r\n');
    expect(filterHeader(bare, ['subject'], true).toString()).toBe('From: a@b\nX-Other: x\n\r\n');
  });
});

describe('flags and UID sets', () => {
  it('splits system flags from keywords and drops \\Recent', () => {
    expect(splitFlags(['\\seen', '\\Recent', '$Junk', '$junk', '\\Flagged'])).toEqual({
      flags: [mailstore.Flag.SEEN, mailstore.Flag.FLAGGED],
      keywords: ['$Junk'],
    });
    expect(imapFlags([mailstore.Flag.DELETED], ['x'], true)).toEqual(['\\Deleted', '\\Recent', 'x']);
  });
  it('pairs COPYUID source and destination runs', () => {
    expect(toRanges([1, 2, 3, 7, 9, 10])).toEqual([
      [1, 3],
      [7, 7],
      [9, 10],
    ]);
  });
});

describe('PROXY protocol header', () => {
  const address = (line: string): unknown => {
    const parsed = parseProxyHeader(Buffer.from(`${line}\r\n`, 'latin1'));
    if (parsed.status !== 'header') return null;
    return parsed.header.kind === 'proxied' ? parsed.header.sourceAddress : '';
  };
  it('reads the client address of a v1 header and refuses anything else', () => {
    expect(address('PROXY TCP4 192.0.2.1 192.0.2.2 5555 993')).toBe('192.0.2.1');
    expect(address('PROXY TCP6 2001:db8::1 2001:db8::2 5555 993')).toBe('2001:db8::1');
    expect(address('PROXY UNKNOWN')).toBe('');
    expect(address('GET / HTTP/1.1')).toBeNull();
    expect(address('PROXY TCP4 1.2.3.4')).toBeNull();
  });
});
