/** Tables over the API's paged lists. */
import { useEffect, useId, useState, type ReactNode } from 'react';
import { type Page } from '../api.js';
import { ErrorBanner } from './Banner.js';

export interface Column<T> {
  readonly title: string;
  readonly cell: (row: T) => ReactNode;
}

/**
 * A table over a paged list: next/previous pages, an optional search box, visible errors. Below
 * 640 px each row is a card (style.css) with the first column (what the row is) beside its actions.
 *
 * Paging restarts at page one whenever the question changes: a new search here, or a new `load`
 * (the page's filters are in it), because a page token only means something for the question
 * that produced it.
 */
export function PagedTable<T>(props: {
  readonly label: string;
  readonly load: (pageToken: string, search: string) => Promise<Page<T>>;
  readonly columns: readonly Column<T>[];
  readonly rowKey: (row: T) => string;
  readonly searchLabel?: string;
  readonly reloadKey?: number;
  /** What an empty list means here (default "Nothing here yet."). */
  readonly empty?: string;
}) {
  const { load, reloadKey } = props;
  const [pager, setPager] = useState<{ load: typeof load; search: string; tokens: string[] }>({
    load,
    search: '',
    tokens: [''],
  });
  const [page, setPage] = useState<Page<T> | undefined>();
  const [error, setError] = useState<unknown>();
  const [search, setSearch] = useState('');
  const [loading, setLoading] = useState(false);
  const tokens = pager.load === load ? pager.tokens : [''];
  const applied = pager.search;
  const current = tokens[tokens.length - 1] ?? '';
  const goTo = (next: string[]) => setPager({ load, search: applied, tokens: next });
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
      .catch((e: unknown) => {
        if (live) {
          setPage(undefined);
          setError(e);
        }
      })
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [load, current, applied, reloadKey]);
  const searchId = useId();
  const actionsColumn = props.columns.findIndex((c) => c.title === 'Actions');
  return (
    <section aria-label={props.label} className="paged">
      {props.searchLabel !== undefined && (
        <form
          className="search"
          role="search"
          aria-label={`Search ${props.label.toLowerCase()}`}
          onSubmit={(e) => {
            e.preventDefault();
            setPager({ load, search: search.trim(), tokens: [''] });
          }}
        >
          <label htmlFor={searchId}>{props.searchLabel}</label>
          <input id={searchId} value={search} onChange={(e) => setSearch(e.target.value)} />
          <button type="submit">Search</button>
        </form>
      )}
      <ErrorBanner error={error} />
      <table className="cards" aria-busy={loading}>
        <caption>
          {props.label}
          {loading && <span className="hint"> (loading…)</span>}
        </caption>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th key={c.title} scope="col">
                {c.title}
              </th>
            ))}
          </tr>
        </thead>
        {/* Rows of the previous question stay visible, dimmed, until the new ones arrive. */}
        <tbody className={loading && page !== undefined ? 'stale' : undefined}>
          {page?.items.map((row) => (
            <tr key={props.rowKey(row)}>
              {props.columns.map((c, i) => (
                <td
                  key={c.title}
                  data-label={c.title}
                  className={i === 0 ? 'identity' : i === actionsColumn ? 'actions-cell' : undefined}
                >
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
          {page === undefined && loading && (
            <tr>
              <td colSpan={props.columns.length} className="empty">
                Loading…
              </td>
            </tr>
          )}
          {page !== undefined && page.items.length === 0 && (
            <tr>
              <td colSpan={props.columns.length} className="empty">
                {tokens.length > 1 ? 'No more entries.' : (props.empty ?? 'Nothing here yet.')}
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <nav className="pager" aria-label={`${props.label} pages`}>
        <button
          type="button"
          disabled={tokens.length < 2 || loading}
          onClick={() => goTo(tokens.slice(0, -1))}
        >
          Previous page
        </button>
        <span>Page {tokens.length}</span>
        <button
          type="button"
          disabled={loading || page === undefined || page.nextPageToken === ''}
          onClick={() => page !== undefined && goTo([...tokens, page.nextPageToken])}
        >
          Next page
        </button>
      </nav>
    </section>
  );
}
