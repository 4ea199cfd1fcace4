/**
 * Expected failures of the mailstore as values with a reason from the error-detail convention
 * (proto/postmesh/common/v1/errors.proto). The gRPC adapter maps them onto a status with an
 * `ErrorDetail`; everything else is an unexpected failure (logged, sent as INTERNAL).
 */
import type { ErrorReason } from '@postmesh/contracts';

export type MailstoreReason =
  | typeof ErrorReason.NOT_FOUND
  | typeof ErrorReason.ALREADY_EXISTS
  | typeof ErrorReason.OVER_QUOTA
  | typeof ErrorReason.INVALID_NAME
  | typeof ErrorReason.INVALID_ARGUMENT
  | typeof ErrorReason.NOT_ALLOWED
  | typeof ErrorReason.LIMIT_EXCEEDED
  | typeof ErrorReason.TOO_BIG
  | typeof ErrorReason.CONFLICT
  /** A write whose commit-then-confirm failed (ADR 0007): the partition moved; the owner serves it. */
  | typeof ErrorReason.NOT_OWNER
  /** RFC 4314: the acting user lacks a right on another user's mailbox (../acl). */
  | typeof ErrorReason.PERMISSION_DENIED;

/** An expected failure a caller can act on (a name that does not exist, a full quota …). */
export class MailstoreError extends Error {
  override readonly name = 'MailstoreError';
  constructor(
    readonly reason: MailstoreReason,
    message: string,
    /** Proto field path in snake_case, when the failure is about one argument. */
    readonly field = '',
  ) {
    super(message);
  }
}

/**
 * A stored body or its metadata failed authentication (tampered with, truncated or reordered):
 * never answered with the bytes, always an error (DESIGN §5 "tampering is detected").
 */
export class BlobIntegrityError extends Error {
  override readonly name = 'BlobIntegrityError';
}
