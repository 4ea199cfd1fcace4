/**
 * One client connection: the not-authenticated state of IMAP (RFC 9051 §6.1, §6.2) up to a
 * LOGIN or AUTHENTICATE, which the proxy does not check but replays, tag and all, to the backend
 * that owns the user; from the backend's tagged OK on, bytes are spliced both ways and the proxy
 * reads nothing more. A failed login (the backend's NO) returns to the not-authenticated state.
 *
 * Bounded before login: one command line of POSTMESH_IMAP_PROXY_MAX_LINE octets, literals of
 * 4096 (LITERAL-, RFC 7888 §5), a few bad commands and failed logins, and the pre-login timeout.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import {
  COMMAND_STATES,
  CommandReceiver,
  parseAuthenticateResponse,
  parseCommand,
  parseErrorResponse,
  receiverErrorResponse,
  serializeCapability,
  serializeId,
  serializeStatus,
  type RawCommand,
  type StatusResponse,
} from '@postmesh/imap-protocol';
import { SpanKind, SpanStatusCode, tracer, type Logger, type Span } from '@postmesh/telemetry';
import { openBackend, type BackendTls, type ClientEndpoints, type OpenBackend } from './backend.js';
import type { FallbackReason, Router } from './router.js';

/** RFC 7888 §5 LITERAL-: the largest literal before login (a user name or password). */
const PRE_LOGIN_LITERAL = 4096;
/** Bad commands before `* BYE` (a client speaking something else, or garbage). */
const MAX_BAD_COMMANDS = 10;
/** How long the backend may take to answer a replayed login (its throttle delays failures). */
const LOGIN_ANSWER_MS = 60_000;

export interface ProxyMetrics {
  login(route: 'owner' | 'other', result: 'ok' | 'no'): void;
  fallback(reason: FallbackReason): void;
  backendError(): void;
  unavailable(): void;
}

export interface ProxyServices {
  readonly logger: Logger;
  readonly router: Router;
  readonly backendTls: BackendTls | null;
  /** The capabilities announced before login (imap's list, libs/imap-protocol). */
  capabilities(tls: boolean): string[];
  readonly allowPlaintext: boolean;
  readonly metrics: ProxyMetrics;
  readonly limits: {
    readonly maxLine: number;
    readonly preAuthTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly connectTimeoutMs: number;
    readonly maxAuthFailures: number;
  };
}

type Credentials =
  | { readonly kind: 'login'; readonly username: string; readonly password: string }
  | { readonly kind: 'plain'; readonly username: string; readonly response: Buffer };

/** An AUTHENTICATE waiting for the client's answer to a continuation request. */
type Pending =
  | { readonly mechanism: 'PLAIN'; readonly tag: string }
  | { readonly mechanism: 'LOGIN'; readonly tag: string; readonly username?: string };

export class ClientConnection {
  #socket: Duplex;
  #tls: boolean;
  #receiver: CommandReceiver;
  #state: 'prelogin' | 'routing' | 'spliced' | 'closed' = 'prelogin';
  #pending: Pending | undefined;
  #bad = 0;
  #authFailures = 0;
  #pumping = false;
  readonly #timer: NodeJS.Timeout;
  readonly #span: Span;
  readonly #onData = (chunk: Buffer): void => {
    this.#receiver.push(chunk);
    this.#pump();
  };

  constructor(
    private readonly raw: Socket,
    socket: Duplex,
    tls: boolean,
    private readonly endpoints: ClientEndpoints,
    private readonly secureContext: () => SecureContext | null,
    private readonly services: ProxyServices,
    private readonly onClose: () => void,
  ) {
    this.#socket = socket;
    this.#tls = tls;
    this.#receiver = this.#newReceiver();
    this.#span = tracer().startSpan('imap-proxy connection', {
      kind: SpanKind.SERVER,
      attributes: {
        'client.address': endpoints.remoteAddress,
        'client.port': endpoints.remotePort,
        'server.port': endpoints.localPort,
        'postmesh.imap.tls': tls,
      },
    });
    this.#timer = setTimeout(
      () => void this.#bye('Autologout; no login in time'),
      services.limits.preAuthTimeoutMs,
    );
    this.#timer.unref();
    raw.once('close', () => this.#finish());
  }

  /** Greets (`* OK [CAPABILITY …]`, or `* BYE [UNAVAILABLE]` with no backend) and reads. */
  start(): void {
    this.#socket.on('error', (error) => {
      this.services.logger.debug({ err: error }, 'client connection error');
      this.#destroy();
    });
    // The listeners allow half-open sockets (for the splice): before it, a client's end is the end.
    this.#socket.once('end', () => {
      if (this.#state === 'prelogin' || this.#state === 'routing') this.#end();
    });
    if (!this.services.router.available) {
      this.services.metrics.unavailable();
      void this.#bye('No IMAP server available; try again later', true);
      return;
    }
    this.#write(
      serializeStatus({
        tag: null,
        condition: 'OK',
        code: { code: 'CAPABILITY', capabilities: this.services.capabilities(this.#tls) },
        text: 'Postmesh IMAP ready',
      }),
    );
    this.#socket.on('data', this.#onData);
  }

  #newReceiver(): CommandReceiver {
    const maxLine = this.services.limits.maxLine;
    return new CommandReceiver({
      maxLineLength: maxLine,
      maxLiteralSize: PRE_LOGIN_LITERAL,
      maxCommandSize: maxLine + 2 * PRE_LOGIN_LITERAL,
    });
  }

  #write(bytes: Buffer | string): void {
    if (this.#state !== 'closed') this.#socket.write(bytes);
  }

  /** Runs the commands received so far, one at a time; reading pauses meanwhile. */
  #pump(): void {
    if (this.#pumping || this.#state !== 'prelogin') return;
    this.#pumping = true;
    this.#socket.pause();
    void this.#drain()
      .catch((error: unknown) => {
        this.services.logger.warn({ err: error }, 'proxy connection failed');
        this.#destroy();
      })
      .finally(() => {
        this.#pumping = false;
        if (this.#state === 'prelogin') this.#socket.resume();
      });
  }

  async #drain(): Promise<void> {
    while (this.#state === 'prelogin') {
      const event = this.#receiver.next();
      switch (event.kind) {
        case 'needMore':
          return;
        case 'continue':
          this.#write('+ Ready for literal data\r\n');
          continue;
        case 'error': {
          this.#write(serializeStatus(receiverErrorResponse(event.error)));
          // RFC 7888 §4: an oversized non-synchronizing literal before login ends the connection.
          if (event.error.recovery === 'skipping')
            return this.#bye('Literal too large before authentication');
          if (this.#countBad()) return;
          continue;
        }
        case 'command':
          await this.#command(event.command);
          continue;
      }
    }
  }

  /** True (and BYE) once the client has sent too many bad commands. */
  #countBad(): boolean {
    this.#bad += 1;
    if (this.#bad < MAX_BAD_COMMANDS) return false;
    void this.#bye('Too many invalid commands');
    return true;
  }

  #reply(response: StatusResponse): void {
    this.#write(serializeStatus(response));
  }

  async #command(raw: RawCommand): Promise<void> {
    if (this.#pending !== undefined) return this.#saslAnswer(this.#pending, raw);
    const parsed = parseCommand(raw, { utf8: false });
    if (!parsed.ok) {
      this.#write(serializeStatus(parseErrorResponse(parsed.error)));
      this.#countBad();
      return;
    }
    const command = parsed.command;
    const tag = command.tag;
    const ok = (text: string): void => this.#reply({ tag, condition: 'OK', text });
    switch (command.name) {
      case 'CAPABILITY':
        this.#write(serializeCapability(this.services.capabilities(this.#tls)));
        return ok('CAPABILITY completed');
      case 'NOOP':
        return ok('NOOP completed');
      case 'LOGOUT':
        this.#write(serializeStatus({ tag: null, condition: 'BYE', text: 'Logging out' }));
        ok('LOGOUT completed');
        return this.#end();
      case 'ID':
        this.#write(serializeId([['name', 'Postmesh IMAP proxy']]));
        return ok('ID completed');
      case 'STARTTLS':
        return this.#starttls(tag);
      case 'LOGIN':
        if (!this.#privacyOk(tag)) return;
        return this.#route(tag, { kind: 'login', username: command.username, password: command.password });
      case 'AUTHENTICATE':
        if (!this.#privacyOk(tag)) return;
        return this.#authenticate(tag, command.mechanism, command.initialResponse);
      default: {
        const allowed = COMMAND_STATES[command.name].includes('notAuthenticated');
        this.#reply({
          tag,
          condition: 'BAD',
          text: allowed ? `${command.name} is not available here` : `${command.name} needs a login first`,
        });
        this.#countBad();
      }
    }
  }

  /** RFC 9051 §6.2.3: with LOGINDISABLED announced (no TLS), LOGIN and AUTHENTICATE are refused. */
  #privacyOk(tag: string): boolean {
    if (this.#tls || this.services.allowPlaintext) return true;
    this.#reply({ tag, condition: 'NO', code: { code: 'PRIVACYREQUIRED' }, text: 'Use STARTTLS first' });
    return false;
  }

  #starttls(tag: string): void {
    const context = this.secureContext();
    if (this.#tls || context === null) {
      this.#reply({
        tag,
        condition: 'BAD',
        text: this.#tls ? 'TLS is already active' : 'STARTTLS unavailable',
      });
      return;
    }
    this.#reply({ tag, condition: 'OK', text: 'Begin TLS negotiation now' });
    // RFC 9051 §6.2.1, §11.1: whatever the client sent after STARTTLS in plaintext is discarded.
    this.#socket.off('data', this.#onData);
    this.#receiver = this.#newReceiver();
    const secure = new TLSSocket(this.#socket, { isServer: true, secureContext: context });
    secure.on('error', (error) => {
      this.services.logger.debug({ err: error }, 'STARTTLS failed');
      this.#destroy();
    });
    this.#socket = secure;
    this.#tls = true;
    this.#span.setAttribute('postmesh.imap.tls', true);
    secure.on('data', this.#onData);
  }

  async #authenticate(tag: string, mechanism: string, initial: Buffer | null): Promise<void> {
    if (mechanism === 'PLAIN') {
      if (initial !== null) return this.#plain(tag, initial);
      this.#pending = { mechanism: 'PLAIN', tag };
      this.#write('+ \r\n');
      return;
    }
    if (mechanism === 'LOGIN') {
      // draft-murchison-sasl-login: "Username:", then "Password:" (an initial response is the name).
      if (initial !== null && initial.length > 0) {
        this.#pending = { mechanism: 'LOGIN', tag, username: initial.toString('utf8') };
        this.#write('+ UGFzc3dvcmQ6\r\n');
        return;
      }
      this.#pending = { mechanism: 'LOGIN', tag };
      this.#write('+ VXNlcm5hbWU6\r\n');
      return;
    }
    this.#reply({ tag, condition: 'NO', text: 'Unsupported authentication mechanism' });
  }

  async #saslAnswer(pending: Pending, raw: RawCommand): Promise<void> {
    this.#pending = undefined;
    const line = raw.lines[0];
    const answer =
      raw.literals.length > 0 || line === undefined
        ? ({ kind: 'invalid', message: 'response is not BASE64' } as const)
        : parseAuthenticateResponse(line);
    if (answer.kind === 'cancel') {
      return this.#reply({ tag: pending.tag, condition: 'BAD', text: 'AUTHENTICATE cancelled' });
    }
    if (answer.kind === 'invalid') {
      this.#reply({ tag: pending.tag, condition: 'BAD', text: `AUTHENTICATE ${answer.message}` });
      this.#countBad();
      return;
    }
    if (pending.mechanism === 'PLAIN') return this.#plain(pending.tag, answer.data);
    if (pending.username === undefined) {
      this.#pending = { mechanism: 'LOGIN', tag: pending.tag, username: answer.data.toString('utf8') };
      this.#write('+ UGFzc3dvcmQ6\r\n');
      return;
    }
    // Replayed as PLAIN: the backend then needs no continuation round trip.
    const response = Buffer.concat([
      Buffer.from([0]),
      Buffer.from(pending.username),
      Buffer.from([0]),
      answer.data,
    ]);
    return this.#route(pending.tag, { kind: 'plain', username: pending.username, response });
  }

  /** RFC 4616: `[authzid] NUL authcid NUL passwd`; the authcid routes (the backend checks all). */
  async #plain(tag: string, response: Buffer): Promise<void> {
    const parts = splitNul(response);
    if (parts === null) {
      this.#reply({ tag, condition: 'BAD', text: 'Malformed PLAIN response' });
      this.#countBad();
      return;
    }
    return this.#route(tag, { kind: 'plain', username: parts[1].toString('utf8'), response });
  }

  async #route(tag: string, credentials: Credentials): Promise<void> {
    this.#state = 'routing';
    const { router, metrics, logger } = this.services;
    const plan = await router.plan(credentials.username);
    let fallback = plan.fallback;
    const replay = Buffer.from(replayCommand(tag, credentials), 'latin1');
    for (const candidate of plan.candidates) {
      if (this.#state !== 'routing') return;
      let backend: OpenBackend;
      try {
        backend = await openBackend({
          address: candidate.member.imapAddress,
          client: this.endpoints,
          tls: this.services.backendTls,
          timeoutMs: this.services.limits.connectTimeoutMs,
        });
      } catch (error) {
        metrics.backendError();
        logger.warn({ err: error, backend: candidate.member.imapAddress }, 'backend unreachable');
        if (candidate.owner) fallback = 'owner_unreachable';
        continue;
      }
      let answer;
      try {
        answer = await backend.exchange(tag, replay, LOGIN_ANSWER_MS);
      } catch (error) {
        backend.close();
        metrics.backendError();
        logger.warn({ err: error, backend: candidate.member.imapAddress }, 'backend failed during login');
        if (candidate.owner) fallback = 'owner_unreachable';
        continue;
      }
      if (this.#state !== 'routing') {
        backend.close();
        return;
      }
      if (!candidate.owner && fallback !== undefined) metrics.fallback(fallback);
      const route = candidate.owner ? 'owner' : 'other';
      this.#write(answer.lines);
      if (/^OK\b/i.test(answer.tagged)) {
        metrics.login(route, 'ok');
        this.#span.setAttributes({
          'postmesh.imap_proxy.route': route,
          'postmesh.imap_proxy.backend': candidate.member.imapAddress,
          ...(plan.partition === undefined ? {} : { 'postmesh.partition': plan.partition }),
        });
        logger.debug({ backend: candidate.member.imapAddress, route, partition: plan.partition }, 'spliced');
        return this.#splice(backend, answer.rest);
      }
      metrics.login(route, 'no');
      backend.close();
      this.#state = 'prelogin';
      this.#authFailures += 1;
      if (this.#authFailures >= this.services.limits.maxAuthFailures) {
        await this.#bye('Too many failed authentication attempts');
      }
      return;
    }
    metrics.unavailable();
    logger.warn({ candidates: plan.candidates.length }, 'no backend reachable for a login');
    this.#reply({
      tag,
      condition: 'NO',
      code: { code: 'UNAVAILABLE' },
      text: 'No IMAP server available; try again later',
    });
    this.#state = 'prelogin';
  }

  /** From here on the proxy copies bytes both ways (pipe: backpressure; end: half-close). */
  #splice(backend: OpenBackend, fromBackend: Buffer): void {
    this.#state = 'spliced';
    clearTimeout(this.#timer);
    const client = this.#socket;
    const server = backend.socket;
    client.off('data', this.#onData);
    const unread = this.#receiver.takeUnread();
    if (fromBackend.length > 0) client.write(fromBackend);
    if (unread.length > 0) server.write(unread);
    const cut = (): void => {
      client.destroy();
      server.destroy();
    };
    server.on('error', cut);
    server.once('close', () => {
      // What the backend said last (a BYE) is written before the client side closes.
      if (client.writableLength === 0) client.destroy();
      else client.end();
    });
    client.once('close', () => server.destroy());
    this.raw.setTimeout(this.services.limits.idleTimeoutMs, () => {
      this.services.logger.info('spliced connection idle too long; cut');
      cut();
    });
    client.pipe(server);
    server.pipe(client);
    client.resume();
    server.resume();
  }

  async #bye(text: string, unavailable = false): Promise<void> {
    this.#write(
      serializeStatus({
        tag: null,
        condition: 'BYE',
        ...(unavailable ? { code: { code: 'UNAVAILABLE' as const } } : {}),
        text,
      }),
    );
    this.#end();
    await Promise.resolve();
  }

  /** Ends our side; the socket closes when the client has read it (or after a second). */
  #end(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#socket.off('data', this.#onData);
    this.#socket.end();
    this.#socket.resume();
    setTimeout(() => this.#destroy(), 1_000).unref();
  }

  #destroy(): void {
    this.#socket.destroy();
    this.raw.destroy();
  }

  #finish(): void {
    clearTimeout(this.#timer);
    if (this.#state !== 'spliced' && this.#state !== 'closed') this.#state = 'closed';
    this.#span.setStatus({ code: SpanStatusCode.UNSET });
    this.#span.end();
    this.onClose();
  }
}

/** The client's login, as the backend gets it: LOGIN with strings, or AUTHENTICATE PLAIN (SASL-IR). */
export function replayCommand(tag: string, credentials: Credentials): string {
  if (credentials.kind === 'plain') {
    const b64 = credentials.response.toString('base64');
    return `${tag} AUTHENTICATE PLAIN ${b64 === '' ? '=' : b64}\r\n`;
  }
  return `${tag} LOGIN ${imapString(credentials.username)} ${imapString(credentials.password)}\r\n`;
}

/** A quoted string when it can be one (RFC 9051 §4.3), else a non-synchronizing literal (LITERAL-). */
function imapString(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length <= 1024 && bytes.every((b) => b >= 0x20 && b < 0x7f)) {
    return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  }
  return `{${bytes.length}+}\r\n${bytes.toString('latin1')}`;
}

function splitNul(response: Buffer): [Buffer, Buffer, Buffer] | null {
  const first = response.indexOf(0);
  if (first < 0) return null;
  const second = response.indexOf(0, first + 1);
  if (second < 0 || response.indexOf(0, second + 1) >= 0) return null;
  const authcid = response.subarray(first + 1, second);
  if (authcid.length === 0) return null;
  return [response.subarray(0, first), authcid, response.subarray(second + 1)];
}
