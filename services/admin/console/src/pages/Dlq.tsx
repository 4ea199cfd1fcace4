/** The dead-letter queue: re-drive or discard. */
import { useCallback, useState } from 'react';
import { api, qs, type Me, type Page } from '../api.js';
import { ErrorBanner } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';
import { type QueueEntry } from '../types.js';

export function DlqPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const load = useCallback(
    (pageToken: string) => api<Page<QueueEntry>>('GET', `/v1/dlq${qs({ pageToken })}`),
    [],
  );
  const act = async (e: QueueEntry, what: 'redrive' | 'discard') => {
    const choice = await ask({
      title: what === 'redrive' ? `Re-drive entry ${e.seq}?` : `Discard entry ${e.seq}?`,
      body:
        what === 'redrive'
          ? `It is published again to ${e.originalSubject ?? ''} and removed from the dead-letter queue.`
          : 'The job is deleted for good. The message will not be delivered.',
      choices: [
        { label: what === 'redrive' ? 'Re-drive' : 'Discard', value: 'yes', danger: what === 'discard' },
      ],
    });
    if (choice !== 'yes') return;
    try {
      await api(
        what === 'redrive' ? 'POST' : 'DELETE',
        what === 'redrive' ? `/v1/dlq/${e.seq}/redrive` : `/v1/dlq/${e.seq}`,
        what === 'redrive' ? {} : undefined,
      );
      setReload((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <h1>Dead-letter queue</h1>
      <ErrorBanner error={error} />
      <PagedTable
        label="Dead-letter entries"
        load={load}
        reloadKey={reload}
        rowKey={(e) => String(e.seq)}
        columns={[
          { title: 'Seq', cell: (e) => e.seq },
          { title: 'Failed', cell: (e) => when(e.time) },
          { title: 'From', cell: (e) => e.originalSubject },
          { title: 'Attempts', cell: (e) => e.attempts ?? 0 },
          { title: 'Last error', cell: (e) => e.error },
          {
            title: 'Actions',
            cell: (e) =>
              me.permissions.includes('dlq.write') ? (
                <div className="row-actions">
                  <button type="button" onClick={() => void act(e, 'redrive')}>
                    Re-drive
                  </button>
                  <button type="button" className="danger" onClick={() => void act(e, 'discard')}>
                    Discard
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
