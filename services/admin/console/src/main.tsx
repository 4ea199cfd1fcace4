/** The Postmesh admin console: sign-in, then one area per navigation entry (issue 7 §5). */
import { StrictMode, useEffect, useId, useState, type FormEvent } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiFailure, api, setCsrf, type Me } from './api.js';
import {
  AdminsPage,
  AliasesPage,
  AuditPage,
  DlqPage,
  DomainsPage,
  HealthPage,
  QueuePage,
  TokensPage,
  TracePage,
  UsersPage,
} from './pages.js';
import { ErrorBanner } from './ui.js';
import './style.css';

const AREAS = [
  { id: 'domains', label: 'Domains', permission: 'domains.read' },
  { id: 'users', label: 'Users', permission: 'users.read' },
  { id: 'aliases', label: 'Aliases', permission: 'aliases.read' },
  { id: 'queue', label: 'Queue', permission: 'queue.read' },
  { id: 'trace', label: 'Message trace', permission: 'trace.read' },
  { id: 'dlq', label: 'Dead letters', permission: 'dlq.read' },
  { id: 'audit', label: 'Audit log', permission: 'audit.read' },
  { id: 'admins', label: 'Administrators', permission: 'admins.read' },
  { id: 'tokens', label: 'API tokens', permission: 'tokens.read' },
  { id: 'health', label: 'Health', permission: 'health.read' },
] as const;
type AreaId = (typeof AREAS)[number]['id'];

function SignIn({ onSignedIn }: { readonly onSignedIn: (me: Me) => void }) {
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

function areaFromHash(): AreaId | undefined {
  const id = window.location.hash.replace(/^#\/?/, '');
  return AREAS.find((a) => a.id === id)?.id;
}

function App() {
  const [me, setMe] = useState<Me | null | undefined>();
  const [area, setArea] = useState<AreaId | undefined>(areaFromHash());
  useEffect(() => {
    api<Me>('GET', '/v1/me').then(
      (m) => {
        setCsrf(m.csrfToken);
        setMe(m);
      },
      () => setMe(null),
    );
    const onHash = () => setArea(areaFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  if (me === undefined) return <p className="loading">Loading…</p>;
  if (me === null) return <SignIn onSignedIn={setMe} />;
  const allowed = AREAS.filter((a) => me.permissions.includes(a.permission));
  const current = allowed.find((a) => a.id === area)?.id ?? allowed[0]?.id;
  const who = me.admin?.email ?? me.user?.address ?? '';
  const signOut = async () => {
    await api('POST', '/v1/auth/logout', {}).catch(() => undefined);
    setMe(null);
  };
  return (
    <div className="layout">
      <header>
        <span className="brand">Postmesh</span>
        <span className="who">
          {who} <span className="badge">{me.role}</span>
          {me.domains.length > 0 && <span className="scope"> · {me.domains.join(', ')}</span>}
        </span>
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <nav aria-label="Areas">
        <ul>
          {allowed.map((a) => (
            <li key={a.id}>
              <a href={`#/${a.id}`} aria-current={a.id === current ? 'page' : undefined}>
                {a.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main>
        {current === 'domains' && <DomainsPage me={me} />}
        {current === 'users' && <UsersPage me={me} />}
        {current === 'aliases' && <AliasesPage me={me} />}
        {current === 'queue' && <QueuePage me={me} />}
        {current === 'trace' && <TracePage />}
        {current === 'dlq' && <DlqPage me={me} />}
        {current === 'audit' && <AuditPage />}
        {current === 'admins' && <AdminsPage me={me} />}
        {current === 'tokens' && <TokensPage />}
        {current === 'health' && <HealthPage me={me} />}
      </main>
    </div>
  );
}

const root = document.getElementById('root');
if (root !== null) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
