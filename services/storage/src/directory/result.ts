import { ErrorReason, type ErrorDetailInit } from '@postmesh/contracts';

/** An expected failure, as a value (STYLE.md); the gRPC layer turns it into a status + ErrorDetail. */
export type Result<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ErrorDetailInit };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });

export const fail = <T = never>(reason: ErrorReason, message: string, field?: string): Result<T> => ({
  ok: false,
  error: field === undefined ? { reason, message } : { reason, message, field },
});

export const notFound = <T = never>(what: string, field?: string): Result<T> =>
  fail(ErrorReason.NOT_FOUND, `${what} not found`, field);

/** MongoDB's duplicate-key error (E11000): a unique index refused the write. */
export function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 11000;
}
