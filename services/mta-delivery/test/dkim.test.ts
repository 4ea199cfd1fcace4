import { generateKeyPairSync } from 'node:crypto';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { signMessage, type SigningKey } from '../src/dkim.js';

const message = new TextEncoder().encode(
  'From: Alice <alice@example.test>\r\nTo: bob@example.org\r\nSubject:  Hello   there\r\n' +
    'Date: Fri, 27 Nov 2026 19:00:00 +0000\r\n\r\nA body  with   spaces \r\n\r\n\r\n',
);

function keyPair(kind: 'rsa' | 'ed25519'): { key: SigningKey; txt: string } {
  const pair =
    kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  // RFC 8463 §4.2: an Ed25519 p= is the raw 32-byte key (the tail of the SPKI).
  const p = (kind === 'rsa' ? spki : spki.subarray(spki.length - 32)).toString('base64');
  return {
    key: {
      domain: 'example.test',
      selector: `s${kind}`,
      algorithm: kind === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
      privateKeyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      keyId: kind,
    },
    txt: `v=DKIM1; k=${kind}; p=${p}`,
  };
}

describe('DKIM signing (RFC 6376 relaxed/relaxed, RFC 8463)', () => {
  it.each(['rsa', 'ed25519'] as const)(
    '%s: every signature verifies, also with the cached key',
    async (kind) => {
      const { key, txt } = keyPair(kind);
      for (let i = 0; i < 3; i++) {
        const signed = await signMessage(message, [key]);
        expect(new TextDecoder().decode(signed.subarray(0, 200))).toMatch(
          /^DKIM-Signature: [^\r]*c=relaxed\/relaxed/,
        );
        const result = await dkimVerify(Buffer.from(signed), {
          resolver: (name: string, type: string) =>
            type === 'TXT' && name === `${key.selector}._domainkey.example.test`
              ? Promise.resolve([[txt]])
              : Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' })),
        });
        expect(result.results[0]?.status.result).toBe('pass');
      }
    },
  );

  it('a signature made with one key does not verify against another (the cache keeps keys apart)', async () => {
    const a = keyPair('rsa');
    const b = keyPair('rsa');
    await signMessage(message, [a.key]);
    const signed = await signMessage(message, [b.key]);
    const result = await dkimVerify(Buffer.from(signed), {
      resolver: () => Promise.resolve([[a.txt]]),
    });
    expect(result.results[0]?.status.result).toBe('fail');
  });

  it('dual signing (RFC 8463 §3): one DKIM-Signature per key, Ed25519 first, each verifying on its own', async () => {
    const ed = keyPair('ed25519');
    const rsa = keyPair('rsa');
    const signed = await signMessage(message, [ed.key, rsa.key]);
    const text = new TextDecoder().decode(signed);
    const fields = text.split('\r\n\r\n')[0]?.match(/^DKIM-Signature:/gm) ?? [];
    expect(fields).toHaveLength(2);
    expect(text).toMatch(/^DKIM-Signature: [^\r]*a=ed25519-sha256/);
    const records: Record<string, string> = {
      [`${ed.key.selector}._domainkey.example.test`]: ed.txt,
      [`${rsa.key.selector}._domainkey.example.test`]: rsa.txt,
    };
    const verify = (publish: Record<string, string>) =>
      dkimVerify(Buffer.from(signed), {
        resolver: (name: string) => {
          const txt = publish[name];
          return txt === undefined
            ? Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }))
            : Promise.resolve([[txt]]);
        },
      });
    const both = await verify(records);
    expect(both.results.map((r) => [r.selector, r.status.result])).toEqual([
      ['sed25519', 'pass'],
      ['srsa', 'pass'],
    ]);
    // A receiver that only finds the RSA record still has a passing signature.
    const rsaOnly = await verify({ [`${rsa.key.selector}._domainkey.example.test`]: rsa.txt });
    expect(rsaOnly.results.find((r) => r.selector === 'srsa')?.status.result).toBe('pass');
    expect(rsaOnly.results.find((r) => r.selector === 'sed25519')?.status.result).not.toBe('pass');
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('signs and writes the same t= even when the clock moves on during signing', async () => {
    // A clock that moves a second per reading makes every signature straddle a boundary.
    let clock = Date.parse('2026-11-27T19:00:00.400Z');
    vi.spyOn(Date, 'now').mockImplementation(() => (clock += 1_000));
    for (const kind of ['ed25519', 'rsa'] as const) {
      const { key, txt } = keyPair(kind);
      const signed = await signMessage(message, [key]);
      const result = await dkimVerify(Buffer.from(signed), { resolver: () => Promise.resolve([[txt]]) });
      expect(result.results[0]?.status.result, kind).toBe('pass');
    }
  });
});
