/**
 * AES-256-GCM sealing of small secrets (keys, DKIM private keys) into the `WrappedKey` shape of
 * db/schema.ts. NIST SP 800-38D: a 96-bit random IV per message (§8.2.2; far below the 2^32
 * invocations bound per key for the volumes here) and the full 128-bit tag. The caller's
 * `context` is the additional authenticated data, so a sealed value copied to another user,
 * message or DKIM selector fails to open instead of decrypting.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Binary } from 'mongodb';
import type { WrappedKey } from '../db/schema.js';
import { KeyIntegrityError } from './types.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

/** The bytes of a BSON Binary (a view; copy before mutating). */
export function bytesOf(value: Binary): Uint8Array {
  return value.buffer.subarray(0, value.position);
}

export function seal(key: Uint8Array, by: string, plaintext: Uint8Array, context: string): WrappedKey {
  if (key.length !== KEY_BYTES) throw new RangeError(`AES-256-GCM needs a ${KEY_BYTES}-byte key`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    by,
    iv: new Binary(iv),
    tag: new Binary(cipher.getAuthTag()),
    ciphertext: new Binary(ciphertext),
  };
}

/** Throws KeyIntegrityError when any byte of iv, tag or ciphertext, or the context, differs. */
export function open(key: Uint8Array, wrapped: WrappedKey, context: string): Uint8Array {
  const iv = bytesOf(wrapped.iv);
  const tag = bytesOf(wrapped.tag);
  // A truncated tag would weaken authentication (SP 800-38D §5.2.1.2): accept exactly 128 bits.
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new KeyIntegrityError(`sealed value from ${wrapped.by} has a malformed iv or tag`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(bytesOf(wrapped.ciphertext)), decipher.final()]));
  } catch (error) {
    throw new KeyIntegrityError(
      `sealed value from ${wrapped.by} failed authentication (tampered, or opened under the wrong context)`,
      { cause: error },
    );
  }
}
