/**
 * Account passwords: argon2id (RFC 9106) via @node-rs/argon2. Parameters follow the OWASP
 * Password Storage Cheat Sheet's first recommendation for argon2id: m = 19 MiB, t = 2, p = 1
 * (about 20–40 ms per hash on one core here). They are stored in the PHC string, so raising them
 * later only affects new hashes; `needsRehash` says when a login should upgrade an old one.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hash, verify, type Algorithm } from '@node-rs/argon2';

/** `Algorithm.Argon2id` (a const enum, which isolated modules cannot read). */
const ARGON2ID = 2 as Algorithm;

export const ARGON2_PARAMS = {
  algorithm: ARGON2ID,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
  outputLen: 32,
} as const;

export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_PARAMS);
}

export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  try {
    return await verify(phc, password);
  } catch {
    return false;
  }
}

/**
 * A hash of a random password, verified when the login name is unknown so that an unknown
 * address costs the same time as a wrong password (no account probing by timing).
 */
let dummyHash: Promise<string> | undefined;
export async function burnVerification(password: string): Promise<void> {
  dummyHash ??= hashPassword(randomBytes(16).toString('base64'));
  await verifyPassword(await dummyHash, password);
}

/** Why a password is refused, or `undefined` when it meets the policy. */
export function passwordProblem(
  password: string,
  address: { local: string; domain: string },
): string | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  const folded = password.toLowerCase();
  if (folded.includes(address.local.toLowerCase()) && address.local.length >= 3) {
    return 'must not contain the address';
  }
  if (new Set(password).size < 4) return 'must use at least 4 different characters';
  return undefined;
}

/** App password secrets: 26 characters of base32 (130 bits), grouped for typing. */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
export function generateAppSecret(): string {
  const bytes = randomBytes(26);
  let out = '';
  for (const [i, byte] of bytes.entries()) {
    if (i > 0 && i % 4 === 0 && i < 24) out += '-';
    out += BASE32[byte & 31] ?? 'a';
  }
  return out;
}

/** How app password secrets are stored (see AppPasswordDoc.secretHash). */
export function appSecretHash(secret: string): string {
  // Dashes and case are for humans; the secret is the 26 characters.
  const canonical = secret.replace(/[-\s]/g, '').toLowerCase();
  return createHash('sha256').update(`postmesh app password v1\0${canonical}`).digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
