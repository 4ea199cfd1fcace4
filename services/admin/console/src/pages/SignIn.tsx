/** The sign-in form: email and password, then the authenticator code when the account has TOTP. */
import { useId, useState, type FormEvent } from 'react';
import { ApiFailure, api, setCsrf, type Me } from '../api.js';
import { ErrorBanner } from '../components/Banner.js';

export function SignIn(props: {
  readonly onSignedIn: (me: Me) => void;
  readonly notice?: string | undefined;
}) {
  const { onSignedIn } = props;
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [needTotp, setNeedTotp] = useState(false);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const id = useId();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      const me = await api<Me>('POST', '/v1/auth/login', { email, password, ...(needTotp ? { totp } : {}) });
      setCsrf(me.csrfToken);
      onSignedIn(me);
    } catch (err) {
      if (err instanceof ApiFailure && err.error.field === 'totp') setNeedTotp(true);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin">
      <form onSubmit={(e) => void submit(e)} aria-labelledby={`${id}-title`} className="card">
        <h1 id={`${id}-title`}>Postmesh admin</h1>
        <p>Sign in to manage domains, users and mail flow.</p>
        {props.notice !== undefined && error === undefined && (
          <p className="notice" role="status">
            {props.notice}
          </p>
        )}
        <ErrorBanner error={error} />
        <div className="field">
          <label htmlFor={`${id}-email`}>Email</label>
          <input
            id={`${id}-email`}
            type="email"
            autoComplete="username"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            autoFocus
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-password`}>Password</label>
          <input
            id={`${id}-password`}
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </div>
        {needTotp && (
          <div className="field">
            <label htmlFor={`${id}-totp`}>Authenticator code</label>
            <input
              id={`${id}-totp`}
              inputMode="numeric"
              pattern="\d{6}"
              autoComplete="one-time-code"
              autoFocus
              value={totp}
              onChange={(e) => setTotp(e.target.value)}
            />
          </div>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
