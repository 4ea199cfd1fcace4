/** Administrators: add, edit role and domains, disable or enable, unlock, set a new password, delete. */
import { useCallback, useState } from 'react';
import { api, qs, type Me, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { useDomainNames } from '../domains.js';
import { when } from '../format.js';
import { type Admin } from '../types.js';
import { isAddress, passwordProblem, PASSWORD_HINT } from '../validate.js';

const scoped = (role: string | undefined) => role === 'domain-admin' || role === 'helpdesk';

/** Roles the signed-in administrator may hand out (the server refuses anything more). */
const grantable = (me: Me): string[] =>
  me.role === 'owner' ? ['domain-admin', 'helpdesk', 'auditor', 'owner'] : ['helpdesk', 'domain-admin'];

const domainsCheck = (v: Record<string, string>): Record<string, string> =>
  scoped(v.role) && (v.domains ?? '') === ''
    ? { domains: 'Choose at least one domain for a domain-admin or helpdesk.' }
    : {};

const domainList = (v: Record<string, string>): string[] =>
  scoped(v.role) ? (v.domains ?? '').split(',').filter((d) => d !== '') : [];

function EditAdmin(props: {
  readonly admin: Admin;
  readonly me: Me;
  readonly domains: string[];
  readonly onDone: (notice: string) => void;
}) {
  const { admin, me } = props;
  const roles = grantable(me).includes(admin.role) ? grantable(me) : [admin.role, ...grantable(me)];
  return (
    <Form
      title={`Edit ${admin.email}`}
      submitLabel="Save changes"
      keepValues
      actions={
        <button type="button" className="secondary" onClick={() => props.onDone('')}>
          Close
        </button>
      }
      fields={[
        { name: 'role', label: 'Role', type: 'select', options: roles, initial: admin.role },
        {
          name: 'domains',
          label: 'Domains (domain-admin and helpdesk)',
          type: 'checkboxes',
          options: [...new Set([...props.domains, ...admin.domains])].sort(),
          initial: admin.domains.join(','),
        },
        {
          name: 'password',
          label: 'New password (empty = unchanged)',
          type: 'password',
          hint: PASSWORD_HINT,
          validate: (v) => passwordProblem(v, admin.email),
        },
      ]}
      check={domainsCheck}
      onSubmit={async (v) => {
        await api('PATCH', `/v1/admins/${admin.id}`, {
          role: v.role,
          domains: domainList(v),
          ...(v.password ? { password: v.password } : {}),
        });
        props.onDone(`${admin.email} saved.`);
      }}
    />
  );
}

export function AdminsPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const [editing, setEditing] = useState<Admin | undefined>();
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const domains = useDomainNames() ?? [];
  const load = useCallback(
    (pageToken: string) => api<Page<Admin>>('GET', `/v1/admins${qs({ pageToken })}`),
    [],
  );
  const canWrite = me.permissions.includes('admins.write');
  const act = async (fn: () => Promise<unknown>, done: string) => {
    try {
      await fn();
      setNotice(done);
      setError(undefined);
      setReload((n) => n + 1);
    } catch (e) {
      setNotice('');
      setError(e);
    }
  };
  const disable = async (a: Admin) => {
    const choice = await ask({
      title: `Disable ${a.email}?`,
      body: 'They can no longer sign in; their sessions and API tokens stop working until enabled again.',
      choices: [{ label: 'Disable administrator', value: 'yes', danger: true }],
    });
    if (choice === 'yes')
      await act(() => api('PATCH', `/v1/admins/${a.id}`, { status: 'disabled' }), `${a.email} disabled.`);
  };
  const remove = async (a: Admin) => {
    const choice = await ask({
      title: `Delete ${a.email}?`,
      body: 'The administrator, their sessions and their API tokens are deleted. The audit log keeps their actions.',
      choices: [{ label: 'Delete administrator', value: 'yes', danger: true }],
    });
    if (choice === 'yes') await act(() => api('DELETE', `/v1/admins/${a.id}`), `${a.email} deleted.`);
  };
  const self = (a: Admin) => a.id === me.admin?.id;
  return (
    <>
      <h1>Administrators</h1>
      {canWrite && (
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
              hint: PASSWORD_HINT,
            },
            { name: 'role', label: 'Role', type: 'select', options: grantable(me) },
            {
              name: 'domains',
              label: 'Domains (domain-admin and helpdesk)',
              type: 'checkboxes',
              options: domains,
              initial: me.domains.join(','),
            },
          ]}
          check={(v) => {
            const problem = passwordProblem(v.password ?? '', v.email ?? '');
            return { ...domainsCheck(v), ...(problem === undefined ? {} : { password: problem }) };
          }}
          onSubmit={async (v) => {
            await api('POST', '/v1/admins', {
              email: v.email?.trim(),
              password: v.password,
              role: v.role,
              domains: domainList(v),
            });
            setReload((n) => n + 1);
            return `${v.email?.trim() ?? ''} added as ${v.role ?? ''}.`;
          }}
        />
      )}
      {editing !== undefined && (
        <EditAdmin
          key={editing.id}
          admin={editing}
          me={me}
          domains={domains}
          onDone={(done) => {
            setEditing(undefined);
            if (done !== '') {
              setNotice(done);
              setError(undefined);
              setReload((n) => n + 1);
            }
          }}
        />
      )}
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      <PagedTable
        label="Administrators"
        load={load}
        reloadKey={reload}
        rowKey={(a) => a.id}
        columns={[
          { title: 'Email', cell: (a) => a.email },
          { title: 'Role', cell: (a) => a.role },
          { title: 'Domains', cell: (a) => a.domains.join(', ') || 'all' },
          {
            title: 'Status',
            cell: (a) => (
              <>
                <span className={`badge ${a.status}`}>{a.status}</span>
                {a.lockedUntil !== null &&
                  a.lockedUntil !== undefined &&
                  Date.parse(a.lockedUntil) > Date.now() && (
                    <span className="badge missing"> locked until {when(a.lockedUntil)}</span>
                  )}
              </>
            ),
          },
          { title: 'TOTP', cell: (a) => (a.totpEnabled ? 'on' : 'off') },
          { title: 'Last sign-in', cell: (a) => when(a.lastLoginAt) },
          {
            title: 'Actions',
            cell: (a) =>
              canWrite && !self(a) ? (
                <div className="row-actions">
                  <button
                    type="button"
                    aria-expanded={editing?.id === a.id}
                    onClick={() => setEditing(editing?.id === a.id ? undefined : a)}
                  >
                    Edit
                  </button>
                  {a.lockedUntil !== null &&
                    a.lockedUntil !== undefined &&
                    Date.parse(a.lockedUntil) > Date.now() && (
                      <button
                        type="button"
                        onClick={() =>
                          void act(
                            () => api('PATCH', `/v1/admins/${a.id}`, { unlock: true }),
                            `${a.email} unlocked.`,
                          )
                        }
                      >
                        Unlock
                      </button>
                    )}
                  {a.status === 'active' ? (
                    <button type="button" className="danger" onClick={() => void disable(a)}>
                      Disable
                    </button>
                  ) : (
                    <button
                      type="button"
                      onClick={() =>
                        void act(
                          () => api('PATCH', `/v1/admins/${a.id}`, { status: 'active' }),
                          `${a.email} enabled.`,
                        )
                      }
                    >
                      Enable
                    </button>
                  )}
                  <button type="button" className="danger" onClick={() => void remove(a)}>
                    Delete
                  </button>
                </div>
              ) : self(a) ? (
                <a href="#/account">My account</a>
              ) : null,
          },
        ]}
      />
      {dialog}
    </>
  );
}
