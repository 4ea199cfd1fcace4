/** Message trace: every hop of a message by address, Message-ID or queue id. */
import { useCallback, useState } from 'react';
import { api, qs, type Page } from '../api.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';
import { type TraceEvent } from '../types.js';

export function TracePage() {
  const [query, setQuery] = useState<Record<string, string> | undefined>();
  const load = useCallback(
    (pageToken: string) =>
      query === undefined
        ? Promise.resolve({ items: [], nextPageToken: '' })
        : api<Page<TraceEvent>>('GET', `/v1/trace${qs({ ...query, pageToken })}`),
    [query],
  );
  return (
    <>
      <h1>Message trace</h1>
      <Form
        title="Find messages"
        submitLabel="Search"
        keepValues
        fields={[
          { name: 'by', label: 'Search by', type: 'select', options: ['address', 'messageId', 'queueId'] },
          {
            name: 'value',
            label: 'Value',
            required: true,
            hint: 'An address (sender or recipient), a Message-ID or a queue id',
          },
          { name: 'start', label: 'From', type: 'datetime-local' },
          { name: 'end', label: 'Until', type: 'datetime-local' },
        ]}
        onSubmit={(v) => {
          const iso = (s: string | undefined) => (s ? new Date(s).toISOString() : undefined);
          const next: Record<string, string> = { [v.by ?? 'address']: (v.value ?? '').trim() };
          const start = iso(v.start);
          const end = iso(v.end);
          if (start !== undefined) next.start = start;
          if (end !== undefined) next.end = end;
          setQuery(next);
          return Promise.resolve();
        }}
      />
      <PagedTable
        label="Trace events"
        load={load}
        rowKey={(e) => e.id}
        columns={[
          { title: 'Time', cell: (e) => when(e.time) },
          { title: 'Service', cell: (e) => e.service },
          { title: 'Event', cell: (e) => <span className={`badge ${e.kind}`}>{e.kind}</span> },
          { title: 'Sender', cell: (e) => e.sender || '<>' },
          { title: 'Recipient', cell: (e) => e.recipient || '—' },
          { title: 'Queue id', cell: (e) => <span className="mono">{e.queueId}</span> },
          { title: 'Detail', cell: (e) => e.detail },
          {
            title: 'Trace id',
            cell: (e) =>
              e.traceUrl !== '' ? (
                <a className="mono" href={e.traceUrl} target="_blank" rel="noreferrer noopener">
                  {e.traceId}
                </a>
              ) : (
                <span className="mono">{e.traceId || '—'}</span>
              ),
          },
        ]}
      />
    </>
  );
}
