/**
 * The console's landing page: what runs, what waits, what failed, and what is left to set up, in
 * two requests (the quick figures, then the slower setup checks with live DNS and TLS lookups).
 * Each section is shown only when the caller's role may read it (policy.ts), and scoped the same
 * way as the endpoint it summarises.
 */
import { Controller, Inject, Req } from '@nestjs/common';
import { directory, trace } from '@postmesh/contracts';
import { Streams } from '@postmesh/bus';
import { OverviewSchema, Page, SetupSchema, TraceEventSchema } from '../api/schemas.js';
import { Endpoint } from '../api/endpoint.js';
import { ApiError } from '../api/errors.js';
import { authOf, type HttpRequest } from '../api/http.js';
import { actorOf, subjectOf } from '../auth/principal.js';
import { DEPS, type AdminDeps } from '../deps.js';
import { traceView } from '../api/views.js';
import { parseQuery, optional, int } from '../api/validate.js';
import { checkRecords, mtaStsPolicyId, recordsFor } from '../ops/dns.js';
import { probeTls } from '../ops/tls-probe.js';
import { decide, queueScope, type Action, type Target } from '../policy.js';

/** Domains checked by the setup list; a larger installation pages through the Domains screen. */
const SETUP_DOMAINS = 50;
/** Deferred entries counted for the overview; beyond this it says "at least". */
const DEFERRED_COUNTED = 500;
const RECENT = 5;
/** Alerts and failed deliveries on the overview (from the message trace). */
const RECENT_EVENTS = 10;

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const alertsQuery = { limit: optional(int({ min: 1, max: 100 })) };

@Controller()
export class OverviewController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  /** The caller's decision for another action than the endpoint's own (sections of the page). */
  private may(request: HttpRequest, action: Action, target: Target = {}) {
    const principal = authOf(request).principal;
    if (principal === undefined) throw new ApiError('unauthenticated', 'sign in first');
    const decision = decide(subjectOf(principal), action, target);
    return decision.allow ? decision : undefined;
  }

  @Endpoint({
    method: 'GET',
    path: '/overview',
    action: 'domains.read',
    target: { kind: 'list' },
    summary:
      "Landing figures: each service's readiness, inbound queue depth, deferred outbound mail, dead letters, recent failed deliveries and alerts (sections the role may not read are null; alerts and failed deliveries are scoped to the caller's domains)",
    response: OverviewSchema,
  })
  async overview(@Req() request: HttpRequest) {
    const health = this.may(request, 'health.read');
    const dlq = this.may(request, 'dlq.read');
    const queue = this.may(request, 'queue.read', { list: true });
    const traced = this.may(request, 'trace.read', { list: true });
    const [report, deferred, dead, alerts, failures] = await Promise.all([
      health === undefined ? undefined : this.deps.health.report(),
      queue === undefined ? undefined : this.deferred(request, queue.domains),
      dlq === undefined || this.deps.queue === undefined
        ? undefined
        : this.deps.queue.dlq(RECENT, '').then(
            (page) => ({ recent: page.items, error: '' }),
            (error: unknown) => ({ recent: [], error: errorText(error) }),
          ),
      traced === undefined || traced.self
        ? undefined
        : this.recentEvents(traced.domains, [trace.EventKind.ALERT], RECENT_EVENTS),
      traced === undefined || traced.self
        ? undefined
        : this.recentEvents(
            traced.domains,
            [trace.EventKind.BOUNCED, trace.EventKind.DEFERRED],
            RECENT_EVENTS,
          ),
    ]);
    const stream = (name: string) => report?.streams.find((s) => s.name === name);
    const inbound = stream(Streams.MAIL_INBOUND);
    const dlqStream = stream(Streams.MAIL_DLQ);
    return {
      generatedAt: new Date().toISOString(),
      services:
        report?.services.map((s) => ({
          service: s.service,
          ready: s.ready,
          status: s.status,
          detail: s.ready ? '' : s.detail,
        })) ?? null,
      inbound:
        inbound === undefined
          ? null
          : {
              messages: inbound.messages,
              pending: inbound.consumers.reduce((sum, c) => sum + c.pending + c.ackPending, 0),
            },
      deferred: deferred ?? null,
      dlq:
        dead === undefined
          ? null
          : {
              size: dlqStream?.messages ?? dead.recent.length,
              recent: dead.recent.map((e) => ({
                seq: e.seq,
                time: e.time,
                sender: e.sender,
                recipients: e.recipients,
                error: e.error,
              })),
              error: dead.error,
            },
      alerts: alerts ?? null,
      failedDeliveries: failures ?? null,
    };
  }

  @Endpoint({
    method: 'GET',
    path: '/alerts',
    action: 'trace.read',
    target: { kind: 'list' },
    summary:
      'Recent alerts (dead letters, repeated delivery failures, queues, consumer lag, certificates, storage write errors), newest first, of the last 7 days; a domain-admin or helpdesk sees the alerts about their domains',
    query: alertsQuery,
    response: Page(TraceEventSchema),
  })
  async alerts(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, alertsQuery);
    const decision = this.may(request, 'trace.read', { list: true });
    if (decision === undefined || decision.self) throw new ApiError('permission_denied', 'not allowed');
    const found = await this.recentEvents(decision.domains, [trace.EventKind.ALERT], query.limit ?? 50);
    if (found.error !== '') throw new ApiError('unavailable', found.error);
    return { items: found.recent, nextPageToken: '' };
  }

  /** The latest trace events of some kinds in the caller's scope (storage's Trace.RecentEvents). */
  private async recentEvents(
    scope: 'all' | readonly string[],
    kinds: trace.EventKind[],
    limit: number,
  ): Promise<{ recent: ReturnType<typeof traceView>[]; error: string }> {
    if (scope !== 'all' && scope.length === 0) return { recent: [], error: '' };
    try {
      const { events } = await this.deps.storage.trace.recentEvents({
        kinds,
        domains: scope === 'all' ? [] : [...scope],
        limit,
      });
      return { recent: events.map(traceView), error: '' };
    } catch (error) {
      return { recent: [], error: errorText(error) };
    }
  }

  /** How much outbound mail waits, and the latest failures among it (mta-delivery's queue). */
  private async deferred(request: HttpRequest, domains: 'all' | readonly string[]) {
    const principal = authOf(request).principal;
    if (principal === undefined || this.deps.queueOps === undefined)
      return { count: 0, more: false, recentFailures: [], error: 'NATS is not connected' };
    const role = principal.kind === 'user' ? 'user' : principal.role;
    const scope = queueScope(role, domains);
    if (scope === undefined) return { count: 0, more: false, recentFailures: [], error: '' };
    try {
      const page = await this.deps.queueOps.list(
        { actor: actorOf(principal).actor, ...scope },
        { limit: DEFERRED_COUNTED },
      );
      const failures = page.items
        .filter((e) => e.lastError !== '')
        .sort((a, b) => b.lastAttemptAt.localeCompare(a.lastAttemptAt))
        .slice(0, RECENT)
        .map((e) => ({
          id: e.id,
          sender: e.sender,
          recipients: e.recipients,
          attempts: e.attempts,
          lastAttemptAt: e.lastAttemptAt,
          lastError: e.lastError,
        }));
      return { count: page.items.length, more: page.nextCursor !== '', recentFailures: failures, error: '' };
    } catch (error) {
      return { count: 0, more: false, recentFailures: [], error: errorText(error) };
    }
  }

  @Endpoint({
    method: 'GET',
    path: '/overview/setup',
    action: 'domains.read',
    target: { kind: 'list' },
    summary:
      'What is left to set up, per domain in your scope (active DKIM key, postmaster address, DNS records looked up live) and for the mail host (a trusted TLS certificate)',
    response: SetupSchema,
  })
  async setup(@Req() request: HttpRequest) {
    const scope = this.may(request, 'domains.read', { list: true })?.domains ?? [];
    const names = await this.domainNames(scope);
    const dkimAllowed = this.may(request, 'dkim.read', { list: true }) !== undefined;
    const dnsAllowed = this.may(request, 'dns.read', { list: true }) !== undefined;
    const { settings } = this.deps;
    const tlsTargets =
      settings.tlsCheckTargets !== undefined && settings.tlsCheckTargets.length > 0
        ? settings.tlsCheckTargets
        : [`${settings.mailHost}:993`, `${settings.mailHost}:465`];
    const [domains, tls] = await Promise.all([
      Promise.all(
        names.slice(0, SETUP_DOMAINS).map((name) => this.domainSetup(name, dkimAllowed, dnsAllowed)),
      ),
      Promise.all(tlsTargets.map((target) => probeTls(target))),
    ]);
    return {
      checkedAt: new Date().toISOString(),
      domains,
      more: names.length > SETUP_DOMAINS,
      tls,
    };
  }

  private async domainNames(scope: 'all' | readonly string[]): Promise<string[]> {
    if (scope !== 'all') return [...scope];
    const page = await this.deps.storage.directory.listDomains({
      pageSize: SETUP_DOMAINS + 1,
      pageToken: '',
    });
    return page.domains.map((d) => d.name);
  }

  private async domainSetup(name: string, dkimAllowed: boolean, dnsAllowed: boolean) {
    const { storage, settings } = this.deps;
    const { domain } = await storage.directory.getDomain({ selector: { $case: 'name', value: name } });
    if (domain === undefined) return { domain: name, missing: true };
    const keys = (await storage.directory.listDkimKeys({ domainId: domain.id })).keys;
    const postmaster = await storage.directory
      .resolveRecipient({ address: `postmaster@${name}`, messageSize: 0 })
      .then((r) => r.result !== undefined && r.result.$case !== 'notFound');
    let dns: { failing: { type: string; name: string; status: string; problem: string }[] } | null = null;
    if (dnsAllowed) {
      const publish = keys
        .filter((k) => k.status !== directory.DkimKeyStatus.RETIRED)
        .map((k) => ({ name: k.dnsName, value: k.dnsTxtValue }));
      const checked = await checkRecords(
        recordsFor(name, settings.mailHost, publish, mtaStsPolicyId(keys.map((k) => k.createTime))),
        settings.dnsServers,
      );
      dns = {
        failing: checked
          .filter((r) => r.status !== 'ok')
          .map((r) => ({ type: r.type, name: r.name, status: r.status, problem: r.problem })),
      };
    }
    return {
      domain: name,
      status: domain.status === directory.DomainStatus.SUSPENDED ? 'suspended' : 'active',
      activeDkimKey: dkimAllowed ? keys.some((k) => k.status === directory.DkimKeyStatus.ACTIVE) : null,
      postmaster,
      dns,
    };
  }
}
