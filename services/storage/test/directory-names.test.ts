/** Address, domain and selector normalisation (pure; RFC 5321 §4.1.2, §4.5.3.1.1; RFC 5233; RFC 5890). */
import { describe, expect, it } from 'vitest';
import { normaliseDomain, normaliseSelector, parseAddress, splitSubaddress } from '../src/directory/names.js';
import { appSecretHash, generateAppSecret, passwordProblem } from '../src/directory/passwords.js';

describe('normaliseDomain', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['bücher.de', 'xn--bcher-kva.de'],
    ['XN--BCHER-KVA.de', 'xn--bcher-kva.de'],
    ['a-b.c-d.test', 'a-b.c-d.test'],
  ])('%s → %s', (raw, expected) => {
    expect(normaliseDomain(raw)).toBe(expected);
  });

  it.each([
    '',
    'com',
    'a..b',
    '-a.test',
    'a-.test',
    'a_b.test',
    'a b.test',
    'x@y.test',
    `${'a'.repeat(64)}.test`,
    `${'a.'.repeat(127)}test`,
  ])('refuses %j', (raw) => {
    expect(normaliseDomain(raw)).toBeUndefined();
  });
});

describe('parseAddress', () => {
  it('keeps the local part as given and keys it case-folded', () => {
    expect(parseAddress(' Jane.Doe@Example.ORG ')).toEqual({
      local: 'Jane.Doe',
      domain: 'example.org',
      key: 'jane.doe@example.org',
      display: 'Jane.Doe@example.org',
    });
  });

  it('accepts UTF-8 local parts (RFC 6531) and 64 octets exactly', () => {
    expect(parseAddress('Ünïcode@example.org')?.key).toBe('ünïcode@example.org');
    expect(parseAddress(`${'a'.repeat(64)}@example.org`)).toBeDefined();
  });

  it.each([
    'plain',
    '@example.org',
    'a@',
    'a b@example.org',
    '.a@example.org',
    'a.@example.org',
    'a..b@example.org',
    '"q"@example.org',
    'a<b@example.org',
    `${'a'.repeat(65)}@example.org`,
    `${'é'.repeat(33)}@example.org`,
    'a@b',
  ])('refuses %j', (raw) => {
    expect(parseAddress(raw)).toBeUndefined();
  });
});

describe('splitSubaddress (RFC 5233)', () => {
  it('splits at the first +', () => {
    const parsed = parseAddress('User+Lists+x@example.org');
    if (parsed === undefined) throw new Error('parse failed');
    expect(splitSubaddress(parsed)).toEqual({
      base: { local: 'User', domain: 'example.org', key: 'user@example.org', display: 'User@example.org' },
      detail: 'Lists+x',
    });
  });

  it('has nothing to split without a + or with a leading one', () => {
    for (const raw of ['user@example.org', '+tag@example.org']) {
      const parsed = parseAddress(raw);
      if (parsed === undefined) throw new Error('parse failed');
      expect(splitSubaddress(parsed)).toBeUndefined();
    }
  });
});

describe('normaliseSelector (RFC 6376 §3.1)', () => {
  it.each([
    ['PM2026a', 'pm2026a'],
    ['s-1', 's-1'],
  ])('%s → %s', (raw, expected) => {
    expect(normaliseSelector(raw)).toBe(expected);
  });
  it.each(['', 'a.b', '-a', 'a-', 'a_b', 'x'.repeat(64)])('refuses %j', (raw) => {
    expect(normaliseSelector(raw)).toBeUndefined();
  });
});

describe('password policy and app secrets', () => {
  const address = { local: 'alice', domain: 'example.org' };
  it.each([
    ['short', /at least 10/],
    ['x'.repeat(257), /at most 256/],
    ['my-Alice-password', /address/],
    ['abababababab', /4 different/],
  ])('refuses %j', (password, why) => {
    expect(passwordProblem(password, address)).toMatch(why);
  });
  it('accepts a reasonable passphrase, counting characters not bytes', () => {
    expect(passwordProblem('correct horse battery', address)).toBeUndefined();
    expect(passwordProblem('ĉŝĝĥĵŭĉŝĝĥ', address)).toBeUndefined();
  });

  it('generates distinct 130-bit secrets whose hash ignores dashes and case', () => {
    const a = generateAppSecret();
    expect(a).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){4}-[a-z2-7]{6}$/);
    expect(generateAppSecret()).not.toBe(a);
    expect(appSecretHash(a.toUpperCase().replace(/-/g, ' '))).toBe(appSecretHash(a));
    expect(appSecretHash(a)).not.toContain(a.replace(/-/g, ''));
  });
});
