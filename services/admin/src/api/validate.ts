/**
 * Request validation with clear 400s: each check names the field and says what was expected.
 * Small on purpose (no class-validator): the API's inputs are flat JSON objects and query strings.
 */
import { ApiError } from './errors.js';

export type Check<T> = (value: unknown, field: string) => T;

const bad = (field: string, message: string): ApiError =>
  new ApiError('invalid_argument', `${field}: ${message}`, field);

export function str(
  options: { min?: number; max?: number; pattern?: RegExp; what?: string } = {},
): Check<string> {
  const { min = 0, max = 1000, pattern, what } = options;
  return (value, field) => {
    if (typeof value !== 'string') throw bad(field, 'expected a string');
    if ([...value].length < min)
      throw bad(field, min === 1 ? 'is required' : `must be at least ${min} characters`);
    if ([...value].length > max) throw bad(field, `must be at most ${max} characters`);
    if (pattern !== undefined && !pattern.test(value))
      throw bad(field, `expected ${what ?? String(pattern)}`);
    return value;
  };
}

export function int(options: { min?: number; max?: number } = {}): Check<number> {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  return (value, field) => {
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw bad(field, 'expected an integer');
    if (n < min || n > max) throw bad(field, `expected an integer from ${min} to ${max}`);
    return n;
  };
}

export function bool(): Check<boolean> {
  return (value, field) => {
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    throw bad(field, 'expected true or false');
  };
}

export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  return (value, field) => {
    if (typeof value === 'string' && (values as readonly string[]).includes(value)) return value as T;
    throw bad(field, `expected one of ${values.join(', ')}`);
  };
}

export function list<T>(item: Check<T>, options: { min?: number; max?: number } = {}): Check<T[]> {
  const { min = 0, max = 100 } = options;
  return (value, field) => {
    if (!Array.isArray(value)) throw bad(field, 'expected an array');
    if (value.length < min) throw bad(field, `needs at least ${min} item${min === 1 ? '' : 's'}`);
    if (value.length > max) throw bad(field, `takes at most ${max} items`);
    return value.map((v, i) => item(v, `${field}[${i}]`));
  };
}

export function time(): Check<Date> {
  return (value, field) => {
    if (typeof value !== 'string' || Number.isNaN(Date.parse(value)) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
      throw bad(field, 'expected an ISO 8601 time such as 2026-01-31T12:00:00Z');
    }
    return new Date(value);
  };
}

type Shape = Record<string, { check: Check<unknown>; optional: boolean }>;
type Infer<S extends Shape> = {
  [K in keyof S as S[K]['optional'] extends true ? never : K]: ReturnType<S[K]['check']>;
} & {
  [K in keyof S as S[K]['optional'] extends true ? K : never]?: ReturnType<S[K]['check']>;
};

export const required = <T>(check: Check<T>) => ({ check, optional: false as const });
export const optional = <T>(check: Check<T>) => ({ check, optional: true as const });

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
export function nested<S extends Shape>(shape: S): Check<Infer<S>> {
  return (value, field) => {
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
  return (value, field) => check(value, field).toLowerCase();
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
