/** Recent alerts (newest first): what went wrong, about what, and when; the postmaster was mailed. */
import { useCallback } from 'react';
import { api, type Page } from '../api.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';
import { type TraceEvent } from '../types.js';

export function AlertsPage() {
  const load = useCallback(() => api<Page<TraceEvent>>('GET', '/v1/alerts'), []);
  return (
    <>
      <h1>Alerts</h1>
      <p className="hint">
        The last 7 days. Each alert is also mailed to the postmaster (and to the admins of the domain it
        concerns), at most a few an hour per alert and subject.
      </p>
      <PagedTable
        label="Alerts"
        load={load}
        rowKey={(e) => e.id}
        columns={[
          { title: 'Raised', cell: (e) => when(e.time) },
          {
            title: 'Severity',
            cell: (e) => (
              <span className={`badge ${e.attributes.severity ?? ''}`}>{e.attributes.severity}</span>
            ),
          },
          { title: 'Alert', cell: (e) => e.attributes.alert },
          { title: 'About', cell: (e) => e.attributes.about ?? '—' },
          { title: 'Detail', cell: (e) => e.detail },
          { title: 'Service', cell: (e) => e.service },
        ]}
      />
    </>
  );
}
