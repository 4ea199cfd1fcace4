/**
 * DKIM key pairs and their DNS records: RFC 6376 §3.6.1 (key record tags), RFC 8463 §4.2
 * (Ed25519: `k=ed25519`, `p=` is the raw 32-byte public key), RFC 8301 §3.2 (RSA keys of at
 * least 1024 bits; we generate 2048).
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { DkimAlgorithm } from '../db/schema.js';

export interface GeneratedDkimKey {
  /** PKCS#8 DER of the private key (to be wrapped before it is stored). */
  readonly privateKeyDer: Uint8Array;
  /** The TXT record value to publish at `<selector>._domainkey.<domain>`. */
  readonly dnsTxtValue: string;
}

export function generateDkimKey(algorithm: DkimAlgorithm): GeneratedDkimKey {
  switch (algorithm) {
    case 'ed25519': {
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      return {
        privateKeyDer: pkcs8(privateKey),
        dnsTxtValue: `v=DKIM1; k=ed25519; p=${rawEd25519(publicKey)}`,
      };
    }
    case 'rsa2048': {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      // RFC 6376 §3.6.1 `p=`: base64 of the DER SubjectPublicKeyInfo.
      const spki = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
      return { privateKeyDer: pkcs8(privateKey), dnsTxtValue: `v=DKIM1; k=rsa; p=${spki}` };
    }
  }
}

function pkcs8(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: 'pkcs8', format: 'der' }));
}

/** RFC 8463 §4.2: the raw 32-byte public key, base64 (the JWK `x` is its base64url form). */
function rawEd25519(publicKey: KeyObject): string {
  const x = publicKey.export({ format: 'jwk' }).x;
  if (x === undefined) throw new Error('ed25519 public key without x');
  return Buffer.from(x, 'base64url').toString('base64');
}

/** PKCS#8 DER → PEM (`-----BEGIN PRIVATE KEY-----`), as GetSigningKey returns it. */
export function privateKeyPem(der: Uint8Array): string {
  return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
}
