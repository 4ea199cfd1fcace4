/**
 * A domain's webhooks (docs/webhooks.md): endpoints its mail events are POSTed to, signed with
 * a secret that is shown once, in the answer that creates or rotates it, and never again (not
 * in lists, not in the audit log, which records the method and path only).
 */
import { Controller, Inject, Req } from '@nestjs/common';
import type { Static } from '@sinclair/typebox';
import { WEBHOOK_EVENT_TYPES } from '@postmesh/bus';
import type { directory } from '@postmesh/contracts';
import { Done, Page, WebhookSchema, WithSecret } from '../api/schemas.js';
import { Endpoint } from '../api/endpoint.js';
import { ApiError } from '../api/errors.js';
import type { HttpRequest } from '../api/http.js';
import {
  bool,
  domainName,
  list,
  objectId,
  oneOf,
  optional,
  parseObject,
  required,
  str,
} from '../api/validate.js';
import { DEPS, type AdminDeps } from '../deps.js';
import { domainIdOf } from './scope.js';

const domainParam = (request: HttpRequest): string => domainName()(request.params.domain, 'domain');

const eventTypes = () => list(oneOf(WEBHOOK_EVENT_TYPES), { min: 1, max: WEBHOOK_EVENT_TYPES.length });
const url = () => str({ min: 8, max: 2_048, pattern: /^[Hh][Tt][Tt][Pp][Ss]?:\/\//, what: 'an http(s) URL' });

export const webhookView = (w: directory.Webhook): Static<typeof WebhookSchema> => ({
  id: w.id,
  domain: w.domain,
  url: w.url,
  events: w.events,
  enabled: w.enabled,
  createdAt: w.createTime?.toISOString() ?? null,
  updatedAt: w.updateTime?.toISOString() ?? null,
});

const createBody = {
  url: required(url()),
  events: required(eventTypes()),
  enabled: optional(bool()),
};

const updateBody = {
  url: optional(url()),
  events: optional(eventTypes()),
  enabled: optional(bool()),
};

@Controller()
export class WebhooksController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  @Endpoint({
    method: 'GET',
    path: '/domains/:domain/webhooks',
    action: 'webhooks.read',
    target: { kind: 'domain-param', param: 'domain' },
    summary: "A domain's webhooks, oldest first (without their secrets)",
    response: Page(WebhookSchema),
  })
  async list(@Req() request: HttpRequest) {
    const domainId = await domainIdOf(this.deps.storage, domainParam(request));
    const { webhooks } = await this.deps.storage.directory.listWebhooks({ domainId });
    return { items: webhooks.map(webhookView), nextPageToken: '' };
  }

  @Endpoint({
    method: 'POST',
    path: '/domains/:domain/webhooks',
    action: 'webhooks.write',
    target: { kind: 'domain-param', param: 'domain' },
    summary:
      'Add a webhook; the answer carries its signing secret, shown this once (internal addresses are refused unless the operator allows them)',
    status: 201,
    body: createBody,
    response: WithSecret(WebhookSchema),
  })
  async create(@Req() request: HttpRequest) {
    const body = parseObject(request.body, createBody);
    const domainId = await domainIdOf(this.deps.storage, domainParam(request));
    const created = await this.deps.storage.directory.createWebhook({
      domainId,
      url: body.url,
      events: body.events,
      enabled: body.enabled ?? true,
    });
    if (created.webhook === undefined) throw new ApiError('internal', 'internal error');
    return { ...webhookView(created.webhook), secret: created.secret };
  }

  @Endpoint({
    method: 'PATCH',
    path: '/domains/:domain/webhooks/:id',
    action: 'webhooks.write',
    target: { kind: 'domain-param', param: 'domain' },
    summary: "Change a webhook's URL, events or enabled flag",
    body: updateBody,
    response: WebhookSchema,
  })
  async update(@Req() request: HttpRequest) {
    const body = parseObject(request.body, updateBody);
    const webhookId = await this.webhookOfDomain(request);
    const { webhook } = await this.deps.storage.directory.updateWebhook({
      webhookId,
      ...(body.url === undefined ? {} : { url: body.url }),
      events: body.events ?? [],
      setEvents: body.events !== undefined,
      ...(body.enabled === undefined ? {} : { enabled: body.enabled }),
    });
    if (webhook === undefined) throw new ApiError('internal', 'internal error');
    return webhookView(webhook);
  }

  @Endpoint({
    method: 'POST',
    path: '/domains/:domain/webhooks/:id/rotate-secret',
    action: 'webhooks.write',
    target: { kind: 'domain-param', param: 'domain' },
    summary: "Replace a webhook's signing secret; the answer carries the new one, shown this once",
    response: WithSecret(WebhookSchema),
  })
  async rotate(@Req() request: HttpRequest) {
    const webhookId = await this.webhookOfDomain(request);
    const rotated = await this.deps.storage.directory.rotateWebhookSecret({ webhookId });
    if (rotated.webhook === undefined) throw new ApiError('internal', 'internal error');
    return { ...webhookView(rotated.webhook), secret: rotated.secret };
  }

  @Endpoint({
    method: 'DELETE',
    path: '/domains/:domain/webhooks/:id',
    action: 'webhooks.write',
    target: { kind: 'domain-param', param: 'domain' },
    summary: 'Remove a webhook',
    response: Done('deleted'),
  })
  async remove(@Req() request: HttpRequest) {
    const webhookId = await this.webhookOfDomain(request);
    await this.deps.storage.directory.deleteWebhook({ webhookId });
    return { deleted: true };
  }

  /** The webhook must belong to the domain in the path (which the guard authorised). */
  private async webhookOfDomain(request: HttpRequest): Promise<string> {
    const webhookId = objectId()(request.params.id, 'id');
    const domainId = await domainIdOf(this.deps.storage, domainParam(request));
    const { webhooks } = await this.deps.storage.directory.listWebhooks({ domainId });
    if (!webhooks.some((w) => w.id === webhookId)) throw new ApiError('not_found', 'webhook not found');
    return webhookId;
  }
}
