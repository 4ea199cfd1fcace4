/** The Postmesh admin console: sign-in, then one area per navigation entry. */
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, SESSION_ENDED, setCsrf, type Me } from './api.js';
import { Loading } from './components/Loading.js';
import { AccountPage } from './pages/Account.js';
import { AdminsPage } from './pages/Admins.js';
import { AlertsPage } from './pages/Alerts.js';
import { AliasesPage } from './pages/Aliases.js';
import { AuditPage } from './pages/Audit.js';
import { DlqPage } from './pages/Dlq.js';
import { DomainsPage } from './pages/Domains.js';
import { HealthPage } from './pages/Health.js';
import { OverviewPage } from './pages/Overview.js';
import { QueuePage } from './pages/Queue.js';
import { SignIn } from './pages/SignIn.js';
import { TokensPage } from './pages/Tokens.js';
import { TracePage } from './pages/Trace.js';
import { UsersPage } from './pages/Users.js';
import './style.css';

const AREAS = [
  { id: 'overview', label: 'Overview', permission: 'domains.read' },
  { id: 'domains', label: 'Domains', permission: 'domains.read' },
  { id: 'users', label: 'Users', permission: 'users.read', admin: true },
  { id: 'aliases', label: 'Aliases', permission: 'aliases.read', admin: true },
  { id: 'queue', label: 'Queue', permission: 'queue.read' },
  { id: 'trace', label: 'Message trace', permission: 'trace.read' },
  { id: 'dlq', label: 'Dead letters', permission: 'dlq.read' },
  { id: 'alerts', label: 'Alerts', permission: 'trace.read', admin: true },
  { id: 'audit', label: 'Audit log', permission: 'audit.read' },
  { id: 'admins', label: 'Administrators', permission: 'admins.read' },
  { id: 'tokens', label: 'API tokens', permission: 'tokens.read' },
  { id: 'health', label: 'Health', permission: 'health.read' },
  { id: 'account', label: 'My account', permission: '' },
] as const;
type Area = (typeof AREAS)[number];
type AreaId = Area['id'];

/** What a principal may open: a mail user gets their own account, not the admin Users table. */
function allowedAreas(me: Me): Area[] {
  return AREAS.filter(
    (a) =>
      (a.permission === '' || me.permissions.includes(a.permission)) &&
      !(me.kind === 'user' && 'admin' in a && a.admin),
  );
}

function areaFromHash(): string {
  return window.location.hash.replace(/^#\/?/, '');
}

/** A page the role may not open says so (instead of silently showing another page). */
function Forbidden({ area, me }: { readonly area: Area | undefined; readonly me: Me }) {
  return (
    <>
      <h1>{area === undefined ? 'Page not found' : `${area.label}: not available to you`}</h1>
      <p role="alert" className="error">
        {area === undefined
          ? 'There is no such page in the console.'
          : `Your role (${me.role}) cannot open ${area.label}. Ask an owner if you need it.`}
      </p>
      <p>
        <a href="#/">Back to the start page</a>
      </p>
    </>
  );
}

function App() {
  const [me, setMe] = useState<Me | null | undefined>();
  const [ended, setEnded] = useState(false);
  const [hash, setHash] = useState(areaFromHash());
  const [menuOpen, setMenuOpen] = useState(false);
  const refreshMe = () =>
    api<Me>('GET', '/v1/me').then(
      (m) => {
        setCsrf(m.csrfToken);
        setMe(m);
      },
      () => setMe(null),
    );
  useEffect(() => {
    void refreshMe();
    const onHash = () => {
      setHash(areaFromHash());
      setMenuOpen(false);
    };
    const onEnded = () => {
      setMe(null);
      setEnded(true);
    };
    window.addEventListener('hashchange', onHash);
    window.addEventListener(SESSION_ENDED, onEnded);
    return () => {
      window.removeEventListener('hashchange', onHash);
      window.removeEventListener(SESSION_ENDED, onEnded);
    };
  }, []);
  const allowed = me ? allowedAreas(me) : [];
  // Administrators land on the overview; mail users on their own account.
  const landing = me?.kind === 'user' ? 'account' : (allowed[0]?.id ?? 'account');
  const wanted = hash === '' ? landing : hash;
  const current = allowed.find((a) => a.id === wanted);
  useEffect(() => {
    const title =
      me === undefined
        ? 'Loading'
        : me === null
          ? 'Sign in'
          : (current?.label ?? AREAS.find((a) => a.id === wanted)?.label ?? 'Not found');
    document.title = `${title} · Postmesh admin`;
  }, [me, current, wanted]);
  if (me === undefined) return <Loading what="the console" />;
  if (me === null)
    return (
      <SignIn
        notice={ended ? 'Your session ended. Sign in again to continue.' : undefined}
        onSignedIn={(m) => {
          setEnded(false);
          setMe(m);
        }}
      />
    );
  const who = me.admin?.email ?? me.user?.address ?? '';
  const signOut = async () => {
    await api('POST', '/v1/auth/logout', {}).catch(() => undefined);
    setMe(null);
  };
  const id: AreaId | undefined = current?.id;
  return (
    <div className="layout">
      <a className="skip" href="#content">
        Skip to content
      </a>
      <header>
        <button
          type="button"
          className="menu-toggle secondary"
          aria-expanded={menuOpen}
          aria-controls="areas"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          Menu
        </button>
        <span className="brand">Postmesh</span>
        <span className="who">
          {who} <span className="badge">{me.role}</span>
          {me.domains.length > 0 && <span className="scope"> · {me.domains.join(', ')}</span>}
        </span>
        <button type="button" className="secondary" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <nav aria-label="Areas" id="areas" className={menuOpen ? 'open' : undefined}>
        <ul>
          {allowed.map((a) => (
            <li key={a.id}>
              <a href={`#/${a.id}`} aria-current={a.id === id ? 'page' : undefined}>
                {a.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="content" tabIndex={-1}>
        {id === undefined && <Forbidden area={AREAS.find((a) => a.id === wanted)} me={me} />}
        {id === 'overview' && <OverviewPage me={me} />}
        {id === 'domains' && <DomainsPage me={me} />}
        {id === 'users' && <UsersPage me={me} />}
        {id === 'aliases' && <AliasesPage me={me} />}
        {id === 'queue' && <QueuePage me={me} />}
        {id === 'trace' && <TracePage />}
        {id === 'dlq' && <DlqPage me={me} />}
        {id === 'alerts' && <AlertsPage />}
        {id === 'audit' && <AuditPage />}
        {id === 'admins' && <AdminsPage me={me} />}
        {id === 'tokens' && <TokensPage />}
        {id === 'health' && <HealthPage me={me} />}
        {id === 'account' && <AccountPage me={me} onChange={() => void refreshMe()} />}
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
