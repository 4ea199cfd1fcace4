/**
 * A mail user's vacation reply and Sieve filters (docs/sieve.md): a simple form that writes the
 * vacation script, and the scripts themselves (list, edit with the server's line-numbered
 * errors, activate, delete). Mail programs with a Sieve editor reach the same scripts over
 * ManageSieve.
 */
import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { api, ApiFailure, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Loading } from '../components/Loading.js';

interface ScriptItem {
  name: string;
  active: boolean;
}

interface Vacation {
  enabled: boolean;
  subject: string;
  body: string;
  days: number;
  editedByHand: boolean;
}

const VACATION_SCRIPT = 'vacation';
const EXAMPLE =
  'require ["fileinto"];\n\nif header :contains "subject" "[newsletter]" {\n  fileinto "Newsletters";\n}\n';

export function SieveFilters(props: {
  readonly userId: string;
  readonly address: string;
  readonly canWrite: boolean;
}) {
  const [reload, setReload] = useState(0);
  const changed = useCallback(() => setReload((n) => n + 1), []);
  return (
    <>
      <VacationForm {...props} reload={reload} onChange={changed} />
      <ScriptList {...props} reload={reload} onChange={changed} />
    </>
  );
}

function VacationForm(props: {
  readonly userId: string;
  readonly canWrite: boolean;
  readonly reload: number;
  readonly onChange: () => void;
}) {
  const base = `/v1/users/${encodeURIComponent(props.userId)}`;
  const [vacation, setVacation] = useState<Vacation | undefined>();
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const id = useId();
  useEffect(() => {
    api<Vacation>('GET', `${base}/vacation`).then(setVacation, setError);
  }, [base, props.reload]);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (vacation === undefined) return;
    setBusy(true);
    setError(undefined);
    setNotice('');
    try {
      const saved = await api<Vacation & { replaced: string | null }>('POST', `${base}/vacation`, {
        enabled: vacation.enabled,
        subject: vacation.subject,
        body: vacation.body,
        days: vacation.days,
      });
      setNotice(
        saved.enabled
          ? `Vacation reply on.${saved.replaced === null ? '' : ` Your filter “${saved.replaced}” is off while it is.`}`
          : 'Vacation reply off.',
      );
      props.onChange();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Vacation reply</h2>
      <p className="hint">
        Answers people who write to you, at most once per sender in the number of days you choose. Never sent
        to mailing lists or automatic mail.
      </p>
      {vacation === undefined ? (
        error === undefined && <Loading what="your vacation reply" />
      ) : (
        <form onSubmit={(e) => void submit(e)} noValidate>
          {vacation.editedByHand && (
            <p className="hint" role="note">
              The “vacation” script was changed by hand; saving this form replaces it.
            </p>
          )}
          <div className="field">
            <label>
              <input
                type="checkbox"
                checked={vacation.enabled}
                disabled={!props.canWrite}
                onChange={(e) => setVacation({ ...vacation, enabled: e.target.checked })}
              />{' '}
              Send a vacation reply
            </label>
          </div>
          <div className="field">
            <label htmlFor={`${id}-subject`}>Subject</label>
            <input
              id={`${id}-subject`}
              value={vacation.subject}
              maxLength={200}
              disabled={!props.canWrite}
              aria-describedby={`${id}-subject-hint`}
              onChange={(e) => setVacation({ ...vacation, subject: e.target.value })}
            />
            <span className="hint" id={`${id}-subject-hint`}>
              Empty: “Auto:” and the subject of the message answered.
            </span>
          </div>
          <div className="field">
            <label htmlFor={`${id}-body`}>Message</label>
            <textarea
              id={`${id}-body`}
              rows={5}
              value={vacation.body}
              maxLength={10_000}
              disabled={!props.canWrite}
              onChange={(e) => setVacation({ ...vacation, body: e.target.value })}
            />
          </div>
          <div className="field">
            <label htmlFor={`${id}-days`}>Days between replies to the same sender</label>
            <input
              id={`${id}-days`}
              type="number"
              inputMode="numeric"
              min={1}
              max={365}
              value={vacation.days}
              disabled={!props.canWrite}
              onChange={(e) => setVacation({ ...vacation, days: Number(e.target.value) })}
            />
          </div>
          {props.canWrite && (
            <button type="submit" disabled={busy}>
              Save vacation reply
            </button>
          )}
        </form>
      )}
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
    </section>
  );
}

function ScriptList(props: {
  readonly userId: string;
  readonly address: string;
  readonly canWrite: boolean;
  readonly reload: number;
  readonly onChange: () => void;
}) {
  const base = `/v1/users/${encodeURIComponent(props.userId)}`;
  const [scripts, setScripts] = useState<ScriptItem[] | undefined>();
  const [editing, setEditing] = useState<{ name: string; content: string; isNew: boolean } | undefined>();
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState('');
  const [ask, dialog] = useConfirm();
  const id = useId();
  useEffect(() => {
    api<Page<ScriptItem>>('GET', `${base}/sieve-scripts`).then((p) => setScripts(p.items), setError);
  }, [base, props.reload]);
  const act = async (run: () => Promise<string>) => {
    setError(undefined);
    setNotice('');
    try {
      setNotice(await run());
      props.onChange();
    } catch (e) {
      setError(e);
    }
  };
  const open = (name: string) =>
    void act(async () => {
      const script = await api<{ content: string }>(
        'GET',
        `${base}/sieve-scripts/${encodeURIComponent(name)}`,
      );
      setEditing({ name, content: script.content.replace(/\r\n/g, '\n'), isNew: false });
      return '';
    });
  const remove = async (name: string) => {
    const choice = await ask({
      title: `Delete the filter “${name}”?`,
      body: 'Its rules are lost.',
      choices: [{ label: 'Delete filter', value: 'yes', danger: true }],
    });
    if (choice !== 'yes') return;
    await act(async () => {
      await api('DELETE', `${base}/sieve-scripts/${encodeURIComponent(name)}`);
      if (editing?.name === name) setEditing(undefined);
      return `Filter “${name}” deleted.`;
    });
  };
  const setActive = (name: string) =>
    void act(async () => {
      await api('POST', `${base}/sieve-active`, { name });
      return name === '' ? 'Filtering is off.' : `“${name}” is now the active filter.`;
    });
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Mail filters (Sieve)</h2>
      <p className="hint">
        Scripts in the Sieve language (RFC 5228) that sort your incoming mail: file into folders, flag,
        forward, reject. One is active at a time; the vacation reply above is one of them. Mail programs with
        a Sieve editor can change them too (ManageSieve, port 4190).
      </p>
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      {scripts === undefined ? (
        error === undefined && <Loading what="your filters" />
      ) : scripts.length === 0 ? (
        <p>No filters yet.</p>
      ) : (
        <table>
          <caption className="visually-hidden">Filters of {props.address}</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {scripts.map((s) => (
              <tr key={s.name}>
                <td className="mono">{s.name}</td>
                <td>{s.active ? <span className="badge active">active</span> : 'off'}</td>
                <td className="row-actions">
                  <button type="button" className="secondary" onClick={() => open(s.name)}>
                    {props.canWrite ? 'Edit' : 'View'} <span className="visually-hidden">{s.name}</span>
                  </button>
                  {props.canWrite &&
                    (s.active ? (
                      <button type="button" className="secondary" onClick={() => setActive('')}>
                        Turn off <span className="visually-hidden">{s.name}</span>
                      </button>
                    ) : (
                      <button type="button" className="secondary" onClick={() => setActive(s.name)}>
                        Activate <span className="visually-hidden">{s.name}</span>
                      </button>
                    ))}
                  {props.canWrite && !s.active && (
                    <button type="button" className="danger" onClick={() => void remove(s.name)}>
                      Delete <span className="visually-hidden">{s.name}</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.canWrite && editing === undefined && (
        <button type="button" onClick={() => setEditing({ name: '', content: EXAMPLE, isNew: true })}>
          New filter
        </button>
      )}
      {editing !== undefined && (
        <ScriptEditor
          key={`${editing.name}-${editing.isNew ? 'new' : 'old'}`}
          base={base}
          initial={editing}
          canWrite={props.canWrite}
          onSaved={(message) => {
            setEditing(undefined);
            setNotice(message);
            props.onChange();
          }}
          onCancel={() => setEditing(undefined)}
        />
      )}
      {dialog}
    </section>
  );
}

function ScriptEditor(props: {
  readonly base: string;
  readonly initial: { name: string; content: string; isNew: boolean };
  readonly canWrite: boolean;
  readonly onSaved: (message: string) => void;
  readonly onCancel: () => void;
}) {
  const [name, setName] = useState(props.initial.name);
  const [content, setContent] = useState(props.initial.content);
  const [fieldErrors, setFieldErrors] = useState<{ name?: string; content?: string }>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const id = useId();
  const save = async (activate: boolean) => {
    setFieldErrors({});
    setError(undefined);
    if (name.trim() === '') {
      setFieldErrors({ name: 'Name is required.' });
      return;
    }
    if (props.initial.isNew && name.trim() === VACATION_SCRIPT) {
      setFieldErrors({ name: '“vacation” is the vacation reply’s script; choose another name.' });
      return;
    }
    setBusy(true);
    try {
      await api('POST', `${props.base}/sieve-scripts`, {
        name: name.trim(),
        content: content.replace(/\r?\n/g, '\r\n'),
        activate,
      });
      props.onSaved(`Filter “${name.trim()}” saved${activate ? ' and active' : ''}.`);
    } catch (e) {
      if (e instanceof ApiFailure && (e.error.field === 'content' || e.error.field === 'name')) {
        // The server's message names the line and column of the mistake (“line 3, column 5: …”).
        setFieldErrors({ [e.error.field]: e.message });
      } else {
        setError(e);
      }
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void save(false);
  };
  return (
    <form className="card" onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>{props.initial.isNew ? 'New filter' : `Filter “${props.initial.name}”`}</h3>
      <div className="field">
        <label htmlFor={`${id}-name`}>Name</label>
        <input
          id={`${id}-name`}
          value={name}
          maxLength={128}
          readOnly={!props.initial.isNew}
          aria-invalid={fieldErrors.name !== undefined}
          aria-describedby={fieldErrors.name !== undefined ? `${id}-name-error` : undefined}
          onChange={(e) => setName(e.target.value)}
        />
        {fieldErrors.name !== undefined && (
          <span className="field-error" id={`${id}-name-error`} role="alert">
            {fieldErrors.name}
          </span>
        )}
      </div>
      <div className="field">
        <label htmlFor={`${id}-content`}>Sieve script</label>
        <textarea
          id={`${id}-content`}
          className="mono"
          rows={Math.min(30, Math.max(8, content.split('\n').length + 1))}
          spellCheck={false}
          value={content}
          readOnly={!props.canWrite}
          aria-invalid={fieldErrors.content !== undefined}
          aria-describedby={fieldErrors.content !== undefined ? `${id}-content-error` : undefined}
          onChange={(e) => setContent(e.target.value)}
        />
        {fieldErrors.content !== undefined && (
          <span className="field-error" id={`${id}-content-error`} role="alert">
            {fieldErrors.content}
          </span>
        )}
      </div>
      <ErrorBanner error={error} />
      <div className="row-actions">
        {props.canWrite && (
          <>
            <button type="submit" disabled={busy}>
              Save filter
            </button>
            <button type="button" disabled={busy} className="secondary" onClick={() => void save(true)}>
              Save and activate
            </button>
          </>
        )}
        <button type="button" className="secondary" onClick={props.onCancel}>
          {props.canWrite ? 'Cancel' : 'Close'}
        </button>
      </div>
    </form>
  );
}
