/**
 * The OpenAPI document at /api/docs is generated from the same TypeBox schemas the handlers
 * validate with: it must be a valid OpenAPI 3.1 document (checked against the specification's
 * own JSON Schema), every schema in it must be valid JSON Schema 2020-12, and it must say what
 * the code enforces (e.g. the password length of password-policy.ts).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import '../src/app.js';
import { ENDPOINTS } from '../src/api/endpoint.js';
import { PASSWORD_MAX, PASSWORD_MIN } from '../src/api/password-policy.js';
import { openApiDocument } from '../src/controllers/docs.controller.js';

type Operation = {
  operationId: string;
  parameters: { name: string; in: string; schema: object }[];
  requestBody?: { content: { 'application/json': { schema: Record<string, unknown> } } };
  responses: Record<string, { content?: { 'application/json': { schema: object } } }>;
};
type Document = { paths: Record<string, Record<string, Operation>> };

const doc = openApiDocument() as Document;
const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, op]) => ({ path, method, op })),
);

describe('the OpenAPI document', () => {
  it('validates against the OpenAPI 3.1 schema', async () => {
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents every endpoint once, with an operation id, a response schema and no string-only fields', () => {
    expect(operations).toHaveLength(ENDPOINTS.length);
    expect(new Set(operations.map((o) => o.op.operationId)).size).toBe(operations.length);
    for (const { path, method, op } of operations) {
      const success = Object.entries(op.responses).find(([status]) => status !== 'default');
      expect(success?.[1].content?.['application/json'].schema, `${method} ${path}`).toBeDefined();
      const body = op.requestBody?.content['application/json'].schema;
      if (body === undefined) continue;
      expect(body.type, `${method} ${path}`).toBe('object');
      for (const [field, schema] of Object.entries(body.properties as Record<string, object>)) {
        // Every field is a schema with a type, not a prose description.
        expect(JSON.stringify(schema), `${method} ${path} ${field}`).toMatch(/"type":|"anyOf":|"enum":/);
      }
    }
  });

  it('holds only valid JSON Schema 2020-12 (the dialect of OpenAPI 3.1)', () => {
    const ajv = new Ajv2020({ strict: true });
    let compiled = 0;
    for (const { op } of operations) {
      const schemas = [
        op.requestBody?.content['application/json'].schema,
        ...op.parameters.map((p) => p.schema),
        ...Object.values(op.responses).map((r) => r.content?.['application/json'].schema),
      ];
      for (const schema of schemas) {
        if (schema === undefined || '$ref' in schema) continue;
        expect(() => ajv.compile(schema)).not.toThrow();
        compiled += 1;
      }
    }
    expect(compiled).toBeGreaterThan(100);
  });

  it('documents the password rule the code enforces', () => {
    for (const [path, method] of [
      ['/api/v1/users', 'post'],
      ['/api/v1/users/{id}/password', 'post'],
      ['/api/v1/admins', 'post'],
    ] as const) {
      const body = doc.paths[path]?.[method]?.requestBody?.content['application/json'].schema as {
        properties: { password: { minLength: number; maxLength: number } };
      };
      expect(body.properties.password, `${method} ${path}`).toMatchObject({
        type: 'string',
        minLength: PASSWORD_MIN,
        maxLength: PASSWORD_MAX,
      });
    }
  });

  it('documents query parameters as typed schemas', () => {
    const list = doc.paths['/api/v1/users']?.get;
    expect(list?.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: 'pageSize',
          in: 'query',
          schema: expect.objectContaining({ type: 'integer', minimum: 1, maximum: 1000 }) as unknown,
        }),
      ]),
    );
  });
});
