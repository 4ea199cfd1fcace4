/** The domains in the signed-in administrator's scope, for choices (never a free-text domain). */
import { useEffect, useState } from 'react';
import { api, qs, type Page } from './api.js';
import type { Domain } from './types.js';

/** Names of the domains the caller may see, sorted; undefined while loading. */
export function useDomainNames(): string[] | undefined {
  const [names, setNames] = useState<string[] | undefined>();
  useEffect(() => {
    let live = true;
    const all: string[] = [];
    const next = async (pageToken: string): Promise<void> => {
      const page = await api<Page<Domain>>('GET', `/v1/domains${qs({ pageToken, pageSize: 1000 })}`);
      all.push(...page.items.map((d) => d.name));
      // Bounded: a console choice list beyond a few thousand domains is not useful anyway.
      if (page.nextPageToken !== '' && all.length < 5000) return next(page.nextPageToken);
    };
    next('').then(
      () => live && setNames(all.sort()),
      () => live && setNames([]),
    );
    return () => {
      live = false;
    };
  }, []);
  return names;
}
