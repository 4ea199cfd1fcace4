/**
 * The part of Haraka's plugin API (Haraka 3.3, docs/Plugins.md, Connection.md, Transaction.md)
 * our plugins use, typed structurally. Haraka is JavaScript; these types document what we rely
 * on and keep `any` out of our code.
 */
import type { Readable } from 'node:stream';

/**
 * Return codes of `haraka-constants` (its index.js; unit-tested against it, since a wrong number
 * silently means another code: 907 is NEXT_HOOK, not DENYSOFTDISCONNECT).
 */
export const HookCode = {
  CONT: 900,
  STOP: 901,
  DENY: 902,
  DENYSOFT: 903,
  DENYDISCONNECT: 904,
  DISCONNECT: 905,
  OK: 906,
  DENYSOFTDISCONNECT: 909,
} as const;
export type HookCodeValue = (typeof HookCode)[keyof typeof HookCode];

/**
 * A reply with its own SMTP code. Haraka's `Connection.respond` uses `code` and `reply` of a
 * message object whose constructor is named `DSN` (as haraka-dsn builds them), so this class
 * keeps that name: it lets a plugin answer 451/452/550 with RFC 3463 enhanced codes.
 */
export class DSN {
  constructor(
    readonly code: number,
    readonly reply: string,
  ) {}
}

export type HookMessage = string | DSN;
export type Next = (code?: HookCodeValue, message?: HookMessage) => void;

export interface HarakaAddress {
  readonly user: string | null;
  readonly host: string | null;
  /** `user@host` (a getter in @haraka/email-address 3). */
  readonly address: string;
  isNull(): boolean;
}

export interface HarakaHeader {
  get(name: string): string;
  get_all(name: string): string[];
  /**
   * The header fields as `message_stream` writes them (each `name: value` with its folding and
   * line end), added fields included; Haraka's parsed copy of the message's header section.
   */
  readonly header_list?: readonly string[];
}

export interface HarakaMessageStream extends Readable {
  pipe<T extends NodeJS.WritableStream>(destination: T, options?: Record<string, unknown>): T;
}

export interface HarakaTransaction {
  readonly uuid: string;
  readonly mail_from: HarakaAddress;
  readonly rcpt_to: HarakaAddress[];
  readonly header: HarakaHeader;
  readonly message_stream: HarakaMessageStream;
  readonly data_bytes: number;
  readonly notes: Record<string, unknown>;
  add_header(name: string, value: string): void;
  add_leading_header(name: string, value: string): void;
  remove_header(name: string): void;
}

export interface HarakaConnection {
  readonly uuid: string;
  readonly remote: { readonly ip: string; readonly port: number; readonly host?: string };
  readonly hello: { readonly host?: string; readonly verb?: string };
  readonly local: { readonly ip?: string; readonly port: number };
  readonly tls: { readonly enabled: boolean };
  /** Haraka's relay flag: set once a submission client has authenticated. */
  relaying: boolean;
  /** EHLO keywords being advertised (only inside hook_capabilities). */
  readonly capabilities?: string[];
  readonly transaction: HarakaTransaction | null;
  readonly notes: Record<string, unknown>;
  respond(code: number, message: string, done?: () => void): void;
  loginfo(message: string, data?: Record<string, unknown>): void;
  logerror(message: string, data?: Record<string, unknown>): void;
}

/** Hook functions by Haraka hook name (`hook_rcpt`, `hook_queue`, ...). */
export type HookFunction = (next: Next, connection: HarakaConnection, params?: unknown) => void;
export type PluginHooks = Readonly<Record<`hook_${string}`, HookFunction>>;
