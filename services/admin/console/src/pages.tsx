/** One component per area of the console (issue 7 §4, §5). */
import { useCallback, useEffect, useState } from 'react';
import { api, qs, type Me, type Page } from './api.js';
import {
  ErrorBanner,
  Form,
  Notice,
  PagedTable,
  isAddress,
  isCount,
  isDomain,
  isPassword,
  useConfirm,
  when,
} from './ui.js';

interface Domain {
  id: string;
  name: string;
  status: string;
  defaultQuotaBytes: number;
  createdAt: string;
}
interface User {
  id: string;
  address: string;
  domain: string;
  displayName: string;
  quotaBytes: number;
  status: string;
  createdAt: string;
  /** Mail stored against the quota; null when storage no longer knows the user. */
  usage: { usedBytes: number; quotaBytes: number; messages: number } | null;
  /** Submission limits; 0 = the service default. */
  limits: { messagesPerHour: number; recipientsPerMessage: number };
}

const isLimit = (v: string): string | undefined =>
  /^\d{1,7}$/.test(v) ? undefined : 'Enter a whole number (0 = the service default).';

/** "120 messages/hour, 25 recipients/message", with "default" where the service default applies. */
function limitsText(u: User): string {
  const { messagesPerHour: perHour, recipientsPerMessage: perMessage } = u.limits;
  return `${perHour === 0 ? 'default' : perHour} messages/hour, ${perMessage === 0 ? 'default' : perMessage} recipients/message`;
}

/** The limits typed into a form → the API's `limits` object (empty fields are left out). */
function limitsBody(v: Record<string, string>): { limits?: Record<string, number> } {
  const limits: Record<string, number> = {};
  if (v.messagesPerHour) limits.messagesPerHour = Number(v.messagesPerHour);
  if (v.recipientsPerMessage) limits.recipientsPerMessage = Number(v.recipientsPerMessage);
  return Object.keys(limits).length === 0 ? {} : { limits };
}

/** 1536 → "1.5 KiB" (binary units, as quotas are set). */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown =
    unit === 0 || value >= 100 || Number.isInteger(value) ? Math.round(value).toString() : value.toFixed(1);
  return `${shown} ${units[unit] ?? 'bytes'}`;
}

/** "12.3 KiB of 1.0 MiB (1%), 3 messages" — the users screen's usage cell. */
function usageText(u: User): string {
  if (u.usage === null) return '—';
  const { usedBytes, quotaBytes, messages } = u.usage;
  const of =
    quotaBytes === 0
      ? ' (no limit)'
      : ` of ${formatBytes(quotaBytes)} (${Math.min(100, Math.round((usedBytes / quotaBytes) * 100))}%)`;
  return `${formatBytes(usedBytes)}${of}, ${messages} ${messages === 1 ? 'message' : 'messages'}`;
}
interface Alias {
  id: string;
  address: string;
  kind: string;
  targets: string[];
}
interface DnsRecord {
  type: string;
  name: string;
  value: string;
  purpose: string;
  status?: string;
  found?: string[];
}
interface DkimKey {
  id: string;
  selector: string;
  algorithm: string;
  status: string;
  dnsName: string;
  dnsTxtValue: string;
}
interface TraceEvent {
  id: string;
  time: string;
  service: string;
  kind: string;
  queueId: string;
  messageId: string;
  sender: string;
  recipient: string;
  detail: string;
}
interface QueueEntry {
  seq: number;
  subject: string;
  time: string;
  sender: string;
  recipients: string[];
  messageId: string;
  error?: string;
  attempts?: number;
  originalSubject?: string;
}
/** A deferred (message, recipient domain) pair in mta-delivery's queue. */
interface OutboundEntry {
  id: string;
  domain: string;
  sender: string;
  recipients: string[];
  messageId: string;
  queuedAt: string;
  attempts: number;
  nextAttemptAt: string;
  lastError: string;
}
interface AuditEntry {
  id: string;
  time: string;
  actor: string;
  actorRole: string;
  action: string;
  target: string;
  sourceIp: string;
  result: string;
  detail: string;
}
interface Admin {
  id: string;
  email: string;
  role: string;
  domains: string[];
  status: string;
  totpEnabled: boolean;
  lastLoginAt: string | null;
}
interface Token {
  id: string;
  name: string;
  scopes: string[];
  domains: string[];
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

export function DomainsPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState<string | undefined>();
  const [ask, dialog] = useConfirm();
  const [error, setError] = useState<unknown>();
  const load = useCallback(
    (pageToken: string, q: string) =>
      api<Page<Domain>>('GET', `/v1/domains${qs({ pageToken, q, pageSize: 20 })}`),
    [],
  );
  const can = (p: string) => me.permissions.includes(p);
  const setStatus = async (d: Domain) => {
    const next = d.status === 'active' ? 'suspended' : 'active';
    const choice = await ask({
      title: `${next === 'suspended' ? 'Suspend' : 'Activate'} ${d.name}?`,
      body:
        next === 'suspended'
          ? 'A suspended domain receives no mail and its users cannot sign in. Data is kept.'
          : 'The domain will receive mail again.',
      choices: [
        {
          label: next === 'suspended' ? 'Suspend domain' : 'Activate domain',
          value: 'yes',
          danger: next === 'suspended',
        },
      ],
    });
    if (choice !== 'yes') return;
    try {
      await api('PATCH', `/v1/domains/${encodeURIComponent(d.name)}`, { status: next });
      setReload(reload + 1);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <h2>Domains</h2>
      <ErrorBanner error={error} />
      {can('domains.create') && (
        <Form
          title="Add a domain"
          submitLabel="Add domain"
          fields={[
            {
              name: 'name',
              label: 'Domain name',
              required: true,
              validate: isDomain,
              hint: 'For example example.com',
            },
            {
              name: 'defaultQuotaBytes',
              label: 'Default quota for new users (bytes)',
              initial: '0',
              validate: isCount,
              hint: '0 means unlimited',
            },
          ]}
          onSubmit={async (v) => {
            await api('POST', '/v1/domains', {
              name: v.name?.trim(),
              defaultQuotaBytes: Number(v.defaultQuotaBytes || 0),
            });
            setReload(reload + 1);
          }}
        />
      )}
      <PagedTable
        label="Domains"
        searchLabel="Find domains starting with"
        load={load}
        reloadKey={reload}
        rowKey={(d) => d.id}
        columns={[
          { title: 'Name', cell: (d) => d.name },
          { title: 'Status', cell: (d) => <span className={`badge ${d.status}`}>{d.status}</span> },
          { title: 'Created', cell: (d) => when(d.createdAt) },
          {
            title: 'Actions',
            cell: (d) => (
              <div className="row-actions">
                {(can('dns.read') || can('dkim.read')) && (
                  <button
                    type="button"
                    onClick={() => setOpen(open === d.name ? undefined : d.name)}
                    aria-expanded={open === d.name}
                  >
                    DNS and DKIM
                  </button>
                )}
                {can('domains.update') && (
                  <button
                    type="button"
                    className={d.status === 'active' ? 'danger' : ''}
                    onClick={() => void setStatus(d)}
                  >
                    {d.status === 'active' ? 'Suspend' : 'Activate'}
                  </button>
                )}
              </div>
            ),
          },
        ]}
      />
      {open !== undefined && <DomainDetail domain={open} me={me} />}
      {dialog}
    </>
  );
}

function DomainDetail({ domain, me }: { readonly domain: string; readonly me: Me }) {
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

export function UsersPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const [domain, setDomain] = useState('');
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const load = useCallback(
    (pageToken: string, q: string) =>
      api<Page<User>>('GET', `/v1/users${qs({ pageToken, q, domain, pageSize: 20 })}`),
    [domain],
  );
  const can = (p: string) => me.permissions.includes(p);
  const act = async (fn: () => Promise<unknown>, done: string) => {
    try {
      await fn();
      setNotice(done);
      setError(undefined);
      setReload((n) => n + 1);
    } catch (e) {
      setError(e);
    }
  };
  const remove = async (u: User) => {
    const choice = await ask({
      title: `Delete ${u.address}?`,
      body: 'The account and its addresses are removed at once. Choose what happens to the mail.',
      choices: [
        { label: 'Delete, keep mail for the retention period', value: 'keep', danger: true },
        { label: 'Delete and purge all mail now', value: 'purge', danger: true },
      ],
    });
    if (choice === undefined) return;
    await act(
      () => api('DELETE', `/v1/users/${u.id}${qs({ purge: choice === 'purge' ? 'true' : 'false' })}`),
      `${u.address} deleted.`,
    );
  };
  const [resetFor, setResetFor] = useState<User | undefined>();
  const [limitsFor, setLimitsFor] = useState<User | undefined>();
  return (
    <>
      <h2>Users</h2>
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      {can('users.create') && (
        <Form
          title="Create a user"
          submitLabel="Create user"
          fields={[
            { name: 'address', label: 'Address', type: 'email', required: true, validate: isAddress },
            { name: 'displayName', label: 'Display name' },
            {
              name: 'password',
              label: 'Initial password',
              type: 'password',
              required: true,
              validate: isPassword,
              hint: 'At least 10 characters; not containing the address.',
            },
            { name: 'quotaBytes', label: 'Quota (bytes, empty = domain default)', validate: isCount },
            {
              name: 'messagesPerHour',
              label: 'Messages per hour (empty = service default)',
              validate: isLimit,
            },
            {
              name: 'recipientsPerMessage',
              label: 'Recipients per message (empty = service default)',
              validate: isLimit,
            },
          ]}
          onSubmit={async (v) => {
            await api('POST', '/v1/users', {
              address: v.address?.trim(),
              password: v.password,
              displayName: v.displayName ?? '',
              ...(v.quotaBytes ? { quotaBytes: Number(v.quotaBytes) } : {}),
              ...limitsBody(v),
            });
            setNotice(`${v.address ?? ''} created.`);
            setReload((n) => n + 1);
          }}
        />
      )}
      {resetFor !== undefined && (
        <Form
          key={resetFor.id}
          title={`New password for ${resetFor.address}`}
          submitLabel="Set password"
          fields={[
            {
              name: 'password',
              label: 'New password',
              type: 'password',
              required: true,
              validate: isPassword,
            },
            { name: 'revoke', label: 'Also revoke app passwords', type: 'select', options: ['no', 'yes'] },
          ]}
          onSubmit={async (v) => {
            await api('POST', `/v1/users/${resetFor.id}/password`, {
              password: v.password,
              revokeAppPasswords: v.revoke === 'yes',
            });
            setNotice(`Password of ${resetFor.address} changed.`);
            setResetFor(undefined);
          }}
        />
      )}
      {limitsFor !== undefined && (
        <Form
          key={`limits-${limitsFor.id}`}
          title={`Sending limits of ${limitsFor.address}`}
          submitLabel="Save limits"
          fields={[
            {
              name: 'messagesPerHour',
              label: 'Messages per hour',
              required: true,
              validate: isLimit,
              initial: String(limitsFor.limits.messagesPerHour),
              hint: '0 = the service default.',
            },
            {
              name: 'recipientsPerMessage',
              label: 'Recipients per message',
              required: true,
              validate: isLimit,
              initial: String(limitsFor.limits.recipientsPerMessage),
              hint: '0 = the service default. Further recipients are refused with 452 4.5.3.',
            },
          ]}
          onSubmit={async (v) => {
            await api('PATCH', `/v1/users/${limitsFor.id}`, {
              limits: {
                messagesPerHour: Number(v.messagesPerHour),
                recipientsPerMessage: Number(v.recipientsPerMessage),
              },
            });
            setNotice(`Sending limits of ${limitsFor.address} changed.`);
            setLimitsFor(undefined);
            setReload((n) => n + 1);
          }}
        />
      )}
      <div className="field inline">
        <label htmlFor="users-domain">Domain</label>
        <input
          id="users-domain"
          placeholder="all domains you manage"
          value={domain}
          onChange={(e) => setDomain(e.target.value.trim())}
        />
      </div>
      <PagedTable
        label="Users"
        searchLabel="Find addresses starting with"
        load={load}
        reloadKey={reload}
        rowKey={(u) => u.id}
        columns={[
          { title: 'Address', cell: (u) => u.address },
          { title: 'Name', cell: (u) => u.displayName || '—' },
          {
            title: 'Quota',
            cell: (u) => (
              <span className="nowrap">{u.quotaBytes === 0 ? 'unlimited' : formatBytes(u.quotaBytes)}</span>
            ),
          },
          { title: 'Storage used', cell: (u) => usageText(u) },
          { title: 'Sending limits', cell: (u) => limitsText(u) },
          { title: 'Status', cell: (u) => <span className={`badge ${u.status}`}>{u.status}</span> },
          {
            title: 'Actions',
            cell: (u) => (
              <div className="row-actions">
                {can('users.password') && (
                  <button type="button" onClick={() => setResetFor(u)} aria-expanded={resetFor?.id === u.id}>
                    Reset password
                  </button>
                )}
                {can('users.update') && (
                  <button
                    type="button"
                    onClick={() => setLimitsFor(u)}
                    aria-expanded={limitsFor?.id === u.id}
                  >
                    Limits
                  </button>
                )}
                {can('users.update') && (
                  <button
                    type="button"
                    onClick={() =>
                      void act(
                        () =>
                          api('PATCH', `/v1/users/${u.id}`, {
                            status: u.status === 'active' ? 'disabled' : 'active',
                          }),
                        `${u.address} updated.`,
                      )
                    }
                  >
                    {u.status === 'active' ? 'Suspend' : 'Enable'}
                  </button>
                )}
                {can('users.delete') && (
                  <button type="button" className="danger" onClick={() => void remove(u)}>
                    Delete
                  </button>
                )}
              </div>
            ),
          },
        ]}
      />
      {dialog}
    </>
  );
}

export function AliasesPage({ me }: { readonly me: Me }) {
  const [domain, setDomain] = useState(me.domains[0] ?? '');
  const [reload, setReload] = useState(0);
  const load = useCallback(
    (pageToken: string) =>
      me.role === 'user' || domain !== ''
        ? api<Page<Alias>>('GET', `/v1/aliases${qs({ pageToken, domain })}`)
        : Promise.resolve({ items: [], nextPageToken: '' }),
    [domain, me.role],
  );
  return (
    <>
      <h2>Aliases and forwards</h2>
      {me.role !== 'user' && (
        <div className="field inline">
          <label htmlFor="aliases-domain">Domain</label>
          <input id="aliases-domain" value={domain} onChange={(e) => setDomain(e.target.value.trim())} />
        </div>
      )}
      {me.permissions.includes('aliases.write') && (
        <Form
          title="Add a forward"
          submitLabel="Add forward"
          fields={[
            { name: 'address', label: 'Address', required: true, validate: isAddress },
            { name: 'forwardTo', label: 'Forward to', required: true, validate: isAddress },
          ]}
          onSubmit={async (v) => {
            await api('POST', '/v1/aliases', {
              address: v.address?.trim(),
              forwardTo: [v.forwardTo?.trim()],
            });
            setReload((n) => n + 1);
          }}
        />
      )}
      <PagedTable
        label="Addresses"
        load={load}
        reloadKey={reload}
        rowKey={(a) => a.id}
        columns={[
          { title: 'Address', cell: (a) => a.address },
          { title: 'Kind', cell: (a) => a.kind },
          { title: 'Delivers to', cell: (a) => a.targets.join(', ') },
        ]}
      />
    </>
  );
}

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
      <h2>Message trace</h2>
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
        ]}
      />
    </>
  );
}

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
      <h2>Outbound queue</h2>
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
      <h2>Dead-letter queue</h2>
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

export function AuditPage() {
  const [filters, setFilters] = useState<Record<string, string>>({});
  const load = useCallback(
    (pageToken: string) =>
      api<Page<AuditEntry>>('GET', `/v1/audit${qs({ ...filters, pageToken, pageSize: 25 })}`),
    [filters],
  );
  return (
    <>
      <h2>Audit log</h2>
      <Form
        title="Filter"
        submitLabel="Apply filter"
        keepValues
        fields={[
          { name: 'actor', label: 'Actor (e.g. admin:ops@example.com)' },
          { name: 'action', label: 'Action or prefix (e.g. users.)' },
          { name: 'result', label: 'Result', type: 'select', options: ['', 'success', 'denied', 'failed'] },
        ]}
        onSubmit={(v) => {
          setFilters(Object.fromEntries(Object.entries(v).filter(([, value]) => value !== '')));
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

export function AdminsPage({ me }: { readonly me: Me }) {
  const [reload, setReload] = useState(0);
  const load = useCallback(
    (pageToken: string) => api<Page<Admin>>('GET', `/v1/admins${qs({ pageToken })}`),
    [],
  );
  return (
    <>
      <h2>Administrators</h2>
      {me.permissions.includes('admins.write') && (
        <Form
          title="Add an administrator"
          submitLabel="Add administrator"
          fields={[
            { name: 'email', label: 'Email', type: 'email', required: true, validate: isAddress },
            {
              name: 'password',
              label: 'Initial password',
              type: 'password',
              required: true,
              validate: isPassword,
            },
            {
              name: 'role',
              label: 'Role',
              type: 'select',
              options:
                me.role === 'owner'
                  ? ['domain-admin', 'helpdesk', 'auditor', 'owner']
                  : ['helpdesk', 'domain-admin'],
            },
            {
              name: 'domains',
              label: 'Domains (comma-separated; domain-admin and helpdesk)',
              initial: me.domains.join(', '),
            },
          ]}
          onSubmit={async (v) => {
            const domains = (v.domains ?? '')
              .split(',')
              .map((d) => d.trim())
              .filter((d) => d !== '');
            await api('POST', '/v1/admins', {
              email: v.email?.trim(),
              password: v.password,
              role: v.role,
              domains: v.role === 'owner' || v.role === 'auditor' ? [] : domains,
            });
            setReload((n) => n + 1);
          }}
        />
      )}
      <PagedTable
        label="Administrators"
        load={load}
        reloadKey={reload}
        rowKey={(a) => a.id}
        columns={[
          { title: 'Email', cell: (a) => a.email },
          { title: 'Role', cell: (a) => a.role },
          { title: 'Domains', cell: (a) => a.domains.join(', ') || 'all' },
          { title: 'Status', cell: (a) => <span className={`badge ${a.status}`}>{a.status}</span> },
          { title: 'TOTP', cell: (a) => (a.totpEnabled ? 'on' : 'off') },
          { title: 'Last sign-in', cell: (a) => when(a.lastLoginAt) },
        ]}
      />
    </>
  );
}

export function TokensPage() {
  const [reload, setReload] = useState(0);
  const [secret, setSecret] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const load = useCallback(
    (pageToken: string) => api<Page<Token>>('GET', `/v1/tokens${qs({ pageToken })}`),
    [],
  );
  const revoke = async (t: Token) => {
    if (
      (await ask({
        title: `Revoke token ${t.name}?`,
        body: 'Scripts using it stop working at once.',
        choices: [{ label: 'Revoke', value: 'yes', danger: true }],
      })) !== 'yes'
    )
      return;
    try {
      await api('DELETE', `/v1/tokens/${t.id}`);
      setReload((n) => n + 1);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <h2>API tokens</h2>
      <ErrorBanner error={error} />
      {secret !== '' && (
        <Notice>
          New token (shown only now; copy it): <code className="mono">{secret}</code>
        </Notice>
      )}
      <Form
        title="Create a token"
        submitLabel="Create token"
        fields={[
          { name: 'name', label: 'Name', required: true },
          {
            name: 'scopes',
            label: 'Scopes (comma-separated)',
            initial: 'domains:read, users:read',
            hint: '* or area:read / area:write, e.g. users:write',
          },
        ]}
        onSubmit={async (v) => {
          const created = await api<{ secret: string }>('POST', '/v1/tokens', {
            name: v.name,
            scopes: (v.scopes ?? '')
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== ''),
          });
          setSecret(created.secret);
          setReload((n) => n + 1);
        }}
      />
      <PagedTable
        label="Tokens"
        load={load}
        reloadKey={reload}
        rowKey={(t) => t.id}
        columns={[
          { title: 'Name', cell: (t) => t.name },
          { title: 'Scopes', cell: (t) => t.scopes.join(', ') },
          { title: 'Created', cell: (t) => when(t.createdAt) },
          { title: 'Last used', cell: (t) => when(t.lastUsedAt) },
          {
            title: 'Actions',
            cell: (t) => (
              <button type="button" className="danger" onClick={() => void revoke(t)}>
                Revoke
              </button>
            ),
          },
        ]}
      />
      {dialog}
    </>
  );
}

interface HealthReport {
  services: { service: string; ready: boolean; status: number; url: string }[];
  streams: {
    name: string;
    messages: number;
    bytes: number;
    consumers: { name: string; pending: number; ackPending: number }[];
  }[];
  storage: {
    database: string;
    documents: number;
    dataBytes: number;
    storageBytes: number;
    indexBytes: number;
    totalBytes: number;
    collections: {
      name: string;
      documents: number;
      dataBytes: number;
      storageBytes: number;
      indexBytes: number;
    }[];
  } | null;
}

interface KekStatus {
  currentKekId: string;
  remaining: { userKeys: number; dkimKeys: number; totpSeeds: number };
  running: boolean;
  lastRewrap: {
    kekId: string;
    userKeys: number;
    dkimKeys: number;
    totpSeeds: number;
    startedAt: string | null;
    finishedAt: string | null;
    error: string;
  } | null;
}

/**
 * The key-encryption key (docs/operations.md §8): what is still wrapped by a previous KEK, and
 * the re-wrap that lets the previous KEK be removed.
 */
function KekSection({ me }: { readonly me: Me }) {
  const [status, setStatus] = useState<KekStatus | undefined>();
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const refresh = useCallback(() => {
    api<KekStatus>('GET', '/v1/keys/kek').then(setStatus, setError);
  }, []);
  useEffect(refresh, [refresh]);
  useEffect(() => {
    // While a re-wrap runs, follow it.
    if (status?.running !== true) return undefined;
    const timer = setTimeout(refresh, 1_000);
    return () => clearTimeout(timer);
  }, [status, refresh]);
  const rewrap = async () => {
    const choice = await ask({
      title: 'Re-wrap keys under the current KEK?',
      body: 'User data keys, DKIM keys and TOTP seeds still wrapped by a previous key-encryption key are re-wrapped with the current one, in the background. Mail keeps flowing. Remove the previous KEK only once nothing remains under it.',
      choices: [{ label: 'Re-wrap now', value: 'yes' }],
    });
    if (choice !== 'yes') return;
    try {
      setStatus(await api<KekStatus>('POST', '/v1/keys/kek/rewrap', {}));
      setError(undefined);
      setTimeout(refresh, 500);
    } catch (e) {
      setError(e);
    }
  };
  const remaining =
    status === undefined
      ? 0
      : status.remaining.userKeys + status.remaining.dkimKeys + status.remaining.totpSeeds;
  const last = status?.lastRewrap ?? null;
  return (
    <section aria-labelledby="kek-title">
      <h3 id="kek-title">Key-encryption key</h3>
      <ErrorBanner error={error} />
      {status !== undefined && (
        <>
          <table>
            <caption>Keys wrapped by a previous KEK</caption>
            <thead>
              <tr>
                <th scope="col">Current KEK</th>
                <th scope="col">User data keys</th>
                <th scope="col">DKIM keys</th>
                <th scope="col">TOTP seeds</th>
                <th scope="col">Last re-wrap</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <td>{status.currentKekId}</td>
                <td>{status.remaining.userKeys}</td>
                <td>{status.remaining.dkimKeys}</td>
                <td>{status.remaining.totpSeeds}</td>
                <td>
                  {status.running
                    ? 'running…'
                    : last === null
                      ? 'never'
                      : last.error !== ''
                        ? `stopped: ${last.error}`
                        : last.finishedAt !== null
                          ? `finished ${when(last.finishedAt)} (${last.userKeys} user keys, ${last.dkimKeys} DKIM keys, ${last.totpSeeds} TOTP seeds)`
                          : `started ${when(last.startedAt)}`}
                </td>
              </tr>
            </tbody>
          </table>
          <p role="status">
            {remaining === 0
              ? 'Nothing is wrapped by a previous KEK: it can be removed.'
              : `${remaining} keys still need the previous KEK: re-wrap them before removing it.`}
          </p>
          {me.permissions.includes('keys.write') && (
            <button type="button" onClick={() => void rewrap()} disabled={status.running}>
              Re-wrap keys under the current KEK
            </button>
          )}
        </>
      )}
      {dialog}
    </section>
  );
}

export function HealthPage({ me }: { readonly me: Me }) {
  const [report, setReport] = useState<HealthReport | undefined>();
  const [error, setError] = useState<unknown>();
  const refresh = useCallback(() => {
    api<HealthReport>('GET', '/v1/health').then(setReport, setError);
  }, []);
  useEffect(refresh, [refresh]);
  return (
    <>
      <h2>System health</h2>
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
                Storage size — database {report.storage.database}: {formatBytes(report.storage.totalBytes)} on
                disk, {report.storage.documents} documents
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
