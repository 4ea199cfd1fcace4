/** AIP-158 paging as directory.proto describes it: 0 → 100, clamped to 1000, opaque tokens. */
import { ErrorReason } from '@postmesh/contracts';
import { fail, ok, type Result } from './result.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export function pageSizeOf(requested: number): number {
  if (requested <= 0) return DEFAULT_PAGE_SIZE;
  return Math.min(requested, MAX_PAGE_SIZE);
}

/** A token carries the sort key of the last item returned (exclusive lower bound of the next page). */
export function encodePageToken(after: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify({ v: 1, after }), 'utf8').toString('base64url');
}

export function decodePageToken(token: string): Result<readonly (string | number)[] | undefined> {
  if (token === '') return ok(undefined);
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'after' in parsed &&
      Array.isArray(parsed.after) &&
      parsed.after.every((v) => typeof v === 'string' || typeof v === 'number')
    ) {
      return ok(parsed.after);
    }
  } catch {
    // fall through
  }
  return fail(ErrorReason.INVALID_ARGUMENT, 'malformed page token', 'page_token');
}
