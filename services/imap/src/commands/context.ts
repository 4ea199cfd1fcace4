/**
 * What a command handler sees: the session (state, output, input for multi-step commands) and
 * the injected services. Handlers never touch sockets or build protocol strings; they call the
 * serializers of @postmesh/imap-protocol and return the tagged completion.
 */
import type { Command, OutputChunk, RawCommand, StatusResponse } from '@postmesh/imap-protocol';
import type { Logger } from '@postmesh/telemetry';
import type { AuthThrottle } from '@postmesh/bus';
import type { LiteralBudget } from '../literal-budget.js';
import type { Directory, Mailstore } from '../storage.js';
import type { SessionState } from '../state.js';

export interface SessionLimits {
  /** Largest APPEND literal (APPENDLIMIT, RFC 7889). */
  readonly appendLimit: number;
  /** Literal size accepted before authentication (LOGIN / AUTHENTICATE arguments). */
  readonly preAuthLiteralLimit: number;
  readonly maxLineLength: number;
  /** Inactivity before autologout (RFC 9051 §5.4: at least 30 minutes once authenticated). */
  readonly idleTimeoutMs: number;
  /** Inactivity before autologout while not authenticated. */
  readonly preAuthTimeoutMs: number;
  /** Commands per second a connection may sustain; bursts up to `commandBurst`. */
  readonly commandRate: number;
  readonly commandBurst: number;
  /** How often an IDLE session polls for changes it may have missed (DESIGN §3). */
  readonly idlePollMs: number;
  /** Failed authentications on one connection before it is closed. */
  readonly maxAuthFailuresPerConnection: number;
}

export interface ImapServices {
  /**
   * The memory all sessions may hold in literals being received, and how long a session waits
   * for some to be released before refusing with `NO [LIMIT]`. Without it, only the per-literal
   * limits apply.
   */
  readonly literalMemory?: { readonly budget: LiteralBudget; readonly waitMs: number };
  readonly mailstore: Mailstore;
  readonly directory: Directory;
  readonly throttle: AuthThrottle;
  readonly logger: Logger;
  readonly limits: SessionLimits;
  /** Plaintext LOGIN/AUTHENTICATE without TLS (dev and tests on loopback only). */
  readonly allowPlaintext: boolean;
  /** STARTTLS is offered (a TLS context exists). */
  readonly starttls: boolean;
  readonly serverName: string;
  readonly version: string;
  /** Told of every command answered (tagged OK/NO/BAD), for the ops port's metrics. */
  readonly onCommand?: (name: string, condition: string, seconds: number) => void;
}

/** What ENABLE (RFC 5161) and the implicitly enabling commands (RFC 7162 §3.1) can turn on. */
export type EnableableCapability = 'IMAP4REV2' | 'UTF8=ACCEPT' | 'CONDSTORE' | 'QRESYNC';

/** The session as a handler sees it. */
export interface CommandContext {
  readonly services: ImapServices;
  readonly state: SessionState;
  setState(state: SessionState): void;
  readonly tls: boolean;
  /** COMPRESS=DEFLATE is active (RFC 4978). */
  readonly compressed: boolean;
  readonly remoteAddress: string;
  /** Mailbox names are UTF-8 (IMAP4rev2 or UTF8=ACCEPT enabled). */
  readonly utf8: boolean;
  /** IMAP4rev2 was enabled (RFC 9051 §6.3.1): no \Recent, no RECENT responses. */
  readonly rev2: boolean;
  /** RFC 7162 §3.1: CONDSTORE was enabled (by ENABLE or by a CONDSTORE enabling command). */
  readonly condstore: boolean;
  /** RFC 7162 §3.2.3: QRESYNC was enabled (VANISHED instead of EXPUNGE). */
  readonly qresync: boolean;
  /** Enables an extension for the rest of the connection; true when it was not enabled yet. */
  enable(capability: EnableableCapability): boolean;
  capabilities(): string[];
  /**
   * Queues untagged data (or a continuation request). It is written when the command ends, when
   * enough is queued, before the session waits for the client, or at `flush`.
   */
  send(data: Uint8Array | readonly OutputChunk[]): Promise<void>;
  /** Writes what `send` queued now (waiting while the connection is full). */
  flush(): Promise<void>;
  /** Reads the next client line (AUTHENTICATE responses, DONE); null when the client went away. */
  readCommand(): Promise<RawCommand | null>;
  /** Resolves when the client sent more input, when mailbox changes arrive, or on close. */
  waitForInputOrChanges(timeoutMs: number): Promise<'input' | 'changes' | 'timeout' | 'closed'>;
  /** Input that is already buffered (IDLE checks it before waiting). */
  hasBufferedInput(): boolean;
  /**
   * Applies changes made by other sessions and deliveries to the selected mailbox and sends
   * EXISTS / EXPUNGE / FETCH FLAGS (RFC 9051 §7.5.1). `force` asks storage even without an event.
   */
  syncMailbox(force: boolean): Promise<void>;
  /** STARTTLS: upgrade the connection after the tagged OK was written. */
  startTls(): Promise<void>;
  /** Counts a failed authentication on this connection; true when the connection must close. */
  authFailed(): boolean;
  /** Sends `* BYE <reason>` and closes once the tagged response is written. */
  closeAfterReply(reason: string): void;
  /** Subscribe to change events of this user (after authentication). */
  watchUser(userId: string): void;
  readonly logger: Logger;
}

/** When a command may be followed by unsolicited mailbox updates (RFC 9051 §7.5.1). */
export type UpdatePolicy =
  /** No EXPUNGE/EXISTS/FETCH updates (FETCH, STORE, SEARCH, COPY by sequence number). */
  | 'none'
  /** Apply pending updates after the command. */
  | 'pending'
  /** Ask storage for changes after the command even without an event (NOOP, and checks). */
  | 'always';

export type Handler<C extends Command> = (ctx: CommandContext, command: C) => Promise<StatusResponse>;

export type CommandOf<N extends Command['name']> = Extract<Command, { name: N }>;
