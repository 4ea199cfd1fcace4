/** Tables over the API's paged lists. */
import { useEffect, useId, useState, type ReactNode } from 'react';
import { type Page } from '../api.js';
import { ErrorBanner } from './Banner.js';

export interface Column<T> {
  readonly title: string;
  readonly cell: (row: T) => ReactNode;
}

/** A table over a paged list: next/previous pages, an optional search box, visible errors. */
export function PagedTable<T>(props: {
  readonly label: string;
  readonly load: (pageToken: string, search: string) => Promise<Page<T>>;
  readonly columns: readonly Column<T>[];
  readonly rowKey: (row: T) => string;
  readonly searchLabel?: string;
  readonly reloadKey?: number;
}) {
  const { load, reloadKey } = props;
  const [tokens, setTokens] = useState<string[]>(['']);
  const [page, setPage] = useState<Page<T> | undefined>();
  const [error, setError] = useState<unknown>();
  const [search, setSearch] = useState('');
  const [applied, setApplied] = useState('');
  const [loading, setLoading] = useState(false);
  const current = tokens[tokens.length - 1] ?? '';
  useEffect(() => {
    let live = true;
    setLoading(true);
    load(current, applied)
      .then((p) => {
        if (live) {
          setPage(p);
          setError(undefined);
        }
      })
      .catch((e: unknown) => live && setError(e))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [load, current, applied, reloadKey]);
  const searchId = useId();
  return (
    <section aria-label={props.label}>
      {props.searchLabel !== undefined && (
        <form
          className="search"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            setTokens(['']);
            setApplied(search.trim());
          }}
        >
          <label htmlFor={searchId}>{props.searchLabel}</label>
          <input id={searchId} value={search} onChange={(e) => setSearch(e.target.value)} />
          <button type="submit">Search</button>
        </form>
      )}
      <ErrorBanner error={error} />
      <table>
        <caption>{props.label}</caption>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th key={c.title} scope="col">
                {c.title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {page?.items.map((row) => (
            <tr key={props.rowKey(row)}>
              {props.columns.map((c) => (
                <td key={c.title}>{c.cell(row)}</td>
              ))}
            </tr>
          ))}
          {page !== undefined && page.items.length === 0 && (
            <tr>
              <td colSpan={props.columns.length} className="empty">
                Nothing here yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <nav className="pager" aria-label={`${props.label} pages`}>
        <button
          type="button"
          disabled={tokens.length < 2 || loading}
          onClick={() => setTokens(tokens.slice(0, -1))}
        >
          Previous page
        </button>
        <span>Page {tokens.length}</span>
        <button
          type="button"
          disabled={loading || page === undefined || page.nextPageToken === ''}
          onClick={() => page !== undefined && setTokens([...tokens, page.nextPageToken])}
        >
          Next page
        </button>
      </nav>
    </section>
  );
}
