/**
 * Request validation, schema first: every check is built from a JSON Schema (written with
 * TypeBox, so the handler gets the static type from the same definition) and validated by Ajv
 * against exactly that schema, which is also what /api/docs publishes. A failure is a clear 400
 * naming the field and saying what was expected. The API's inputs are JSON objects (bodies) and
 * query strings; fields are checked one by one, in the order declared, so the first problem wins.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { ApiError } from './errors.js';
import { PASSWORD_HINT, PASSWORD_MAX, PASSWORD_MIN } from './password-policy.js';

/** A field check: validates (and normalises) one value; `schema` is its documented JSON Schema. */
export interface Check<T> {
  (value: unknown, field: string): T;
  readonly schema: TSchema;
}

/**
 * JSON Schema 2020-12 (the dialect of OpenAPI 3.1). Lengths count code points and patterns are
 * Unicode regular expressions, as the JSON Schema specification says.
 */
const ajv = new Ajv2020({ strict: true, allErrors: false });

const bad = (field: string, message: string): ApiError =>
  new ApiError('invalid_argument', `${field}: ${message}`, field);

/** What a failed keyword means, in the words of the API's 400 messages. */
function problem(error: ErrorObject | undefined, schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s.enum)) return `expected one of ${s.enum.join(', ')}`;
  switch (error?.keyword) {
    case 'type':
      return s.type === 'integer'
        ? 'expected an integer'
        : s.type === 'boolean'
          ? 'expected true or false'
          : s.type === 'array'
            ? 'expected an array'
            : s.type === 'object'
              ? 'expected a JSON object'
              : 'expected a string';
    case 'minLength':
      return s.minLength === 1 ? 'is required' : `must be at least ${String(s.minLength)} characters`;
    case 'maxLength':
      return `must be at most ${String(s.maxLength)} characters`;
    case 'pattern':
      return `expected ${typeof s.description === 'string' ? s.description : String(s.pattern)}`;
    case 'minimum':
    case 'maximum':
      return `expected an integer from ${String(s.minimum)} to ${String(s.maximum)}`;
    case 'minItems':
      return `needs at least ${String(s.minItems)} item${s.minItems === 1 ? '' : 's'}`;
    case 'maxItems':
      return `takes at most ${String(s.maxItems)} items`;
    default:
      return error?.message ?? 'is not valid';
  }
}

/** A check of `schema` (compiled once), with an optional coercion before and a transform after. */
function checkOf<T>(
  schema: TSchema,
  options: { coerce?: (value: unknown) => unknown; then?: (value: T, field: string) => T } = {},
): Check<T> {
  const validate: ValidateFunction = ajv.compile(schema);
  const check = (value: unknown, field: string): T => {
    const coerced = options.coerce === undefined ? value : options.coerce(value);
    if (!validate(coerced)) throw bad(field, problem(validate.errors?.[0], schema));
    return options.then === undefined ? (coerced as T) : options.then(coerced as T, field);
  };
  return Object.assign(check, { schema });
}

export function str(
  options: { min?: number; max?: number; pattern?: RegExp; what?: string } = {},
): Check<string> {
  const { min = 0, max = 1000, pattern, what } = options;
  // JSON Schema patterns have no flags (a flag would be lost in the published schema).
  if (pattern !== undefined && pattern.flags !== '') throw new Error(`pattern ${String(pattern)} has flags`);
  return checkOf<string>(
    Type.String({
      ...(min > 0 ? { minLength: min } : {}),
      maxLength: max,
      ...(pattern === undefined ? {} : { pattern: pattern.source }),
      ...(what === undefined ? {} : { description: what }),
    }),
  );
}

/** Query strings carry numbers and booleans as text; a JSON body may too. */
const fromText = (value: unknown): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;

export function int(options: { min?: number; max?: number; description?: string } = {}): Check<number> {
  const { min = 0, max = Number.MAX_SAFE_INTEGER, description } = options;
  return checkOf<number>(
    Type.Integer({ minimum: min, maximum: max, ...(description === undefined ? {} : { description }) }),
    {
      coerce: (value) => {
        const n = fromText(value);
        // Integers beyond 2^53 are not exact in JSON numbers: refused like a non-integer.
        return typeof n === 'number' && !Number.isSafeInteger(n) ? String(n) : n;
      },
    },
  );
}

export function bool(): Check<boolean> {
  return checkOf<boolean>(Type.Boolean(), {
    coerce: (value) => (value === 'true' ? true : value === 'false' ? false : value),
  });
}

export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  return checkOf<T>(Type.Unsafe<T>({ type: 'string', enum: [...values] }));
}

export function list<T>(item: Check<T>, options: { min?: number; max?: number } = {}): Check<T[]> {
  const { min = 0, max = 100 } = options;
  const shape = checkOf<unknown[]>(Type.Array(Type.Unknown(), { minItems: min, maxItems: max }));
  const check = (value: unknown, field: string): T[] =>
    shape(value, field).map((v, i) => item(v, `${field}[${i}]`));
  return Object.assign(check, { schema: Type.Array(item.schema, { minItems: min, maxItems: max }) });
}

export function time(): Check<Date> {
  const what = 'an ISO 8601 time such as 2026-01-31T12:00:00Z';
  const check = checkOf<string>(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}', description: what }));
  return Object.assign(
    (value: unknown, field: string): Date => {
      const text = check(value, field);
      if (Number.isNaN(Date.parse(text))) throw bad(field, `expected ${what}`);
      return new Date(text);
    },
    { schema: check.schema },
  );
}

/**
 * A new password: the length rule of password-policy.ts is in the schema; the rest of the rule
 * (different characters, not the address, not a common password) needs the address and is
 * checked by the handler once the body parsed.
 */
export const password = (): Check<string> =>
  str({ min: PASSWORD_MIN, max: PASSWORD_MAX, what: PASSWORD_HINT });

export type Shape = Record<string, { check: Check<unknown>; optional: boolean }>;
type Infer<S extends Shape> = {
  [K in keyof S as S[K]['optional'] extends true ? never : K]: ReturnType<S[K]['check']>;
} & {
  [K in keyof S as S[K]['optional'] extends true ? K : never]?: ReturnType<S[K]['check']>;
};

export const required = <T>(check: Check<T>) => ({ check, optional: false as const });
export const optional = <T>(check: Check<T>) => ({ check, optional: true as const });

/** The JSON Schema of an object of `shape` (what parseObject accepts). */
export function shapeSchema(shape: Shape, description?: string): TSchema {
  const properties = Object.fromEntries(
    Object.entries(shape).map(([key, { check, optional: isOptional }]) => [
      key,
      isOptional ? Type.Optional(check.schema) : check.schema,
    ]),
  );
  return Type.Object(properties, {
    additionalProperties: false,
    ...(description === undefined ? {} : { description }),
  });
}

/** Validates a JSON body (an object; unknown fields are refused so typos do not pass silently). */
export function parseObject<S extends Shape>(input: unknown, shape: S, where = 'body'): Infer<S> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ApiError('invalid_argument', `${where} must be a JSON object`);
  }
  const record = input as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!Object.hasOwn(shape, key)) throw bad(key.slice(0, 60), `unknown field`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, { check, optional: isOptional }] of Object.entries(shape)) {
    const value = record[key];
    if (value === undefined || value === null || (where === 'query' && value === '')) {
      if (!isOptional) throw bad(key, 'is required');
      continue;
    }
    out[key] = check(value, key);
  }
  return out as Infer<S>;
}

/** A nested JSON object (e.g. `limits`), checked like a body; errors name `outer.inner`. */
export function nested<S extends Shape>(shape: S, description?: string): Check<Infer<S>> {
  const check = (value: unknown, field: string): Infer<S> => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw bad(field, 'expected a JSON object');
    try {
      return parseObject(value, shape, field);
    } catch (error) {
      if (
        error instanceof ApiError &&
        error.field !== undefined &&
        error.message.startsWith(`${error.field}: `)
      )
        throw bad(`${field}.${error.field}`, error.message.slice(error.field.length + 2));
      throw error;
    }
  };
  return Object.assign(check, { schema: shapeSchema(shape, description) });
}

/** Query strings: like bodies, but every value is a string and unknown parameters are refused too. */
export const parseQuery = <S extends Shape>(input: unknown, shape: S): Infer<S> =>
  parseObject(input ?? {}, shape, 'query');

export const pageShape = {
  pageSize: optional(int({ min: 1, max: 1000 })),
  pageToken: optional(str({ max: 2000 })),
};

export const DOMAIN_PATTERN =
  /^(?=.{1,253}$)[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\u0080-\uffff-]{0,61}[A-Za-z0-9\u0080-\uffff])?(?:\.[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\u0080-\uffff-]{0,61}[A-Za-z0-9\u0080-\uffff])?)+$/;
export const domainName = (): Check<string> => {
  const check = str({ min: 1, max: 253, pattern: DOMAIN_PATTERN, what: 'a domain name such as example.com' });
  return Object.assign((value: unknown, field: string) => check(value, field).toLowerCase(), {
    schema: check.schema,
  });
};
export const address = (): Check<string> =>
  str({
    min: 3,
    max: 320,
    pattern: /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
    what: 'an address such as name@example.com',
  });
export const objectId = (): Check<string> =>
  str({ min: 1, max: 64, pattern: /^[A-Za-z0-9_-]+$/, what: 'an id' });

/** The domain part of an address, lower-cased (the policy compares domain names). */
export const domainOf = (addr: string): string => addr.slice(addr.lastIndexOf('@') + 1).toLowerCase();
