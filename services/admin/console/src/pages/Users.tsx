/** Mail users: create, reset the password, change limits, suspend, delete. */
import { useCallback, useState } from 'react';
import { api, qs, type Me, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { formatBytes, limitsBody, limitsText, usageText } from '../format.js';
import { type User } from '../types.js';
import { isAddress, isCount, isLimit, isPassword } from '../validate.js';

export function UsersPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const [domain, setDomain] = useState('');
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const load = useCallback(
    (pageToken: string, q: string) =>
      api<Page<User>>('GET', `/v1/users${qs({ pageToken, q, domain, pageSize: 20 })}`),
    [domain],
  );
  const can = (p: string) => me.permissions.includes(p);
  const act = async (fn: () => Promise<unknown>, done: string) => {
    try {
      await fn();
      setNotice(done);
      setError(undefined);
      setReload((n) => n + 1);
    } catch (e) {
      setError(e);
    }
  };
  const remove = async (u: User) => {
    const choice = await ask({
      title: `Delete ${u.address}?`,
      body: 'The account and its addresses are removed at once. Choose what happens to the mail.',
      choices: [
        { label: 'Delete, keep mail for the retention period', value: 'keep', danger: true },
        { label: 'Delete and purge all mail now', value: 'purge', danger: true },
      ],
    });
    if (choice === undefined) return;
    await act(
      () => api('DELETE', `/v1/users/${u.id}${qs({ purge: choice === 'purge' ? 'true' : 'false' })}`),
      `${u.address} deleted.`,
    );
  };
  const [resetFor, setResetFor] = useState<User | undefined>();
  const [limitsFor, setLimitsFor] = useState<User | undefined>();
  return (
    <>
      <h2>Users</h2>
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      {can('users.create') && (
        <Form
          title="Create a user"
          submitLabel="Create user"
          fields={[
            { name: 'address', label: 'Address', type: 'email', required: true, validate: isAddress },
            { name: 'displayName', label: 'Display name' },
            {
              name: 'password',
              label: 'Initial password',
              type: 'password',
              required: true,
              validate: isPassword,
              hint: 'At least 10 characters; not containing the address.',
            },
            { name: 'quotaBytes', label: 'Quota (bytes, empty = domain default)', validate: isCount },
            {
              name: 'messagesPerHour',
              label: 'Messages per hour (empty = service default)',
              validate: isLimit,
            },
            {
              name: 'recipientsPerMessage',
              label: 'Recipients per message (empty = service default)',
              validate: isLimit,
            },
          ]}
          onSubmit={async (v) => {
            await api('POST', '/v1/users', {
              address: v.address?.trim(),
              password: v.password,
              displayName: v.displayName ?? '',
              ...(v.quotaBytes ? { quotaBytes: Number(v.quotaBytes) } : {}),
              ...limitsBody(v),
            });
            setNotice(`${v.address ?? ''} created.`);
            setReload((n) => n + 1);
          }}
        />
      )}
      {resetFor !== undefined && (
        <Form
          key={resetFor.id}
          title={`New password for ${resetFor.address}`}
          submitLabel="Set password"
          fields={[
            {
              name: 'password',
              label: 'New password',
              type: 'password',
              required: true,
              validate: isPassword,
            },
            { name: 'revoke', label: 'Also revoke app passwords', type: 'select', options: ['no', 'yes'] },
          ]}
          onSubmit={async (v) => {
            await api('POST', `/v1/users/${resetFor.id}/password`, {
              password: v.password,
              revokeAppPasswords: v.revoke === 'yes',
            });
            setNotice(`Password of ${resetFor.address} changed.`);
            setResetFor(undefined);
          }}
        />
      )}
      {limitsFor !== undefined && (
        <Form
          key={`limits-${limitsFor.id}`}
          title={`Sending limits of ${limitsFor.address}`}
          submitLabel="Save limits"
          fields={[
            {
              name: 'messagesPerHour',
              label: 'Messages per hour',
              required: true,
              validate: isLimit,
              initial: String(limitsFor.limits.messagesPerHour),
              hint: '0 = the service default.',
            },
            {
              name: 'recipientsPerMessage',
              label: 'Recipients per message',
              required: true,
              validate: isLimit,
              initial: String(limitsFor.limits.recipientsPerMessage),
              hint: '0 = the service default. Further recipients are refused with 452 4.5.3.',
            },
          ]}
          onSubmit={async (v) => {
            await api('PATCH', `/v1/users/${limitsFor.id}`, {
              limits: {
                messagesPerHour: Number(v.messagesPerHour),
                recipientsPerMessage: Number(v.recipientsPerMessage),
              },
            });
            setNotice(`Sending limits of ${limitsFor.address} changed.`);
            setLimitsFor(undefined);
            setReload((n) => n + 1);
          }}
        />
      )}
      <div className="field inline">
        <label htmlFor="users-domain">Domain</label>
        <input
          id="users-domain"
          placeholder="all domains you manage"
          value={domain}
          onChange={(e) => setDomain(e.target.value.trim())}
        />
      </div>
      <PagedTable
        label="Users"
        searchLabel="Find addresses starting with"
        load={load}
        reloadKey={reload}
        rowKey={(u) => u.id}
        columns={[
          { title: 'Address', cell: (u) => u.address },
          { title: 'Name', cell: (u) => u.displayName || '—' },
          {
            title: 'Quota',
            cell: (u) => (
              <span className="nowrap">{u.quotaBytes === 0 ? 'unlimited' : formatBytes(u.quotaBytes)}</span>
            ),
          },
          { title: 'Storage used', cell: (u) => usageText(u) },
          { title: 'Sending limits', cell: (u) => limitsText(u) },
          { title: 'Status', cell: (u) => <span className={`badge ${u.status}`}>{u.status}</span> },
          {
            title: 'Actions',
            cell: (u) => (
              <div className="row-actions">
                {can('users.password') && (
                  <button type="button" onClick={() => setResetFor(u)} aria-expanded={resetFor?.id === u.id}>
                    Reset password
                  </button>
                )}
                {can('users.update') && (
                  <button
                    type="button"
                    onClick={() => setLimitsFor(u)}
                    aria-expanded={limitsFor?.id === u.id}
                  >
                    Limits
                  </button>
                )}
                {can('users.update') && (
                  <button
                    type="button"
                    onClick={() =>
                      void act(
                        () =>
                          api('PATCH', `/v1/users/${u.id}`, {
                            status: u.status === 'active' ? 'disabled' : 'active',
                          }),
                        `${u.address} updated.`,
                      )
                    }
                  >
                    {u.status === 'active' ? 'Suspend' : 'Enable'}
                  </button>
                )}
                {can('users.delete') && (
                  <button type="button" className="danger" onClick={() => void remove(u)}>
                    Delete
                  </button>
                )}
              </div>
            ),
          },
        ]}
      />
      {dialog}
    </>
  );
}
