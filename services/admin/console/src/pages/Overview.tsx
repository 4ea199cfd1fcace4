/** The landing page after sign-in: what runs, what waits, what failed, and what is left to set up. */
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { api, type Me } from '../api.js';
import { ErrorBanner } from '../components/Banner.js';
import { Loading } from '../components/Loading.js';
import { when } from '../format.js';
import { type TraceEvent } from '../types.js';

interface Overview {
  generatedAt: string;
  services: { service: string; ready: boolean; status: number; detail: string }[] | null;
  inbound: { messages: number; pending: number } | null;
  deferred: {
    count: number;
    more: boolean;
    error: string;
    recentFailures: {
      id: string;
      sender: string;
      recipients: string[];
      attempts: number;
      lastAttemptAt: string;
      lastError: string;
    }[];
  } | null;
  dlq: {
    size: number;
    error: string;
    recent: { seq: number; time: string; sender: string; recipients: string[]; error: string }[];
  } | null;
  /** Recent alerts and bounced/deferred deliveries from the message trace, in the caller's scope. */
  alerts: { recent: TraceEvent[]; error: string } | null;
  failedDeliveries: { recent: TraceEvent[]; error: string } | null;
}

interface Setup {
  checkedAt: string;
  more: boolean;
  domains: {
    domain: string;
    status?: string;
    activeDkimKey?: boolean | null;
    postmaster?: boolean;
    dns?: { failing: { type: string; name: string; status: string; problem: string }[] } | null;
  }[];
  tls: { target: string; trusted: boolean; problem: string; expiresAt: string }[];
}

/** One line of the setup checklist: done or not, what, and where to fix it. */
function Check(props: { readonly ok: boolean; readonly children: ReactNode; readonly fix?: string }) {
  return (
    <li className={props.ok ? 'check ok' : 'check todo'}>
      <span className={`badge ${props.ok ? 'ok' : 'missing'}`}>{props.ok ? 'done' : 'to do'}</span>{' '}
      {props.children}
      {!props.ok && props.fix !== undefined && (
        <>
          {' '}
          <a href={props.fix}>Fix it</a>
        </>
      )}
    </li>
  );
}

function SetupChecklist({ setup }: { readonly setup: Setup }) {
  const soonest = (iso: string) => iso !== '' && Date.parse(iso) - Date.now() < 14 * 86_400_000;
  return (
    <ul className="checklist">
      {setup.domains.length === 0 && (
        <Check ok={false} fix="#/domains">
          No domain yet: add the first domain you receive mail for.
        </Check>
      )}
      {setup.domains.map((d) => (
        <li key={d.domain} className="check-domain">
          <strong>{d.domain}</strong>
          {d.status === 'suspended' && <span className="badge suspended"> suspended</span>}
          <ul>
            {d.activeDkimKey !== null && d.activeDkimKey !== undefined && (
              <Check ok={d.activeDkimKey} fix="#/domains">
                {d.activeDkimKey
                  ? 'An active DKIM key signs its mail.'
                  : 'No active DKIM key: outgoing mail is not signed.'}
              </Check>
            )}
            {d.postmaster !== undefined && (
              <Check ok={d.postmaster} fix="#/aliases">
                {d.postmaster
                  ? `postmaster@${d.domain} receives mail.`
                  : `No postmaster@${d.domain} (RFC 5321 §4.5.1 requires one): add an alias.`}
              </Check>
            )}
            {d.dns !== null && d.dns !== undefined && (
              <Check ok={d.dns.failing.length === 0} fix="#/domains">
                {d.dns.failing.length === 0
                  ? 'Its DNS records are published.'
                  : `DNS: ${d.dns.failing.map((f) => `${f.type} ${f.name} (${f.problem || f.status})`).join('; ')}`}
              </Check>
            )}
          </ul>
        </li>
      ))}
      {setup.more && <li>Only the first 50 domains are checked here.</li>}
      {setup.tls.map((t) => (
        <Check key={t.target} ok={t.trusted && !soonest(t.expiresAt)}>
          {t.trusted
            ? `TLS certificate on ${t.target} is trusted${t.expiresAt ? `, valid until ${when(t.expiresAt)}` : ''}.`
            : `No trusted TLS certificate on ${t.target}: ${t.problem}.`}
        </Check>
      ))}
    </ul>
  );
}

export function OverviewPage({ me }: { readonly me: Me }) {
  const [overview, setOverview] = useState<Overview | undefined>();
  const [setup, setSetup] = useState<Setup | undefined>();
  const [error, setError] = useState<unknown>();
  const [setupError, setSetupError] = useState<unknown>();
  const refresh = useCallback(() => {
    setOverview(undefined);
    setSetup(undefined);
    api<Overview>('GET', '/v1/overview').then(setOverview, setError);
    // The setup checks look DNS and TLS up live (a few seconds): they arrive on their own.
    api<Setup>('GET', '/v1/overview/setup').then(setSetup, setSetupError);
  }, []);
  useEffect(refresh, [refresh]);
  const can = (p: string) => me.permissions.includes(p);
  return (
    <>
      <h1>Overview</h1>
      <div className="toolbar">
        <button type="button" onClick={refresh}>
          Refresh
        </button>
        {overview !== undefined && <span className="hint">As of {when(overview.generatedAt)}</span>}
      </div>
      <ErrorBanner error={error} />
      {overview === undefined && error === undefined && <Loading what="the overview" />}
      {overview !== undefined && (
        <div className="tiles">
          {overview.services !== null && (
            <section className="card tile" aria-labelledby="ov-services">
              <h2 id="ov-services">Services</h2>
              <ul className="plain">
                {overview.services.map((s) => (
                  <li key={s.service}>
                    <span className={`badge ${s.ready ? 'ok' : 'missing'}`}>
                      {s.ready ? 'ready' : 'not ready'}
                    </span>{' '}
                    {s.service}
                    {!s.ready && (
                      <small className="hint"> — {s.status === 0 ? 'unreachable' : `HTTP ${s.status}`}</small>
                    )}
                  </li>
                ))}
              </ul>
              {can('health.read') && <a href="#/health">Health details</a>}
            </section>
          )}
          {overview.inbound !== null && (
            <section className="card tile" aria-labelledby="ov-inbound">
              <h2 id="ov-inbound">Inbound queue</h2>
              <p className="figure">{overview.inbound.pending}</p>
              <p className="hint">messages waiting for storage ({overview.inbound.messages} in the stream)</p>
            </section>
          )}
          {overview.deferred !== null && (
            <section className="card tile" aria-labelledby="ov-deferred">
              <h2 id="ov-deferred">Deferred outbound</h2>
              {overview.deferred.error !== '' ? (
                <p className="hint">Unknown: {overview.deferred.error}</p>
              ) : (
                <>
                  <p className="figure">
                    {overview.deferred.more ? 'at least ' : ''}
                    {overview.deferred.count}
                  </p>
                  <p className="hint">messages waiting for another delivery attempt</p>
                </>
              )}
              {can('queue.read') && <a href="#/queue">Open the queue</a>}
            </section>
          )}
          {overview.dlq !== null && (
            <section className="card tile" aria-labelledby="ov-dlq">
              <h2 id="ov-dlq">Dead letters</h2>
              <p className="figure">{overview.dlq.size}</p>
              <p className="hint">jobs that failed for good</p>
              {can('dlq.read') && <a href="#/dlq">Open the dead-letter queue</a>}
            </section>
          )}
        </div>
      )}
      {overview?.alerts !== null && overview?.alerts !== undefined && (
        <section className="card" aria-labelledby="ov-alerts">
          <h2 id="ov-alerts">Recent alerts</h2>
          {overview.alerts.error !== '' && <p className="hint">Unknown: {overview.alerts.error}</p>}
          <ul className="plain alerts">
            {overview.alerts.recent.map((a) => (
              <li key={a.id}>
                <span className={`badge ${a.attributes.severity === 'critical' ? 'failed' : 'deferred'}`}>
                  {a.attributes.severity ?? 'alert'}
                </span>{' '}
                {when(a.time)} · <strong>{a.attributes.alert}</strong>
                {a.attributes.about !== undefined && <> ({a.attributes.about})</>}: {a.detail}
              </li>
            ))}
            {overview.alerts.recent.length === 0 && overview.alerts.error === '' && (
              <li>No alerts in the last 7 days.</li>
            )}
          </ul>
          <a href="#/alerts">All alerts</a>
        </section>
      )}
      {overview !== undefined &&
        (overview.deferred !== null || overview.dlq !== null || overview.failedDeliveries !== null) && (
          <section className="card" aria-labelledby="ov-failures">
            <h2 id="ov-failures">Recent failed deliveries</h2>
            <ul className="plain failures">
              {overview.deferred?.recentFailures.map((f) => (
                <li key={f.id}>
                  <span className="badge deferred">deferred</span> {when(f.lastAttemptAt)} ·{' '}
                  {f.sender || '<>'} → {f.recipients.join(', ')} · attempt {f.attempts}:{' '}
                  <span className="mono">{f.lastError}</span>
                </li>
              ))}
              {overview.dlq?.recent.map((f) => (
                <li key={`dlq-${f.seq}`}>
                  <span className="badge failed">dead letter</span> {when(f.time)} · {f.sender || '<>'} →{' '}
                  {f.recipients.join(', ')}: <span className="mono">{f.error}</span>
                </li>
              ))}
              {overview.failedDeliveries?.recent.map((e) => (
                <li key={`trace-${e.id}`}>
                  <span className={`badge ${e.kind}`}>{e.kind}</span> {when(e.time)} · {e.sender || '<>'} →{' '}
                  {e.recipient}: <span className="mono">{e.detail}</span>{' '}
                  <small className="hint">
                    (queue id <span className="mono">{e.queueId}</span>)
                  </small>
                </li>
              ))}
              {(overview.deferred?.recentFailures.length ?? 0) +
                (overview.dlq?.recent.length ?? 0) +
                (overview.failedDeliveries?.recent.length ?? 0) ===
                0 && <li>No failed deliveries.</li>}
            </ul>
          </section>
        )}
      <section className="card" aria-labelledby="ov-setup" aria-busy={setup === undefined}>
        <h2 id="ov-setup">Left to set up</h2>
        <ErrorBanner error={setupError} />
        {setup === undefined && setupError === undefined && (
          <Loading what="the setup checks (DNS and TLS are looked up live)" />
        )}
        {setup !== undefined && <SetupChecklist setup={setup} />}
      </section>
    </>
  );
}
