/** Forms with labelled fields, hints and per-field errors from the client and the server. */
import { useId, useState, type FormEvent, type ReactNode } from 'react';
import { ApiFailure } from '../api.js';
import { ErrorBanner, Notice } from './Banner.js';

export interface FieldSpec {
  readonly name: string;
  readonly label: string;
  readonly type?: 'text' | 'password' | 'email' | 'number' | 'select' | 'datetime-local' | 'checkboxes';
  /** Choices of a select (value = label), or of checkboxes (the value is a comma-separated list). */
  readonly options?: readonly string[];
  readonly required?: boolean;
  readonly hint?: string;
  /** Client-side check; the server checks again and its field errors are shown the same way. */
  readonly validate?: (value: string) => string | undefined;
  readonly initial?: string;
  readonly autoComplete?: string;
  readonly inputMode?: 'numeric' | 'text' | 'email' | 'decimal';
  /** A field drawn beside this one on the same line (e.g. a unit after a number). */
  readonly unitOf?: string;
}

/**
 * A form that says what happened next to itself: the server's answer to a field under that field,
 * anything else above the button, and a success notice (what `onSubmit` returns) in the same place,
 * each replacing the previous one.
 */
export function Form(props: {
  readonly title: string;
  readonly fields: readonly FieldSpec[];
  readonly submitLabel: string;
  /** Resolves with a success notice to show (or nothing); throws ApiFailure to show an error. */
  readonly onSubmit: (values: Record<string, string>) => Promise<string | undefined | void>;
  /** Checks across fields (e.g. two passwords that must match): field name → message. */
  readonly check?: (values: Record<string, string>) => Record<string, string>;
  /** Keep what was typed after a successful submit (filters and searches); forms that create clear. */
  readonly keepValues?: boolean;
  readonly children?: ReactNode;
  /** Extra buttons beside the submit button (e.g. Cancel for an edit form). */
  readonly actions?: ReactNode;
}) {
  const initial = Object.fromEntries(
    props.fields.map((f) => [f.name, f.initial ?? (f.type === 'select' ? (f.options?.[0] ?? '') : '')]),
  );
  const [values, setValues] = useState<Record<string, string>>(initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<unknown>();
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const baseId = useId();
  const set = (name: string, value: string) => setValues({ ...values, [name]: value });
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
    if (Object.keys(found).length === 0 && props.check) Object.assign(found, props.check(values));
    setErrors(found);
    setFailure(undefined);
    setNotice('');
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    try {
      const done = await props.onSubmit(values);
      if (typeof done === 'string') setNotice(done);
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
  const units = new Map(props.fields.filter((f) => f.unitOf !== undefined).map((f) => [f.unitOf, f]));
  const control = (f: FieldSpec, id: string, error: string | undefined) => {
    const described = error !== undefined ? `${id}-error` : f.hint !== undefined ? `${id}-hint` : undefined;
    if (f.type === 'select')
      return (
        <select
          id={id}
          value={values[f.name]}
          aria-describedby={described}
          onChange={(e) => set(f.name, e.target.value)}
        >
          {(f.options ?? []).map((o) => (
            <option key={o} value={o}>
              {o === '' ? 'any' : o}
            </option>
          ))}
        </select>
      );
    if (f.type === 'checkboxes') {
      const chosen = new Set((values[f.name] ?? '').split(',').filter((d) => d !== ''));
      return (
        <div
          className="checkboxes"
          id={id}
          role="group"
          aria-labelledby={`${id}-label`}
          aria-describedby={described}
        >
          {(f.options ?? []).map((o) => (
            <label key={o} className="checkbox">
              <input
                type="checkbox"
                checked={chosen.has(o)}
                onChange={(e) => {
                  if (e.target.checked) chosen.add(o);
                  else chosen.delete(o);
                  set(f.name, [...chosen].join(','));
                }}
              />{' '}
              {o}
            </label>
          ))}
          {(f.options ?? []).length === 0 && <span className="hint">No domains to choose from.</span>}
        </div>
      );
    }
    return (
      <input
        id={id}
        name={f.name}
        type={f.type ?? 'text'}
        value={values[f.name]}
        aria-invalid={error !== undefined}
        aria-describedby={described}
        inputMode={f.inputMode}
        onChange={(e) => set(f.name, e.target.value)}
        autoComplete={f.autoComplete ?? (f.type === 'password' ? 'new-password' : 'off')}
      />
    );
  };
  return (
    <form className="card" onSubmit={(e) => void submit(e)} aria-label={props.title} noValidate>
      <h2 className="form-title">{props.title}</h2>
      {props.children}
      {props.fields
        .filter((f) => f.unitOf === undefined)
        .map((f) => {
          const id = `${baseId}-${f.name}`;
          const error = errors[f.name];
          const unit = units.get(f.name);
          const label = (
            <>
              {f.label}
              {f.required === true ? ' *' : ''}
            </>
          );
          return (
            <div className="field" key={f.name}>
              {f.type === 'checkboxes' ? (
                <span className="label" id={`${id}-label`}>
                  {label}
                </span>
              ) : (
                <label htmlFor={id}>{label}</label>
              )}
              {unit === undefined ? (
                control(f, id, error)
              ) : (
                <div className="with-unit">
                  {control(f, id, error)}
                  <label className="visually-hidden" htmlFor={`${baseId}-${unit.name}`}>
                    {unit.label}
                  </label>
                  {control(unit, `${baseId}-${unit.name}`, undefined)}
                </div>
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
      <ErrorBanner error={failure} />
      {notice !== '' && <Notice>{notice}</Notice>}
      <div className="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Working…' : props.submitLabel}
        </button>
        {props.actions}
      </div>
    </form>
  );
}
