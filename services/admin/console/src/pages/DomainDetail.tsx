/**
 * The DNS records a domain needs (copy one by one, or export as a zone file), their live check
 * (what was found, what is wrong, when it was checked), and its DKIM keys (generate, activate,
 * retire).
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, type Me, type Page } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { splitTxt, zoneFile, zoneValue } from '../dns-zone.js';
import { when } from '../format.js';
import { type DkimKey, type DnsRecord } from '../types.js';

const recordKey = (r: DnsRecord) => `${r.type} ${r.name} ${r.value}`;

function CopyButton({ text, what }: { readonly text: string; readonly what: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  return (
    <button
      type="button"
      className="secondary small"
      aria-label={`Copy ${what}`}
      onClick={() =>
        void navigator.clipboard.writeText(text).then(
          () => setState('copied'),
          () => setState('failed'),
        )
      }
    >
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Select and copy' : 'Copy'}
    </button>
  );
}

function LiveStatus({ record }: { readonly record: DnsRecord }) {
  if (record.status === undefined) return <>not checked</>;
  return (
    <>
      <span className={`badge ${record.status}`}>{record.status}</span>
      {record.problem !== undefined && record.problem !== '' && <div className="hint">{record.problem}</div>}
      {record.found !== undefined && record.found.length > 0 && record.status !== 'ok' && (
        <div className="hint">
          Found: <span className="mono wrap">{record.found.join(' | ')}</span>
        </div>
      )}
    </>
  );
}

export function DomainDetail({ domain, me }: { readonly domain: string; readonly me: Me }) {
  const [records, setRecords] = useState<DnsRecord[] | undefined>();
  const [checkedAt, setCheckedAt] = useState<string | undefined>();
  const [keys, setKeys] = useState<DkimKey[] | undefined>();
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState('');
  const [checking, setChecking] = useState(false);
  const [ask, dialog] = useConfirm();
  const base = `/v1/domains/${encodeURIComponent(domain)}`;
  const can = (p: string) => me.permissions.includes(p);
  /** Loads the records to publish; the results of the last live check stay with unchanged records. */
  const loadAll = useCallback(async () => {
    try {
      if (me.permissions.includes('dns.read')) {
        const fresh = (await api<{ records: DnsRecord[] }>('GET', `${base}/dns`)).records;
        setRecords((previous) => {
          const checked = new Map((previous ?? []).map((r) => [recordKey(r), r]));
          return fresh.map((r) => checked.get(recordKey(r)) ?? r);
        });
      }
      if (me.permissions.includes('dkim.read'))
        setKeys((await api<Page<DkimKey>>('GET', `${base}/dkim`)).items);
    } catch (e) {
      setError(e);
    }
  }, [base, me]);
  useEffect(() => {
    void loadAll();
  }, [loadAll]);
  const check = async () => {
    setChecking(true);
    try {
      const answer = await api<{ records: DnsRecord[]; checkedAt: string }>('GET', `${base}/dns?check=true`);
      setRecords(answer.records);
      setCheckedAt(answer.checkedAt);
      setError(undefined);
    } catch (e) {
      setError(e);
    } finally {
      setChecking(false);
    }
  };
  const keyAction = async (k: DkimKey, what: 'activate' | 'retire') => {
    const choice = await ask({
      title: what === 'retire' ? `Retire DKIM key ${k.selector}?` : `Activate DKIM key ${k.selector}?`,
      body:
        what === 'retire'
          ? 'Mail is no longer signed with it. Keep its DNS record for a few days, until mail signed with it has been delivered.'
          : 'It signs outgoing mail from now on, replacing the active key of the same algorithm. Publish its DNS record first.',
      choices: [
        { label: what === 'retire' ? 'Retire key' : 'Activate key', value: 'yes', danger: what === 'retire' },
      ],
    });
    if (choice !== 'yes') return;
    try {
      await api('POST', `${base}/dkim/${encodeURIComponent(k.id)}/${what}`, {});
      setNotice(`DKIM key ${k.selector} ${what === 'retire' ? 'retired' : 'activated'}.`);
      setError(undefined);
      await loadAll();
    } catch (e) {
      setNotice('');
      setError(e);
    }
  };
  const zone = useMemo(() => (records === undefined ? '' : zoneFile(domain, records)), [domain, records]);
  const download = useMemo(
    () => (zone === '' ? '' : URL.createObjectURL(new Blob([zone], { type: 'text/dns' }))),
    [zone],
  );
  useEffect(
    () => () => {
      if (download !== '') URL.revokeObjectURL(download);
    },
    [download],
  );
  return (
    <section className="card" aria-label={`DNS and DKIM of ${domain}`}>
      <h2>DNS records for {domain}</h2>
      {records !== undefined && (
        <>
          <p>Publish these records at your DNS provider, then check them.</p>
          <table className="cards">
            <caption>Records to publish</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">Value</th>
                <th scope="col">Purpose</th>
                <th scope="col">Live</th>
              </tr>
            </thead>
            <tbody>
              {records.map((r) => {
                const parts = r.type === 'TXT' ? splitTxt(r.value) : [];
                return (
                  <tr key={recordKey(r)}>
                    <td className="mono identity" data-label="Name">
                      {r.name} <CopyButton text={r.name} what={`name ${r.name}`} />
                    </td>
                    <td data-label="Type">{r.type}</td>
                    <td className="mono wrap" data-label="Value">
                      {r.value} <CopyButton text={r.value} what={`${r.type} value of ${r.name}`} />
                      {parts.length > 1 && (
                        <div className="hint">
                          Longer than 255 bytes: enter it as {parts.length} strings (the zone file below has
                          them) <CopyButton text={zoneValue(r)} what={`${r.name} as 255-byte strings`} />
                        </div>
                      )}
                    </td>
                    <td data-label="Purpose">{r.purpose}</td>
                    <td data-label="Live">
                      <LiveStatus record={r} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <div className="toolbar">
            <button type="button" onClick={() => void check()} disabled={checking}>
              {checking ? 'Checking…' : 'Check DNS now'}
            </button>
            <span className="hint" role="status">
              {checkedAt === undefined ? 'Not checked yet.' : `Checked ${when(checkedAt)}.`}
            </span>
          </div>
          <details className="zone">
            <summary>Zone file</summary>
            <label htmlFor={`zone-${domain}`}>
              Zone file for {domain} (TXT values split into 255-byte strings)
            </label>
            <textarea
              id={`zone-${domain}`}
              readOnly
              rows={records.length + 2}
              value={zone}
              className="mono"
            />
            <div className="row-actions">
              <CopyButton text={zone} what="the zone file" />
              <a href={download} download={`${domain}.zone`}>
                Download {domain}.zone
              </a>
            </div>
          </details>
        </>
      )}
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      {keys !== undefined && (
        <>
          <h2>DKIM keys</h2>
          <table className="cards">
            <caption>DKIM keys of {domain}</caption>
            <thead>
              <tr>
                <th scope="col">Selector</th>
                <th scope="col">Algorithm</th>
                <th scope="col">Status</th>
                <th scope="col">TXT name</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id}>
                  <td className="identity" data-label="Selector">
                    {k.selector}
                  </td>
                  <td data-label="Algorithm">{k.algorithm}</td>
                  <td data-label="Status">
                    <span className={`badge ${k.status}`}>{k.status}</span>
                  </td>
                  <td className="mono" data-label="TXT name">
                    {k.dnsName}
                  </td>
                  <td className="actions-cell" data-label="Actions">
                    {can('dkim.write') && (
                      <div className="row-actions">
                        {k.status === 'pending' && (
                          <button type="button" onClick={() => void keyAction(k, 'activate')}>
                            Activate
                          </button>
                        )}
                        {k.status !== 'retired' && (
                          <button
                            type="button"
                            className="danger"
                            onClick={() => void keyAction(k, 'retire')}
                          >
                            Retire
                          </button>
                        )}
                      </div>
                    )}
                  </td>
                </tr>
              ))}
              {keys.length === 0 && (
                <tr>
                  <td colSpan={5} className="empty">
                    No DKIM key yet: outgoing mail is not signed.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          {can('dkim.write') && (
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
                await api('POST', `${base}/dkim`, {
                  selector: v.selector,
                  algorithm: v.algorithm,
                  activate: true,
                });
                await loadAll();
                return `DKIM key ${v.selector ?? ''} generated and active: publish its TXT record.`;
              }}
            />
          )}
        </>
      )}
      {dialog}
    </section>
  );
}
