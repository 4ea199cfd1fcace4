/**
 * A domain's webhook endpoints (proto DirectoryService *Webhook* RPCs; docs/webhooks.md). The
 * signing secret is generated here, returned once (create, rotate), and stored wrapped by the
 * KEK like DKIM keys; the sender unwraps it (cached in memory while unchanged).
 */
import type { directory } from '@postmesh/contracts';
import { ErrorReason } from '@postmesh/contracts';
import { isWebhookEventType, type WebhookEventType } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import { ObjectId, type Collection, type Db } from 'mongodb';
import type { KeyProvider } from '../crypto/types.js';
import { webhookSecretContext } from '../crypto/user-keyring.js';
import { Collections, type DomainDoc, type WebhookDoc } from '../db/schema.js';
import { fail, notFound, ok, type Result } from '../directory/result.js';
import type { DestinationPolicy } from './destination.js';
import { generateWebhookSecret } from './signature.js';

export const MAX_WEBHOOKS_PER_DOMAIN = 20;

const objectIdOf = (id: string): ObjectId | undefined =>
  /^[0-9a-f]{24}$/i.test(id) ? new ObjectId(id) : undefined;

export interface WebhookStoreDeps {
  readonly db: Db;
  readonly keyProvider: KeyProvider;
  readonly destinations: DestinationPolicy;
  readonly logger: Logger;
  readonly now?: () => Date;
}

export class WebhookStore {
  private readonly webhooks: Collection<WebhookDoc>;
  private readonly domains: Collection<DomainDoc>;
  private readonly now: () => Date;
  /** Unwrapped secrets by webhook id, valid while the stored ciphertext is the same. */
  private readonly secrets = new Map<string, { readonly ciphertext: string; readonly secret: string }>();

  constructor(private readonly deps: WebhookStoreDeps) {
    this.webhooks = deps.db.collection(Collections.webhooks);
    this.domains = deps.db.collection(Collections.domains);
    this.now = deps.now ?? (() => new Date());
  }

  private eventsProblem(events: readonly string[]): string | undefined {
    if (events.length === 0) return 'at least one event type';
    const unknown = events.find((e) => !isWebhookEventType(e));
    return unknown === undefined ? undefined : `unknown event type ${unknown.slice(0, 40)}`;
  }

  private async wrapSecret(id: ObjectId, secret: string): Promise<WebhookDoc['secret']> {
    return this.deps.keyProvider.wrap(Buffer.from(secret, 'utf8'), webhookSecretContext(id.toHexString()));
  }

  async createWebhook(req: directory.CreateWebhookRequest): Promise<Result<directory.CreateWebhookResponse>> {
    const domainOid = objectIdOf(req.domainId);
    const domain = domainOid === undefined ? null : await this.domains.findOne({ _id: domainOid });
    if (domain === null) return notFound('domain', 'domain_id');
    const urlProblem = this.deps.destinations.urlProblem(req.url);
    if (urlProblem !== undefined) return fail(ErrorReason.INVALID_ARGUMENT, urlProblem, 'url');
    const events = [...new Set(req.events)];
    const eventsProblem = this.eventsProblem(events);
    if (eventsProblem !== undefined) return fail(ErrorReason.INVALID_ARGUMENT, eventsProblem, 'events');
    const domainId = domain._id.toHexString();
    if ((await this.webhooks.countDocuments({ domainId })) >= MAX_WEBHOOKS_PER_DOMAIN)
      return fail(ErrorReason.LIMIT_EXCEEDED, `at most ${MAX_WEBHOOKS_PER_DOMAIN} webhooks per domain`);
    const id = new ObjectId();
    const secret = generateWebhookSecret();
    const now = this.now();
    const doc: WebhookDoc = {
      _id: id,
      domainId,
      domain: domain.name,
      url: req.url,
      events,
      enabled: req.enabled,
      secret: await this.wrapSecret(id, secret),
      createdAt: now,
      updatedAt: now,
    };
    await this.webhooks.insertOne(doc);
    this.deps.logger.info({ domain: domain.name, webhookId: id.toHexString() }, 'webhook created');
    return ok({ webhook: webhookOut(doc), secret });
  }

  async listWebhooks(req: directory.ListWebhooksRequest): Promise<Result<directory.ListWebhooksResponse>> {
    const domainOid = objectIdOf(req.domainId);
    if (domainOid === undefined || (await this.domains.findOne({ _id: domainOid })) === null)
      return notFound('domain', 'domain_id');
    const docs = await this.webhooks.find({ domainId: req.domainId }).sort({ createdAt: 1 }).toArray();
    return ok({ webhooks: docs.map(webhookOut) });
  }

  async updateWebhook(req: directory.UpdateWebhookRequest): Promise<Result<directory.UpdateWebhookResponse>> {
    const found = await this.byId(req.webhookId);
    if (found === null) return notFound('webhook', 'webhook_id');
    const set: Partial<WebhookDoc> = { updatedAt: this.now() };
    if (req.url !== undefined) {
      const problem = this.deps.destinations.urlProblem(req.url);
      if (problem !== undefined) return fail(ErrorReason.INVALID_ARGUMENT, problem, 'url');
      set.url = req.url;
    }
    if (req.setEvents) {
      const events = [...new Set(req.events)];
      const problem = this.eventsProblem(events);
      if (problem !== undefined) return fail(ErrorReason.INVALID_ARGUMENT, problem, 'events');
      set.events = events;
    }
    if (req.enabled !== undefined) set.enabled = req.enabled;
    const updated = await this.webhooks.findOneAndUpdate(
      { _id: found._id },
      { $set: set },
      { returnDocument: 'after' },
    );
    if (updated === null) return notFound('webhook', 'webhook_id');
    return ok({ webhook: webhookOut(updated) });
  }

  async rotateWebhookSecret(
    req: directory.RotateWebhookSecretRequest,
  ): Promise<Result<directory.RotateWebhookSecretResponse>> {
    const found = await this.byId(req.webhookId);
    if (found === null) return notFound('webhook', 'webhook_id');
    const secret = generateWebhookSecret();
    const updated = await this.webhooks.findOneAndUpdate(
      { _id: found._id },
      { $set: { secret: await this.wrapSecret(found._id, secret), updatedAt: this.now() } },
      { returnDocument: 'after' },
    );
    if (updated === null) return notFound('webhook', 'webhook_id');
    this.deps.logger.info({ domain: found.domain, webhookId: req.webhookId }, 'webhook secret rotated');
    return ok({ webhook: webhookOut(updated), secret });
  }

  async deleteWebhook(req: directory.DeleteWebhookRequest): Promise<Result<directory.DeleteWebhookResponse>> {
    const oid = objectIdOf(req.webhookId);
    const deleted = oid === undefined ? null : await this.webhooks.findOneAndDelete({ _id: oid });
    if (deleted === null) return notFound('webhook', 'webhook_id');
    this.secrets.delete(req.webhookId);
    this.deps.logger.info({ domain: deleted.domain, webhookId: req.webhookId }, 'webhook deleted');
    return ok({});
  }

  /** Enabled endpoints of these domains subscribed to `type`. */
  async endpointsFor(type: WebhookEventType, domains: readonly string[]): Promise<WebhookDoc[]> {
    if (domains.length === 0) return [];
    return this.webhooks.find({ domain: { $in: [...domains] }, enabled: true, events: type }).toArray();
  }

  /** The endpoint's signing secret (unwrapped once per secret). */
  async secretOf(doc: WebhookDoc): Promise<string> {
    const id = doc._id.toHexString();
    const ciphertext = Buffer.from(doc.secret.ciphertext.buffer).toString('base64');
    const cached = this.secrets.get(id);
    if (cached !== undefined && cached.ciphertext === ciphertext) return cached.secret;
    const bytes = await this.deps.keyProvider.unwrap(doc.secret, webhookSecretContext(id));
    const secret = Buffer.from(bytes).toString('utf8');
    bytes.fill(0);
    this.secrets.set(id, { ciphertext, secret });
    return secret;
  }

  private byId(id: string): Promise<WebhookDoc | null> {
    const oid = objectIdOf(id);
    return oid === undefined ? Promise.resolve(null) : this.webhooks.findOne({ _id: oid });
  }
}

export function webhookOut(doc: WebhookDoc): directory.Webhook {
  return {
    id: doc._id.toHexString(),
    domainId: doc.domainId,
    domain: doc.domain,
    url: doc.url,
    events: doc.events,
    enabled: doc.enabled,
    createTime: doc.createdAt,
    updateTime: doc.updatedAt,
  };
}
