/** The console's pure helpers: zone-file export with long TXT values, and the password rule. */
import { describe, expect, it } from 'vitest';
import { splitTxt, zoneFile } from '../console/src/dns-zone.js';
import { passwordProblem } from '../src/api/password-policy.js';

describe('zone file', () => {
  it('splits a TXT value into character-strings of at most 255 bytes (RFC 1035 §3.3.14)', () => {
    const key = `v=DKIM1; k=rsa; p=${'A'.repeat(392)}`;
    const parts = splitTxt(key);
    expect(parts.map((p) => p.length)).toEqual([255, key.length - 255]);
    expect(parts.join('')).toBe(key);
    // Multi-byte characters are never cut in half: 200 × "é" (2 bytes each) = 400 bytes.
    const wide = splitTxt('é'.repeat(200));
    expect(wide.map((p) => new TextEncoder().encode(p).length)).toEqual([254, 146]);
  });

  it('writes fully qualified names, quotes TXT strings and escapes quotes', () => {
    const zone = zoneFile('example.org', [
      { type: 'MX', name: 'example.org', value: '10 mail.example.org.' },
      { type: 'TXT', name: 'sel._domainkey.example.org', value: `p=${'B'.repeat(300)}` },
      { type: 'TXT', name: 'example.org', value: 'say "hi"' },
    ]);
    const lines = zone.trim().split('\n');
    expect(lines[1]).toBe('example.org.\t3600\tIN\tMX\t10 mail.example.org.');
    expect(lines[2]).toBe(
      `sel._domainkey.example.org.\t3600\tIN\tTXT\t"p=${'B'.repeat(253)}" "${'B'.repeat(47)}"`,
    );
    expect(lines[3]).toBe('example.org.\t3600\tIN\tTXT\t"say \\"hi\\""');
  });
});

describe('password rule', () => {
  it('explains length, the address, variety and common passwords', () => {
    expect(passwordProblem('short')).toBe('must be at least 10 characters');
    expect(passwordProblem('carol wrote this 2026', 'carol@example.org')).toMatch(/must not contain “carol”/);
    expect(passwordProblem('aaaaabbbbbb')).toBe('must use at least 4 different characters');
    expect(passwordProblem('Password123')).toBe('is a commonly used password');
    expect(passwordProblem('a long and unusual phrase', 'carol@example.org')).toBeUndefined();
  });
});
