/**
 * Team mailboxes (docs/shared-mailboxes.md): a mailbox of an account (say the INBOX of
 * `support@example.com`) shared with its members, and its access control list (RFC 4314). Thin
 * calls of storage's Mailstore CreateSharedMailbox, GetMailboxAcl, SetMailboxAcl and
 * DeleteMailboxAcl, made for the owner (no acting user: the owner holds every right). Scoped like
 * the user's other settings: a domain-admin manages the accounts of their domains and names only
 * members of those domains. Every member and rights string is checked here first, so a bad one is
 * a 400 and nothing changes; the interceptor audits each change with the target refined below.
 */
import { Controller, Inject, Req } from '@nestjs/common';
import { Type } from '@sinclair/typebox';
import type { mailstore } from '@postmesh/contracts';
import { Done, TeamMailboxSchema } from '../api/schemas.js';
import { Endpoint } from '../api/endpoint.js';
import { ApiError, fromGrpc } from '../api/errors.js';
import { authOf, type HttpRequest } from '../api/http.js';
import { domainOf, list, nested, objectId, parseObject, parseQuery, required, str } from '../api/validate.js';
import { DEPS, type AdminDeps } from '../deps.js';
import { decisionOf } from './scope.js';

const userId = (request: HttpRequest): string => objectId()(request.params.id, 'id');

/**
 * A mailbox path as storage accepts one for a new mailbox (its paths.ts repeats the full rule and
 * answers INVALID_NAME): `/`-separated levels, no control characters (RFC 9051 §9), no LIST
 * wildcards `*` `%` (RFC 9051 §6.3.9), no empty level.
 */
const PATH = str({
  min: 1,
  max: 1024,
  // eslint-disable-next-line no-control-regex
  pattern: /^(?!\/)(?!.*\/\/)[^\u0000-\u001f\u007f*%]+$/,
  what: 'a mailbox path such as INBOX or Queue/Escalations (levels separated by /, no control characters, * or %)',
});

/** `anyone` (every user of the owner's domain) or a user's primary address. */
const IDENTIFIER = str({
  min: 1,
  max: 320,
  pattern: /^(?:anyone|[^\s@]+@[^\s@]+\.[^\s@]+)$/,
  what: "a user's address such as agent@example.com, or anyone",
});

/**
 * RFC 4314 §2.1 rights, replacing the member's current ones: `l r s w i p k x t e a`, and the
 * RFC 2086 `c` and `d` (§2.1.1). Digits and upper case are refused, as storage refuses them.
 */
const RIGHTS = str({
  min: 1,
  max: 32,
  pattern: /^[lrswipkxteacd]+$/,
  what: 'RFC 4314 rights letters such as lrswitea (l r s w i p k x t e a, or c d)',
});

const memberShape = { identifier: required(IDENTIFIER), rights: required(RIGHTS) };

const createBody = {
  path: required(PATH),
  members: required(list(nested(memberShape, 'A member and the rights they get'), { min: 1, max: 100 })),
};
const aclQuery = { path: required(PATH) };
const setBody = { path: required(PATH), identifier: required(IDENTIFIER), rights: required(RIGHTS) };
const removeQuery = { path: required(PATH), identifier: required(IDENTIFIER) };

const aclView = (entries: readonly mailstore.AclEntry[]) =>
  entries.map((e) => ({ identifier: e.identifier, rights: e.rights }));

@Controller()
export class TeamMailboxesController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  @Endpoint({
    method: 'POST',
    path: '/users/:id/team-mailboxes',
    action: 'teammailboxes.write',
    target: { kind: 'user-param', param: 'id' },
    summary:
      "Share a mailbox of this account with its members (created with its parents when missing); each member's rights replace any they had. Every member is checked first: a bad one is a 400 and nothing changes",
    status: 201,
    body: createBody,
    response: TeamMailboxSchema,
  })
  async create(@Req() request: HttpRequest) {
    const id = userId(request);
    const body = parseObject(request.body, createBody);
    const owner = await this.ownerAddress(id);
    const seen = new Set<string>();
    for (const [i, member] of body.members.entries()) {
      this.checkMember(request, owner, member.identifier, `members[${i}].identifier`);
      const key = member.identifier.toLowerCase();
      if (seen.has(key))
        throw new ApiError(
          'invalid_argument',
          `members[${i}].identifier: ${member.identifier} is named twice`,
          `members[${i}].identifier`,
        );
      seen.add(key);
    }
    this.audit(request, `${owner} ${body.path}`);
    const created = await unknownMemberIs400(
      this.deps.storage.mailstore.createSharedMailbox({ userId: id, path: body.path, members: body.members }),
    );
    return {
      mailbox: { id: created.mailbox?.id ?? '', path: created.mailbox?.path ?? body.path },
      acl: aclView(created.entries),
    };
  }

  @Endpoint({
    method: 'GET',
    path: '/users/:id/team-mailboxes/acl',
    action: 'teammailboxes.read',
    target: { kind: 'user-param', param: 'id' },
    summary:
      'Who may use a mailbox of this account, and with which rights (the owner first, with every right)',
    query: aclQuery,
    response: TeamMailboxSchema,
  })
  async acl(@Req() request: HttpRequest) {
    const id = userId(request);
    const query = parseQuery(request.query, aclQuery);
    const { entries } = await this.deps.storage.mailstore.getMailboxAcl({
      userId: id,
      mailbox: { selector: { $case: 'path', value: query.path } },
    });
    return { mailbox: { id: '', path: query.path }, acl: aclView(entries) };
  }

  @Endpoint({
    method: 'PATCH',
    path: '/users/:id/team-mailboxes/acl',
    action: 'teammailboxes.write',
    target: { kind: 'user-param', param: 'id' },
    summary:
      "Give a member (a user's address, or anyone) these rights on the mailbox, replacing their current ones",
    body: setBody,
    response: Type.Object(
      { identifier: Type.String(), rights: Type.String({ description: 'the rights now' }) },
      { additionalProperties: false },
    ),
  })
  async setMember(@Req() request: HttpRequest) {
    const id = userId(request);
    const body = parseObject(request.body, setBody);
    const owner = await this.ownerAddress(id);
    this.checkMember(request, owner, body.identifier, 'identifier');
    this.audit(request, `${owner} ${body.path} ${body.identifier}=${body.rights}`);
    const { rights } = await unknownMemberIs400(
      this.deps.storage.mailstore.setMailboxAcl({
        userId: id,
        mailbox: { selector: { $case: 'path', value: body.path } },
        identifier: body.identifier,
        rights: body.rights,
      }),
    );
    return { identifier: body.identifier, rights };
  }

  @Endpoint({
    method: 'DELETE',
    path: '/users/:id/team-mailboxes/acl',
    action: 'teammailboxes.write',
    target: { kind: 'user-param', param: 'id' },
    summary: 'Take a member off the mailbox (their entry goes; the mailbox and its mail stay)',
    query: removeQuery,
    response: Done('deleted'),
  })
  async removeMember(@Req() request: HttpRequest) {
    const id = userId(request);
    const query = parseQuery(request.query, removeQuery);
    const owner = await this.ownerAddress(id);
    this.checkMember(request, owner, query.identifier, 'identifier');
    this.audit(request, `${owner} ${query.path} ${query.identifier}`);
    await this.deps.storage.mailstore.deleteMailboxAcl({
      userId: id,
      mailbox: { selector: { $case: 'path', value: query.path } },
      identifier: query.identifier,
    });
    return { deleted: true };
  }

  private async ownerAddress(id: string): Promise<string> {
    const { user } = await this.deps.storage.directory.getUser({ selector: { $case: 'id', value: id } });
    if (user === undefined) throw new ApiError('not_found', 'user not found');
    return user.address;
  }

  /**
   * The owner always keeps every right (storage refuses to change them), and a domain-scoped
   * caller names only members of its own domains: another domain's users are not theirs to
   * grant, and a 400 that differs for existing and unknown addresses there would tell them who
   * exists. Decided from the address alone, before storage is asked.
   */
  private checkMember(request: HttpRequest, owner: string, identifier: string, field: string): void {
    if (identifier.toLowerCase() === owner.toLowerCase())
      throw new ApiError('invalid_argument', `${field}: the owner always has every right`, field);
    const scope = decisionOf(request).domains;
    if (identifier !== 'anyone' && scope !== 'all' && !scope.includes(domainOf(identifier)))
      throw new ApiError('invalid_argument', `${field}: ${identifier} is outside your domains`, field);
  }

  /** The audit entry names the mailbox (and the member and rights) besides the account. */
  private audit(request: HttpRequest, target: string): void {
    authOf(request).target = target.slice(0, 500);
  }
}

/**
 * Storage checks that each member is a user (an alias is not an identifier, RFC 4314 §3 leaves
 * identifiers to the server) before it changes anything, and answers NOT_FOUND naming the member:
 * to the API that is a bad argument (400), not a missing resource.
 */
async function unknownMemberIs400<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    const mapped = fromGrpc(error);
    if (
      mapped?.code === 'not_found' &&
      mapped.field !== undefined &&
      /^(?:members\[\d+\]\.)?identifier$/.test(mapped.field)
    ) {
      throw new ApiError(
        'invalid_argument',
        `${mapped.field}: no user has this address (a member is named by a user's primary address)`,
        mapped.field,
      );
    }
    throw error;
  }
}
