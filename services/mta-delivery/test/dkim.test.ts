import { generateKeyPairSync } from 'node:crypto';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { describe, expect, it } from 'vitest';
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
        const signed = await signMessage(message, key);
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
    await signMessage(message, a.key);
    const signed = await signMessage(message, b.key);
    const result = await dkimVerify(Buffer.from(signed), {
      resolver: () => Promise.resolve([[a.txt]]),
    });
    expect(result.results[0]?.status.result).toBe('fail');
  });
});
