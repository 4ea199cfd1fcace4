/** API tokens of the signed-in administrator. */
import { useCallback, useState } from 'react';
import { api, qs, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';
import { type Token } from '../types.js';

export function TokensPage() {
  const [reload, setReload] = useState(0);
  const [secret, setSecret] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const load = useCallback(
    (pageToken: string) => api<Page<Token>>('GET', `/v1/tokens${qs({ pageToken })}`),
    [],
  );
  const revoke = async (t: Token) => {
    if (
      (await ask({
        title: `Revoke token ${t.name}?`,
        body: 'Scripts using it stop working at once.',
        choices: [{ label: 'Revoke', value: 'yes', danger: true }],
      })) !== 'yes'
    )
      return;
    try {
      await api('DELETE', `/v1/tokens/${t.id}`);
      setReload((n) => n + 1);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <h1>API tokens</h1>
      <ErrorBanner error={error} />
      {secret !== '' && (
        <Notice>
          New token (shown only now; copy it): <code className="mono">{secret}</code>
        </Notice>
      )}
      <Form
        title="Create a token"
        submitLabel="Create token"
        fields={[
          { name: 'name', label: 'Name', required: true },
          {
            name: 'scopes',
            label: 'Scopes (comma-separated)',
            initial: 'domains:read, users:read',
            hint: '* or area:read / area:write, e.g. users:write',
          },
        ]}
        onSubmit={async (v) => {
          const created = await api<{ secret: string }>('POST', '/v1/tokens', {
            name: v.name,
            scopes: (v.scopes ?? '')
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== ''),
          });
          setSecret(created.secret);
          setReload((n) => n + 1);
        }}
      />
      <PagedTable
        label="Tokens"
        load={load}
        reloadKey={reload}
        rowKey={(t) => t.id}
        columns={[
          { title: 'Name', cell: (t) => t.name },
          { title: 'Scopes', cell: (t) => t.scopes.join(', ') },
          { title: 'Created', cell: (t) => when(t.createdAt) },
          { title: 'Last used', cell: (t) => when(t.lastUsedAt) },
          {
            title: 'Actions',
            cell: (t) => (
              <button type="button" className="danger" onClick={() => void revoke(t)}>
                Revoke
              </button>
            ),
          },
        ]}
      />
      {dialog}
    </>
  );
}
