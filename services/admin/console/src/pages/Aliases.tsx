/** Aliases and forwards of a domain. */
import { useCallback, useState } from 'react';
import { api, qs, type Me, type Page } from '../api.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { type Alias } from '../types.js';
import { isAddress } from '../validate.js';

export function AliasesPage({ me }: { readonly me: Me }) {
  const [domain, setDomain] = useState(me.domains[0] ?? '');
  const [reload, setReload] = useState(0);
  const load = useCallback(
    (pageToken: string) =>
      me.role === 'user' || domain !== ''
        ? api<Page<Alias>>('GET', `/v1/aliases${qs({ pageToken, domain })}`)
        : Promise.resolve({ items: [], nextPageToken: '' }),
    [domain, me.role],
  );
  return (
    <>
      <h2>Aliases and forwards</h2>
      {me.role !== 'user' && (
        <div className="field inline">
          <label htmlFor="aliases-domain">Domain</label>
          <input id="aliases-domain" value={domain} onChange={(e) => setDomain(e.target.value.trim())} />
        </div>
      )}
      {me.permissions.includes('aliases.write') && (
        <Form
          title="Add a forward"
          submitLabel="Add forward"
          fields={[
            { name: 'address', label: 'Address', required: true, validate: isAddress },
            { name: 'forwardTo', label: 'Forward to', required: true, validate: isAddress },
          ]}
          onSubmit={async (v) => {
            await api('POST', '/v1/aliases', {
              address: v.address?.trim(),
              forwardTo: [v.forwardTo?.trim()],
            });
            setReload((n) => n + 1);
          }}
        />
      )}
      <PagedTable
        label="Addresses"
        load={load}
        reloadKey={reload}
        rowKey={(a) => a.id}
        columns={[
          { title: 'Address', cell: (a) => a.address },
          { title: 'Kind', cell: (a) => a.kind },
          { title: 'Delivers to', cell: (a) => a.targets.join(', ') },
        ]}
      />
    </>
  );
}
