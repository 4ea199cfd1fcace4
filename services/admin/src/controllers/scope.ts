/** Helpers for handlers: the guard's decision, and lists paged across several domains. */
import { ApiError } from '../api/errors.js';
import type { QueueCaller } from '@postmesh/bus';
import { authOf, type HttpRequest } from '../api/http.js';
import { actorOf } from '../auth/principal.js';
import { queueScope } from '../policy.js';
import type { StorageClient } from '@postmesh/storage-client';

export function decisionOf(request: HttpRequest): { domains: 'all' | readonly string[]; self: boolean } {
  const decision = authOf(request).decision;
  if (decision === undefined) throw new ApiError('internal', 'internal error');
  return decision;
}

export async function domainIdOf(storage: StorageClient, name: string): Promise<string> {
  const { domain } = await storage.directory.getDomain({ selector: { $case: 'name', value: name } });
  if (domain === undefined) throw new ApiError('not_found', 'domain not found');
  return domain.id;
}

/**
 * Pages through one list per domain, one after the other. The page token carries the index of
 * the current domain and that domain's own page token.
 */
export async function pagedAcross<T>(
  domains: readonly string[],
  pageToken: string | undefined,
  pageSize: number,
  fetchPage: (domain: string, token: string, size: number) => Promise<{ items: T[]; next: string }>,
): Promise<{ items: T[]; nextPageToken: string }> {
  let index = 0;
  let inner = '';
  if (pageToken !== undefined && pageToken !== '') {
    const match = /^x(\d{1,4}):(.*)$/s.exec(Buffer.from(pageToken, 'base64url').toString('utf8'));
    if (match?.[1] === undefined) throw new ApiError('invalid_argument', 'pageToken: malformed', 'pageToken');
    index = Number(match[1]);
    inner = match[2] ?? '';
  }
  const items: T[] = [];
  while (index < domains.length && items.length < pageSize) {
    const domain = domains[index] ?? '';
    const page = await fetchPage(domain, inner, pageSize - items.length);
    items.push(...page.items);
    if (page.next === '') {
      index += 1;
      inner = '';
    } else {
      inner = page.next;
    }
  }
  const more = index < domains.length;
  return { items, nextPageToken: more ? Buffer.from(`x${index}:${inner}`).toString('base64url') : '' };
}

/** The caller for mta-delivery's queue operations; undefined when the decision's scope is empty. */
export function queueCallerOf(request: HttpRequest): QueueCaller | undefined {
  const auth = authOf(request);
  const principal = auth.principal;
  if (principal === undefined) throw new ApiError('unauthenticated', 'sign in first');
  const role = principal.kind === 'user' ? 'user' : principal.role;
  const scope = queueScope(role, decisionOf(request).domains);
  return scope === undefined ? undefined : { actor: actorOf(principal).actor, ...scope };
}
