/** Where something is in a script: 1-based line and column (columns count UTF-16 code units). */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/**
 * A script that cannot run: a lexical, syntax or validation error (RFC 5228 §2.10.6: such a
 * script is rejected when it is stored, or, at delivery, the implicit keep is taken). The
 * message names the line and column so a user can find the mistake.
 */
export class SieveCompileError extends Error {
  override readonly name = 'SieveCompileError';
  readonly line: number;
  readonly column: number;
  readonly reason: string;

  constructor(reason: string, at: SourcePosition) {
    super(`line ${at.line}, column ${at.column}: ${reason}`);
    this.reason = reason;
    this.line = at.line;
    this.column = at.column;
  }
}
