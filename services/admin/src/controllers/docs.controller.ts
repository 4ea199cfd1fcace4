/** The OpenAPI 3.1 document at /api/docs, generated from the endpoint registry. */
import { Controller } from '@nestjs/common';
import { DocsSchema } from '../api/schemas.js';
import { ENDPOINTS, Endpoint, fullPath, type EndpointSpec } from '../api/endpoint.js';
import { shapeSchema } from '../api/validate.js';
import { POLICY, Roles } from '../policy.js';

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['status', 'code', 'message', 'requestId'],
      properties: {
        status: { type: 'integer' },
        code: {
          type: 'string',
          enum: [
            'invalid_argument',
            'unauthenticated',
            'permission_denied',
            'not_found',
            'conflict',
            'payload_too_large',
            'unsupported_media_type',
            'too_many_requests',
            'internal',
            'not_implemented',
            'unavailable',
          ],
        },
        message: { type: 'string' },
        field: { type: 'string' },
        requestId: { type: 'string' },
      },
    },
  },
};

const rolesFor = (action: EndpointSpec['action']): string =>
  action === 'public'
    ? 'anyone'
    : action === 'authenticated'
      ? 'any signed-in principal'
      : Roles.filter((r) => POLICY[r][action] !== undefined)
          .map((r) => `${r} (${POLICY[r][action] ?? ''})`)
          .join(', ');

const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** The error statuses an operation can answer (each with the Error body); `default` for the rest. */
function errorResponses(spec: EndpointSpec, hasPathParams: boolean): Record<string, object> {
  return {
    ...(spec.body !== undefined || spec.query !== undefined || hasPathParams
      ? { '400': error('invalid_argument: a field or parameter is not valid (`error.field` names it)') }
      : { '400': error('invalid_argument: this operation takes no body and no query parameters') }),
    ...(spec.action === 'public'
      ? {}
      : {
          '401': error('unauthenticated: no valid session or token'),
          '403': error('permission_denied: the role (or the token scopes) does not allow it'),
        }),
    ...(hasPathParams ? { '404': error('not_found: what the path names does not exist') } : {}),
    default: error('another error: 409 conflict, 413, 415, 429 (Retry-After), 5xx'),
  };
}

/** Removes TypeBox's symbol keys and turns `Type.Optional` members into plain JSON Schema. */
const plain = (schema: unknown): unknown => JSON.parse(JSON.stringify(schema)) as unknown;

export function openApiDocument(): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const spec of ENDPOINTS) {
    const path = fullPath(spec).replace(/:([A-Za-z]+)/g, '{$1}');
    const params = [...spec.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string', minLength: 1 },
    }));
    const query = Object.entries(spec.query ?? {}).map(([name, field]) => ({
      name,
      in: 'query',
      required: !field.optional,
      schema: plain(field.check.schema),
    }));
    const status = String(spec.status ?? 200);
    (paths[path] ??= {})[spec.method.toLowerCase()] = {
      operationId: `${spec.method.toLowerCase()}${path.replace(/\{([A-Za-z]+)\}/g, 'By-$1').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c?: string) => (c ?? '').toUpperCase())}`,
      summary: spec.summary,
      description: `Action \`${spec.action}\`. Allowed for: ${rolesFor(spec.action)}.`,
      parameters: [...params, ...query],
      ...(spec.body === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: plain(shapeSchema(spec.body)) } },
            },
          }),
      responses: {
        [status]: {
          description: 'success',
          ...(spec.response === undefined
            ? {}
            : { content: { 'application/json': { schema: plain(spec.response) } } }),
        },
        ...errorResponses(spec, params.length > 0),
      },
      security: spec.action === 'public' ? [] : [{ session: [], csrf: [] }, { bearer: [] }],
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Postmesh admin API',
      version: '1',
      description:
        'Session cookie (`pm_session`, HttpOnly, SameSite=Strict) plus `X-CSRF-Token` on changes, or `Authorization: Bearer pmt_…` API tokens. Lists page with `pageSize` and `pageToken` and answer `{items, nextPageToken}`.',
    },
    paths,
    components: {
      schemas: { Error: ERROR_SCHEMA },
      securitySchemes: {
        session: { type: 'apiKey', in: 'cookie', name: 'pm_session' },
        csrf: { type: 'apiKey', in: 'header', name: 'X-CSRF-Token' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
    },
  };
}

@Controller()
export class DocsController {
  @Endpoint({
    method: 'GET',
    path: '/api/docs',
    action: 'public',
    target: { kind: 'system' },
    summary: 'This OpenAPI document',
    response: DocsSchema,
  })
  docs() {
    return openApiDocument();
  }
}
