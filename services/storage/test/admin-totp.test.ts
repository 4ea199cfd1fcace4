/** TOTP (RFC 6238) against the RFC's own test vectors, and base32 (RFC 4648 §10). */
import { describe, expect, it } from 'vitest';
import { base32Decode, base32Encode, hotp, matchTotp, totpCode } from '../src/totp/index.js';

const rfcSecret = Buffer.from('12345678901234567890', 'ascii');

describe('TOTP', () => {
  it.each([
    [59, '287082'],
    [1111111109, '081804'],
    [1111111111, '050471'],
    [1234567890, '005924'],
    [2000000000, '279037'],
  ])('RFC 6238 Appendix B (SHA-1, last 6 digits) at T=%i', (seconds, code) => {
    expect(totpCode(rfcSecret, new Date(seconds * 1000))).toBe(code);
  });

  it('RFC 4226 Appendix D HOTP values', () => {
    expect([0, 1, 2, 9].map((c) => hotp(rfcSecret, c))).toEqual(['755224', '287082', '359152', '520489']);
  });

  it('accepts one step of drift, refuses two, and refuses a step already used', () => {
    const now = new Date(1_700_000_000_000);
    const previous = totpCode(rfcSecret, new Date(now.getTime() - 30_000));
    const tooOld = totpCode(rfcSecret, new Date(now.getTime() - 60_000));
    const step = matchTotp(rfcSecret, previous, now);
    expect(step).toBeDefined();
    expect(matchTotp(rfcSecret, tooOld, now)).toBeUndefined();
    expect(matchTotp(rfcSecret, previous, now, step)).toBeUndefined();
    expect(matchTotp(rfcSecret, 'abcdef', now)).toBeUndefined();
  });

  it('base32 round-trips and matches RFC 4648 §10', () => {
    expect(base32Encode(Buffer.from('foobar'))).toBe('MZXW6YTBOI');
    expect(base32Decode('MZXW6YTBOI======').toString()).toBe('foobar');
    const bytes = Buffer.from([...Array(20).keys()]);
    expect(base32Decode(base32Encode(bytes))).toEqual(bytes);
  });
});
