/**
 * "My account": for a mail user, their own account (quota use, password, authenticator code, app
 * passwords, addresses, vacation reply and mail filters); for an administrator, who they are and their authenticator code.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, type Me, type Page } from '../api.js';
import { ErrorBanner } from '../components/Banner.js';
import { Form } from '../components/Form.js';
import { Loading } from '../components/Loading.js';
import { usageText } from '../format.js';
import type { Alias, User } from '../types.js';
import { passwordProblem, PASSWORD_HINT } from '../validate.js';
import { AppPasswords } from './AppPasswords.js';
import { SieveFilters } from './SieveFilters.js';
import { TotpSection } from './TotpSection.js';

const KIND: Readonly<Record<string, string>> = {
  primary: 'your address',
  alias: 'alias (delivers to you)',
  forward: 'forward',
};

function MailUserAccount({ me }: { readonly me: Me }) {
  const [user, setUser] = useState<User | undefined>();
  const [addresses, setAddresses] = useState<Alias[] | undefined>();
  const [error, setError] = useState<unknown>();
  const refresh = useCallback(() => {
    api<Page<User>>('GET', '/v1/users').then((p) => setUser(p.items[0]), setError);
    api<Page<Alias>>('GET', '/v1/aliases').then((p) => setAddresses(p.items), setError);
  }, []);
  useEffect(refresh, [refresh]);
  const address = me.user?.address ?? '';
  return (
    <>
      <h1>My account</h1>
      <ErrorBanner error={error} />
      <section className="card" aria-labelledby="account-summary">
        <h2 id="account-summary">{address}</h2>
        {user === undefined ? (
          error === undefined && <Loading what="your account" />
        ) : (
          <dl className="facts">
            <dt>Name</dt>
            <dd>{user.displayName || '—'}</dd>
            <dt>Mailbox size</dt>
            <dd>{usageText(user)}</dd>
            <dt>Status</dt>
            <dd>
              <span className={`badge ${user.status}`}>{user.status}</span>
            </dd>
          </dl>
        )}
      </section>
      <section className="card" aria-labelledby="account-addresses">
        <h2 id="account-addresses">Addresses that reach you</h2>
        {addresses === undefined ? (
          error === undefined && <Loading what="your addresses" />
        ) : (
          <ul className="plain">
            {addresses.map((a) => (
              <li key={a.id}>
                <span className="mono">{a.address}</span>{' '}
                <span className="hint">— {KIND[a.kind] ?? a.kind}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
      {me.user !== undefined && me.permissions.includes('users.password') && (
        <Form
          title="Change your password"
          submitLabel="Change password"
          fields={[
            {
              name: 'currentPassword',
              label: 'Current password',
              type: 'password',
              autoComplete: 'current-password',
              required: true,
            },
            {
              name: 'password',
              label: 'New password',
              type: 'password',
              required: true,
              hint: PASSWORD_HINT,
              validate: (v) => passwordProblem(v, address),
            },
            {
              name: 'repeat',
              label: 'New password again',
              type: 'password',
              required: true,
            },
          ]}
          check={(v): Record<string, string> =>
            v.repeat !== v.password ? { repeat: 'The two new passwords differ.' } : {}
          }
          onSubmit={async (v) => {
            await api('POST', `/v1/users/${encodeURIComponent(me.user?.id ?? '')}/password`, {
              currentPassword: v.currentPassword,
              password: v.password,
            });
            return 'Password changed. Your other sessions were signed out; mail programs keep their app passwords.';
          }}
        />
      )}
      {user !== undefined && (
        <TotpSection
          enabled={user.totpEnabled}
          onChange={refresh}
          note="While it is on, mail programs (IMAP and SMTP) sign in with app passwords only: they cannot ask for a code."
        />
      )}
      {me.user !== undefined && me.permissions.includes('apppasswords.read') && (
        <div className="card">
          <AppPasswords
            userId={me.user.id}
            address={address}
            canWrite={me.permissions.includes('apppasswords.write')}
          />
        </div>
      )}
      {me.user !== undefined && me.permissions.includes('sieve.read') && (
        <SieveFilters
          userId={me.user.id}
          address={address}
          canWrite={me.permissions.includes('sieve.write')}
        />
      )}
    </>
  );
}

function AdminAccount({ me, onChange }: { readonly me: Me; readonly onChange: () => void }) {
  return (
    <>
      <h1>My account</h1>
      <section className="card" aria-labelledby="account-summary">
        <h2 id="account-summary">{me.admin?.email}</h2>
        <dl className="facts">
          <dt>Role</dt>
          <dd>{me.role}</dd>
          <dt>Domains</dt>
          <dd>{me.domains.length === 0 ? 'all' : me.domains.join(', ')}</dd>
        </dl>
      </section>
      <TotpSection enabled={me.admin?.totpEnabled === true} onChange={onChange} />
    </>
  );
}

export function AccountPage({ me, onChange }: { readonly me: Me; readonly onChange: () => void }) {
  return me.kind === 'user' ? <MailUserAccount me={me} /> : <AdminAccount me={me} onChange={onChange} />;
}
