/**
 * Mail users: create, edit (name, quotas, limits), reset the password, app passwords, filters,
 * team mailboxes, suspend, unlock, delete.
 */
import { useCallback, useState } from 'react';
import { api, qs, type Me, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { useDomainNames } from '../domains.js';
import { formatBytes, limitsBody, limitsText, usageText } from '../format.js';
import { type User } from '../types.js';
import {
  isAddress,
  isLimit,
  isMessageCount,
  isSize,
  passwordProblem,
  PASSWORD_HINT,
  SIZE_UNITS,
  sizeFields,
  toBytes,
} from '../validate.js';
import { AppPasswords } from './AppPasswords.js';
import { SieveFilters } from './SieveFilters.js';
import { TeamMailboxes } from './TeamMailboxes.js';

type Panel = { kind: 'edit' | 'password' | 'app-passwords' | 'filters' | 'team'; user: User } | undefined;

/** A message count limit as the list shows it. */
const messageLimitText = (limit: number): string => (limit === 0 ? 'no message limit' : `${limit} messages`);

function EditUser({ user, onDone }: { readonly user: User; readonly onDone: (notice: string) => void }) {
  const [quota, unit] = sizeFields(user.quotaBytes);
  return (
    <Form
      title={`Edit ${user.address}`}
      submitLabel="Save changes"
      actions={
        <button type="button" className="secondary" onClick={() => onDone('')}>
          Close
        </button>
      }
      fields={[
        { name: 'displayName', label: 'Display name', initial: user.displayName },
        {
          name: 'quota',
          label: 'Quota',
          required: true,
          validate: isSize,
          initial: quota,
          inputMode: 'decimal',
          hint: `0 = unlimited. In use now: ${usageText(user)}.`,
        },
        {
          name: 'quotaUnit',
          label: 'Quota unit',
          type: 'select',
          options: SIZE_UNITS,
          initial: unit,
          unitOf: 'quota',
        },
        {
          name: 'quotaMessages',
          label: 'Message limit',
          required: true,
          validate: isMessageCount,
          initial: String(user.quotaMessages),
          inputMode: 'numeric',
          hint: `Messages kept over all mailboxes; 0 = unlimited. Stored now: ${user.usage?.messages ?? 0}.`,
        },
        {
          name: 'messagesPerHour',
          label: 'Messages per hour',
          required: true,
          validate: isLimit,
          initial: String(user.limits.messagesPerHour),
          hint: '0 = the service default.',
        },
        {
          name: 'recipientsPerMessage',
          label: 'Recipients per message',
          required: true,
          validate: isLimit,
          initial: String(user.limits.recipientsPerMessage),
          hint: '0 = the service default. Further recipients are refused with 452 4.5.3.',
        },
      ]}
      keepValues
      onSubmit={async (v) => {
        await api('PATCH', `/v1/users/${user.id}`, {
          displayName: v.displayName ?? '',
          quotaBytes: toBytes(v.quota ?? '0', v.quotaUnit ?? 'MiB'),
          quotaMessages: Number((v.quotaMessages ?? '0').trim()),
          limits: {
            messagesPerHour: Number(v.messagesPerHour),
            recipientsPerMessage: Number(v.recipientsPerMessage),
          },
        });
        onDone(`${user.address} saved.`);
      }}
    />
  );
}

function ResetPassword({ user, onDone }: { readonly user: User; readonly onDone: (notice: string) => void }) {
  return (
    <Form
      title={`New password for ${user.address}`}
      submitLabel="Set password"
      actions={
        <button type="button" className="secondary" onClick={() => onDone('')}>
          Close
        </button>
      }
      fields={[
        {
          name: 'password',
          label: 'New password',
          type: 'password',
          required: true,
          hint: PASSWORD_HINT,
          validate: (v) => passwordProblem(v, user.address),
        },
        { name: 'revoke', label: 'Also revoke app passwords', type: 'select', options: ['no', 'yes'] },
      ]}
      onSubmit={async (v) => {
        await api('POST', `/v1/users/${user.id}/password`, {
          password: v.password,
          revokeAppPasswords: v.revoke === 'yes',
        });
        onDone(`Password of ${user.address} changed.`);
      }}
    />
  );
}

export function UsersPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const [domain, setDomain] = useState('');
  const domains = useDomainNames();
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>();
  const [panel, setPanel] = useState<Panel>();
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
      setNotice('');
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
  const suspend = async (u: User) => {
    const choice = await ask({
      title: `Suspend ${u.address}?`,
      body: 'They can no longer sign in or send; mail to them is refused. Their console sessions end.',
      choices: [
        { label: 'Suspend', value: 'keep', danger: true },
        { label: 'Suspend and revoke app passwords', value: 'revoke', danger: true },
      ],
    });
    if (choice === undefined) return;
    await act(
      () =>
        api('PATCH', `/v1/users/${u.id}`, { status: 'disabled', revokeAppPasswords: choice === 'revoke' }),
      `${u.address} suspended.`,
    );
  };
  const closePanel = (done: string) => {
    setPanel(undefined);
    if (done !== '') {
      setNotice(done);
      setError(undefined);
      setReload((n) => n + 1);
    }
  };
  const toggle = (kind: NonNullable<Panel>['kind'], user: User) =>
    setPanel(panel?.kind === kind && panel.user.id === user.id ? undefined : { kind, user });
  const open = (kind: NonNullable<Panel>['kind'], user: User) =>
    panel?.kind === kind && panel.user.id === user.id;
  return (
    <>
      <h1>Users</h1>
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
              hint: PASSWORD_HINT,
            },
            {
              name: 'quota',
              label: 'Quota',
              validate: isSize,
              inputMode: 'decimal',
              hint: 'Empty = the domain default; 0 = unlimited.',
            },
            { name: 'quotaUnit', label: 'Quota unit', type: 'select', options: SIZE_UNITS, unitOf: 'quota' },
            {
              name: 'quotaMessages',
              label: 'Message limit',
              validate: isMessageCount,
              inputMode: 'numeric',
              hint: 'Messages kept over all mailboxes; empty or 0 = unlimited.',
            },
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
          check={(v): Record<string, string> => {
            const problem = passwordProblem(v.password ?? '', (v.address ?? '').trim());
            return problem === undefined ? {} : { password: problem };
          }}
          onSubmit={async (v) => {
            await api('POST', '/v1/users', {
              address: v.address?.trim(),
              password: v.password,
              displayName: v.displayName ?? '',
              ...(v.quota ? { quotaBytes: toBytes(v.quota, v.quotaUnit ?? 'MiB') } : {}),
              ...(v.quotaMessages ? { quotaMessages: Number(v.quotaMessages.trim()) } : {}),
              ...limitsBody(v),
            });
            setReload((n) => n + 1);
            return `${v.address?.trim() ?? ''} created.`;
          }}
        />
      )}
      {panel?.kind === 'edit' && <EditUser key={panel.user.id} user={panel.user} onDone={closePanel} />}
      {panel?.kind === 'password' && (
        <ResetPassword key={panel.user.id} user={panel.user} onDone={closePanel} />
      )}
      {panel?.kind === 'app-passwords' && (
        <div className="card">
          <AppPasswords
            key={panel.user.id}
            userId={panel.user.id}
            address={panel.user.address}
            canWrite={can('apppasswords.write')}
          />
          <button type="button" className="secondary" onClick={() => setPanel(undefined)}>
            Close
          </button>
        </div>
      )}
      {panel?.kind === 'filters' && (
        <div className="card">
          <h2>Filters and vacation reply of {panel.user.address}</h2>
          <SieveFilters
            key={panel.user.id}
            userId={panel.user.id}
            address={panel.user.address}
            canWrite={can('sieve.write')}
          />
          <button type="button" className="secondary" onClick={() => setPanel(undefined)}>
            Close
          </button>
        </div>
      )}
      {panel?.kind === 'team' && (
        <div className="card">
          <TeamMailboxes
            key={panel.user.id}
            userId={panel.user.id}
            address={panel.user.address}
            canWrite={can('teammailboxes.write')}
          />
          <button type="button" className="secondary" onClick={() => setPanel(undefined)}>
            Close
          </button>
        </div>
      )}
      <div className="field inline">
        <label htmlFor="users-domain">Domain</label>
        <select id="users-domain" value={domain} onChange={(e) => setDomain(e.target.value)}>
          <option value="">all domains you manage</option>
          {(domains ?? []).map((d) => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </div>
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
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
              <span className="nowrap">
                {u.quotaBytes === 0 ? 'unlimited' : formatBytes(u.quotaBytes)},{' '}
                {messageLimitText(u.quotaMessages)}
              </span>
            ),
          },
          { title: 'Storage used', cell: (u) => usageText(u) },
          { title: 'Sending limits', cell: (u) => limitsText(u) },
          { title: 'Status', cell: (u) => <span className={`badge ${u.status}`}>{u.status}</span> },
          {
            title: 'Actions',
            cell: (u) => (
              <div className="row-actions">
                {can('users.update') && (
                  <button type="button" onClick={() => toggle('edit', u)} aria-expanded={open('edit', u)}>
                    Edit
                  </button>
                )}
                {can('users.password') && (
                  <button
                    type="button"
                    onClick={() => toggle('password', u)}
                    aria-expanded={open('password', u)}
                  >
                    Reset password
                  </button>
                )}
                {can('apppasswords.read') && (
                  <button
                    type="button"
                    onClick={() => toggle('app-passwords', u)}
                    aria-expanded={open('app-passwords', u)}
                  >
                    App passwords
                  </button>
                )}
                {can('sieve.read') && (
                  <button
                    type="button"
                    onClick={() => toggle('filters', u)}
                    aria-expanded={open('filters', u)}
                  >
                    Filters
                  </button>
                )}
                {can('teammailboxes.read') && (
                  <button type="button" onClick={() => toggle('team', u)} aria-expanded={open('team', u)}>
                    Team mailboxes
                  </button>
                )}
                {can('users.update') && u.status === 'active' && (
                  <button type="button" className="danger" onClick={() => void suspend(u)}>
                    Suspend
                  </button>
                )}
                {u.status !== 'active' && (can('users.unlock') || can('users.update')) && (
                  <button
                    type="button"
                    onClick={() =>
                      void act(() => api('POST', `/v1/users/${u.id}/unlock`, {}), `${u.address} unlocked.`)
                    }
                  >
                    Unlock
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
