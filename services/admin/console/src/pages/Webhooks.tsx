/**
 * A domain's webhooks (docs/webhooks.md): the endpoints its mail events are POSTed to. The
 * signing secret is shown once, right after a webhook is added or its secret rotated.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, type Me, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';

interface Webhook {
  readonly id: string;
  readonly url: string;
  readonly events: readonly string[];
  readonly enabled: boolean;
}

const EVENT_TYPES = ['received', 'delivered', 'bounced', 'deferred', 'dead-lettered', 'spam-rejected'];

export function DomainWebhooks({ domain, me }: { readonly domain: string; readonly me: Me }) {
  const [hooks, setHooks] = useState<Webhook[] | undefined>();
  const [secret, setSecret] = useState<{ readonly url: string; readonly secret: string } | undefined>();
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const base = `/v1/domains/${encodeURIComponent(domain)}/webhooks`;
  const canRead = me.permissions.includes('webhooks.read');
  const canWrite = me.permissions.includes('webhooks.write');
  const load = useCallback(async () => {
    if (!canRead) return;
    try {
      setHooks((await api<Page<Webhook>>('GET', base)).items);
    } catch (e) {
      setError(e);
    }
  }, [base, canRead]);
  useEffect(() => {
    void load();
  }, [load]);
  if (!canRead) return null;

  const act = async (hook: Webhook, what: 'enable' | 'disable' | 'rotate' | 'delete') => {
    if (what === 'rotate' || what === 'delete') {
      const choice = await ask({
        title: what === 'delete' ? `Remove the webhook ${hook.url}?` : `Rotate the secret of ${hook.url}?`,
        body:
          what === 'delete'
            ? 'Events are no longer sent to it.'
            : 'The current secret stops signing at once: give the new one to the receiver.',
        choices: [
          { label: what === 'delete' ? 'Remove webhook' : 'Rotate secret', value: 'yes', danger: true },
        ],
      });
      if (choice !== 'yes') return;
    }
    try {
      const path = `${base}/${encodeURIComponent(hook.id)}`;
      setSecret(undefined);
      if (what === 'delete') {
        await api('DELETE', path);
        setNotice(`Webhook ${hook.url} removed.`);
      } else if (what === 'rotate') {
        const rotated = await api<{ secret: string }>('POST', `${path}/rotate-secret`, {});
        setSecret({ url: hook.url, secret: rotated.secret });
        setNotice('');
      } else {
        await api('PATCH', path, { enabled: what === 'enable' });
        setNotice(`Webhook ${hook.url} ${what === 'enable' ? 'enabled' : 'disabled'}.`);
      }
      setError(undefined);
      await load();
    } catch (e) {
      setNotice('');
      setError(e);
    }
  };

  return (
    <section className="card" aria-label={`Webhooks of ${domain}`}>
      <h2>Webhooks</h2>
      <p className="hint">
        Signed HTTP POSTs on this domain&apos;s mail events, retried with backoff when the endpoint fails.
      </p>
      {secret !== undefined && (
        <Notice>
          Signing secret for {secret.url} (shown only now; copy it):{' '}
          <code className="mono">{secret.secret}</code>
        </Notice>
      )}
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      {hooks !== undefined && (
        <table className="cards">
          <caption>Webhooks of {domain}</caption>
          <thead>
            <tr>
              <th scope="col">URL</th>
              <th scope="col">Events</th>
              <th scope="col">Status</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {hooks.map((h) => (
              <tr key={h.id}>
                <td className="mono wrap identity" data-label="URL">
                  {h.url}
                </td>
                <td data-label="Events">{h.events.join(', ')}</td>
                <td data-label="Status">
                  <span className={`badge ${h.enabled ? 'active' : 'disabled'}`}>
                    {h.enabled ? 'enabled' : 'disabled'}
                  </span>
                </td>
                <td className="actions-cell" data-label="Actions">
                  {canWrite && (
                    <div className="row-actions">
                      <button
                        type="button"
                        className="secondary"
                        aria-label={`${h.enabled ? 'Disable' : 'Enable'} webhook ${h.url}`}
                        onClick={() => void act(h, h.enabled ? 'disable' : 'enable')}
                      >
                        {h.enabled ? 'Disable' : 'Enable'}
                      </button>
                      <button
                        type="button"
                        className="secondary"
                        aria-label={`Rotate secret of webhook ${h.url}`}
                        onClick={() => void act(h, 'rotate')}
                      >
                        Rotate secret
                      </button>
                      <button
                        type="button"
                        className="danger"
                        aria-label={`Remove webhook ${h.url}`}
                        onClick={() => void act(h, 'delete')}
                      >
                        Remove
                      </button>
                    </div>
                  )}
                </td>
              </tr>
            ))}
            {hooks.length === 0 && (
              <tr>
                <td colSpan={4} className="empty">
                  No webhook yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {canWrite && (
        <Form
          title="Add a webhook"
          submitLabel="Add webhook"
          fields={[
            {
              name: 'url',
              label: 'Endpoint URL',
              required: true,
              hint: 'https:// (or http://) address of your receiver.',
              validate: (v) => (/^https?:\/\/\S+$/i.test(v) ? undefined : 'An http:// or https:// URL.'),
            },
            {
              name: 'events',
              label: 'Events',
              type: 'checkboxes',
              options: EVENT_TYPES,
              initial: 'delivered,bounced',
              required: true,
            },
          ]}
          onSubmit={async (v) => {
            const created = await api<{ secret: string; url: string }>('POST', base, {
              url: v.url,
              events: (v.events ?? '').split(',').filter((e) => e !== ''),
            });
            setNotice('');
            setSecret({ url: created.url, secret: created.secret });
            await load();
          }}
        />
      )}
      {dialog}
    </section>
  );
}
