/** Forms with labelled fields, hints and per-field errors from the client and the server. */
import { useId, useState, type FormEvent } from 'react';
import { ApiFailure } from '../api.js';
import { ErrorBanner } from './Banner.js';

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
