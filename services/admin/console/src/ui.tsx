/** Shared building blocks: paged tables, forms with field errors, confirmations, error banners. */
import { useCallback, useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { ApiFailure, type Page } from './api.js';

export function ErrorBanner({ error }: { readonly error: unknown }) {
  if (error === undefined || error === null) return null;
  const message =
    error instanceof ApiFailure
      ? error.error.code === 'permission_denied'
        ? `You do not have permission for this (${error.message.replace(/^not allowed: /, '')}).`
        : error.message
      : 'Something went wrong. Try again.';
  return (
    <div className="error" role="alert">
      {message}
    </div>
  );
}

export function Notice({ children }: { readonly children: ReactNode }) {
  return (
    <div className="notice" role="status">
      {children}
    </div>
  );
}

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

export interface FieldSpec {
  readonly name: string;
  readonly label: string;
  readonly type?: 'text' | 'password' | 'email' | 'number' | 'select' | 'datetime-local';
  readonly options?: readonly string[];
  readonly required?: boolean;
  readonly hint?: string;
  /** Client-side check; the server checks again and its field errors are shown the same way. */
  readonly validate?: (value: string) => string | undefined;
  readonly initial?: string;
}

/** A form with labelled fields, per-field messages (client and server), and a busy state. */
export function Form(props: {
  readonly title: string;
  readonly fields: readonly FieldSpec[];
  readonly submitLabel: string;
  readonly onSubmit: (values: Record<string, string>) => Promise<void>;
  /** Keep what was typed after a successful submit (filters and searches); forms that create clear. */
  readonly keepValues?: boolean;
}) {
  const initial = Object.fromEntries(props.fields.map((f) => [f.name, f.initial ?? f.options?.[0] ?? '']));
  const [values, setValues] = useState<Record<string, string>>(initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const baseId = useId();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found: Record<string, string> = {};
    for (const f of props.fields) {
      const v = values[f.name] ?? '';
      if (f.required === true && v.trim() === '') found[f.name] = `${f.label} is required.`;
      else if (v !== '' && f.validate) {
        const problem = f.validate(v);
        if (problem !== undefined) found[f.name] = problem;
      }
    }
    setErrors(found);
    setFailure(undefined);
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    try {
      await props.onSubmit(values);
      if (props.keepValues !== true) setValues(initial);
    } catch (error) {
      if (
        error instanceof ApiFailure &&
        error.error.field !== undefined &&
        props.fields.some((f) => f.name === error.error.field)
      ) {
        setErrors({ [error.error.field]: error.message });
      } else {
        setFailure(error);
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card" onSubmit={(e) => void submit(e)} aria-label={props.title} noValidate>
      <h3>{props.title}</h3>
      <ErrorBanner error={failure} />
      {props.fields.map((f) => {
        const id = `${baseId}-${f.name}`;
        const error = errors[f.name];
        return (
          <div className="field" key={f.name}>
            <label htmlFor={id}>
              {f.label}
              {f.required === true ? ' *' : ''}
            </label>
            {f.type === 'select' ? (
              <select
                id={id}
                value={values[f.name]}
                onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}
              >
                {(f.options ?? []).map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            ) : (
              <input
                id={id}
                name={f.name}
                type={f.type ?? 'text'}
                value={values[f.name]}
                aria-invalid={error !== undefined}
                aria-describedby={
                  error !== undefined ? `${id}-error` : f.hint !== undefined ? `${id}-hint` : undefined
                }
                onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}
                autoComplete={f.type === 'password' ? 'new-password' : 'off'}
              />
            )}
            {f.hint !== undefined && error === undefined && (
              <small id={`${id}-hint`} className="hint">
                {f.hint}
              </small>
            )}
            {error !== undefined && (
              <small id={`${id}-error`} className="field-error" role="alert">
                {error}
              </small>
            )}
          </div>
        );
      })}
      <button type="submit" disabled={busy}>
        {busy ? 'Working…' : props.submitLabel}
      </button>
    </form>
  );
}

/**
 * Confirmation for destructive actions: a modal dialog with the choices spelled out, and a button
 * that changes nothing (`dismissLabel`, "Cancel" unless that would read like one of the choices).
 */
interface ConfirmRequest {
  title: string;
  body: ReactNode;
  choices: { label: string; value: string; danger?: boolean }[];
  dismissLabel?: string;
}

export function useConfirm(): [(request: ConfirmRequest) => Promise<string | undefined>, ReactNode] {
  const ref = useRef<HTMLDialogElement>(null);
  const [state, setState] = useState<
    (ConfirmRequest & { resolve: (v: string | undefined) => void }) | undefined
  >();
  const ask = useCallback(
    (request: ConfirmRequest) =>
      new Promise<string | undefined>((resolve) => setState({ ...request, resolve })),
    [],
  );
  useEffect(() => {
    if (state !== undefined && ref.current !== null && !ref.current.open) ref.current.showModal();
  }, [state]);
  const close = (value: string | undefined) => {
    ref.current?.close();
    state?.resolve(value);
    setState(undefined);
  };
  const dialog = (
    <dialog ref={ref} aria-labelledby="confirm-title" onCancel={() => close(undefined)}>
      {state !== undefined && (
        <>
          <h3 id="confirm-title">{state.title}</h3>
          <div>{state.body}</div>
          <div className="actions">
            {state.choices.map((c) => (
              <button
                key={c.value}
                type="button"
                className={c.danger === true ? 'danger' : ''}
                onClick={() => close(c.value)}
              >
                {c.label}
              </button>
            ))}
            <button type="button" onClick={() => close(undefined)} autoFocus>
              {state.dismissLabel ?? 'Cancel'}
            </button>
          </div>
        </>
      )}
    </dialog>
  );
  return [ask, dialog];
}

export const isDomain = (v: string): string | undefined =>
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i.test(
    v.trim(),
  )
    ? undefined
    : 'Enter a domain name such as example.com.';
export const isAddress = (v: string): string | undefined =>
  /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.trim()) ? undefined : 'Enter an address such as name@example.com.';
export const isPassword = (v: string): string | undefined =>
  v.length >= 10 ? undefined : 'Use at least 10 characters.';
export const isCount = (v: string): string | undefined =>
  /^\d+$/.test(v) ? undefined : 'Enter a whole number (0 = unlimited).';
export const when = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString() : '—');
