/**
 * DKIM signing (RFC 6376 §5, relaxed/relaxed per §3.4.2 and §3.4.4; Ed25519 per RFC 8463) with
 * every active key of the From: domain, fetched from the Directory (`GetSigningKey`, at most one
 * key per algorithm). A domain with an Ed25519 and an RSA key gets two DKIM-Signature fields
 * (RFC 8463 §3; RFC 6376 §4.2: a verifier that cannot check one uses the other). Keys live in
 * memory for a minute only (the contract forbids caching them on disk) so an activation or
 * retirement takes effect quickly.
 */
import { directory } from '@postmesh/contracts';
import type { StorageClient } from '@postmesh/storage-client';
// Must come before the signer is loaded (see the module).
import './mailauth-key-cache.js';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';

export interface SigningKey {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: 'ed25519-sha256' | 'rsa-sha256';
  readonly privateKeyPem: string;
  readonly keyId: string;
}

export type KeyAnswer =
  /** One or more keys, Ed25519 first; never empty. */
  | { readonly kind: 'keys'; readonly keys: readonly [SigningKey, ...SigningKey[]] }
  | { readonly kind: 'none' }
  | { readonly kind: 'unavailable'; readonly reason: string };

export interface SigningKeySource {
  signingKey(domain: string): Promise<KeyAnswer>;
  close(): void;
}

export class DirectorySigningKeys implements SigningKeySource {
  private readonly cache = new Map<string, { answer: KeyAnswer; until: number }>();

  constructor(
    private readonly storage: StorageClient,
    private readonly ttlMs = 60_000,
  ) {}

  async signingKey(rawDomain: string): Promise<KeyAnswer> {
    const domain = rawDomain.toLowerCase();
    const hit = this.cache.get(domain);
    if (hit !== undefined && hit.until > Date.now()) return hit.answer;
    let answer: KeyAnswer;
    try {
      const response = await this.storage.directory.getSigningKey({ domain });
      // `keys` is every active key; an older storage fills only `key`.
      const given =
        response.keys.length > 0 ? response.keys : response.key === undefined ? [] : [response.key];
      const [first, ...rest] = given.map(keyOf);
      answer = first === undefined ? { kind: 'none' } : { kind: 'keys', keys: [first, ...rest] };
    } catch (error) {
      return { kind: 'unavailable', reason: error instanceof Error ? error.message : String(error) };
    }
    this.cache.set(domain, { answer, until: Date.now() + this.ttlMs });
    return answer;
  }

  close(): void {
    this.storage.close();
  }
}

function keyOf(key: directory.SigningKey): SigningKey {
  return {
    domain: key.domain,
    selector: key.selector,
    algorithm: key.algorithm === directory.DkimAlgorithm.ED25519 ? 'ed25519-sha256' : 'rsa-sha256',
    privateKeyPem: key.privateKeyPem,
    keyId: key.keyId,
  };
}

/** Headers signed (RFC 6376 §5.4.1 recommends From, Subject, Date, To, Cc, MIME and list fields). */
const SIGNED_HEADERS = [
  'From',
  'Sender',
  'Reply-To',
  'Subject',
  'Date',
  'Message-ID',
  'To',
  'Cc',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
  'In-Reply-To',
  'References',
  'List-Id',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
];

/**
 * Returns the message with one `DKIM-Signature` header field per key prepended (RFC 6376 §5.6),
 * in the order of `keys`. Each signature covers the header fields of the original message only,
 * not the other signature, so either verifies on its own.
 */
export async function signMessage(message: Uint8Array, keys: readonly SigningKey[]): Promise<Uint8Array> {
  // mailauth's type declarations describe a flat option object; the signer reads `signatureData`.
  const options = {
    canonicalization: 'relaxed/relaxed',
    // One timestamp for the signed and the written header: without it mailauth 4.13.3 reads the
    // clock twice (`t=`, RFC 6376 §3.5), and about one signature in 500 straddling a second
    // boundary signed a `t=` other than the one it wrote, so it failed to verify.
    signTime: new Date(),
    headerList: SIGNED_HEADERS,
    signatureData: keys.map((key) => ({
      signingDomain: key.domain,
      selector: key.selector,
      privateKey: key.privateKeyPem,
      algorithm: key.algorithm,
      canonicalization: 'relaxed/relaxed',
    })),
  } as unknown as Parameters<typeof dkimSign>[1];
  const result = await dkimSign(Buffer.from(message.buffer, message.byteOffset, message.byteLength), options);
  if (result.errors !== null && result.errors !== undefined && result.errors.length > 0) {
    throw new Error(`DKIM signing failed: ${String(result.errors[0])}`);
  }
  const header = Buffer.from(result.signatures, 'utf8');
  const out = new Uint8Array(header.length + message.length);
  out.set(header, 0);
  out.set(message, header.length);
  return out;
}
