/**
 * Failures → IMAP response codes (RFC 5530 §3). A storage refusal is a user error (`NO` with a
 * code that says why); storage being unreachable is `NO [UNAVAILABLE]`; anything else is a bug
 * in this server, `NO [SERVERBUG]`. Internal messages are logged, never sent (STYLE.md).
 */
import type { SimpleResponseCodeName } from '@postmesh/imap-protocol';
import { ErrorReason, StorageError, StorageUnavailableError } from './storage.js';

export interface Failure {
  readonly code: SimpleResponseCodeName;
  readonly text: string;
  /** Log it with its cause (unexpected failures). */
  readonly log: boolean;
}

export function storageFailure(error: unknown): Failure {
  if (error instanceof StorageError) {
    switch (error.reason) {
      case ErrorReason.NOT_FOUND:
        return { code: 'NONEXISTENT', text: 'No such mailbox or message', log: false };
      case ErrorReason.ALREADY_EXISTS:
        return { code: 'ALREADYEXISTS', text: 'Mailbox already exists', log: false };
      case ErrorReason.OVER_QUOTA:
        return { code: 'OVERQUOTA', text: 'Quota exceeded', log: false };
      case ErrorReason.TOO_BIG:
        return { code: 'TOOBIG', text: 'Message too large', log: false };
      case ErrorReason.INVALID_NAME:
        return { code: 'CANNOT', text: 'Invalid mailbox name', log: false };
      case ErrorReason.NOT_ALLOWED:
        return { code: 'CANNOT', text: 'Operation not allowed on this mailbox', log: false };
      case ErrorReason.LIMIT_EXCEEDED:
        return { code: 'LIMIT', text: 'Limit reached', log: false };
      case ErrorReason.PERMISSION_DENIED:
        return { code: 'NOPERM', text: 'Permission denied', log: false };
      case ErrorReason.CONFLICT:
        return { code: 'INUSE', text: 'Try again', log: false };
      case ErrorReason.INVALID_ARGUMENT:
        return { code: 'CLIENTBUG', text: 'Invalid argument', log: true };
      default:
        return { code: 'SERVERBUG', text: 'Internal error; the server log has details', log: true };
    }
  }
  if (error instanceof StorageUnavailableError) {
    return { code: 'UNAVAILABLE', text: 'Mail storage is unavailable; try again later', log: true };
  }
  return { code: 'SERVERBUG', text: 'Internal error; the server log has details', log: true };
}

export function isNotFound(error: unknown): boolean {
  return error instanceof StorageError && error.reason === ErrorReason.NOT_FOUND;
}

/** RFC 4314: the user lacks a right on another user's (shared) mailbox. */
export function isPermissionDenied(error: unknown): boolean {
  return error instanceof StorageError && error.reason === ErrorReason.PERMISSION_DENIED;
}
