/**
 * Comparators (RFC 4790 §9.2 i;ascii-casemap, §9.3 i;octet) and match types (RFC 5228 §2.7.1:
 * :is, :contains, :matches with "*" and "?" wildcards and "\" escapes). Every comparison spends
 * steps from the run's budget, so a pathological pattern cannot hold a delivery worker.
 */
import type { Comparator, Match } from './program.js';

export class SieveRuntimeError extends Error {
  override readonly name = 'SieveRuntimeError';
}

/** The CPU bound of one run: every test, action and character comparison costs steps. */
export class StepBudget {
  private remaining: number;
  constructor(readonly limit: number) {
    this.remaining = limit;
  }
  spend(steps: number): void {
    this.remaining -= steps;
    if (this.remaining < 0)
      throw new SieveRuntimeError(`the script ran out of its ${this.limit}-step budget`);
  }
  get used(): number {
    return this.limit - Math.max(this.remaining, 0);
  }
}

/** i;ascii-casemap folds only US-ASCII letters; other characters compare as they are. */
const fold = (s: string, comparator: Comparator): string =>
  comparator === 'i;ascii-casemap' ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s;

type PatternPiece = { kind: 'char'; c: string } | { kind: 'one' } | { kind: 'star' };

function compilePattern(pattern: string): PatternPiece[] {
  const out: PatternPiece[] = [];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] as string;
    if (c === '\\' && i + 1 < chars.length) out.push({ kind: 'char', c: chars[++i] as string });
    else if (c === '*') {
      if (out.at(-1)?.kind !== 'star') out.push({ kind: 'star' });
    } else if (c === '?') out.push({ kind: 'one' });
    else out.push({ kind: 'char', c });
  }
  return out;
}

/**
 * Wildcard match with single-star backtracking: linear in the common case, at most
 * |value| x |pattern| steps in the worst, all charged to the budget.
 */
function wildcard(value: readonly string[], pattern: readonly PatternPiece[], budget: StepBudget): boolean {
  let v = 0;
  let p = 0;
  let starP = -1;
  let starV = 0;
  while (v < value.length) {
    budget.spend(1);
    const piece = pattern[p];
    if (piece !== undefined && (piece.kind === 'one' || (piece.kind === 'char' && piece.c === value[v]))) {
      v++;
      p++;
    } else if (piece?.kind === 'star') {
      starP = p++;
      starV = v;
    } else if (starP >= 0) {
      p = starP + 1;
      v = ++starV;
    } else return false;
  }
  while (pattern[p]?.kind === 'star') p++;
  return p === pattern.length;
}

/** RFC 5228 §2.7: true when any value matches any key. */
export function matchAny(values: readonly string[], match: Match, budget: StepBudget): boolean {
  const keys = match.keys.map((k) => fold(k, match.comparator));
  const patterns = match.type === 'matches' ? keys.map(compilePattern) : [];
  for (const raw of values) {
    const value = fold(raw, match.comparator);
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k] as string;
      budget.spend(1 + Math.ceil((value.length + key.length) / 64));
      switch (match.type) {
        case 'is':
          if (value === key) return true;
          break;
        case 'contains':
          // String.prototype.includes is linear-time; the charge above covers it.
          if (value.includes(key)) return true;
          break;
        case 'matches':
          if (wildcard(Array.from(value), patterns[k] as PatternPiece[], budget)) return true;
          break;
      }
    }
  }
  return false;
}
