/**
 * How a document's indexed values become SQLite values (ADR 0011). Every index column of the
 * in-process database holds one SQLite value per document, ordered so that SQLite's own order is
 * MongoDB's order within and across the scalar types storage indexes:
 *
 *   null/missing → NULL, numbers → REAL/INTEGER, then TEXT with a one-letter type prefix:
 *   `c` strings, `f` ObjectId, `g` booleans, `h` dates.
 *
 * SQLite sorts NULL < numbers < TEXT, and the prefixes follow MongoDB's BSON order (null < numbers
 * < strings < ObjectId < bool < date), so `ORDER BY` on a column is MongoDB's sort as
 * long as no value is opaque. Values an index column cannot order — arrays (MongoDB's multikey
 * entries), embedded documents, binary data, timestamps, regular expressions, Decimal128, integers
 * beyond 2^53 — are stored as the marker
 * `OPAQUE`: every query on that column also takes the marked rows as candidates and decides them
 * by the full filter in JavaScript, so a column never hides a match.
 */
import { Binary, Decimal128, Long, ObjectId, type Document } from 'mongodb';

/** The column value of a document whose indexed value has no SQLite order. Sorts after every prefix. */
export const OPAQUE = 'z';

export type ColumnValue = null | number | string;

const DATE_OFFSET = 8.64e15;

function encodeDate(ms: number): string {
  return `h${String(ms + DATE_OFFSET).padStart(17, '0')}`;
}

/**
 * The column value of a scalar, or undefined if the value is not a scalar a column can order
 * (the caller stores OPAQUE for a document, and does not push down a condition on it for a query).
 */
export function encodeScalar(value: unknown): ColumnValue | undefined {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'number':
      return Number.isNaN(value) ? undefined : value;
    case 'string':
      return `c${value}`;
    case 'boolean':
      return value ? 'g1' : 'g0';
    case 'bigint':
      // Beyond 2^53 a double would merge distinct values: left to JavaScript.
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : undefined;
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value instanceof ObjectId) return `f${value.toHexString()}`;
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isNaN(ms) ? undefined : encodeDate(ms);
  }
  const bsonType = (value as { _bsontype?: string })._bsontype;
  // A Timestamp is a Long by class; MongoDB orders it as its own type.
  if (bsonType === 'Timestamp') return undefined;
  if (value instanceof Long) {
    const n = value.toNumber();
    return Number.isSafeInteger(n) ? n : undefined;
  }
  // MongoDB orders binary by length, then subtype, then bytes: no column order of ours.
  if (value instanceof Binary || value instanceof Uint8Array || value instanceof Decimal128) return undefined;
  if (bsonType === 'Int32' || bsonType === 'Double') return Number((value as { value: number }).value);
  return undefined;
}

/** The column value a document stores for an indexed path (dotted paths through documents). */
export function columnValue(doc: Document, path: string): ColumnValue {
  let current: unknown = doc;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return null;
    if (Array.isArray(current)) return OPAQUE;
    current = (current as Record<string, unknown>)[part];
  }
  if (Array.isArray(current)) return OPAQUE;
  const encoded = encodeScalar(current);
  return encoded === undefined ? OPAQUE : encoded;
}

/** The bounds of one type bracket: a range condition never leaves the bracket of its value. */
export function bracketOf(value: ColumnValue): { low: ColumnValue; high: ColumnValue } | undefined {
  if (value === null) return undefined;
  // Numbers sort below every TEXT value; '' is the smallest TEXT.
  if (typeof value === 'number') return { low: null, high: '' };
  const prefix = value.charAt(0);
  return { low: prefix, high: String.fromCharCode(prefix.charCodeAt(0) + 1) };
}

/** A SQL identifier, quoted. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The column that holds an indexed path. */
export function columnName(path: string): string {
  return `k:${path}`;
}
