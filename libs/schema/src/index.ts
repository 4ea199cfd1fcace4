/**
 * Schema first, one way for every payload another process hands us (queued jobs, mail events,
 * queue operations, configuration): the payload is a TypeBox schema (plain JSON Schema 2020-12,
 * the dialect of OpenAPI 3.1, which the admin API also publishes), its TypeScript type is
 * `Static<>` of that schema, and it is checked by an Ajv validator compiled once, at module load.
 * A refusal names the field by its path (`envelope.rcptTo[0]: expected a string`), so the
 * dead-letter reason or the operator's error says what to fix.
 *
 * Validators run per message on the ingest path: compile at module scope, never per call.
 */
import { Type, type Static, type TObject, type TSchema, type TUnion, type TUnsafe } from '@sinclair/typebox';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';

export { Type } from '@sinclair/typebox';
export type { Static, TSchema } from '@sinclair/typebox';

/**
 * A refusal: `field` is the path of the offending value (`''` for the whole payload), `problem`
 * the sentence for logs and dead-letter reasons (`field: reason`).
 */
export interface Refusal {
  readonly ok: false;
  readonly field: string;
  readonly problem: string;
}

/** The result of a check: the typed value, or one problem naming the field (the first found). */
export type Checked<T> = { readonly ok: true; readonly value: T } | Refusal;

/** A refusal of `field` (a path such as `envelope.rcptTo[0]`, or '' for the whole payload). */
export function refuse(field: string, reason: string): Refusal {
  return { ok: false, field, problem: field === '' ? reason : `${field}: ${reason}` };
}

/** `outer` then `inner` as one path: `queuedEvent` + `kind` → `queuedEvent.kind`. */
export function joinPath(outer: string, inner: string): string {
  if (outer === '' || inner === '') return outer + inner;
  return inner.startsWith('[') ? `${outer}${inner}` : `${outer}.${inner}`;
}

/** A refusal of a nested payload, re-rooted under the field that carried it. */
export function nest(outer: string, refusal: Refusal): Refusal {
  const field = joinPath(outer, refusal.field);
  const reason = refusal.field === '' ? refusal.problem : refusal.problem.slice(refusal.field.length + 2);
  return refuse(field, reason);
}

export interface Validator<T> {
  (value: unknown): Checked<T>;
  /** The JSON Schema the validator checks (what the documentation publishes). */
  readonly schema: TSchema;
}

/**
 * A type with every property and array read-only, all the way down: decoded payloads are not
 * changed by their readers, and a writer may pass read-only arrays it already has.
 */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * One Ajv for every schema of the process. `strict` refuses a schema with a misspelt keyword
 * (it would silently check nothing); `discriminator` makes a union tagged by `kind` report the
 * errors of the branch the tag names instead of every branch's; `verbose` puts the failing
 * sub-schema in the error, which the message reads (only on the refusal path). Patterns are
 * Unicode regular expressions and lengths count code points, as JSON Schema says.
 */
const ajv = new Ajv2020({ strict: true, allErrors: false, discriminator: true, verbose: true });

/** Compiles `schema` once; the validator returns the value typed by the schema, or the problem. */
export function compile<S extends TSchema>(schema: S): Validator<Static<S>> {
  const validate = ajv.compile(schema);
  const check = (value: unknown): Checked<Static<S>> =>
    validate(value) ? { ok: true, value: value as Static<S> } : describeError(validate.errors?.[0]);
  return Object.assign(check, { schema });
}

/**
 * A union of object schemas told apart by the string property `tag` (e.g. a body's `kind`). Its
 * static type is the union; Ajv checks it as an OpenAPI-style `oneOf` with a `discriminator`, so
 * a refusal names the problem in the branch the tag selects (not the failures of every branch).
 */
export function TaggedUnion<T extends TObject[]>(
  tag: string,
  branches: [...T],
  options: { description?: string } = {},
): TUnsafe<Static<TUnion<T>>> {
  return Type.Unsafe<Static<TUnion<T>>>({
    type: 'object',
    discriminator: { propertyName: tag },
    oneOf: branches,
    ...options,
  });
}

/** The pattern of text without NUL characters (C strings, logs and some stores end at a NUL). */
export const NO_NUL = '^[^\\u0000]*$';

const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;

/** A path in JavaScript-like notation (`a.b[0]`) from Ajv's JSON Pointer (`/a/b/0`, RFC 6901). */
export function fieldPath(pointer: string, ...more: string[]): string {
  const segments = [
    ...(pointer === '' ? [] : pointer.slice(1).split('/')).map((s) =>
      s.replace(/~1/g, '/').replace(/~0/g, '~'),
    ),
    ...more,
  ];
  let path = '';
  for (const segment of segments) {
    if (/^\d+$/.test(segment)) path += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) path += path === '' ? segment : `.${segment}`;
    else path += `[${JSON.stringify(segment.slice(0, 64))}]`;
  }
  return path;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
  null: 'null',
};

const typeWords = (type: unknown): string =>
  (Array.isArray(type) ? type : [type]).map((t) => TYPE_WORDS[String(t)] ?? String(t)).join(' or ');

/** The refusal for Ajv's first error: the field's path and what was expected, in words. */
export function describeError(error: ErrorObject | undefined): Refusal {
  if (error === undefined) return refuse('', 'is not valid');
  const params = error.params as Record<string, unknown>;
  const parent = (error.parentSchema ?? {}) as Record<string, unknown>;
  const here = fieldPath(error.instancePath);
  const child = (name: unknown): string => fieldPath(error.instancePath, String(name));
  // A property name refused by `propertyNames` (e.g. an attribute key with a dot).
  if (error.propertyName !== undefined || error.keyword === 'propertyNames') {
    const name = error.propertyName ?? String(params.propertyName);
    const rule = typeof parent.description === 'string' ? ` (${parent.description})` : '';
    return refuse(here, `key ${JSON.stringify(name.slice(0, 64))} is not allowed${rule}`);
  }
  const limit = String(params.limit);
  switch (error.keyword) {
    case 'required':
      return refuse(child(params.missingProperty), 'is required');
    case 'additionalProperties':
      return refuse(child(params.additionalProperty), 'unknown field');
    case 'type':
      return refuse(here, `expected ${typeWords(params.type)}`);
    case 'const':
      return refuse(here, `expected ${JSON.stringify(params.allowedValue)}`);
    case 'enum':
      return refuse(here, `expected one of ${(params.allowedValues as unknown[]).map(String).join(', ')}`);
    case 'discriminator':
      return params.error === 'mapping'
        ? refuse(child(params.tag), `unknown ${String(params.tag)} ${JSON.stringify(params.tagValue)}`)
        : refuse(child(params.tag), params.tagValue === undefined ? 'is required' : 'expected a string');
    case 'minLength':
      return refuse(here, params.limit === 1 ? 'is required' : `must be at least ${limit} characters`);
    case 'maxLength':
      return refuse(here, `must be at most ${limit} characters`);
    case 'pattern':
      if (params.pattern === NO_NUL) return refuse(here, 'contains a NUL character');
      return refuse(
        here,
        `expected ${typeof parent.description === 'string' ? parent.description : `a string matching ${String(params.pattern)}`}`,
      );
    case 'minimum':
      return refuse(here, `must be at least ${limit}`);
    case 'maximum':
      return refuse(here, `must be at most ${limit}`);
    case 'minItems':
      return refuse(here, `needs at least ${limit} item${params.limit === 1 ? '' : 's'}`);
    case 'maxItems':
      return refuse(here, `takes at most ${limit} items`);
    default:
      return refuse(here, error.message ?? 'is not valid');
  }
}
