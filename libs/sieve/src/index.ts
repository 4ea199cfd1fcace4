/**
 * @postmesh/sieve — Sieve mail filtering (RFC 5228) for delivery: a pure lexer/parser with
 * line/column errors, a validator that admits only `require`d extensions, and an interpreter
 * bounded in steps, actions and redirects. Extensions: fileinto, envelope, imap4flags
 * (RFC 5232), vacation (RFC 5230), reject/ereject (RFC 5429), copy (RFC 3894), body (RFC 5173).
 */
import { SieveCompileError } from './errors.js';
import { parseScript } from './parser.js';
import type { Program } from './program.js';
import { validateScript } from './validator.js';

export { SieveCompileError } from './errors.js';
export type { SourcePosition } from './errors.js';
export { SUPPORTED_EXTENSIONS } from './program.js';
export type { Extension, Program } from './program.js';
export {
  DEFAULT_LIMITS,
  VACATION_DEFAULT_DAYS,
  VACATION_MAX_DAYS,
  isStorableFlag,
  runScript,
} from './interpreter.js';
export type {
  SieveAction,
  SieveBodyPart,
  SieveHeaderField,
  SieveLimits,
  SieveMessage,
  SieveRunResult,
  VacationAction,
} from './interpreter.js';
export { buildVacationReply, decideVacation } from './vacation.js';
export type { VacationContext, VacationDecision, VacationReplyInput } from './vacation.js';

/** Largest script accepted by default (RFC 5804 §1.7 lets servers set a quota). */
export const DEFAULT_MAX_SCRIPT_BYTES = 64 * 1024;

export interface CompileOptions {
  readonly maxScriptBytes?: number;
  readonly maxNesting?: number;
}

/** Parse and validate a script; throws {@link SieveCompileError} with line and column. */
export function compileScript(source: string, options: CompileOptions = {}): Program {
  const max = options.maxScriptBytes ?? DEFAULT_MAX_SCRIPT_BYTES;
  const bytes = Buffer.byteLength(source, 'utf8');
  if (bytes > max)
    throw new SieveCompileError(`script is ${bytes} bytes; the limit is ${max}`, { line: 1, column: 1 });
  return validateScript(
    parseScript(source, options.maxNesting === undefined ? {} : { maxNesting: options.maxNesting }),
  );
}

export type CheckResult =
  | { readonly ok: true; readonly program: Program }
  | { readonly ok: false; readonly error: SieveCompileError };

/** Like {@link compileScript}, with the error as a value (for CHECKSCRIPT and PUTSCRIPT). */
export function checkScript(source: string, options: CompileOptions = {}): CheckResult {
  try {
    return { ok: true, program: compileScript(source, options) };
  } catch (e) {
    if (e instanceof SieveCompileError) return { ok: false, error: e };
    throw e;
  }
}
export { sieveMessageFromRaw } from './message.js';
