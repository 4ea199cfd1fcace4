/** Each service's readiness, stream sizes and consumer lag, the database's size. */
import { useCallback, useEffect, useState } from 'react';
import { api, type Me } from '../api.js';
import { ErrorBanner } from '../components/Banner.js';
import { formatBytes } from '../format.js';
import { KekSection } from './Kek.js';
import { type HealthReport } from '../types.js';

export function HealthPage({ me }: { readonly me: Me }) {
  const [report, setReport] = useState<HealthReport | undefined>();
  const [error, setError] = useState<unknown>();
  const refresh = useCallback(() => {
    api<HealthReport>('GET', '/v1/health').then(setReport, setError);
  }, []);
  useEffect(refresh, [refresh]);
  return (
    <>
      <h1>System health</h1>
      <ErrorBanner error={error} />
      <button type="button" onClick={refresh}>
        Refresh
      </button>
      {report !== undefined && (
        <>
          <table>
            <caption>Services</caption>
            <thead>
              <tr>
                <th scope="col">Service</th>
                <th scope="col">Ready</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {report.services.map((s) => (
                <tr key={s.service}>
                  <td>{s.service}</td>
                  <td>
                    <span className={`badge ${s.ready ? 'active' : 'suspended'}`}>
                      {s.ready ? 'ready' : 'not ready'}
                    </span>
                  </td>
                  <td>{s.status === 0 ? 'unreachable' : s.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <table>
            <caption>Streams and consumer lag</caption>
            <thead>
              <tr>
                <th scope="col">Stream</th>
                <th scope="col">Messages</th>
                <th scope="col">Bytes</th>
                <th scope="col">Consumers (pending / unacked)</th>
              </tr>
            </thead>
            <tbody>
              {report.streams.map((s) => (
                <tr key={s.name}>
                  <td>{s.name}</td>
                  <td>{s.messages}</td>
                  <td>{formatBytes(s.bytes)}</td>
                  <td>
                    {s.consumers.map((c) => `${c.name}: ${c.pending} / ${c.ackPending}`).join('; ') || '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {report.storage === null ? (
            <p role="status">Storage size unavailable: storage did not answer.</p>
          ) : (
            <table>
              <caption>
                Storage size — database {report.storage.database}: {formatBytes(report.storage.storageBytes)}{' '}
                on disk and {formatBytes(report.storage.indexBytes)} of indexes (
                {formatBytes(report.storage.totalBytes)} in all), {report.storage.documents} documents
              </caption>
              <thead>
                <tr>
                  <th scope="col">Collection</th>
                  <th scope="col">Documents</th>
                  <th scope="col">Data</th>
                  <th scope="col">On disk</th>
                  <th scope="col">Indexes</th>
                </tr>
              </thead>
              <tbody>
                {report.storage.collections.map((c) => (
                  <tr key={c.name}>
                    <td>{c.name}</td>
                    <td>{c.documents}</td>
                    <td>{formatBytes(c.dataBytes)}</td>
                    <td>{formatBytes(c.storageBytes)}</td>
                    <td>{formatBytes(c.indexBytes)}</td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr>
                  <th scope="row">Total</th>
                  <td>{report.storage.documents}</td>
                  <td>{formatBytes(report.storage.dataBytes)}</td>
                  <td>{formatBytes(report.storage.storageBytes)}</td>
                  <td>{formatBytes(report.storage.indexBytes)}</td>
                </tr>
              </tfoot>
            </table>
          )}
        </>
      )}
      {me.permissions.includes('keys.read') && <KekSection me={me} />}
    </>
  );
}
