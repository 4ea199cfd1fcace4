/**
 * The Postmesh SMTP plugin API, version 1: what an operator's own plugin may read and decide.
 *
 * A plugin is an ES module in the directory named by POSTMESH_SMTP_PLUGIN_DIR whose default export
 * (or whose module namespace) is a `PostmeshSmtpPlugin`. Plugins see a read-only, documented view
 * of the session, never Haraka's objects: Haraka's internals can change under us, this contract
 * does not change within a version. A plugin can only add restrictions: it may continue, refuse
 * (5xx), defer (4xx) or disconnect, and at end of DATA add headers; it cannot accept a recipient
 * our own checks refuse, or skip the durable queue.
 *
 * See docs/smtp-plugins.md for the contract in prose and examples/smtp-plugins/ for an example.
 */

export const PLUGIN_API_VERSION = 1;

export interface SessionView {
  readonly remoteIp: string;
  readonly remotePort: number;
  /** The port the client connected to (25/2525 MX, 587/465 submission). */
  readonly localPort: number;
  /** TLS is on (STARTTLS done, or implicit TLS). */
  readonly tls: boolean;
  /** HELO/EHLO name, '' before it. */
  readonly helo: string;
  /** The authenticated submitter's login, undefined on the MX port or before AUTH. */
  readonly authenticatedUser: string | undefined;
}

export interface TransactionView {
  /** MAIL FROM without angle brackets; '' for the null reverse-path. */
  readonly mailFrom: string;
  /** RCPT TO addresses accepted so far. */
  readonly recipients: readonly string[];
}

export interface MessageView extends TransactionView {
  /** Header field values by name (case-insensitive), unfolded. */
  header(name: string): readonly string[];
  /** Message size in octets. */
  readonly size: number;
  /** The sender-authentication verdict (RFC 8601 result values), undefined for submissions. */
  readonly auth: { readonly spf: string; readonly dkim: string; readonly dmarc: string } | undefined;
  /** The content filter's verdict, undefined when no filter runs. */
  readonly spam: { readonly action: string; readonly score?: number } | undefined;
}

/** What a hook decides; `undefined` (or nothing returned) means continue. */
export type Verdict =
  | undefined
  | { readonly action: 'continue' }
  /** 5xx: `code` 550–554 (default 550), `status` an RFC 3463 5.x.y code (default 5.7.1). */
  | { readonly action: 'reject'; readonly text: string; readonly code?: number; readonly status?: string }
  /** 4xx: `code` 450–452 (default 451), `status` an RFC 3463 4.x.y code (default 4.7.1). */
  | { readonly action: 'tempfail'; readonly text: string; readonly code?: number; readonly status?: string }
  /** 421 and close the session. */
  | { readonly action: 'disconnect'; readonly text: string };

export interface DataVerdictExtras {
  /** Header fields to add at the top of the message (name must be a field name, value one line). */
  readonly addHeaders?: readonly (readonly [string, string])[];
}

export interface PostmeshSmtpPlugin {
  readonly apiVersion: 1;
  /** Shown in logs and replies' logs; letters, digits, '-' and '_'. */
  readonly name: string;
  readonly hooks: {
    readonly connect?: (session: SessionView) => Verdict | Promise<Verdict>;
    readonly helo?: (session: SessionView) => Verdict | Promise<Verdict>;
    readonly mail?: (session: SessionView, transaction: TransactionView) => Verdict | Promise<Verdict>;
    /** Runs before our own recipient checks; `recipient` is the address being added. */
    readonly rcpt?: (
      session: SessionView,
      transaction: TransactionView,
      recipient: string,
    ) => Verdict | Promise<Verdict>;
    /** End of DATA, after sender authentication and content filtering, before the queue. */
    readonly data?: (
      session: SessionView,
      message: MessageView,
    ) =>
      | (Verdict & DataVerdictExtras)
      | DataVerdictExtras
      | Promise<(Verdict & DataVerdictExtras) | DataVerdictExtras>;
  };
}

export const HOOK_NAMES = ['connect', 'helo', 'mail', 'rcpt', 'data'] as const;
export type HookName = (typeof HOOK_NAMES)[number];
