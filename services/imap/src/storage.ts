/**
 * The imap service's only way to mail data (DESIGN §1): storage's Mailstore and Directory through
 * the shared client (`@postmesh/storage-client`), which routes each user's calls to the storage
 * replica that owns the user when ownership is on. Expected failures arrive as `StorageError`
 * with the `ErrorDetail` reason; anything else is `StorageUnavailableError`, which the session
 * answers with `NO [UNAVAILABLE]` (errors.ts).
 */
import type { directory } from '@postmesh/contracts';

export { ErrorReason } from '@postmesh/contracts';
export {
  StorageError,
  StorageUnavailableError,
  connectStorage,
  type AppendInput,
  type Mailstore,
} from '@postmesh/storage-client';

/** The Directory calls a session makes (LOGIN, AUTHENTICATE). */
export interface Directory {
  authenticate(request: directory.AuthenticateRequest): Promise<directory.AuthenticateResponse>;
}
