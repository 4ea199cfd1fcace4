/** The DNS records a domain needs, their live check, and its DKIM keys. */
import { useCallback, useEffect, useState } from 'react';
import { api, type Me, type Page } from '../api.js';
import { ErrorBanner } from '../components/Banner.js';
import { Form } from '../components/Form.js';
import { type DkimKey, type DnsRecord } from '../types.js';

export function DomainDetail({ domain, me }: { readonly domain: string; readonly me: Me }) {
  const [records, setRecords] = useState<DnsRecord[] | undefined>();
  const [keys, setKeys] = useState<DkimKey[] | undefined>();
  const [error, setError] = useState<unknown>();
  const [checking, setChecking] = useState(false);
  const loadAll = useCallback(async () => {
    try {
      if (me.permissions.includes('dns.read'))
        setRecords(
          (await api<{ records: DnsRecord[] }>('GET', `/v1/domains/${encodeURIComponent(domain)}/dns`))
            .records,
        );
      if (me.permissions.includes('dkim.read'))
        setKeys((await api<Page<DkimKey>>('GET', `/v1/domains/${encodeURIComponent(domain)}/dkim`)).items);
    } catch (e) {
      setError(e);
    }
  }, [domain, me]);
  useEffect(() => {
    if (records === undefined && keys === undefined) void loadAll();
  }, [loadAll, records, keys]);
  const check = async () => {
    setChecking(true);
    try {
      setRecords(
        (
          await api<{ records: DnsRecord[] }>(
            'GET',
            `/v1/domains/${encodeURIComponent(domain)}/dns?check=true`,
          )
        ).records,
      );
    } catch (e) {
      setError(e);
    } finally {
      setChecking(false);
    }
  };
  return (
    <section className="card" aria-label={`DNS and DKIM of ${domain}`}>
      <h3>DNS records for {domain}</h3>
      <ErrorBanner error={error} />
      {records !== undefined && (
        <>
          <p>Publish these records at your DNS provider, then check them.</p>
          <table>
            <caption>Records to publish</caption>
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Name</th>
                <th scope="col">Value</th>
                <th scope="col">Purpose</th>
                <th scope="col">Live</th>
              </tr>
            </thead>
            <tbody>
              {records.map((r) => (
                <tr key={`${r.type}${r.name}${r.value}`}>
                  <td>{r.type}</td>
                  <td className="mono">{r.name}</td>
                  <td className="mono wrap">{r.value}</td>
                  <td>{r.purpose}</td>
                  <td>
                    {r.status === undefined ? '—' : <span className={`badge ${r.status}`}>{r.status}</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="button" onClick={() => void check()} disabled={checking}>
            {checking ? 'Checking…' : 'Check DNS now'}
          </button>
        </>
      )}
      {keys !== undefined && (
        <>
          <h3>DKIM keys</h3>
          <table>
            <caption>DKIM keys of {domain}</caption>
            <thead>
              <tr>
                <th scope="col">Selector</th>
                <th scope="col">Algorithm</th>
                <th scope="col">Status</th>
                <th scope="col">TXT name</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id}>
                  <td>{k.selector}</td>
                  <td>{k.algorithm}</td>
                  <td>
                    <span className={`badge ${k.status}`}>{k.status}</span>
                  </td>
                  <td className="mono">{k.dnsName}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {me.permissions.includes('dkim.write') && (
            <Form
              title="Generate a DKIM key"
              submitLabel="Generate and activate"
              fields={[
                {
                  name: 'selector',
                  label: 'Selector',
                  required: true,
                  validate: (v) =>
                    /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i.test(v) ? undefined : 'Letters, digits and - only.',
                  initial: `pm${new Date().getFullYear()}`,
                },
                {
                  name: 'algorithm',
                  label: 'Algorithm',
                  type: 'select',
                  options: ['ed25519', 'rsa2048'],
                  hint: 'Replaces the active key of this algorithm; an Ed25519 and an RSA key can sign side by side.',
                },
              ]}
              onSubmit={async (v) => {
                await api('POST', `/v1/domains/${encodeURIComponent(domain)}/dkim`, {
                  selector: v.selector,
                  algorithm: v.algorithm,
                  activate: true,
                });
                setRecords(undefined);
                setKeys(undefined);
              }}
            />
          )}
        </>
      )}
    </section>
  );
}
