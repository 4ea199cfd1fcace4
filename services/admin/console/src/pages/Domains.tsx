/** Domains: add, suspend or activate, delete (saying what it holds), and open their DNS records and DKIM keys. */
import { useCallback, useState } from 'react';
import { api, qs, type Me, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';
import { DomainDetail } from './DomainDetail.js';
import { DomainWebhooks } from './Webhooks.js';
import { type Domain } from '../types.js';
import { type Alias, type User } from '../types.js';
import { isDomain, isSize, SIZE_UNITS, toBytes } from '../validate.js';

export function DomainsPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState<string | undefined>();
  const [ask, dialog] = useConfirm();
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState('');
  const load = useCallback(
    (pageToken: string, q: string) =>
      api<Page<Domain>>('GET', `/v1/domains${qs({ pageToken, q, pageSize: 20 })}`),
    [],
  );
  const can = (p: string) => me.permissions.includes(p);
  const setStatus = async (d: Domain) => {
    const next = d.status === 'active' ? 'suspended' : 'active';
    const choice = await ask({
      title: `${next === 'suspended' ? 'Suspend' : 'Activate'} ${d.name}?`,
      body:
        next === 'suspended'
          ? 'A suspended domain receives no mail and its users cannot sign in. Data is kept.'
          : 'The domain will receive mail again.',
      choices: [
        {
          label: next === 'suspended' ? 'Suspend domain' : 'Activate domain',
          value: 'yes',
          danger: next === 'suspended',
        },
      ],
    });
    if (choice !== 'yes') return;
    try {
      await api('PATCH', `/v1/domains/${encodeURIComponent(d.name)}`, { status: next });
      setNotice(`${d.name} ${next === 'suspended' ? 'suspended' : 'activated'}.`);
      setError(undefined);
      setReload((n) => n + 1);
    } catch (e) {
      setNotice('');
      setError(e);
    }
  };
  /** Deleting says first what goes with the domain (its users and their mail, its aliases). */
  const remove = async (d: Domain) => {
    let held: { users: number; aliases: number; more: boolean };
    try {
      const [users, aliases] = await Promise.all([
        api<Page<User>>('GET', `/v1/users${qs({ domain: d.name, pageSize: 100 })}`),
        api<Page<Alias>>('GET', `/v1/aliases${qs({ domain: d.name, pageSize: 100 })}`),
      ]);
      held = {
        users: users.items.length,
        aliases: aliases.items.length,
        more: users.nextPageToken !== '' || aliases.nextPageToken !== '',
      };
    } catch (e) {
      setError(e);
      return;
    }
    const empty = held.users === 0 && held.aliases === 0;
    const plus = held.more ? ' or more' : '';
    const choice = await ask({
      title: `Delete ${d.name}?`,
      body: empty
        ? 'It has no users and no aliases. Its DKIM keys and settings are removed.'
        : `It holds ${held.users}${plus} users and ${held.aliases}${plus} aliases and forwards. Deleting it deletes them, and every user's mail, now. This cannot be undone.`,
      choices: [
        {
          label: empty ? 'Delete domain' : `Delete ${d.name}, its users and their mail`,
          value: 'yes',
          danger: true,
        },
      ],
    });
    if (choice !== 'yes') return;
    try {
      await api(
        'DELETE',
        `/v1/domains/${encodeURIComponent(d.name)}${qs({ cascade: empty ? undefined : 'true' })}`,
      );
      if (open === d.name) setOpen(undefined);
      setNotice(`${d.name} deleted.`);
      setError(undefined);
      setReload((n) => n + 1);
    } catch (e) {
      setNotice('');
      setError(e);
    }
  };
  return (
    <>
      <h1>Domains</h1>
      {can('domains.create') && (
        <Form
          title="Add a domain"
          submitLabel="Add domain"
          fields={[
            {
              name: 'name',
              label: 'Domain name',
              required: true,
              validate: isDomain,
              hint: 'For example example.com',
            },
            {
              name: 'defaultQuota',
              label: 'Default quota for new users',
              inputMode: 'decimal',
              initial: '0',
              validate: isSize,
              hint: '0 means unlimited',
            },
            {
              name: 'defaultQuotaUnit',
              label: 'Default quota unit',
              type: 'select',
              options: SIZE_UNITS,
              unitOf: 'defaultQuota',
            },
          ]}
          onSubmit={async (v) => {
            await api('POST', '/v1/domains', {
              name: v.name?.trim(),
              defaultQuotaBytes: toBytes(v.defaultQuota || '0', v.defaultQuotaUnit ?? 'MiB'),
            });
            setReload((n) => n + 1);
            return `${v.name?.trim() ?? ''} added: publish its DNS records next (DNS and DKIM).`;
          }}
        />
      )}
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      <PagedTable
        label="Domains"
        searchLabel="Find domains starting with"
        load={load}
        reloadKey={reload}
        rowKey={(d) => d.id}
        columns={[
          { title: 'Name', cell: (d) => d.name },
          { title: 'Status', cell: (d) => <span className={`badge ${d.status}`}>{d.status}</span> },
          { title: 'Created', cell: (d) => when(d.createdAt) },
          {
            title: 'Actions',
            cell: (d) => (
              <div className="row-actions">
                {(can('dns.read') || can('dkim.read')) && (
                  <button
                    type="button"
                    onClick={() => setOpen(open === d.name ? undefined : d.name)}
                    aria-expanded={open === d.name}
                  >
                    DNS and DKIM
                  </button>
                )}
                {can('domains.update') && (
                  <button
                    type="button"
                    className={d.status === 'active' ? 'danger' : ''}
                    onClick={() => void setStatus(d)}
                  >
                    {d.status === 'active' ? 'Suspend' : 'Activate'}
                  </button>
                )}
                {can('domains.delete') && (
                  <button type="button" className="danger" onClick={() => void remove(d)}>
                    Delete
                  </button>
                )}
              </div>
            ),
          },
        ]}
      />
      {open !== undefined && <DomainDetail domain={open} me={me} />}
      {open !== undefined && <DomainWebhooks domain={open} me={me} />}
      {dialog}
    </>
  );
}
