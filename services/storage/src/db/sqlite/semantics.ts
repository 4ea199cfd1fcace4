/**
 * MongoDB's query, update, projection and sort semantics in plain TypeScript, for the in-process
 * document store over SQLite (ADR 0011). Everything here is pure: documents in, documents or
 * booleans out. The references are MongoDB's manual pages "Comparison/Sort Order" (BSON type
 * order), "Query Predicates", "Update Operators" and "Projection"; where MongoDB's documented
 * behaviour and FerretDB 1.24's differ, this file follows MongoDB.
 *
 * Values are what the driver deserializes: numbers, strings, booleans, null, Date, RegExp,
 * arrays, plain objects, and the BSON classes (ObjectId, Binary, Long, Decimal128, Timestamp,
 * MinKey, MaxKey, BSONRegExp...), recognised by their `_bsontype` so that two copies of the
 * `bson` package do not matter. Buffer and Uint8Array count as Binary of subtype 0; `undefined`
 * counts as null (the driver serializes it as null).
 */
import { Decimal128, Long, MongoServerError, Timestamp, type Document } from 'mongodb';

export type SortSpec = Document | ReadonlyArray<readonly [string, 1 | -1]> | string | undefined;

// ---------------------------------------------------------------------------------------------
// Errors

/** MongoDB's error codes used here (src/mongo/base/error_codes.yml). */
const ErrorCode = {
  BadValue: 2,
  FailedToParse: 9,
  TypeMismatch: 14,
  PathNotViable: 28,
  ConflictingUpdateOperators: 40,
  NotSingleValueField: 54,
  EmptyFieldName: 56,
  ImmutableField: 66,
  ProjectionCollision: 31249,
  ProjectionMix: 31254,
} as const;
type ErrorCodeName = keyof typeof ErrorCode;

function serverError(codeName: ErrorCodeName, message: string): MongoServerError {
  return new MongoServerError({ message, errmsg: message, code: ErrorCode[codeName], codeName, ok: 0 });
}

// ---------------------------------------------------------------------------------------------
// Types and the BSON comparison order

/** MongoDB's canonical type order; `emptyArray` is only a sort key (an empty array sorts before null). */
const Rank = {
  minKey: 0,
  emptyArray: 1,
  null: 2,
  number: 3,
  string: 4,
  object: 5,
  array: 6,
  binary: 7,
  objectId: 8,
  boolean: 9,
  date: 10,
  timestamp: 11,
  regex: 12,
  code: 13,
  maxKey: 14,
} as const;
type RankValue = (typeof Rank)[keyof typeof Rank];

interface BsonTagged {
  readonly _bsontype: string;
}

function bsonType(v: object): string | undefined {
  const tag = (v as Partial<BsonTagged>)._bsontype;
  return typeof tag === 'string' ? tag : undefined;
}

function isPlainObject(v: unknown): v is Document {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isRegexValue(v: unknown): v is RegExp | { pattern: string; options: string } {
  return v instanceof RegExp || (typeof v === 'object' && v !== null && bsonType(v) === 'BSONRegExp');
}

function rankOf(v: unknown): RankValue {
  switch (typeof v) {
    case 'number':
    case 'bigint':
      return Rank.number;
    case 'string':
      return Rank.string;
    case 'boolean':
      return Rank.boolean;
    case 'undefined':
      return Rank.null;
    case 'object':
      break;
    default:
      return Rank.object;
  }
  if (v === null) return Rank.null;
  if (Array.isArray(v)) return Rank.array;
  if (v instanceof Date) return Rank.date;
  if (v instanceof RegExp) return Rank.regex;
  if (v instanceof Uint8Array) return Rank.binary;
  switch (bsonType(v)) {
    case undefined:
      return Rank.object;
    case 'ObjectId':
      return Rank.objectId;
    case 'Long':
    case 'Int32':
    case 'Double':
    case 'Decimal128':
      return Rank.number;
    case 'Binary':
      return Rank.binary;
    case 'Timestamp':
      return Rank.timestamp;
    case 'BSONRegExp':
      return Rank.regex;
    case 'BSONSymbol':
      return Rank.string;
    case 'MinKey':
      return Rank.minKey;
    case 'MaxKey':
      return Rank.maxKey;
    case 'Code':
      return Rank.code;
    default:
      return Rank.object;
  }
}

/** A number as JS can compare it exactly: doubles as number, 64-bit integers as bigint. */
function numericOf(v: unknown): number | bigint {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  const tag = bsonType(v as object);
  if (tag === 'Long') {
    const long = v as Long;
    return long.high === 0 || long.high === -1 ? long.toNumber() : BigInt(long.toString());
  }
  if (tag === 'Int32' || tag === 'Double') return (v as { value: number }).value;
  // Decimal128 has no exact JS form; its double value orders it among the others.
  return Number((v as Decimal128).toString());
}

function compareNumeric(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'number' && typeof b === 'number') {
    // MongoDB sorts NaN below every other number and treats NaN as equal to NaN.
    if (a < b) return -1;
    if (a > b) return 1;
    if (a === b) return 0;
    const na = Number.isNaN(a);
    const nb = Number.isNaN(b);
    return na && nb ? 0 : na ? -1 : 1;
  }
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'number') return -compareBigToNumber(b as bigint, a);
  return compareBigToNumber(a, b as number);
}

function compareBigToNumber(a: bigint, b: number): number {
  if (Number.isNaN(b)) return 1;
  if (b === Infinity) return -1;
  if (b === -Infinity) return 1;
  const floor = BigInt(Math.floor(b));
  if (a < floor) return -1;
  if (a > floor) return 1;
  return Number.isInteger(b) ? 0 : -1;
}

/** Strings compare by UTF-8 bytes in MongoDB (no collation): code point order, not UTF-16's. */
function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (U+10000 and up) sort after U+E000..U+FFFF in code point order.
      x = x < 0xe000 ? x + 0x2000 : x - 0x800;
      y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    }
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function binaryParts(v: unknown): { bytes: Uint8Array; subtype: number } {
  if (v instanceof Uint8Array) return { bytes: v, subtype: 0 };
  const bin = v as { buffer: Uint8Array; position: number; sub_type: number };
  return { bytes: bin.buffer.subarray(0, bin.position), subtype: bin.sub_type };
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function regexParts(v: unknown): [string, string] {
  if (v instanceof RegExp) return [v.source, v.flags];
  const r = v as { pattern: string; options: string };
  return [r.pattern, r.options];
}

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/**
 * MongoDB's BSON comparison order across types (MinKey<null<numbers<string<object<array<Binary<
 * ObjectId<boolean<Date<Timestamp<RegExp<MaxKey), and within a type.
 */
export function compareValues(a: unknown, b: unknown): number {
  const ra = rankOf(a);
  const rb = rankOf(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case Rank.minKey:
    case Rank.emptyArray:
    case Rank.null:
    case Rank.maxKey:
      return 0;
    case Rank.number:
      return compareNumeric(numericOf(a), numericOf(b));
    case Rank.string:
      return compareStrings(String(a), String(b));
    case Rank.object:
      return compareDocuments(a as Document, b as Document);
    case Rank.array:
      return compareArrays(a as unknown[], b as unknown[]);
    case Rank.binary: {
      // Binary: by length, then subtype, then bytes.
      const x = binaryParts(a);
      const y = binaryParts(b);
      if (x.bytes.length !== y.bytes.length) return x.bytes.length < y.bytes.length ? -1 : 1;
      if (x.subtype !== y.subtype) return x.subtype < y.subtype ? -1 : 1;
      return compareBytes(x.bytes, y.bytes);
    }
    case Rank.objectId:
      return compareBytes((a as { id: Uint8Array }).id, (b as { id: Uint8Array }).id);
    case Rank.boolean:
      return a === b ? 0 : a === false ? -1 : 1;
    case Rank.date:
      return compareNumeric((a as Date).getTime(), (b as Date).getTime());
    case Rank.timestamp: {
      const x = a as Timestamp;
      const y = b as Timestamp;
      return x.t !== y.t ? (x.t < y.t ? -1 : 1) : sign(x.i - y.i);
    }
    case Rank.regex: {
      const [pa, fa] = regexParts(a);
      const [pb, fb] = regexParts(b);
      return compareStrings(pa, pb) || compareStrings(fa, fb);
    }
    case Rank.code:
      return compareStrings(String((a as { code: unknown }).code), String((b as { code: unknown }).code));
  }
}

function compareArrays(a: readonly unknown[], b: readonly unknown[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareValues(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Documents compare pair by pair in field order: the value's type, then the name, then the value. */
function compareDocuments(a: Document, b: Document): number {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const n = Math.min(ka.length, kb.length);
  for (let i = 0; i < n; i++) {
    const na = ka[i] as string;
    const nb = kb[i] as string;
    const va: unknown = a[na];
    const vb: unknown = b[nb];
    const ra = rankOf(va);
    const rb = rankOf(vb);
    if (ra !== rb) return ra < rb ? -1 : 1;
    const names = compareStrings(na, nb);
    if (names !== 0) return names;
    const values = compareValues(va, vb);
    if (values !== 0) return values;
  }
  return ka.length === kb.length ? 0 : ka.length < kb.length ? -1 : 1;
}

/** Deep equality as MongoDB's $eq sees it (ObjectId, Binary, Date, Long/number, nested docs, arrays). */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'string' || typeof b === 'string' || typeof a === 'boolean') {
    return typeof a === typeof b && compareValues(a, b) === 0;
  }
  return compareValues(a, b) === 0;
}

// ---------------------------------------------------------------------------------------------
// Paths

const MISSING: unique symbol = Symbol('missing');
type Slot = unknown;

function arrayIndex(part: string): number {
  return /^(0|[1-9][0-9]*)$/.test(part) ? Number(part) : -1;
}

function isDocument(v: unknown): v is Document {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && rankOf(v) === Rank.object;
}

/**
 * The values a query sees at `parts[i..]`, as MongoDB's path iterator yields them: an array in
 * the middle of a path is entered (each element that is a document is looked into, and a numeric
 * part also picks that element); a document without the field yields MISSING; scalars inside an
 * array are passed over. An array at the end is yielded whole; the operators look at it and at
 * its elements.
 */
function collect(value: unknown, parts: readonly string[], i: number, out: Slot[]): void {
  if (i === parts.length) {
    out.push(value);
    return;
  }
  const part = parts[i] as string;
  if (Array.isArray(value)) {
    const index = arrayIndex(part);
    if (index >= 0) {
      if (index < value.length) collect(value[index], parts, i + 1, out);
      else out.push(MISSING);
      for (const el of value) {
        if (isDocument(el) && Object.hasOwn(el, part)) collect(el[part], parts, i + 1, out);
      }
      return;
    }
    for (const el of value) {
      if (isDocument(el)) {
        if (Object.hasOwn(el, part)) collect(el[part], parts, i + 1, out);
        else out.push(MISSING);
      }
    }
    return;
  }
  if (isDocument(value) && Object.hasOwn(value, part)) collect(value[part], parts, i + 1, out);
  else out.push(MISSING);
}

function splitPath(path: string): string[] {
  return path.split('.');
}

/**
 * The value(s) at a dotted path, traversing arrays the way MongoDB queries do: arrays met in the
 * middle of the path are entered (their documents looked into; a numeric part also picks an
 * element). Missing fields contribute nothing. An array at the end of the path is returned whole;
 * callers that want its elements (as a multikey index does) expand it.
 */
export function valuesAtPath(doc: Document, path: string): unknown[] {
  const out: Slot[] = [];
  collect(doc, splitPath(path), 0, out);
  return out.filter((v) => v !== MISSING);
}

// ---------------------------------------------------------------------------------------------
// Query

type Predicate = (doc: Document) => boolean;
/** Tests the slots found at one path. */
type SlotsTest = (slots: readonly Slot[]) => boolean;
/** Tests one value (an element, or a whole slot) without looking into arrays. */
type ValueTest = (v: unknown) => boolean;

/**
 * Compiles a filter into a predicate, validating it whole (so a bad operator throws even when no
 * document is tested). Throws MongoServerError (code 2, BadValue) on an unknown operator.
 */
export function compileFilter(filter: Document): Predicate {
  const parts: Predicate[] = [];
  for (const key of Object.keys(filter)) {
    const cond: unknown = filter[key];
    if (key.startsWith('$')) {
      const p = compileLogical(key, cond);
      if (p !== undefined) parts.push(p);
      continue;
    }
    const path = splitPath(key);
    const test = compileCondition(cond);
    parts.push((doc) => {
      const slots: Slot[] = [];
      collect(doc, path, 0, slots);
      return test(slots);
    });
  }
  if (parts.length === 0) return () => true;
  if (parts.length === 1) return parts[0] as Predicate;
  return (doc) => parts.every((p) => p(doc));
}

/** Does the document match the query filter? Throws MongoServerError (code 2, BadValue) on an unknown operator. */
export function matches(doc: Document, filter: Document): boolean {
  // Not cached by filter object: callers reuse and mutate filter objects (paging loops). Use
  // compileFilter once per query to test many documents.
  return compileFilter(filter)(doc);
}

function compileClauses(op: string, cond: unknown): Predicate[] {
  if (!Array.isArray(cond) || cond.length === 0)
    throw serverError('BadValue', `${op} must be a nonempty array`);
  return cond.map((clause: unknown) => {
    if (!isPlainObject(clause)) throw serverError('BadValue', `${op} argument's entries must be objects`);
    return compileFilter(clause);
  });
}

function compileLogical(op: string, cond: unknown): Predicate | undefined {
  switch (op) {
    case '$and': {
      const clauses = compileClauses(op, cond);
      return (doc) => clauses.every((c) => c(doc));
    }
    case '$or': {
      const clauses = compileClauses(op, cond);
      return (doc) => clauses.some((c) => c(doc));
    }
    case '$nor': {
      const clauses = compileClauses(op, cond);
      return (doc) => !clauses.some((c) => c(doc));
    }
    case '$comment':
      return undefined;
    default:
      throw serverError('BadValue', `unknown top level operator: ${op}`);
  }
}

/** True for `{ $op: ... }` objects (operator expressions), false for values including documents. */
function isOperatorObject(v: unknown): v is Document {
  if (!isPlainObject(v)) return false;
  for (const key in v) return key.startsWith('$');
  return false;
}

/** The condition on one field: a value (equality, or regex match for a RegExp) or operators. */
function compileCondition(cond: unknown): SlotsTest {
  if (isOperatorObject(cond)) return compileOperators(cond);
  if (isRegexValue(cond)) return anySlot(expanding(regexTest(cond)));
  return equalityTest(cond);
}

function anySlot(test: (slot: Slot) => boolean): SlotsTest {
  return (slots) => {
    for (const s of slots) if (test(s)) return true;
    return false;
  };
}

/** A test of a value that also matches an array holding a matching element (one level deep). */
function expanding(test: ValueTest): (slot: Slot) => boolean {
  return (slot) => {
    if (slot === MISSING) return false;
    if (test(slot)) return true;
    if (Array.isArray(slot)) for (const el of slot) if (test(el)) return true;
    return false;
  };
}

function isNullish(v: unknown): boolean {
  return v === null || v === undefined;
}

function equalityTest(value: unknown): SlotsTest {
  if (isNullish(value)) {
    // `{ a: null }` matches null, a missing field, and an array holding null.
    return anySlot(
      (slot) => slot === MISSING || isNullish(slot) || (Array.isArray(slot) && slot.some(isNullish)),
    );
  }
  return anySlot(expanding((v) => valuesEqual(v, value)));
}

function regexFrom(value: unknown, options: string | undefined): RegExp {
  let pattern: string;
  let flags: string;
  if (typeof value === 'string') {
    pattern = value;
    flags = '';
  } else if (isRegexValue(value)) {
    [pattern, flags] = regexParts(value);
  } else {
    throw serverError('BadValue', '$regex has to be a string');
  }
  if (options !== undefined) flags = options;
  let jsFlags = '';
  for (const f of flags) {
    switch (f) {
      case 'i':
      case 'm':
      case 's':
        if (!jsFlags.includes(f)) jsFlags += f;
        break;
      case 'x':
        pattern = stripExtended(pattern);
        break;
      case 'u':
      case 'g':
      case 'y':
      case 'd':
      case 'v':
        break;
      default:
        throw serverError('BadValue', `invalid flag in regex options: ${f}`);
    }
  }
  // MongoDB's PCRE works on UTF-8 code points: the `u` flag gives JS the same view of characters
  // outside the BMP. Patterns that are only valid without it (identity escapes) fall back.
  try {
    return new RegExp(pattern, jsFlags + 'u');
  } catch {
    try {
      return new RegExp(pattern, jsFlags);
    } catch (error) {
      throw serverError('BadValue', `Regular expression is invalid: ${(error as Error).message}`);
    }
  }
}

/** PCRE's extended mode: unescaped whitespace outside classes is dropped, `#` starts a comment. */
function stripExtended(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\') {
      out += c + (pattern[i + 1] ?? '');
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      inClass = true;
      out += c;
    } else if (c === '#') {
      while (i < pattern.length && pattern[i] !== '\n') i++;
    } else if (!/\s/.test(c)) {
      out += c;
    }
  }
  return out;
}

function regexTest(value: unknown, options?: string): ValueTest {
  const re = regexFrom(value, options);
  return (v) => {
    if (typeof v === 'string') {
      re.lastIndex = 0;
      return re.test(v);
    }
    if (typeof v === 'object' && v !== null && bsonType(v) === 'BSONSymbol')
      return re.test((v as { value: string }).value);
    return isRegexValue(v) && isRegexValue(value) && compareValues(v, value) === 0;
  };
}

const rangeOps = {
  $gt: (c: number) => c > 0,
  $gte: (c: number) => c >= 0,
  $lt: (c: number) => c < 0,
  $lte: (c: number) => c <= 0,
} as const;
type RangeOp = keyof typeof rangeOps;

function isNaNValue(v: unknown): boolean {
  if (rankOf(v) !== Rank.number) return false;
  const n = numericOf(v);
  return typeof n === 'number' && Number.isNaN(n);
}

/** Range operators compare within one type only ("type bracketing"): `{ $gt: 5 }` never matches a string. */
function rangeValueTest(op: RangeOp, operand: unknown): ValueTest {
  const accept = rangeOps[op];
  const rank = rankOf(operand);
  if (rank === Rank.minKey || rank === Rank.maxKey) return (v) => accept(compareValues(v, operand));
  if (rank === Rank.number) {
    // NaN sorts below every number, but as a query bound it compares false to everything except
    // NaN itself under $gte/$lte (MongoDB's ComparisonMatchExpression special case).
    const operandNaN = isNaNValue(operand);
    const inclusive = op === '$gte' || op === '$lte';
    return (v) => {
      if (rankOf(v) !== Rank.number) return false;
      if (operandNaN || isNaNValue(v)) return inclusive && operandNaN && isNaNValue(v);
      return accept(compareValues(v, operand));
    };
  }
  return (v) => rankOf(v) === rank && accept(compareValues(v, operand));
}

function rangeTest(op: RangeOp, operand: unknown): SlotsTest {
  const test = expanding(rangeValueTest(op, operand));
  // `$gte: null` and `$lte: null` match null and missing, like equality with null.
  if (isNullish(operand) && (op === '$gte' || op === '$lte')) return equalityTest(null);
  return anySlot(test);
}

function inTest(op: string, operand: unknown): SlotsTest {
  if (!Array.isArray(operand)) throw serverError('BadValue', `${op} needs an array`);
  const tests = operand.map((v: unknown) => {
    if (isOperatorObject(v)) throw serverError('BadValue', `cannot nest $ under ${op}`);
    return isRegexValue(v) ? anySlot(expanding(regexTest(v))) : equalityTest(v);
  });
  return (slots) => tests.some((t) => t(slots));
}

const typeAliases: Readonly<Record<string, number>> = {
  double: 1,
  string: 2,
  object: 3,
  array: 4,
  binData: 5,
  undefined: 6,
  objectId: 7,
  bool: 8,
  date: 9,
  null: 10,
  regex: 11,
  dbPointer: 12,
  javascript: 13,
  symbol: 14,
  javascriptWithScope: 15,
  int: 16,
  timestamp: 17,
  long: 18,
  decimal: 19,
  minKey: -1,
  maxKey: 127,
};

/** The BSON type number a deserialized value would be stored as. */
function bsonTypeNumber(v: unknown): number {
  switch (typeof v) {
    case 'number':
      // The driver stores integers that fit 32 bits as int32 and every other number as a double.
      return Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff && !Object.is(v, -0) ? 16 : 1;
    case 'bigint':
      return 18;
    case 'string':
      return 2;
    case 'boolean':
      return 8;
    case 'undefined':
      return 10;
    default:
      break;
  }
  if (v === null) return 10;
  if (Array.isArray(v)) return 4;
  if (v instanceof Date) return 9;
  if (v instanceof RegExp) return 11;
  if (v instanceof Uint8Array) return 5;
  switch (bsonType(v as object)) {
    case 'ObjectId':
      return 7;
    case 'Long':
      return 18;
    case 'Int32':
      return 16;
    case 'Double':
      return 1;
    case 'Decimal128':
      return 19;
    case 'Binary':
      return 5;
    case 'Timestamp':
      return 17;
    case 'BSONRegExp':
      return 11;
    case 'BSONSymbol':
      return 14;
    case 'MinKey':
      return -1;
    case 'MaxKey':
      return 127;
    case 'Code':
      return (v as { scope?: unknown }).scope ? 15 : 13;
    case 'DBRef':
    default:
      return 3;
  }
}

function typeTest(operand: unknown): SlotsTest {
  const wanted = (Array.isArray(operand) ? operand : [operand]).map((t: unknown) => {
    if (t === 'number') return 'number';
    if (typeof t === 'string') {
      const code = typeAliases[t];
      if (code === undefined) throw serverError('BadValue', `Unknown type name alias: ${t}`);
      return code;
    }
    if (typeof t === 'number' && Number.isInteger(t) && Object.values(typeAliases).includes(t)) return t;
    throw serverError('BadValue', `Invalid numerical type code: ${String(t)}`);
  });
  const test: ValueTest = (v) => {
    const code = bsonTypeNumber(v);
    return wanted.some((w) => (w === 'number' ? [1, 16, 18, 19].includes(code) : w === code));
  };
  return anySlot(expanding(test));
}

function sizeTest(operand: unknown): SlotsTest {
  const n =
    typeof operand === 'number'
      ? operand
      : rankOf(operand) === Rank.number
        ? Number(numericOf(operand))
        : NaN;
  if (!Number.isInteger(n)) throw serverError('BadValue', '$size needs a whole number');
  if (n < 0) throw serverError('BadValue', '$size may not be negative');
  return anySlot((slot) => Array.isArray(slot) && slot.length === n);
}

function modTest(operand: unknown): SlotsTest {
  if (!Array.isArray(operand) || operand.length !== 2) {
    throw serverError('BadValue', 'malformed mod, needs to be an array of two numbers');
  }
  const [d, r] = operand.map((v: unknown) => {
    if (rankOf(v) !== Rank.number)
      throw serverError('BadValue', 'malformed mod, divisor and remainder must be numbers');
    return Math.trunc(Number(numericOf(v)));
  }) as [number, number];
  if (d === 0) throw serverError('BadValue', 'divisor cannot be 0');
  return anySlot(expanding((v) => rankOf(v) === Rank.number && Math.trunc(Number(numericOf(v))) % d === r));
}

/** `$elemMatch`: some element of an array matches all the conditions together. */
function elemMatchTest(operand: unknown): SlotsTest {
  if (!isPlainObject(operand)) throw serverError('BadValue', '$elemMatch needs an Object');
  const first = Object.keys(operand)[0];
  let test: ValueTest;
  if (first !== undefined && first.startsWith('$') && !['$and', '$or', '$nor'].includes(first)) {
    // Value form: `{ $elemMatch: { $gte: 80, $lt: 85 } }` tests each element itself.
    const ops = compileOperators(operand);
    test = (el) => ops([el]);
  } else {
    const predicate = compileFilter(operand);
    test = (el) => isDocument(el) && predicate(el);
  }
  return anySlot((slot) => Array.isArray(slot) && slot.some(test));
}

function allTest(operand: unknown): SlotsTest {
  if (!Array.isArray(operand)) throw serverError('BadValue', '$all needs an array');
  if (operand.length === 0) return () => false;
  const tests = operand.map((v: unknown) => {
    if (isPlainObject(v) && Object.keys(v)[0] === '$elemMatch') return elemMatchTest(v.$elemMatch);
    if (isOperatorObject(v)) throw serverError('BadValue', 'no $ expressions in $all');
    return isRegexValue(v) ? anySlot(expanding(regexTest(v))) : equalityTest(v);
  });
  return (slots) => tests.every((t) => t(slots));
}

function notTest(operand: unknown): SlotsTest {
  if (isRegexValue(operand)) {
    const test = anySlot(expanding(regexTest(operand)));
    return (slots) => !test(slots);
  }
  if (!isPlainObject(operand)) throw serverError('BadValue', '$not needs a regex or a document');
  if (Object.keys(operand).length === 0) throw serverError('BadValue', '$not cannot be empty');
  if (!isOperatorObject(operand))
    throw serverError('BadValue', `unknown operator: ${Object.keys(operand)[0]}`);
  const test = compileOperators(operand);
  return (slots) => !test(slots);
}

/** `{ $gt: 1, $lt: 9 }`: each operator must hold on its own (possibly by different elements). */
function compileOperators(ops: Document): SlotsTest {
  const tests: SlotsTest[] = [];
  const keys = Object.keys(ops);
  for (const op of keys) {
    const operand: unknown = ops[op];
    switch (op) {
      case '$eq':
        tests.push(
          isNullish(operand) ? equalityTest(null) : anySlot(expanding((v) => valuesEqual(v, operand))),
        );
        break;
      case '$ne': {
        const eq = isNullish(operand)
          ? equalityTest(null)
          : anySlot(expanding((v) => valuesEqual(v, operand)));
        tests.push((slots) => !eq(slots));
        break;
      }
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        tests.push(rangeTest(op, operand));
        break;
      case '$in':
        tests.push(inTest(op, operand));
        break;
      case '$nin': {
        const test = inTest(op, operand);
        tests.push((slots) => !test(slots));
        break;
      }
      case '$exists': {
        const wanted = !(operand === false || operand === 0 || isNullish(operand));
        tests.push((slots) => slots.some((s) => s !== MISSING) === wanted);
        break;
      }
      case '$regex':
        tests.push(anySlot(expanding(regexTest(operand, optionsOf(ops)))));
        break;
      case '$options':
        if (!keys.includes('$regex')) throw serverError('BadValue', '$options needs a $regex');
        break;
      case '$not':
        tests.push(notTest(operand));
        break;
      case '$all':
        tests.push(allTest(operand));
        break;
      case '$size':
        tests.push(sizeTest(operand));
        break;
      case '$elemMatch':
        tests.push(elemMatchTest(operand));
        break;
      case '$type':
        tests.push(typeTest(operand));
        break;
      case '$mod':
        tests.push(modTest(operand));
        break;
      default:
        throw serverError('BadValue', `unknown operator: ${op}`);
    }
  }
  if (tests.length === 1) return tests[0] as SlotsTest;
  return (slots) => tests.every((t) => t(slots));
}

function optionsOf(ops: Document): string | undefined {
  const options: unknown = ops.$options;
  if (options === undefined) return undefined;
  if (typeof options !== 'string') throw serverError('BadValue', '$options has to be a string');
  return options;
}

// ---------------------------------------------------------------------------------------------
// Copies

function deepCopy<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map((el: unknown) => deepCopy(el)) as T;
  if (v instanceof Date) return new Date(v.getTime()) as T;
  if (Buffer.isBuffer(v)) return Buffer.from(v) as T;
  if (v instanceof Uint8Array) return new Uint8Array(v) as T;
  if (!isPlainObject(v)) return v; // BSON values are immutable in practice
  const out: Document = {};
  for (const key of Object.keys(v)) out[key] = deepCopy((v as Document)[key] as unknown);
  return out as T;
}

/** MongoDB keeps `_id` first in a stored document. */
function idFirst(doc: Document): Document {
  const keys = Object.keys(doc);
  if (!Object.hasOwn(doc, '_id') || keys[0] === '_id') return doc;
  const out: Document = { _id: doc._id as unknown };
  for (const key of keys) if (key !== '_id') out[key] = doc[key] as unknown;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Update

const updateOperators = [
  '$set',
  '$unset',
  '$inc',
  '$mul',
  '$min',
  '$max',
  '$setOnInsert',
  '$push',
  '$addToSet',
  '$pull',
  '$pullAll',
  '$pop',
  '$currentDate',
  '$rename',
] as const;
type UpdateOperator = (typeof updateOperators)[number];

/** Is `name` an update operator this module applies (`$set`, `$inc`, …)? */
export function isUpdateOperator(name: string): boolean {
  return (updateOperators as readonly string[]).includes(name);
}

interface UpdateStep {
  readonly op: UpdateOperator;
  readonly path: string;
  readonly parts: readonly string[];
  readonly arg: unknown;
  /** Where the step runs in MongoDB's path order: its path, or $rename's target (its node sits there). */
  readonly at: readonly string[];
}

/** True when `update` is a replacement document (no top-level $ operator). */
export function isReplacement(update: Document): boolean {
  for (const key of Object.keys(update)) if (key.startsWith('$')) return false;
  return true;
}

function describe(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

function typeName(v: unknown): string {
  const code = bsonTypeNumber(v);
  for (const [name, n] of Object.entries(typeAliases)) if (n === code) return name;
  return 'unknown';
}

function checkUpdatePath(path: string): readonly string[] {
  if (path === '') throw serverError('EmptyFieldName', 'An empty update path is not valid.');
  const parts = splitPath(path);
  for (const part of parts) {
    if (part === '') {
      throw serverError(
        'EmptyFieldName',
        `The update path '${path}' contains an empty field name, which is not allowed.`,
      );
    }
    if (part === '$' || part.startsWith('$[')) {
      throw serverError('BadValue', `The positional operator in '${path}' is not supported by this store`);
    }
  }
  if ((parts[0] as string).startsWith('$')) {
    throw serverError(
      'BadValue',
      `The dollar ($) prefixed field '${parts[0] as string}' in '${path}' is not valid for storage.`,
    );
  }
  return parts;
}

function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(b + '.') || b.startsWith(a + '.');
}

/** The order MongoDB (5.0+) applies an update's paths in: field names lexicographically, numeric ones numerically. */
function comparePaths(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x === y) continue;
    const nx = arrayIndex(x);
    const ny = arrayIndex(y);
    if (nx >= 0 && ny >= 0) return nx - ny;
    return compareStrings(x, y);
  }
  return a.length - b.length;
}

function parseUpdate(update: Document): UpdateStep[] {
  const steps: UpdateStep[] = [];
  const claimed: string[] = [];
  const claim = (path: string): void => {
    for (const other of claimed) {
      if (overlaps(path, other)) {
        const at = path.length <= other.length ? path : other;
        throw serverError(
          'ConflictingUpdateOperators',
          `Updating the path '${path}' would create a conflict at '${at}'`,
        );
      }
    }
    claimed.push(path);
  };
  for (const op of Object.keys(update)) {
    if (!op.startsWith('$') || !(updateOperators as readonly string[]).includes(op)) {
      throw serverError(
        'FailedToParse',
        `Unknown modifier: ${op}. Expected a valid update modifier or pipeline-style update specified as an array`,
      );
    }
    const spec: unknown = update[op];
    if (!isPlainObject(spec)) {
      throw serverError(
        'FailedToParse',
        `Modifiers operate on fields but we found type ${typeName(spec)} instead. For example: {$mod: {<field>: ...}} not {${op}: ${describe(spec)}}`,
      );
    }
    for (const path of Object.keys(spec)) {
      const arg: unknown = spec[path];
      const parts = checkUpdatePath(path);
      if (op === '$rename') {
        if (typeof arg !== 'string') {
          throw serverError(
            'BadValue',
            `The 'to' field for $rename must be a string: ${path}: ${describe(arg)}`,
          );
        }
        checkUpdatePath(arg);
        if (arg === path)
          throw serverError(
            'BadValue',
            `The source and target field for $rename must differ: ${path}: "${arg}"`,
          );
        if (overlaps(arg, path)) {
          throw serverError(
            'BadValue',
            `The source and target field for $rename must not be on the same path: ${path}: "${arg}"`,
          );
        }
        claim(arg);
      }
      claim(path);
      const at = op === '$rename' ? splitPath(arg as string) : parts;
      steps.push({ op: op as UpdateOperator, path, parts, arg, at });
    }
  }
  return steps.sort((a, b) => comparePaths(a.at, b.at));
}

/** Where a path's last part lives: its container (a document or an array), or undefined when absent. */
interface Location {
  readonly container: Document | unknown[];
  readonly key: string;
}

/**
 * How `locate` treats a path it cannot walk: `create` makes the missing documents (and pads
 * arrays with null) and refuses a path through a scalar (28, PathNotViable); `existing` answers
 * undefined for a missing step but still refuses a path that could never exist (what $pop, $pull,
 * $pullAll and $rename's source do); `lenient` answers undefined for both (only $unset).
 */
type LocateMode = 'create' | 'existing' | 'lenient';

function notViable(parts: readonly string[], i: number, value: unknown): MongoServerError {
  return serverError(
    'PathNotViable',
    `Cannot use the part (${parts[i + 1] as string}) of (${parts.join('.')}) to traverse the element ({${parts[i] as string}: ${describe(value)}})`,
  );
}

/** Walks to the container of `parts`' last part, or undefined when a step is missing (see LocateMode). */
function locate(doc: Document, parts: readonly string[], mode: LocateMode): Location | undefined {
  const create = mode === 'create';
  let container: Document | unknown[] = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i] as string;
    let next: unknown;
    if (Array.isArray(container)) {
      const index = arrayIndex(part);
      if (index < 0) {
        if (mode === 'lenient') return undefined;
        throw serverError(
          'PathNotViable',
          `Cannot create field '${part}' in element {${parts.slice(0, i).join('.')}: ${describe(container)}}`,
        );
      }
      next = container[index];
      if (next === undefined && index >= container.length) {
        if (!create) return undefined;
        while (container.length < index) container.push(null);
        next = {};
        container.push(next);
      }
    } else {
      next = Object.hasOwn(container, part) ? container[part] : MISSING;
      if (next === MISSING) {
        if (!create) return undefined;
        next = {};
        container[part] = next;
      }
    }
    if (Array.isArray(next) || isPlainObject(next)) {
      container = next;
      continue;
    }
    if (mode === 'lenient') return undefined;
    if (mode === 'existing') throw notViable(parts, i, next);
    throw serverError(
      'PathNotViable',
      `Cannot create field '${parts[i + 1] as string}' in element {${part}: ${describe(next)}}`,
    );
  }
  const key = parts[parts.length - 1] as string;
  if (mode === 'existing' && Array.isArray(container) && arrayIndex(key) < 0) {
    throw notViable(parts, parts.length - 2, container);
  }
  return { container, key };
}

/** Does the path pass through an array before its last part (as far as it exists)? */
function throughArray(doc: Document, parts: readonly string[]): boolean {
  let value: unknown = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    if (Array.isArray(value)) return true;
    if (!isPlainObject(value) || !Object.hasOwn(value, parts[i] as string)) return false;
    value = value[parts[i] as string];
  }
  return Array.isArray(value);
}

function readAt(loc: Location | undefined): unknown {
  if (loc === undefined) return MISSING;
  const { container, key } = loc;
  if (Array.isArray(container)) {
    const index = arrayIndex(key);
    return index >= 0 && index < container.length ? container[index] : MISSING;
  }
  return Object.hasOwn(container, key) ? container[key] : MISSING;
}

function writeAt(loc: Location, path: string, value: unknown): void {
  const { container, key } = loc;
  if (Array.isArray(container)) {
    const index = arrayIndex(key);
    if (index < 0) {
      throw serverError(
        'PathNotViable',
        `Cannot create field '${key}' in element {${path}: ${describe(container)}}`,
      );
    }
    while (container.length < index) container.push(null);
    container[index] = value;
    return;
  }
  container[key] = value;
}

function removeAt(loc: Location | undefined): void {
  if (loc === undefined) return;
  const { container, key } = loc;
  if (Array.isArray(container)) {
    // $unset of an array element leaves null in its place, as MongoDB does.
    const index = arrayIndex(key);
    if (index >= 0 && index < container.length) container[index] = null;
    return;
  }
  delete container[key];
}

function isNumeric(v: unknown): boolean {
  return rankOf(v) === Rank.number;
}

type Arithmetic = 'add' | 'multiply';

/** `$inc`/`$mul` arithmetic keeping MongoDB's types: 64-bit integers stay integers, decimals stay decimal. */
function arithmetic(kind: Arithmetic, a: unknown, b: unknown): unknown {
  const tagA = typeof a === 'object' && a !== null ? bsonType(a) : undefined;
  const tagB = typeof b === 'object' && b !== null ? bsonType(b) : undefined;
  if (tagA === 'Decimal128' || tagB === 'Decimal128') {
    const x = Number(numericOf(a));
    const y = Number(numericOf(b));
    return Decimal128.fromString(String(kind === 'add' ? x + y : x * y));
  }
  const x = numericOf(a);
  const y = numericOf(b);
  const wide = tagA === 'Long' || tagB === 'Long' || typeof a === 'bigint' || typeof b === 'bigint';
  if (
    wide &&
    (typeof x === 'bigint' || Number.isInteger(x)) &&
    (typeof y === 'bigint' || Number.isInteger(y))
  ) {
    const bx = BigInt(x);
    const by = BigInt(y);
    const r = BigInt.asIntN(64, kind === 'add' ? bx + by : bx * by);
    return typeof a === 'bigint' || (tagA !== 'Long' && typeof b === 'bigint') ? r : Long.fromBigInt(r);
  }
  const nx = Number(x);
  const ny = Number(y);
  return kind === 'add' ? nx + ny : nx * ny;
}

function pushModifiers(
  path: string,
  arg: unknown,
): { each: unknown[]; position?: number; slice?: number; sort?: unknown } {
  if (!isPlainObject(arg) || !Object.hasOwn(arg, '$each')) return { each: [arg] };
  const each: unknown = arg.$each;
  if (!Array.isArray(each))
    throw serverError(
      'BadValue',
      `The argument to $each in $push must be an array but it was of type: ${typeName(each)}`,
    );
  const out: { each: unknown[]; position?: number; slice?: number; sort?: unknown } = { each };
  for (const key of Object.keys(arg)) {
    const v: unknown = arg[key];
    switch (key) {
      case '$each':
        break;
      case '$position':
      case '$slice':
        if (!isNumeric(v) || !Number.isInteger(Number(numericOf(v)))) {
          throw serverError(
            'BadValue',
            `The value for ${key} must be an integer value but was given type: ${typeName(v)}`,
          );
        }
        if (key === '$position') out.position = Number(numericOf(v));
        else out.slice = Number(numericOf(v));
        break;
      case '$sort':
        out.sort = v;
        break;
      default:
        throw serverError('BadValue', `Unrecognized clause in $push: ${key.replace(/^\$/, '')} (${path})`);
    }
  }
  return out;
}

function elementComparator(spec: unknown): (a: unknown, b: unknown) => number {
  if (spec === 1 || spec === -1) return (a, b) => (spec as number) * compareValues(a, b);
  if (isPlainObject(spec)) {
    const cmp = sortComparator(spec);
    if (cmp === undefined)
      throw serverError('BadValue', 'The $sort pattern is empty when it should be a set of fields.');
    return (a, b) => cmp(isDocument(a) ? a : {}, isDocument(b) ? b : {});
  }
  throw serverError(
    'BadValue',
    'The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields',
  );
}

/** A `$pull` condition: a value, a regex, operators on the element, or a query on document elements. */
function pullCondition(arg: unknown): ValueTest {
  if (isOperatorObject(arg)) {
    const ops = compileOperators(arg);
    return (el) => ops([el]);
  }
  if (isPlainObject(arg)) {
    const predicate = compileFilter(arg);
    return (el) => isDocument(el) && predicate(el);
  }
  if (isRegexValue(arg)) return regexTest(arg);
  return (el) => valuesEqual(el, arg);
}

function arrayAt(doc: Document, step: UpdateStep, current: unknown, op: string): unknown[] | undefined {
  if (current === MISSING) return undefined;
  if (!Array.isArray(current)) {
    throw serverError(
      'BadValue',
      op === '$pull' || op === '$pullAll'
        ? `Cannot apply ${op} to a non-array value`
        : `The field '${step.path}' must be an array but is of type ${typeName(current)} in document {_id: ${describe(doc._id)}}`,
    );
  }
  return current as unknown[];
}

function applyStep(doc: Document, step: UpdateStep): void {
  const { op, path, parts, arg } = step;
  switch (op) {
    case '$set':
    case '$setOnInsert':
      writeAt(locate(doc, parts, 'create') as Location, path, deepCopy(arg));
      return;
    case '$unset':
      removeAt(locate(doc, parts, 'lenient'));
      return;
    case '$inc':
    case '$mul': {
      const verb = op === '$inc' ? 'increment' : 'multiply';
      if (!isNumeric(arg)) {
        throw serverError(
          'TypeMismatch',
          `Cannot ${verb} with non-numeric argument: {${path}: ${describe(arg)}}`,
        );
      }
      const loc = locate(doc, parts, 'create') as Location;
      const current = readAt(loc);
      if (current === MISSING) {
        writeAt(loc, path, op === '$inc' ? deepCopy(arg) : arithmetic('multiply', arg, 0));
        return;
      }
      if (!isNumeric(current)) {
        throw serverError(
          'TypeMismatch',
          `Cannot apply ${op} to a value of non-numeric type. {_id: ${describe(doc._id)}} has the field '${parts[parts.length - 1] as string}' of non-numeric type ${typeName(current)}`,
        );
      }
      writeAt(loc, path, arithmetic(op === '$inc' ? 'add' : 'multiply', current, arg));
      return;
    }
    case '$min':
    case '$max': {
      const loc = locate(doc, parts, 'create') as Location;
      const current = readAt(loc);
      const c = current === MISSING ? 0 : compareValues(arg, current);
      if (current === MISSING || (op === '$max' ? c > 0 : c < 0)) writeAt(loc, path, deepCopy(arg));
      return;
    }
    case '$currentDate': {
      let value: unknown;
      if (arg === true) value = new Date();
      else if (isPlainObject(arg) && arg.$type === 'date' && Object.keys(arg).length === 1)
        value = new Date();
      else if (isPlainObject(arg) && arg.$type === 'timestamp' && Object.keys(arg).length === 1) {
        value = new Timestamp({ t: Math.floor(Date.now() / 1000), i: 1 });
      } else {
        throw serverError(
          'BadValue',
          `${path} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({$type: 'timestamp/date'}).`,
        );
      }
      writeAt(locate(doc, parts, 'create') as Location, path, value);
      return;
    }
    case '$push': {
      const mods = pushModifiers(path, arg);
      const loc = locate(doc, parts, 'create') as Location;
      const current = arrayAt(doc, step, readAt(loc), op) ?? [];
      const items = mods.each.map((v) => deepCopy(v));
      let at = current.length;
      if (mods.position !== undefined) {
        at =
          mods.position >= 0
            ? Math.min(mods.position, current.length)
            : Math.max(0, current.length + mods.position);
      }
      let next = [...current.slice(0, at), ...items, ...current.slice(at)];
      if (mods.sort !== undefined) next.sort(elementComparator(mods.sort));
      if (mods.slice !== undefined)
        next =
          mods.slice >= 0 ? next.slice(0, mods.slice) : next.slice(Math.max(0, next.length + mods.slice));
      writeAt(loc, path, next);
      return;
    }
    case '$addToSet': {
      const each: unknown = isPlainObject(arg) && Object.hasOwn(arg, '$each') ? arg.$each : [arg];
      if (!Array.isArray(each))
        throw serverError(
          'TypeMismatch',
          `The argument to $each in $addToSet must be an array but it was of type ${typeName(each)}`,
        );
      const loc = locate(doc, parts, 'create') as Location;
      const current = readAt(loc);
      if (current !== MISSING && !Array.isArray(current)) {
        throw serverError(
          'BadValue',
          `Cannot apply $addToSet to non-array field. Field named '${parts[parts.length - 1] as string}' has non-array type ${typeName(current)}`,
        );
      }
      const next = current === MISSING ? [] : [...(current as unknown[])];
      for (const v of each as unknown[]) if (!next.some((el) => valuesEqual(el, v))) next.push(deepCopy(v));
      writeAt(loc, path, next);
      return;
    }
    case '$pull':
    case '$pullAll': {
      let test: ValueTest;
      if (op === '$pull') test = pullCondition(arg);
      else {
        if (!Array.isArray(arg))
          throw serverError(
            'BadValue',
            `$pullAll requires an array argument but was given a ${typeName(arg)}`,
          );
        test = (el) => arg.some((v: unknown) => valuesEqual(el, v));
      }
      const loc = locate(doc, parts, 'existing');
      const current = arrayAt(doc, step, readAt(loc), op);
      if (current === undefined || loc === undefined) return;
      writeAt(
        loc,
        path,
        current.filter((el) => !test(el)),
      );
      return;
    }
    case '$pop': {
      if (!isNumeric(arg) || (Number(numericOf(arg)) !== 1 && Number(numericOf(arg)) !== -1)) {
        throw serverError('FailedToParse', `$pop expects 1 or -1, found: ${describe(arg)}`);
      }
      const loc = locate(doc, parts, 'existing');
      const current = readAt(loc);
      if (current === MISSING || loc === undefined) return;
      if (!Array.isArray(current)) {
        throw serverError(
          'TypeMismatch',
          `Path '${path}' contains an element of non-array type '${typeName(current)}'`,
        );
      }
      writeAt(loc, path, Number(numericOf(arg)) === 1 ? current.slice(0, -1) : current.slice(1));
      return;
    }
    case '$rename': {
      // MongoDB renames neither out of nor into an array element (BadValue), and a source path
      // through a scalar is PathNotViable.
      const target = arg as string;
      const from = locate(doc, parts, 'existing');
      const value = readAt(from);
      if (value === MISSING) return;
      if (throughArray(doc, parts)) {
        throw serverError(
          'BadValue',
          `The source field cannot be an array element, '${path}' in doc with _id: ${describe(doc._id)}`,
        );
      }
      const targetParts = splitPath(target);
      if (throughArray(doc, targetParts)) {
        throw serverError(
          'BadValue',
          `The destination field cannot be an array element, '${target}' in doc with _id: ${describe(doc._id)}`,
        );
      }
      removeAt(from);
      writeAt(locate(doc, targetParts, 'create') as Location, target, value);
      return;
    }
  }
}

/**
 * Applies an update document to a deep copy of `doc` and returns it; `inserting` enables
 * $setOnInsert. Operators: $set, $unset, $inc, $mul, $min, $max, $setOnInsert, $push (with $each,
 * $position, $slice, $sort), $addToSet (with $each), $pull, $pullAll, $pop, $currentDate, $rename.
 * A replacement document (no $-keys) replaces all but _id. Paths are applied in MongoDB's order
 * (lexicographic by field), so new fields land where MongoDB would put them. Throws
 * MongoServerError with MongoDB's codes: unknown modifier 9, non-numeric $inc 14, a field that
 * cannot be created 28, conflicting paths 40, modifying _id 66.
 */
export function applyUpdate(doc: Document, update: Document, inserting: boolean): Document {
  const hadId = Object.hasOwn(doc, '_id');
  if (isReplacement(update)) {
    const out: Document = {};
    if (Object.hasOwn(update, '_id')) {
      if (hadId && !valuesEqual(doc._id, update._id)) {
        throw serverError(
          'ImmutableField',
          `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${describe(update._id)}`,
        );
      }
      out._id = deepCopy(update._id as unknown);
    } else if (hadId) {
      out._id = deepCopy(doc._id as unknown);
    }
    for (const key of Object.keys(update)) if (key !== '_id') out[key] = deepCopy(update[key] as unknown);
    return out;
  }
  const steps = parseUpdate(update);
  const result = deepCopy(doc);
  for (const step of steps) {
    if (step.op === '$setOnInsert' && !inserting) continue;
    applyStep(result, step);
  }
  if (hadId && (!Object.hasOwn(result, '_id') || !valuesEqual(doc._id, result._id))) {
    throw serverError(
      'ImmutableField',
      "Performing an update on the path '_id' would modify the immutable field '_id'",
    );
  }
  return idFirst(result);
}

// ---------------------------------------------------------------------------------------------
// Upsert seed

function equalityConditions(filter: Document, out: [string, unknown][]): void {
  for (const key of Object.keys(filter)) {
    const cond: unknown = filter[key];
    if (key === '$and' && Array.isArray(cond)) {
      for (const clause of cond) if (isPlainObject(clause)) equalityConditions(clause, out);
    } else if (key === '$or' && Array.isArray(cond) && cond.length === 1 && isPlainObject(cond[0])) {
      // A one-clause $or is its clause (MongoDB's query normalisation).
      equalityConditions(cond[0], out);
    } else if (key.startsWith('$')) {
      continue;
    } else if (isOperatorObject(cond)) {
      if (Object.hasOwn(cond, '$eq')) out.push([key, cond.$eq]);
      else if (Array.isArray(cond.$in) && cond.$in.length === 1 && !isRegexValue(cond.$in[0])) {
        out.push([key, cond.$in[0]]); // a one-value $in is an equality
      }
    } else if (!isRegexValue(cond)) {
      out.push([key, cond]);
    }
  }
}

/** The document an upsert starts from: the filter's equality conditions (plain values, $eq, and those inside $and), dotted paths expanded. */
export function upsertSeed(filter: Document): Document {
  const found: [string, unknown][] = [];
  equalityConditions(filter, found);
  const seed: Document = {};
  for (let i = 0; i < found.length; i++) {
    const [path, value] = found[i] as [string, unknown];
    for (let j = 0; j < i; j++) {
      const other = (found[j] as [string, unknown])[0];
      if (other === path) {
        throw serverError(
          'NotSingleValueField',
          `cannot infer query fields to set, path '${path}' is matched twice`,
        );
      }
      if (overlaps(path, other)) {
        throw serverError(
          'NotSingleValueField',
          `cannot infer query fields to set, both paths '${other}' and '${path}' are matched`,
        );
      }
    }
    const parts = splitPath(path);
    let container: Document = seed;
    for (const part of parts.slice(0, -1)) {
      const next: unknown = container[part];
      if (isPlainObject(next)) container = next;
      else {
        const made: Document = {};
        container[part] = made;
        container = made;
      }
    }
    container[parts[parts.length - 1] as string] = deepCopy(value);
  }
  return idFirst(seed);
}

// ---------------------------------------------------------------------------------------------
// Projection

interface ProjectionTree {
  [field: string]: ProjectionTree | true;
}

function projectionTree(projection: Document): { tree: ProjectionTree; inclusion: boolean; id: boolean } {
  const tree: ProjectionTree = {};
  let inclusion: boolean | undefined;
  let id = true;
  const paths: string[] = [];
  for (const path of Object.keys(projection)) {
    const v: unknown = projection[path];
    let include: boolean;
    if (typeof v === 'boolean') include = v;
    else if (isNumeric(v)) include = Number(numericOf(v)) !== 0;
    else throw serverError('BadValue', `Unsupported projection option: ${path}: ${describe(v)}`);
    if (path === '_id') {
      // _id is kept or dropped on its own in either kind of projection.
      id = include;
      continue;
    }
    if (inclusion === undefined) {
      inclusion = include;
    } else if (inclusion !== include) {
      throw serverError(
        'ProjectionMix',
        inclusion
          ? `Cannot do exclusion on field ${path} in inclusion projection`
          : `Cannot do inclusion on field ${path} in exclusion projection`,
      );
    }
    for (const other of paths) {
      if (overlaps(path, other)) {
        const [longer, shorter] = path.length > other.length ? [path, other] : [other, path];
        throw serverError(
          'ProjectionCollision',
          `Path collision at ${longer} remaining portion ${longer.slice(shorter.length + 1)}`,
        );
      }
    }
    paths.push(path);
    const parts = splitPath(path);
    let node = tree;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) node[part] = true;
      else {
        const next = node[part];
        node = next === undefined || next === true ? (node[part] = {}) : next;
      }
    });
  }
  return { tree, inclusion: inclusion ?? id, id };
}

function includeFields(value: unknown, tree: ProjectionTree): unknown {
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const el of value) {
      if (Array.isArray(el) || isDocument(el)) out.push(includeFields(el, tree));
    }
    return out;
  }
  if (!isDocument(value)) return MISSING;
  const out: Document = {};
  for (const key of Object.keys(value)) {
    const node = tree[key];
    if (node === undefined) continue;
    if (node === true) out[key] = deepCopy(value[key] as unknown);
    else {
      const inner = includeFields(value[key], node);
      if (inner !== MISSING) out[key] = inner;
    }
  }
  return out;
}

function excludeFields(value: unknown, tree: ProjectionTree): unknown {
  if (Array.isArray(value)) return value.map((el: unknown) => excludeFields(el, tree));
  if (!isDocument(value)) return deepCopy(value);
  const out: Document = {};
  for (const key of Object.keys(value)) {
    const node = tree[key];
    if (node === true) continue;
    out[key] = node === undefined ? deepCopy(value[key] as unknown) : excludeFields(value[key], node);
  }
  return out;
}

/** Inclusion or exclusion projection (1/0/true/false, dotted paths, _id rule), like MongoDB's find projection. */
export function applyProjection(doc: Document, projection: Document | undefined): Document {
  if (projection === undefined || Object.keys(projection).length === 0) return doc;
  const { tree, inclusion, id } = projectionTree(projection);
  if (inclusion) {
    if (id) tree._id = true;
    return includeFields(doc, tree) as Document;
  }
  if (!id) tree._id = true;
  return excludeFields(doc, tree) as Document;
}

// ---------------------------------------------------------------------------------------------
// Sort

const EMPTY_ARRAY_KEY: unique symbol = Symbol('empty array');

function sortDirection(field: string, v: unknown): 1 | -1 {
  if (v === 1 || v === 'asc' || v === 'ascending') return 1;
  if (v === -1 || v === 'desc' || v === 'descending') return -1;
  if (isNumeric(v)) {
    const n = Number(numericOf(v));
    if (n === 1 || n === -1) return n;
  }
  throw serverError(
    'BadValue',
    `$sort key ordering must be 1 (for ascending) or -1 (for descending): ${field}`,
  );
}

function sortFields(sort: SortSpec): [string[], 1 | -1][] {
  if (sort === undefined) return [];
  if (typeof sort === 'string') return [[splitPath(sort), 1]];
  if (sort instanceof Map)
    return [...(sort as Map<string, unknown>)].map(([k, v]) => [splitPath(k), sortDirection(k, v)]);
  if (Array.isArray(sort)) {
    const list = sort as readonly unknown[];
    // The driver accepts one pair ['a', -1] as well as a list of pairs or of names.
    if (
      list.length === 2 &&
      typeof list[0] === 'string' &&
      typeof list[1] !== 'string' &&
      !Array.isArray(list[1])
    ) {
      return [[splitPath(list[0]), sortDirection(list[0], list[1])]];
    }
    return list.map((entry) => {
      if (typeof entry === 'string') return [splitPath(entry), 1];
      if (Array.isArray(entry) && typeof entry[0] === 'string')
        return [splitPath(entry[0]), sortDirection(entry[0], entry[1])];
      throw serverError('BadValue', `Invalid sort entry: ${describe(entry)}`);
    });
  }
  return Object.keys(sort).map((k) => [splitPath(k), sortDirection(k, (sort as Document)[k])]);
}

/**
 * A document's sort key for one field: missing sorts as null; an array sorts by its smallest
 * element ascending and its largest descending; an empty array sorts before null.
 */
function sortKey(doc: Document, parts: readonly string[], dir: 1 | -1): unknown {
  const slots: Slot[] = [];
  collect(doc, parts, 0, slots);
  let best: unknown = MISSING;
  const consider = (v: unknown): void => {
    if (best === MISSING || dir * compareSortKeys(v, best) < 0) best = v;
  };
  for (const s of slots) {
    if (s === MISSING) consider(null);
    else if (Array.isArray(s)) {
      if (s.length === 0) consider(EMPTY_ARRAY_KEY);
      else for (const el of s) consider(el);
    } else consider(s);
  }
  return best === MISSING ? null : best;
}

function compareSortKeys(a: unknown, b: unknown): number {
  if (a === EMPTY_ARRAY_KEY || b === EMPTY_ARRAY_KEY) {
    const ra = a === EMPTY_ARRAY_KEY ? Rank.emptyArray : rankOf(a);
    const rb = b === EMPTY_ARRAY_KEY ? Rank.emptyArray : rankOf(b);
    return ra === rb ? 0 : ra < rb ? -1 : 1;
  }
  return compareValues(a, b);
}

/**
 * A comparator for the sort spec (missing fields sort as null; arrays sort by their min/max
 * element as MongoDB does). It caches each document's sort key by object, so make one per sort.
 */
export function sortComparator(sort: SortSpec): ((a: Document, b: Document) => number) | undefined {
  const fields = sortFields(sort);
  if (fields.length === 0) return undefined;
  const keys = new WeakMap<Document, unknown[]>();
  const keyOf = (doc: Document): unknown[] => {
    let k = keys.get(doc);
    if (k === undefined) {
      k = fields.map(([parts, dir]) => sortKey(doc, parts, dir));
      keys.set(doc, k);
    }
    return k;
  };
  return (a, b) => {
    const ka = keyOf(a);
    const kb = keyOf(b);
    for (let i = 0; i < fields.length; i++) {
      const c = compareSortKeys(ka[i], kb[i]);
      if (c !== 0) return (fields[i] as [string[], 1 | -1])[1] * c;
    }
    return 0;
  };
}
