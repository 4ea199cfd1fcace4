/**
 * Every API route is declared with `@Endpoint`: its method and path (for Nest), the policy
 * action it performs and how the guard finds its target (for RBAC), and a summary (for the
 * OpenAPI document). The registry of all endpoints feeds /api/docs and the permission-matrix test.
 */
import { applyDecorators, HttpCode, RequestMapping, RequestMethod, SetMetadata } from '@nestjs/common';
import type { TSchema } from '@sinclair/typebox';
import type { Action } from '../policy.js';
import type { Shape } from './validate.js';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** Where the guard finds the domain (or owner) of what a request touches. */
export type TargetSpec =
  /** System-wide: only roles with an `all` grant pass. */
  | { readonly kind: 'system' }
  /** A list: allowed for scoped roles; the handler filters to the decision's domains. */
  | { readonly kind: 'list' }
  /** `:domain` path parameter. */
  | { readonly kind: 'domain-param'; readonly param: string }
  /** An address in the JSON body (its domain part). */
  | { readonly kind: 'body-address'; readonly field: string }
  /** `:address` path parameter (its domain part). */
  | { readonly kind: 'address-param'; readonly param: string }
  /** `:id` of a directory user (looked up). */
  | { readonly kind: 'user-param'; readonly param: string }
  /** `:id` of an administrator (looked up; no-escalation rule). */
  | { readonly kind: 'admin-param'; readonly param: string }
  /** A new administrator described by the body (no-escalation rule). */
  | { readonly kind: 'admin-body' }
  /** `:id` of an API token (its owner). */
  | { readonly kind: 'token-param'; readonly param: string }
  /** `:seq` of an outbound queue entry (its sender's domain). */
  | { readonly kind: 'queue-param'; readonly param: string };

export interface EndpointSpec {
  readonly method: HttpMethod;
  /** Under /api/v1 unless it starts with /api/; Nest syntax (`/users/:id`). */
  readonly path: string;
  /** `public`: no authentication; `authenticated`: any signed-in principal. */
  readonly action: Action | 'public' | 'authenticated';
  readonly target: TargetSpec;
  readonly summary: string;
  /**
   * The JSON body's fields: the same shape the handler parses it with (`parseObject`), so the
   * OpenAPI document's schema is the one enforced. Absent: the endpoint takes no body.
   */
  readonly body?: Shape;
  /** The query parameters, likewise (`parseQuery`). Absent: the endpoint takes none. */
  readonly query?: Shape;
  /** The JSON Schema of the success response's body (absent: no body, e.g. 204). */
  readonly response?: TSchema;
  /** Expected success status (default 200). */
  readonly status?: number;
}

export const ENDPOINT_METADATA = 'postmesh:endpoint';
export const ENDPOINTS: EndpointSpec[] = [];

const NEST_METHOD = {
  GET: RequestMethod.GET,
  POST: RequestMethod.POST,
  PATCH: RequestMethod.PATCH,
  DELETE: RequestMethod.DELETE,
} as const;

export const fullPath = (spec: EndpointSpec): string =>
  spec.path.startsWith('/api/') ? spec.path : `/api/v1${spec.path}`;

export function Endpoint(spec: EndpointSpec): MethodDecorator {
  ENDPOINTS.push(spec);
  return applyDecorators(
    RequestMapping({ path: fullPath(spec), method: NEST_METHOD[spec.method] }),
    HttpCode(spec.status ?? 200),
    SetMetadata(ENDPOINT_METADATA, spec),
  );
}

export function endpointOf(handler: object): EndpointSpec | undefined {
  return Reflect.getMetadata(ENDPOINT_METADATA, handler) as EndpointSpec | undefined;
}
