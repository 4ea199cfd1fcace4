/** The OpenAPI 3.1 document at /api/docs, generated from the endpoint registry. */
import { Controller } from '@nestjs/common';
import { ENDPOINTS, Endpoint, fullPath, type EndpointSpec } from '../api/endpoint.js';
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

export function openApiDocument(): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const spec of ENDPOINTS) {
    const path = fullPath(spec).replace(/:([A-Za-z]+)/g, '{$1}');
    const params = [...spec.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const query = Object.entries(spec.query ?? {}).map(([name, description]) => ({
      name,
      in: 'query',
      required: false,
      description,
      schema: { type: 'string' },
    }));
    (paths[path] ??= {})[spec.method.toLowerCase()] = {
      summary: spec.summary,
      description: `Action \`${spec.action}\`. Allowed for: ${rolesFor(spec.action)}.`,
      parameters: [...params, ...query],
      ...(spec.body === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    additionalProperties: false,
                    properties: Object.fromEntries(
                      Object.entries(spec.body).map(([k, v]) => [
                        k,
                        typeof v === 'string' ? { description: v } : v,
                      ]),
                    ),
                  },
                },
              },
            },
          }),
      responses: {
        [String(spec.status ?? 200)]: { description: 'success' },
        default: {
          description: 'error',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
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
  })
  docs() {
    return openApiDocument();
  }
}
