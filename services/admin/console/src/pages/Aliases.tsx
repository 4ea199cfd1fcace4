/** Aliases (to local users) and forwards (to other addresses) of a domain: list, add, delete. */
import { useCallback, useState } from 'react';
import { ApiFailure, api, qs, type Me, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { Loading } from '../components/Loading.js';
import { PagedTable } from '../components/PagedTable.js';
import { useDomainNames } from '../domains.js';
import { type Alias, type User } from '../types.js';
import { isAddress } from '../validate.js';

const addressList = (v: string): string[] =>
  v
    .split(/[\s,;]+/)
    .map((a) => a.trim())
    .filter((a) => a !== '');

/** The user id of each local address (an alias delivers to users, named by id in the API). */
async function userIdsOf(addresses: readonly string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const address of addresses) {
    const page = await api<Page<User>>('GET', `/v1/users${qs({ q: address, pageSize: 5 })}`);
    const user = page.items.find((u) => u.address.toLowerCase() === address.toLowerCase());
    if (user === undefined) throw new Error(`${address} is not a user here`);
    ids.push(user.id);
  }
  return ids;
}

export function AliasesPage({ me }: { readonly me: Me }) {
  const domains = useDomainNames();
  const [chosen, setChosen] = useState<string | undefined>();
  const domain = chosen ?? domains?.[0] ?? '';
  const [reload, setReload] = useState(0);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const load = useCallback(
    (pageToken: string) =>
      domain !== ''
        ? api<Page<Alias>>('GET', `/v1/aliases${qs({ pageToken, domain })}`)
        : Promise.resolve({ items: [], nextPageToken: '' }),
    [domain],
  );
  const canWrite = me.permissions.includes('aliases.write');
  const remove = async (a: Alias) => {
    const choice = await ask({
      title: `Delete ${a.address}?`,
      body: `Mail to ${a.address} is refused from now on (it delivered to ${(a.targetAddresses ?? a.targets).join(', ')}).`,
      choices: [{ label: `Delete ${a.kind}`, value: 'yes', danger: true }],
    });
    if (choice !== 'yes') return;
    try {
      await api('DELETE', `/v1/aliases/${encodeURIComponent(a.address)}`);
      setNotice(`${a.address} deleted.`);
      setError(undefined);
      setReload((n) => n + 1);
    } catch (e) {
      setNotice('');
      setError(e);
    }
  };
  return (
    <>
      <h1>Aliases and forwards</h1>
      <div className="field inline">
        <label htmlFor="aliases-domain">Domain</label>
        <select id="aliases-domain" value={domain} onChange={(e) => setChosen(e.target.value)}>
          {(domains ?? []).map((d) => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </div>
      {canWrite && (
        <Form
          title="Add an alias or a forward"
          submitLabel="Add"
          fields={[
            {
              name: 'address',
              label: 'Address',
              required: true,
              validate: isAddress,
              hint: `e.g. postmaster@${domain || 'example.com'}`,
            },
            {
              name: 'kind',
              label: 'Delivers to',
              type: 'select',
              options: ['users of this server (alias)', 'other addresses (forward)'],
            },
            {
              name: 'targets',
              label: 'Addresses it delivers to',
              required: true,
              hint: 'One or more addresses, separated by commas',
              validate: (v) =>
                addressList(v)
                  .map(isAddress)
                  .find((p) => p !== undefined),
            },
          ]}
          onSubmit={async (v) => {
            const targets = addressList(v.targets ?? '');
            const address = v.address?.trim() ?? '';
            if (v.kind?.startsWith('users') === true) {
              let userIds: string[];
              try {
                userIds = await userIdsOf(targets);
              } catch (e) {
                throw new ApiFailure({
                  status: 400,
                  code: 'invalid_argument',
                  message: e instanceof Error ? e.message : String(e),
                  field: 'targets',
                });
              }
              await api('POST', '/v1/aliases', { address, userIds });
            } else {
              await api('POST', '/v1/aliases', { address, forwardTo: targets });
            }
            setReload((n) => n + 1);
            return `${address} added.`;
          }}
        />
      )}
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      {domains === undefined && <Loading what="your domains" />}
      {domains !== undefined && (
        <PagedTable
          label="Addresses"
          load={load}
          reloadKey={reload}
          rowKey={(a) => a.id}
          empty={domain === '' ? 'No domain to show.' : 'No aliases or forwards in this domain.'}
          columns={[
            { title: 'Address', cell: (a) => a.address },
            { title: 'Kind', cell: (a) => a.kind },
            { title: 'Delivers to', cell: (a) => (a.targetAddresses ?? a.targets).join(', ') },
            {
              title: 'Actions',
              cell: (a) =>
                canWrite && a.kind !== 'primary' ? (
                  <button type="button" className="danger" onClick={() => void remove(a)}>
                    Delete
                  </button>
                ) : null,
            },
          ]}
        />
      )}
      {dialog}
    </>
  );
}
