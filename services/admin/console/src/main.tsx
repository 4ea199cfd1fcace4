/** The Postmesh admin console: sign-in, then one area per navigation entry. */
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, setCsrf, type Me } from './api.js';
import { AdminsPage } from './pages/Admins.js';
import { AliasesPage } from './pages/Aliases.js';
import { AuditPage } from './pages/Audit.js';
import { DlqPage } from './pages/Dlq.js';
import { DomainsPage } from './pages/Domains.js';
import { HealthPage } from './pages/Health.js';
import { QueuePage } from './pages/Queue.js';
import { SignIn } from './pages/SignIn.js';
import { TokensPage } from './pages/Tokens.js';
import { TracePage } from './pages/Trace.js';
import { UsersPage } from './pages/Users.js';
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
