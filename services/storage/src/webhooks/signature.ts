/**
 * Webhook signatures (docs/webhooks.md): `Postmesh-Signature: t=<unix seconds>,v1=<hex>`, where
 * v1 is HMAC-SHA256, keyed by the endpoint's secret (its UTF-8 bytes), of `<t>.<body>`. Signing
 * the timestamp with the body lets a receiver refuse a replayed request outside its tolerance.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Postmesh-Signature';

/** A new signing secret: `whsec_` and 32 random bytes in base64url (256 bits). */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

function mac(secret: string, timestamp: number, body: Uint8Array | string): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The header value for `body` sent at `timestamp` (unix seconds). */
export function signWebhook(secret: string, timestamp: number, body: Uint8Array | string): string {
  return `t=${timestamp},v1=${mac(secret, timestamp, body)}`;
}

export type SignatureCheck =
  | { readonly ok: true; readonly timestamp: number }
  | { readonly ok: false; readonly problem: 'malformed' | 'mismatch' | 'stale' };

/**
 * What a receiver does with a request: parse the header, recompute the HMAC over the raw body
 * (constant-time comparison), and refuse timestamps further than `toleranceSeconds` from now.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  body: Uint8Array | string,
  options: { readonly toleranceSeconds?: number; readonly now?: number } = {},
): SignatureCheck {
  const fields = new Map<string, string[]>();
  for (const part of (header ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    fields.set(key, [...(fields.get(key) ?? []), part.slice(eq + 1).trim()]);
  }
  const t = fields.get('t')?.[0];
  const signatures = fields.get('v1') ?? [];
  if (t === undefined || !/^\d{1,12}$/.test(t) || signatures.length === 0)
    return { ok: false, problem: 'malformed' };
  const timestamp = Number(t);
  const expected = Buffer.from(mac(secret, timestamp, body), 'hex');
  const matches = signatures.some((candidate) => {
    if (!/^[0-9a-f]{64}$/.test(candidate)) return false;
    return timingSafeEqual(Buffer.from(candidate, 'hex'), expected);
  });
  if (!matches) return { ok: false, problem: 'mismatch' };
  const now = options.now ?? Math.floor(Date.now() / 1_000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return { ok: false, problem: 'stale' };
  return { ok: true, timestamp };
}
