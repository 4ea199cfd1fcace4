/**
 * Encryption at rest (DESIGN §5), as the rest of storage sees it. Three layers:
 *   KEK (key provider: local file for dev, KMS in production)
 *     └ wraps each user's data key (stored in `users.dataKey`)
 *         └ wraps each message's content key (stored in `messages.contentKey`)
 *             └ encrypts the body once (GridFS), shared by every recipient of one delivery.
 * Rotating the KEK re-wraps what it wraps directly (user data keys, DKIM keys, admin TOTP seeds);
 * bodies are never rewritten.
 */
import type { WrappedKey } from '../db/schema.js';

/** Supplies and applies the key-encryption key. A KMS implements the same interface. */
export interface KeyProvider {
  /** Id of the KEK that `wrap` uses now. */
  readonly currentKekId: string;
  wrap(key: Uint8Array, context: string): Promise<WrappedKey>;
  /** Throws `KeyIntegrityError` when the wrapped key was tampered with or the KEK is unknown. */
  unwrap(wrapped: WrappedKey, context: string): Promise<Uint8Array>;
}

export class KeyIntegrityError extends Error {
  override readonly name = 'KeyIntegrityError';
}

/**
 * Per-user keys, as the mailstore and delivery use them. Implemented over `users.dataKey`
 * (unwrapped through the KeyProvider and cached in memory for a bounded time).
 */
export interface UserKeyring {
  /** Wrap a message content key for this user (AES-256-GCM under the user's data key). */
  wrapForUser(userId: string, key: Uint8Array, context: string): Promise<WrappedKey>;
  /** Throws KeyIntegrityError when tampered with. */
  unwrapForUser(userId: string, wrapped: WrappedKey, context: string): Promise<Uint8Array>;
  /** A per-user secret for keyed hashes of search terms (derived from the data key with HKDF). */
  searchKey(userId: string): Promise<Uint8Array>;
}
