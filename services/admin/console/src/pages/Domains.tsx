/** Domains: add, suspend or activate, and open their DNS records and DKIM keys. */
import { useCallback, useState } from 'react';
import { api, qs, type Me, type Page } from '../api.js';
import { ErrorBanner } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';
import { DomainDetail } from './DomainDetail.js';
import { type Domain } from '../types.js';
import { isCount, isDomain } from '../validate.js';

export function DomainsPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState<string | undefined>();
  const [ask, dialog] = useConfirm();
  const [error, setError] = useState<unknown>();
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
      setReload(reload + 1);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <h2>Domains</h2>
      <ErrorBanner error={error} />
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
              name: 'defaultQuotaBytes',
              label: 'Default quota for new users (bytes)',
              initial: '0',
              validate: isCount,
              hint: '0 means unlimited',
            },
          ]}
          onSubmit={async (v) => {
            await api('POST', '/v1/domains', {
              name: v.name?.trim(),
              defaultQuotaBytes: Number(v.defaultQuotaBytes || 0),
            });
            setReload(reload + 1);
          }}
        />
      )}
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
              </div>
            ),
          },
        ]}
      />
      {open !== undefined && <DomainDetail domain={open} me={me} />}
      {dialog}
    </>
  );
}
