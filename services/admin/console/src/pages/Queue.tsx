/** Deferred outbound mail in mta-delivery's queue: retry or cancel. */
import { useCallback, useState } from 'react';
import { api, qs, type Me, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';
import { type OutboundEntry } from '../types.js';

export function QueuePage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState('');
  const [ask, dialog] = useConfirm();
  const load = useCallback(
    (pageToken: string) => api<Page<OutboundEntry>>('GET', `/v1/queue${qs({ pageToken })}`),
    [],
  );
  const act = async (e: OutboundEntry, what: 'retry' | 'cancel') => {
    const choice = await ask({
      title: what === 'retry' ? `Retry ${e.id} now?` : `Cancel ${e.id}?`,
      body:
        what === 'retry'
          ? 'The next delivery attempt starts within one queue tick.'
          : `The message is not delivered to ${e.recipients.join(', ')}. The sender can be told (a failure notice).`,
      choices:
        what === 'retry'
          ? [{ label: 'Retry now', value: 'retry' }]
          : [
              { label: 'Cancel and notify the sender', value: 'dsn', danger: true },
              { label: 'Cancel silently', value: 'silent', danger: true },
            ],
      dismissLabel: what === 'retry' ? 'Not now' : 'Keep it queued',
    });
    if (choice === undefined) return;
    try {
      const id = encodeURIComponent(e.id);
      if (what === 'retry') await api('POST', `/v1/queue/${id}/retry`, {});
      else await api('DELETE', `/v1/queue/${id}?dsn=${String(choice === 'dsn')}`);
      setNotice(
        what === 'retry'
          ? `${e.id}: a new delivery attempt starts within one queue tick.`
          : `${e.id} cancelled${choice === 'dsn' ? '; the sender is told' : ''}.`,
      );
      setError(undefined);
      setReload((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <h1>Outbound queue</h1>
      <p>Messages waiting for another delivery attempt to remote servers, oldest first.</p>
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      <PagedTable
        label="Deferred messages"
        load={load}
        reloadKey={reload}
        rowKey={(e) => e.id}
        columns={[
          { title: 'Queued', cell: (e) => when(e.queuedAt) },
          { title: 'Sender', cell: (e) => e.sender || '<>' },
          { title: 'Recipients', cell: (e) => e.recipients.join(', ') },
          { title: 'Attempts', cell: (e) => e.attempts },
          { title: 'Next attempt', cell: (e) => when(e.nextAttemptAt) },
          { title: 'Last error', cell: (e) => e.lastError },
          {
            title: 'Actions',
            cell: (e) =>
              me.permissions.includes('queue.write') ? (
                <div className="row-actions">
                  <button type="button" onClick={() => void act(e, 'retry')}>
                    Retry
                  </button>
                  <button type="button" className="danger" onClick={() => void act(e, 'cancel')}>
                    Cancel
                  </button>
                </div>
              ) : null,
          },
        ]}
      />
      {dialog}
    </>
  );
}
