/** The audit log, filtered by actor, action and result. */
import { useCallback, useState } from 'react';
import { api, qs, type Page } from '../api.js';
import { Form } from '../components/Form.js';
import { PagedTable } from '../components/PagedTable.js';
import { when } from '../format.js';
import { isAddress } from '../validate.js';
import { type AuditEntry } from '../types.js';

export function AuditPage() {
  const [filters, setFilters] = useState<Record<string, string>>({});
  const load = useCallback(
    (pageToken: string) =>
      api<Page<AuditEntry>>('GET', `/v1/audit${qs({ ...filters, pageToken, pageSize: 25 })}`),
    [filters],
  );
  return (
    <>
      <h1>Audit log</h1>
      <Form
        title="Filter"
        submitLabel="Apply filter"
        keepValues
        fields={[
          {
            name: 'actor',
            label: 'Who (address)',
            hint: 'The administrator’s or mail user’s address, e.g. ops@example.com',
            validate: (v) => (v.includes(':') ? undefined : isAddress(v)),
          },
          { name: 'actorKind', label: 'Who is', type: 'select', options: ['administrator', 'mail user'] },
          { name: 'action', label: 'Action or prefix (e.g. users.)' },
          { name: 'result', label: 'Result', type: 'select', options: ['', 'success', 'denied', 'failed'] },
        ]}
        onSubmit={(v) => {
          const { actorKind, actor = '', ...rest } = v;
          // The log names actors `admin:<email>` and `user:<address>`; people type the address.
          const who = actor.trim();
          const prefixed =
            who === '' || who.includes(':') ? who : `${actorKind === 'mail user' ? 'user' : 'admin'}:${who}`;
          setFilters(
            Object.fromEntries(
              Object.entries({ ...rest, actor: prefixed }).filter(([, value]) => value !== ''),
            ),
          );
          return Promise.resolve();
        }}
      />
      <PagedTable
        label="Audit entries"
        load={load}
        rowKey={(e) => e.id}
        columns={[
          { title: 'Time', cell: (e) => when(e.time) },
          { title: 'Actor', cell: (e) => `${e.actor}${e.actorRole ? ` (${e.actorRole})` : ''}` },
          { title: 'Action', cell: (e) => e.action },
          { title: 'Target', cell: (e) => e.target },
          { title: 'Source IP', cell: (e) => e.sourceIp },
          { title: 'Result', cell: (e) => <span className={`badge ${e.result}`}>{e.result}</span> },
          { title: 'Detail', cell: (e) => e.detail },
        ]}
      />
    </>
  );
}
