/** The shared schema helpers: compiled validators and refusals that name the field by its path. */
import { describe, expect, it } from 'vitest';
import { NO_NUL, TaggedUnion, Type, compile, fieldPath, joinPath, nest, refuse } from '../src/index.js';

const Body = TaggedUnion('kind', [
  Type.Object({ kind: Type.Literal('inline'), size: Type.Integer({ minimum: 0 }) }),
  Type.Object({ kind: Type.Literal('object'), object: Type.String({ minLength: 1 }) }),
]);
const Payload = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z]{2,8}$', description: '2 to 8 lower-case letters' }),
    note: Type.Optional(Type.String({ maxLength: 5, pattern: NO_NUL })),
    level: Type.Optional(Type.Unsafe<'low' | 'high'>({ type: 'string', enum: ['low', 'high'] })),
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 9 })),
    tags: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 2 })),
    labels: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        propertyNames: { pattern: '^[a-z_]+$', description: 'snake_case' },
      }),
    ),
    body: Type.Optional(Body),
    version: Type.Optional(Type.Literal(1)),
  },
  { additionalProperties: false },
);
const check = compile(Payload);

describe('compile', () => {
  it('passes a valid value through, typed by the schema', () => {
    const value = { id: 'ab', tags: ['x'], body: { kind: 'inline', size: 0 } };
    const checked = check(value);
    expect(checked).toEqual({ ok: true, value });
    // The static type comes from the schema: `body.kind` narrows the union.
    if (checked.ok && checked.value.body?.kind === 'inline') expect(checked.value.body.size).toBe(0);
    expect(check.schema).toBe(Payload);
  });

  it.each<[string, unknown, string, string]>([
    ['a non-object', 'x', '', 'expected an object'],
    ['a missing field', {}, 'id', 'is required'],
    ['a pattern, in the words of its description', { id: 'A1' }, 'id', 'expected 2 to 8 lower-case letters'],
    ['an unknown field of a closed object', { id: 'ab', extra: 1 }, 'extra', 'unknown field'],
    ['a NUL', { id: 'ab', note: 'a\u0000' }, 'note', 'contains a NUL character'],
    ['a long string', { id: 'ab', note: 'abcdef' }, 'note', 'must be at most 5 characters'],
    ['an enum', { id: 'ab', level: 'mid' }, 'level', 'expected one of low, high'],
    ['a non-integer', { id: 'ab', count: 1.5 }, 'count', 'expected an integer'],
    ['a minimum', { id: 'ab', count: 0 }, 'count', 'must be at least 1'],
    ['a maximum', { id: 'ab', count: 10 }, 'count', 'must be at most 9'],
    ['an empty list', { id: 'ab', tags: [] }, 'tags', 'needs at least 1 item'],
    ['a long list', { id: 'ab', tags: ['a', 'b', 'c'] }, 'tags', 'takes at most 2 items'],
    ['an item', { id: 'ab', tags: [true] }, 'tags[0]', 'expected a string'],
    ['a key', { id: 'ab', labels: { 'a.b': 'x' } }, 'labels', 'key "a.b" is not allowed (snake_case)'],
    [
      'an odd key, quoted in the path',
      { id: 'ab', labels: { a: 'x', b: 1 } },
      'labels.b',
      'expected a string',
    ],
    ['an unknown tag', { id: 'ab', body: { kind: 'zip' } }, 'body.kind', 'unknown kind "zip"'],
    ['a missing tag', { id: 'ab', body: {} }, 'body.kind', 'is required'],
    ['a field of the tagged branch', { id: 'ab', body: { kind: 'object' } }, 'body.object', 'is required'],
    ['a constant', { id: 'ab', version: 2 }, 'version', 'expected 1'],
  ])('refuses %s, naming the field', (_what, value, field, reason) => {
    expect(check(value)).toEqual({
      ok: false,
      field,
      problem: field === '' ? reason : `${field}: ${reason}`,
    });
  });
});

describe('paths', () => {
  it('writes JSON Pointers (RFC 6901) as JavaScript-like paths', () => {
    expect(fieldPath('')).toBe('');
    expect(fieldPath('/envelope/rcptTo/0')).toBe('envelope.rcptTo[0]');
    expect(fieldPath('/attributes/a~1b', 'c d')).toBe('attributes["a/b"]["c d"]');
    expect(fieldPath('/x~0y')).toBe('["x~y"]');
  });

  it('re-roots a nested refusal under the field that carried it', () => {
    expect(nest('queuedEvent', refuse('kind', 'expected one of a, b'))).toEqual(
      refuse('queuedEvent.kind', 'expected one of a, b'),
    );
    expect(nest('queuedEvent', refuse('', 'expected an object')).problem).toBe(
      'queuedEvent: expected an object',
    );
    expect(joinPath('tags', '[2]')).toBe('tags[2]');
    expect(joinPath('', 'a')).toBe('a');
  });
});
