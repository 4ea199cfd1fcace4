/** App passwords of one mail user (for IMAP and SMTP clients): list, create (secret shown once), revoke. */
import { useCallback, useState } from 'react';
import { api, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';

interface AppPassword {
  id: string;
  label: string;
  protocols: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
}

export function AppPasswords(props: {
  readonly userId: string;
  readonly address: string;
  readonly canWrite: boolean;
}) {
  const { userId } = props;
  const [reload, setReload] = useState(0);
  const [secret, setSecret] = useState<{ label: string; secret: string } | undefined>();
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const load = useCallback(
    () => api<Page<AppPassword>>('GET', `/v1/users/${encodeURIComponent(userId)}/app-passwords`),
    [userId],
  );
  const revoke = async (p: AppPassword) => {
    const choice = await ask({
      title: `Revoke the app password “${p.label || 'unnamed'}”?`,
      body: 'Mail clients that use it can no longer sign in.',
      choices: [{ label: 'Revoke app password', value: 'yes', danger: true }],
    });
    if (choice !== 'yes') return;
    try {
      await api(
        'DELETE',
        `/v1/users/${encodeURIComponent(userId)}/app-passwords/${encodeURIComponent(p.id)}`,
      );
      setSecret(undefined);
      setError(undefined);
      setNotice(`App password “${p.label || 'unnamed'}” revoked.`);
      setReload((n) => n + 1);
    } catch (e) {
      setNotice('');
      setError(e);
    }
  };
  return (
    <section aria-labelledby={`app-passwords-${userId}`}>
      <h2 id={`app-passwords-${userId}`}>App passwords</h2>
      <p className="hint">
        For mail programs (IMAP and SMTP). Each has its own secret, so one lost device can be revoked alone.
      </p>
      {props.canWrite && (
        <Form
          title="Create an app password"
          submitLabel="Create app password"
          fields={[
            { name: 'label', label: 'Name', required: true, hint: 'For example “Thunderbird on laptop”' },
            {
              name: 'protocols',
              label: 'Use for',
              type: 'select',
              options: ['imap and smtp', 'imap', 'smtp'],
            },
          ]}
          onSubmit={async (v) => {
            const created = await api<{ secret: string; label: string }>(
              'POST',
              `/v1/users/${encodeURIComponent(userId)}/app-passwords`,
              {
                label: v.label?.trim(),
                protocols: v.protocols === 'imap and smtp' ? ['imap', 'smtp'] : [v.protocols],
              },
            );
            setNotice('');
            setSecret({ label: created.label, secret: created.secret });
            setReload((n) => n + 1);
          }}
        />
      )}
      {secret !== undefined && (
        <Notice>
          App password “{secret.label}” (shown only now; type it into the mail program):{' '}
          <code className="mono secret">{secret.secret}</code>
        </Notice>
      )}
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      <PagedTable
        label={`App passwords of ${props.address}`}
        load={load}
        reloadKey={reload}
        rowKey={(p) => p.id}
        columns={[
          { title: 'Name', cell: (p) => p.label || '—' },
          { title: 'Use for', cell: (p) => p.protocols.join(', ') },
          { title: 'Created', cell: (p) => when(p.createdAt) },
          { title: 'Last used', cell: (p) => when(p.lastUsedAt) },
          {
            title: 'Actions',
            cell: (p) =>
              props.canWrite ? (
                <button type="button" className="danger" onClick={() => void revoke(p)}>
                  Revoke
                </button>
              ) : null,
          },
        ]}
      />
      {dialog}
    </section>
  );
}
