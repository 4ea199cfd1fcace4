/**
 * Session state (RFC 9051 §3): a tagged union, so data lives in the state it belongs to
 * (STYLE.md). `logout` is terminal.
 */
import type { ResolvedRange } from '@postmesh/imap-protocol';
import type { MessageMap } from './message-map.js';
import type { RecentSet } from './recent.js';

export interface AuthenticatedUser {
  readonly id: string;
  readonly address: string;
}

/** The selected mailbox as this session sees it (RFC 9051 §6.3.2). */
export interface SelectedMailbox {
  readonly id: string;
  readonly path: string;
  /** EXAMINE, or SELECT of a mailbox the user may only read (RFC 9051 §6.3.3). */
  readonly readOnly: boolean;
  readonly uidValidity: number;
  readonly map: MessageMap;
  /** The mailbox HIGHESTMODSEQ up to which this session has applied changes. */
  knownModseq: number;
  /** IMAP4rev1 \Recent: the UIDs that are recent in this session (RFC 3501 §2.3.2). */
  readonly recent: RecentSet;
  /**
   * Keywords announced in `* FLAGS` (lower-cased → as first seen): a keyword is announced before
   * any FETCH shows it (RFC 9051 §7.3.5, RFC 3501 §7.2.6).
   */
  readonly keywords: Map<string, string>;
  /** RFC 4314: the user's rights on another user's (shared) mailbox; absent for their own. */
  readonly rights?: string;
  /** RFC 5182 `$`: UIDs of the last SEARCH RETURN (SAVE). */
  savedSearch: readonly ResolvedRange[];
}

export type SessionState =
  | { readonly kind: 'notAuthenticated' }
  | { readonly kind: 'authenticated'; readonly user: AuthenticatedUser }
  | { readonly kind: 'selected'; readonly user: AuthenticatedUser; readonly mailbox: SelectedMailbox }
  | { readonly kind: 'logout' };
