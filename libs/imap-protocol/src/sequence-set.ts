/**
 * Sequence sets: RFC 9051 §9 `sequence-set`, `seq-range`, `seq-number`; the meaning of `*`
 * (§6.4.8 note: a range with `*` always includes the largest number in use); and `$`, the
 * saved search result (RFC 5182 §2.1, RFC 9051 §6.4.4.1).
 */

/** A number in a set, or `*` (the largest message sequence number or UID in use). */
export type SeqNumber = number | '*';

export interface SeqRange {
  readonly start: SeqNumber;
  readonly end: SeqNumber;
}

export type SequenceSet =
  | { readonly kind: 'ranges'; readonly ranges: readonly SeqRange[] }
  /** `$`: the result of the last `SEARCH RETURN (SAVE)` (RFC 5182). */
  | { readonly kind: 'saved' };

/** An inclusive range of concrete numbers, lo <= hi. */
export type ResolvedRange = readonly [lo: number, hi: number];

/**
 * The set as sorted, merged, inclusive ranges within 1..max, `*` standing for `max`.
 * `$` cannot be resolved here (the session holds the saved result): pass it as `saved`.
 */
export function resolveSequenceSet(
  set: SequenceSet,
  max: number,
  saved: readonly ResolvedRange[] = [],
): ResolvedRange[] {
  if (set.kind === 'saved') {
    return mergeRanges(
      saved.flatMap(([lo, hi]): ResolvedRange[] => (lo <= max ? [[lo, Math.min(hi, max)]] : [])),
    );
  }
  const out: [number, number][] = [];
  if (max < 1) return out;
  for (const r of set.ranges) {
    const a = r.start === '*' ? max : r.start;
    const b = r.end === '*' ? max : r.end;
    // RFC 9051 §9: "seq-range ... 2:4 and 4:2 are equivalent"; a range past `max` is cut at max,
    // which keeps `*` (= max) inside `559:*` as §6.4.8 requires.
    const lo = Math.max(1, Math.min(a, b));
    const hi = Math.min(max, Math.max(a, b));
    if (lo <= hi) out.push([lo, hi]);
  }
  return mergeRanges(out);
}

function mergeRanges(ranges: readonly ResolvedRange[]): ResolvedRange[] {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** Whether `n` is in the set, given the largest number in use. */
export function sequenceSetHas(set: SequenceSet, n: number, max: number): boolean {
  if (set.kind === 'saved') throw new TypeError('resolve `$` against the saved search result first');
  if (n < 1 || n > max) return false;
  for (const r of set.ranges) {
    const a = r.start === '*' ? max : r.start;
    const b = r.end === '*' ? max : r.end;
    if (n >= Math.min(a, b) && n <= Math.max(a, b)) return true;
  }
  return false;
}

/** Every number of the set within 1..max, ascending, each once. */
export function* expandSequenceSet(set: SequenceSet, max: number): Generator<number, void, undefined> {
  for (const [lo, hi] of resolveSequenceSet(set, max)) {
    for (let n = lo; n <= hi; n++) yield n;
  }
}

/** Compact wire form of concrete numbers: `1:3,7,9:10` (input order is not required). */
export function formatNumberSet(numbers: Iterable<number>): string {
  const sorted = [...new Set(numbers)].sort((a, b) => a - b);
  return formatRanges(mergeRanges(sorted.map((n) => [n, n] as const)));
}

export function formatRanges(ranges: readonly ResolvedRange[]): string {
  return ranges.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}:${hi}`)).join(',');
}

/** The wire form of a parsed set (`$`, `1:*`, `4,7:9`). */
export function formatSequenceSet(set: SequenceSet): string {
  if (set.kind === 'saved') return '$';
  return set.ranges
    .map((r) => (r.start === r.end ? String(r.start) : `${String(r.start)}:${String(r.end)}`))
    .join(',');
}
