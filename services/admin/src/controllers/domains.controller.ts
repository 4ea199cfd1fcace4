/** Domains, the DNS wizard and DKIM keys. */
import { Controller, Inject, Req } from '@nestjs/common';
import { directory } from '@postmesh/contracts';
import { DkimKeySchema, DnsRecordsSchema, DomainSchema, Done, Page } from '../api/schemas.js';
import { Endpoint } from '../api/endpoint.js';
import { ApiError } from '../api/errors.js';
import type { HttpRequest } from '../api/http.js';
import {
  bool,
  domainName,
  int,
  objectId,
  oneOf,
  optional,
  pageShape,
  parseObject,
  parseQuery,
  required,
  str,
} from '../api/validate.js';
import { dkimView, domainView } from '../api/views.js';
import { DEPS, type AdminDeps } from '../deps.js';
import { checkRecords, mtaStsPolicyId, recordsFor } from '../ops/dns.js';
import { decisionOf, domainIdOf } from './scope.js';

const domainParam = (request: HttpRequest): string => domainName()(request.params.domain, 'domain');

const listQuery = { ...pageShape, q: optional(str({ max: 253 })) };

const createBody = {
  name: required(domainName()),
  defaultQuotaBytes: optional(int({ min: 0 })),
};

const updateBody = { status: required(oneOf(['active', 'suspended'])) };

const removeQuery = { cascade: optional(bool()) };

const dnsQuery = { check: optional(bool()) };

const dkimGenerateBody = {
  selector: required(
    str({ min: 1, max: 63, pattern: /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/, what: 'a DNS label' }),
  ),
  algorithm: optional(oneOf(['ed25519', 'rsa2048'])),
  activate: optional(bool()),
};

@Controller()
export class DomainsController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  @Endpoint({
    method: 'GET',
    path: '/domains',
    action: 'domains.read',
    target: { kind: 'list' },
    summary: 'List domains (your scope)',
    query: listQuery,
    response: Page(DomainSchema),
  })
  async list(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, listQuery);
    const scope = decisionOf(request).domains;
    const prefix = (query.q ?? '').toLowerCase();
    if (scope === 'all') {
      const page = await this.deps.storage.directory.listDomains({
        pageSize: query.pageSize ?? 50,
        pageToken: query.pageToken ?? '',
      });
      return {
        items: page.domains.filter((d) => d.name.startsWith(prefix)).map(domainView),
        nextPageToken: page.nextPageToken,
      };
    }
    const items = [];
    for (const name of scope) {
      if (!name.startsWith(prefix)) continue;
      const found = await this.deps.storage.directory
        .getDomain({ selector: { $case: 'name', value: name } })
        .catch(() => undefined);
      if (found?.domain !== undefined) items.push(domainView(found.domain));
    }
    return { items, nextPageToken: '' };
  }

  @Endpoint({
    method: 'POST',
    path: '/domains',
    action: 'domains.create',
    target: { kind: 'system' },
    summary: 'Add a domain',
    status: 201,
    body: createBody,
    response: DomainSchema,
  })
  async create(@Req() request: HttpRequest) {
    const body = parseObject(request.body, createBody);
    authOfTarget(request, body.name);
    const { domain } = await this.deps.storage.directory.createDomain({
      name: body.name,
      defaultQuotaBytes: body.defaultQuotaBytes ?? 0,
    });
    return domain === undefined ? {} : domainView(domain);
  }

  @Endpoint({
    method: 'GET',
    path: '/domains/:domain',
    action: 'domains.read',
    target: { kind: 'domain-param', param: 'domain' },
    summary: 'One domain',
    response: DomainSchema,
  })
  async get(@Req() request: HttpRequest) {
    const { domain } = await this.deps.storage.directory.getDomain({
      selector: { $case: 'name', value: domainParam(request) },
    });
    if (domain === undefined) throw new ApiError('not_found', 'domain not found');
    return domainView(domain);
  }

  @Endpoint({
    method: 'PATCH',
    path: '/domains/:domain',
    action: 'domains.update',
    target: { kind: 'domain-param', param: 'domain' },
    summary: 'Suspend or activate a domain',
    body: updateBody,
    response: DomainSchema,
  })
  async update(@Req() request: HttpRequest) {
    const body = parseObject(request.body, updateBody);
    const domainId = await domainIdOf(this.deps.storage, domainParam(request));
    const { domain } = await this.deps.storage.directory.setDomainStatus({
      domainId,
      status: body.status === 'active' ? directory.DomainStatus.ACTIVE : directory.DomainStatus.SUSPENDED,
    });
    return domain === undefined ? {} : domainView(domain);
  }

  @Endpoint({
    method: 'DELETE',
    path: '/domains/:domain',
    action: 'domains.delete',
    target: { kind: 'domain-param', param: 'domain' },
    summary: 'Remove a domain (cascade=true also removes its users and their mail)',
    query: removeQuery,
    response: Done('deleted'),
  })
  async remove(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, removeQuery);
    const domainId = await domainIdOf(this.deps.storage, domainParam(request));
    await this.deps.storage.directory.deleteDomain({ domainId, cascade: query.cascade ?? false });
    return { deleted: true };
  }

  @Endpoint({
    method: 'GET',
    path: '/domains/:domain/dns',
    action: 'dns.read',
    target: { kind: 'domain-param', param: 'domain' },
    summary:
      'DNS records to publish (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT); check=true also looks them up live',
    query: dnsQuery,
    response: DnsRecordsSchema,
  })
  async dns(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, dnsQuery);
    const name = domainParam(request);
    const domainId = await domainIdOf(this.deps.storage, name);
    const { keys } = await this.deps.storage.directory.listDkimKeys({ domainId });
    const publish = keys
      .filter((k) => k.status !== directory.DkimKeyStatus.RETIRED)
      .map((k) => ({ name: k.dnsName, value: k.dnsTxtValue }));
    const policyId = mtaStsPolicyId(keys.map((k) => k.createTime));
    const records = recordsFor(name, this.deps.settings.mailHost, publish, policyId);
    if (query.check !== true) return { domain: name, records };
    return {
      domain: name,
      records: await checkRecords(records, this.deps.settings.dnsServers),
      checkedAt: new Date().toISOString(),
    };
  }

  @Endpoint({
    method: 'GET',
    path: '/domains/:domain/dkim',
    action: 'dkim.read',
    target: { kind: 'domain-param', param: 'domain' },
    summary: "A domain's DKIM keys, newest first",
    response: Page(DkimKeySchema),
  })
  async dkimList(@Req() request: HttpRequest) {
    const domainId = await domainIdOf(this.deps.storage, domainParam(request));
    const { keys } = await this.deps.storage.directory.listDkimKeys({ domainId });
    return { items: keys.map(dkimView), nextPageToken: '' };
  }

  @Endpoint({
    method: 'POST',
    path: '/domains/:domain/dkim',
    action: 'dkim.write',
    target: { kind: 'domain-param', param: 'domain' },
    summary:
      'Generate a DKIM key (pending); activate=true makes it a signing key at once, replacing the active key of the same algorithm (rotation); one Ed25519 and one RSA key may sign side by side (RFC 8463 §3)',
    status: 201,
    body: dkimGenerateBody,
    response: DkimKeySchema,
  })
  async dkimGenerate(@Req() request: HttpRequest) {
    const body = parseObject(request.body, dkimGenerateBody);
    const domainId = await domainIdOf(this.deps.storage, domainParam(request));
    const { key } = await this.deps.storage.directory.generateDkimKey({
      domainId,
      selector: body.selector,
      algorithm:
        body.algorithm === 'rsa2048' ? directory.DkimAlgorithm.RSA2048 : directory.DkimAlgorithm.ED25519,
    });
    if (key === undefined) throw new ApiError('internal', 'internal error');
    if (body.activate === true) {
      const activated = await this.deps.storage.directory.activateDkimKey({ keyId: key.id });
      return dkimView(activated.key ?? key);
    }
    return dkimView(key);
  }

  @Endpoint({
    method: 'POST',
    path: '/domains/:domain/dkim/:keyId/activate',
    action: 'dkim.write',
    target: { kind: 'domain-param', param: 'domain' },
    summary: 'Make a key the signing key (the previous one is retired)',
    response: DkimKeySchema,
  })
  async dkimActivate(@Req() request: HttpRequest) {
    const keyId = await this.keyOfDomain(request);
    const { key } = await this.deps.storage.directory.activateDkimKey({ keyId });
    return key === undefined ? {} : dkimView(key);
  }

  @Endpoint({
    method: 'POST',
    path: '/domains/:domain/dkim/:keyId/retire',
    action: 'dkim.write',
    target: { kind: 'domain-param', param: 'domain' },
    summary: 'Stop signing with a key',
    response: DkimKeySchema,
  })
  async dkimRetire(@Req() request: HttpRequest) {
    const keyId = await this.keyOfDomain(request);
    const { key } = await this.deps.storage.directory.retireDkimKey({ keyId });
    return key === undefined ? {} : dkimView(key);
  }

  /** The key must belong to the domain in the path (which the guard authorised). */
  private async keyOfDomain(request: HttpRequest): Promise<string> {
    const keyId = objectId()(request.params.keyId, 'keyId');
    const domainId = await domainIdOf(this.deps.storage, domainParam(request));
    const { keys } = await this.deps.storage.directory.listDkimKeys({ domainId });
    if (!keys.some((k) => k.id === keyId)) throw new ApiError('not_found', 'DKIM key not found');
    return keyId;
  }
}

function authOfTarget(request: HttpRequest, target: string): void {
  if (request.pm !== undefined) {
    request.pm.target = target;
    request.pm.domain = target;
  }
}
