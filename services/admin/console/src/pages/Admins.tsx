/** Administrators and their roles and domains. */
import { useCallback, useState } from 'react';
import { api, qs, type Me, type Page } from '../api.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';
import { type Admin } from '../types.js';
import { isAddress, isPassword } from '../validate.js';

export function AdminsPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const load = useCallback(
    (pageToken: string) => api<Page<Admin>>('GET', `/v1/admins${qs({ pageToken })}`),
    [],
  );
  return (
    <>
      <h2>Administrators</h2>
      {me.permissions.includes('admins.write') && (
        <Form
          title="Add an administrator"
          submitLabel="Add administrator"
          fields={[
            { name: 'email', label: 'Email', type: 'email', required: true, validate: isAddress },
            {
              name: 'password',
              label: 'Initial password',
              type: 'password',
              required: true,
              validate: isPassword,
            },
            {
              name: 'role',
              label: 'Role',
              type: 'select',
              options:
                me.role === 'owner'
                  ? ['domain-admin', 'helpdesk', 'auditor', 'owner']
                  : ['helpdesk', 'domain-admin'],
            },
            {
              name: 'domains',
              label: 'Domains (comma-separated; domain-admin and helpdesk)',
              initial: me.domains.join(', '),
            },
          ]}
          onSubmit={async (v) => {
            const domains = (v.domains ?? '')
              .split(',')
              .map((d) => d.trim())
              .filter((d) => d !== '');
            await api('POST', '/v1/admins', {
              email: v.email?.trim(),
              password: v.password,
              role: v.role,
              domains: v.role === 'owner' || v.role === 'auditor' ? [] : domains,
            });
            setReload((n) => n + 1);
          }}
        />
      )}
      <PagedTable
        label="Administrators"
        load={load}
        reloadKey={reload}
        rowKey={(a) => a.id}
        columns={[
          { title: 'Email', cell: (a) => a.email },
          { title: 'Role', cell: (a) => a.role },
          { title: 'Domains', cell: (a) => a.domains.join(', ') || 'all' },
          { title: 'Status', cell: (a) => <span className={`badge ${a.status}`}>{a.status}</span> },
          { title: 'TOTP', cell: (a) => (a.totpEnabled ? 'on' : 'off') },
          { title: 'Last sign-in', cell: (a) => when(a.lastLoginAt) },
        ]}
      />
    </>
  );
}
