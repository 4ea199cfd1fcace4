/**
 * One ManageSieve connection (RFC 5804): the greeting and CAPABILITY (§1.7), STARTTLS (§2.2),
 * AUTHENTICATE with SASL PLAIN (RFC 4616) and LOGIN through the same Directory.Authenticate and
 * login throttle as IMAP LOGIN, UNAUTHENTICATE (§2.14), LOGOUT, and the script commands (§2.5 to
 * §2.13) as thin calls of storage's Sieve script RPCs (docs/sieve.md). Commands run one at a time;
 * the socket is paused while one runs, so a client cannot queue unbounded input.
 */
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import { directory } from '@postmesh/contracts';
import type { AuthThrottle } from '@postmesh/bus';
import { SUPPORTED_EXTENSIONS, checkScript } from '@postmesh/sieve';
import type { Logger } from '@postmesh/telemetry';
import {
  ErrorReason,
  StorageError,
  StorageUnavailableError,
  type Directory,
  type Mailstore,
} from '../storage.js';
import {
  parseCommand,
  response,
  sieveString,
  utf8,
  type Argument,
  type Command,
  type ParseLimits,
} from './protocol.js';

export type SieveStore = Pick<
  Mailstore,
  'putSieveScript' | 'getSieveScript' | 'listSieveScripts' | 'setActiveSieveScript' | 'deleteSieveScript'
>;

export interface ManageSieveLimits {
  /** Largest script (storage's limit, docs/sieve.md); larger literals are dropped unread. */
  readonly maxScriptBytes: number;
  /** Scripts per user (storage's limit), for HAVESPACE. */
  readonly maxScripts: number;
  /** Redirects per run (libs/sieve), advertised as MAXREDIRECTS. */
  readonly maxRedirects: number;
  /** Octets of a command outside its literals. */
  readonly maxLine: number;
  readonly preAuthTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Failed AUTHENTICATEs on one connection before BYE. */
  readonly maxAuthFailures: number;
  /** Commands refused as malformed on one connection before BYE. */
  readonly maxBadCommands: number;
}

export interface ManageSieveServices {
  readonly mailstore: SieveStore;
  readonly directory: Directory;
  readonly throttle: AuthThrottle;
  readonly logger: Logger;
  /** Allow AUTHENTICATE without TLS (development and tests on loopback only). */
  readonly allowPlaintext: boolean;
  readonly implementation: string;
  readonly limits: ManageSieveLimits;
  /** Called once per answered command (metrics). */
  readonly onCommand?: (name: string, condition: 'OK' | 'NO' | 'BYE') => void;
}

export interface SessionOptions {
  readonly socket: Duplex;
  readonly remoteAddress: string;
  readonly tls: boolean;
  readonly secureContext: () => SecureContext | null;
  readonly services: ManageSieveServices;
  readonly id: number;
  readonly onClose: () => void;
}

interface User {
  readonly id: string;
  readonly address: string;
}

/** A SASL exchange waiting for the client's next response line (§2.1). */
interface SaslExchange {
  readonly mechanism: 'PLAIN' | 'LOGIN';
  /** LOGIN: the user name once given. */
  readonly username?: string;
}

/** What a command answers; `continue` is a SASL challenge (the exchange goes on). */
interface Reply {
  readonly text: string;
  readonly condition: 'OK' | 'NO' | 'BYE' | 'continue';
}

const MECHANISMS = ['PLAIN', 'LOGIN'] as const;
const LOGIN_USERNAME = Buffer.from('Username:').toString('base64');
const LOGIN_PASSWORD = Buffer.from('Password:').toString('base64');

export class ManageSieveSession {
  #socket: Duplex;
  #tls: boolean;
  #buffer: Buffer = Buffer.alloc(0);
  #user: User | null = null;
  #sasl: SaslExchange | null = null;
  /** Literal octets still to drop (a literal over the limit), then the rest of its line. */
  #discard = 0;
  #discardLine = false;
  #busy = false;
  #closed = false;
  #authFailures = 0;
  #badCommands = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #logger: Logger;
  readonly #services: ManageSieveServices;
  readonly #parseLimits: ParseLimits;
  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    void this.#pump();
  };
  readonly #onEnd = (): void => this.#finish();

  constructor(private readonly options: SessionOptions) {
    this.#socket = options.socket;
    this.#tls = options.tls;
    this.#services = options.services;
    this.#logger = options.services.logger.child({
      component: 'managesieve',
      session: options.id,
      remote: options.remoteAddress,
    });
    const limits = options.services.limits;
    // A script travels as a literal; any other string is short (names, SASL responses).
    this.#parseLimits = { maxLine: limits.maxLine, maxLiteral: Math.max(limits.maxScriptBytes, 8 * 1024) };
  }

  /** True while a command runs (shutdown lets it finish). */
  get busy(): boolean {
    return this.#busy;
  }

  start(): void {
    this.#attach(this.#socket);
    this.#armTimer();
    // §1.7: the greeting is the capability response.
    this.#write(this.#capabilities() + response('OK', 'Postmesh ManageSieve ready'));
  }

  /** BYE and close (shutdown, autologout). */
  async close(reason: string): Promise<void> {
    if (this.#closed) return;
    this.#write(response('BYE', reason));
    await this.#end();
  }

  #attach(socket: Duplex): void {
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', (error) => this.#logger.debug({ err: error }, 'connection error'));
  }

  #detach(socket: Duplex): void {
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onEnd);
  }

  #armTimer(): void {
    clearTimeout(this.#timer);
    const limits = this.#services.limits;
    const ms = this.#user === null ? limits.preAuthTimeoutMs : limits.idleTimeoutMs;
    this.#timer = setTimeout(() => void this.close('Autologout; idle for too long'), ms);
    this.#timer.unref();
  }

  #write(text: string): void {
    if (this.#closed) return;
    this.#socket.write(text);
  }

  async #pump(): Promise<void> {
    if (this.#busy || this.#closed) return;
    this.#busy = true;
    this.#socket.pause();
    try {
      while (!this.#closed && (await this.#step()));
    } catch (error) {
      this.#logger.error({ err: error }, 'ManageSieve session failed');
      this.#write(response('BYE', 'Internal error; the server log has details'));
      await this.#end();
    } finally {
      this.#busy = false;
      if (!this.#closed) this.#socket.resume();
    }
  }

  /** Handles what the buffer holds next; false when it needs more input. */
  async #step(): Promise<boolean> {
    if (this.#discard > 0) {
      const dropped = Math.min(this.#discard, this.#buffer.length);
      this.#buffer = this.#buffer.subarray(dropped);
      this.#discard -= dropped;
      return this.#discard === 0;
    }
    if (this.#discardLine) {
      const crlf = this.#buffer.indexOf('\r\n');
      if (crlf < 0) {
        // Keep a trailing CR: its LF may come in the next chunk.
        this.#buffer = this.#buffer.subarray(Math.max(0, this.#buffer.length - 1));
        return false;
      }
      this.#buffer = this.#buffer.subarray(crlf + 2);
      this.#discardLine = false;
      this.#reply(
        'PUTSCRIPT',
        no(`Too large; a script may have ${this.#services.limits.maxScriptBytes} octets`, 'QUOTA/MAXSIZE'),
      );
      return true;
    }
    if (this.#buffer.length === 0) return false;
    const parsed = parseCommand(this.#buffer, this.#parseLimits, this.#sasl !== null);
    switch (parsed.kind) {
      case 'incomplete':
        return false;
      case 'line-too-long':
        this.#write(response('BYE', 'Line too long'));
        await this.#end();
        return false;
      case 'literal-too-large':
        this.#buffer = this.#buffer.subarray(parsed.consumed);
        this.#discard = parsed.literal;
        this.#discardLine = true;
        this.#sasl = null;
        return true;
      case 'error':
        this.#buffer = this.#buffer.subarray(parsed.consumed);
        this.#armTimer();
        if (this.#sasl !== null) {
          this.#sasl = null;
          this.#reply('AUTHENTICATE', no(`Bad SASL response: ${parsed.message}`));
        } else {
          this.#reply('?', no(`Syntax error: ${parsed.message}`));
        }
        await this.#countBad();
        return true;
      case 'command':
        this.#buffer = this.#buffer.subarray(parsed.consumed);
        this.#armTimer();
        if (this.#sasl !== null) await this.#saslResponse(parsed.command.args);
        else await this.#command(parsed.command);
        return true;
    }
  }

  #reply(name: string, reply: Reply): void {
    this.#write(reply.text);
    if (reply.condition !== 'continue') this.#services.onCommand?.(name, reply.condition);
  }

  async #countBad(): Promise<void> {
    if (++this.#badCommands >= this.#services.limits.maxBadCommands) {
      this.#write(response('BYE', 'Too many bad commands'));
      await this.#end();
    }
  }

  async #command(command: Command): Promise<void> {
    const handler = HANDLERS[command.name];
    if (handler === undefined) {
      this.#reply('?', no('Unknown command'));
      await this.#countBad();
      return;
    }
    const [min, max, kinds] = handler.arity;
    const args = command.args;
    const shapeOk =
      args.length >= min && args.length <= max && args.every((a, i) => a.kind === (kinds[i] ?? 'string'));
    if (!shapeOk) {
      this.#reply(command.name, no(`Syntax: ${handler.syntax}`));
      await this.#countBad();
      return;
    }
    if (handler.needsAuth && this.#user === null) {
      this.#reply(command.name, no('Authenticate first'));
      return;
    }
    const reply = await handler.run(this, args);
    this.#reply(command.name, reply);
    if (reply.condition === 'BYE' || command.name === 'LOGOUT') await this.#end();
    else if (command.name === 'STARTTLS' && reply.condition === 'OK') await this.#startTls();
  }

  // ---- capabilities and connection state --------------------------------------------------

  #mayAuthenticate(): boolean {
    return this.#tls || this.#services.allowPlaintext;
  }

  #capabilities(): string {
    const limits = this.#services.limits;
    const lines = [
      `"IMPLEMENTATION" ${sieveString(this.#services.implementation)}`,
      `"SIEVE" ${sieveString(SUPPORTED_EXTENSIONS.join(' '))}`,
      // §1.7: no mechanism is offered before TLS unless plaintext is allowed (RFC 4616 §4 for PLAIN).
      `"SASL" ${sieveString(this.#mayAuthenticate() && this.#user === null ? MECHANISMS.join(' ') : '')}`,
    ];
    if (!this.#tls && this.options.secureContext() !== null) lines.push('"STARTTLS"');
    lines.push(`"MAXREDIRECTS" "${limits.maxRedirects}"`);
    if (this.#user !== null) lines.push(`"OWNER" ${sieveString(this.#user.address)}`);
    lines.push('"UNAUTHENTICATE"', '"VERSION" "1.0"');
    return lines.map((l) => `${l}\r\n`).join('');
  }

  capability(): Reply {
    return ok(this.#capabilities() + response('OK', 'Capability completed'));
  }

  starttls(): Reply {
    if (this.#tls) return no('Already using TLS');
    if (this.options.secureContext() === null) return no('TLS is not available');
    if (this.#user !== null) return no('Already authenticated');
    return ok(response('OK', 'Begin TLS negotiation now'));
  }

  async #startTls(): Promise<void> {
    const context = this.options.secureContext();
    if (context === null) return;
    const plain = this.#socket;
    this.#detach(plain);
    // RFC 5804 §2.2 and RFC 8314 §3.2 (command injection): anything sent before the handshake is dropped.
    this.#buffer = Buffer.alloc(0);
    const secure = new TLSSocket(plain, { isServer: true, secureContext: context });
    this.#socket = secure;
    this.#tls = true;
    this.#attach(secure);
    plain.resume();
    const secured = await new Promise<boolean>((resolve) => {
      secure.once('secure', () => resolve(true));
      secure.once('close', () => resolve(false));
      secure.once('error', () => resolve(false));
    });
    if (!secured) {
      this.#finish();
      return;
    }
    // §2.2: after the handshake the server sends the capabilities again (now with SASL).
    this.#write(this.#capabilities() + response('OK', 'TLS negotiation successful'));
  }

  logout(): Reply {
    return ok(response('OK', 'Logout completed'));
  }

  noop(args: readonly Argument[]): Reply {
    const tag = args[0];
    // §2.12: a tag argument is echoed in a TAG response code.
    const code = tag?.kind === 'string' ? `TAG ${sieveString(tag.value)}` : undefined;
    return ok(response('OK', 'Done', code));
  }

  unauthenticate(): Reply {
    if (this.#user === null) return no('Not authenticated');
    this.#logger.info({ user: this.#user.id }, 'unauthenticated');
    this.#user = null;
    this.#armTimer();
    return ok(response('OK', 'Unauthenticate completed'));
  }

  // ---- AUTHENTICATE (§2.1) --------------------------------------------------------------------

  async authenticate(args: readonly Argument[]): Promise<Reply> {
    if (this.#user !== null) return no('Already authenticated');
    if (!this.#mayAuthenticate()) return no('Use STARTTLS first', 'ENCRYPT-NEEDED');
    const mechanism = text(args[0]).toUpperCase();
    if (mechanism !== 'PLAIN' && mechanism !== 'LOGIN') return no('Unsupported SASL mechanism');
    const initial = args[1];
    if (mechanism === 'PLAIN') {
      if (initial === undefined) {
        this.#sasl = { mechanism };
        return ok(`${sieveString('')}\r\n`, 'continue');
      }
      return this.#plain(text(initial));
    }
    if (initial !== undefined) {
      // RFC 4954-style LOGIN with the user name up front is common (e.g. some clients).
      const username = fromBase64(text(initial));
      if (username === null) return this.#saslFailed('Bad base64');
      this.#sasl = { mechanism, username };
      return ok(`${sieveString(LOGIN_PASSWORD)}\r\n`, 'continue');
    }
    this.#sasl = { mechanism };
    return ok(`${sieveString(LOGIN_USERNAME)}\r\n`, 'continue');
  }

  async #saslResponse(args: readonly Argument[]): Promise<void> {
    const exchange = this.#sasl;
    this.#sasl = null;
    if (exchange === null) return;
    const arg = args[0];
    if (args.length !== 1 || arg?.kind !== 'string') {
      this.#reply('AUTHENTICATE', no('Expected one string'));
      return;
    }
    const value = text(arg);
    // §2.1: "*" cancels the exchange.
    if (value === '*') {
      this.#reply('AUTHENTICATE', no('Authentication cancelled'));
      return;
    }
    let reply: Reply;
    if (exchange.mechanism === 'PLAIN') {
      reply = await this.#plain(value);
    } else if (exchange.username === undefined) {
      const username = fromBase64(value);
      if (username === null) reply = this.#saslFailed('Bad base64');
      else {
        this.#sasl = { mechanism: 'LOGIN', username };
        reply = ok(`${sieveString(LOGIN_PASSWORD)}\r\n`, 'continue');
      }
    } else {
      const password = fromBase64(value);
      reply =
        password === null ? this.#saslFailed('Bad base64') : await this.#login(exchange.username, password);
    }
    this.#reply('AUTHENTICATE', reply);
    if (reply.condition === 'BYE') await this.#end();
  }

  /** RFC 4616 §2: `[authzid] NUL authcid NUL passwd`, base64 in ManageSieve. */
  async #plain(encoded: string): Promise<Reply> {
    const decoded = fromBase64(encoded);
    if (decoded === null) return this.#saslFailed('Bad base64');
    const parts = decoded.split('\0');
    if (parts.length !== 3) return this.#saslFailed('Malformed PLAIN response');
    const [authzid = '', authcid = '', password = ''] = parts;
    // Acting as another user is not offered: an authorization identity must be the login itself.
    if (authzid !== '' && authzid.toLowerCase() !== authcid.toLowerCase())
      return no('Authorization as another user is not allowed', 'AUTH-TOO-WEAK');
    return this.#login(authcid, password);
  }

  /** The same checks as IMAP LOGIN (login.ts): throttle first, then Directory.Authenticate. */
  async #login(username: string, password: string): Promise<Reply> {
    const { throttle, directory: dir } = this.#services;
    const verdict = await throttle.attempt(this.options.remoteAddress, username);
    if (verdict.kind === 'locked') {
      this.#logger.warn({ scope: verdict.scope }, 'login refused: too many failures');
      await sleep(verdict.delayMs);
      return this.#saslFailed('Too many failed logins; try again later');
    }
    await sleep(verdict.delayMs);
    const answer = await dir.authenticate({
      address: username,
      password,
      // ManageSieve shares IMAP's credentials: with TOTP on, an app password for mail clients.
      protocol: directory.Protocol.IMAP,
      remoteIp: this.options.remoteAddress,
      totpCode: '',
    });
    const result = answer.result;
    if (result?.$case === 'success' && result.value.user !== undefined) {
      void throttle.succeeded(verdict.ticket);
      this.#user = { id: result.value.user.id, address: result.value.user.address };
      this.#armTimer();
      this.#logger.info({ user: this.#user.id, appPassword: result.value.appPasswordId !== '' }, 'logged in');
      return ok(response('OK', 'Logged in'));
    }
    throttle.failed(verdict.ticket);
    this.#logger.info({ reason: result?.$case === 'failure' ? result.value.reason : 'none' }, 'login failed');
    return this.#saslFailed('Authentication failed');
  }

  #saslFailed(message: string): Reply {
    if (++this.#authFailures >= this.#services.limits.maxAuthFailures) {
      return {
        condition: 'BYE',
        text: response('NO', message) + response('BYE', 'Too many failed authentication attempts'),
      };
    }
    return no(message);
  }

  // ---- script commands (§2.5 to §2.13) -------------------------------------------------------

  #userId(): string {
    return this.#user?.id ?? '';
  }

  async havespace(args: readonly Argument[]): Promise<Reply> {
    const name = scriptName(args[0]);
    if (name === null) return no('Invalid script name');
    const size = args[1]?.kind === 'number' ? args[1].value : 0;
    const limits = this.#services.limits;
    if (size > limits.maxScriptBytes)
      return no(`A script may have at most ${limits.maxScriptBytes} octets`, 'QUOTA/MAXSIZE');
    return this.#storage(async () => {
      const { scripts } = await this.#services.mailstore.listSieveScripts({ userId: this.#userId() });
      if (!scripts.some((s) => s.name === name) && scripts.length >= limits.maxScripts)
        return no(`At most ${limits.maxScripts} scripts`, 'QUOTA/MAXSCRIPTS');
      return ok(response('OK', 'Putscript would succeed'));
    });
  }

  async putscript(args: readonly Argument[]): Promise<Reply> {
    const name = scriptName(args[0]);
    if (name === null) return no('Invalid script name');
    const content = scriptContent(args[1]);
    if (content === null) return no('A script is UTF-8 text');
    const max = this.#services.limits.maxScriptBytes;
    if (Buffer.byteLength(content) > max)
      return no(`A script may have at most ${max} octets`, 'QUOTA/MAXSIZE');
    return this.#storage(async () => {
      await this.#services.mailstore.putSieveScript({
        userId: this.#userId(),
        name,
        content,
        checkOnly: false,
      });
      this.#logger.info({ user: this.#userId(), script: name }, 'script stored');
      return ok(response('OK', 'Putscript completed'));
    });
  }

  checkscript(args: readonly Argument[]): Reply {
    const content = scriptContent(args[0]);
    if (content === null) return no('A script is UTF-8 text');
    // The same validation as storage's PutSieveScript (libs/sieve), without a round trip.
    const check = checkScript(content, { maxScriptBytes: this.#services.limits.maxScriptBytes });
    return check.ok ? ok(response('OK', 'Script is valid')) : no(check.error.message);
  }

  async getscript(args: readonly Argument[]): Promise<Reply> {
    const name = scriptName(args[0]);
    if (name === null) return no('Invalid script name');
    return this.#storage(async () => {
      const { content } = await this.#services.mailstore.getSieveScript({ userId: this.#userId(), name });
      const bytes = Buffer.from(content, 'utf8');
      // §2.9: the script is a literal (server-to-client literals have no "+").
      return ok(`{${bytes.length}}\r\n${content}\r\n${response('OK', 'Getscript completed')}`);
    });
  }

  async listscripts(): Promise<Reply> {
    return this.#storage(async () => {
      const { scripts } = await this.#services.mailstore.listSieveScripts({ userId: this.#userId() });
      const lines = scripts.map((s) => `${sieveString(s.name)}${s.active ? ' ACTIVE' : ''}\r\n`).join('');
      return ok(lines + response('OK', 'Listscripts completed'));
    });
  }

  async setactive(args: readonly Argument[]): Promise<Reply> {
    const raw = args[0];
    // §2.8: an empty name deactivates the active script.
    const name = raw?.kind === 'string' && raw.value.length === 0 ? '' : scriptName(raw);
    if (name === null) return no('Invalid script name');
    return this.#storage(async () => {
      await this.#services.mailstore.setActiveSieveScript({ userId: this.#userId(), name });
      this.#logger.info({ user: this.#userId(), script: name }, 'active script set');
      return ok(response('OK', name === '' ? 'No script is active' : 'Setactive completed'));
    });
  }

  async deletescript(args: readonly Argument[]): Promise<Reply> {
    const name = scriptName(args[0]);
    if (name === null) return no('Invalid script name');
    return this.#storage(async () => {
      await this.#services.mailstore.deleteSieveScript({ userId: this.#userId(), name });
      this.#logger.info({ user: this.#userId(), script: name }, 'script deleted');
      return ok(response('OK', 'Deletescript completed'));
    });
  }

  /**
   * §2.11.1 through the script RPCs: store the content under the new name, move the active mark,
   * delete the old name. Storage keeps the scripts; a crash between the steps leaves both names
   * (never neither), which the user sees in LISTSCRIPTS.
   */
  async renamescript(args: readonly Argument[]): Promise<Reply> {
    const from = scriptName(args[0]);
    const to = scriptName(args[1]);
    if (from === null || to === null) return no('Invalid script name');
    return this.#storage(async () => {
      const store = this.#services.mailstore;
      const userId = this.#userId();
      const { scripts } = await store.listSieveScripts({ userId });
      const old = scripts.find((s) => s.name === from);
      if (old === undefined) return no('No such script', 'NONEXISTENT');
      if (from === to) return ok(response('OK', 'Renamescript completed'));
      if (scripts.some((s) => s.name === to)) return no('A script of that name exists', 'ALREADYEXISTS');
      const { content } = await store.getSieveScript({ userId, name: from });
      await store.putSieveScript({ userId, name: to, content, checkOnly: false });
      if (old.active) await store.setActiveSieveScript({ userId, name: to });
      await store.deleteSieveScript({ userId, name: from });
      this.#logger.info({ user: userId, script: to, was: from }, 'script renamed');
      return ok(response('OK', 'Renamescript completed'));
    });
  }

  /** Storage refusals as RFC 5804 response codes; an outage is TRYLATER (§1.3). */
  async #storage(run: () => Promise<Reply>): Promise<Reply> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof StorageError) {
        switch (error.reason) {
          case ErrorReason.NOT_FOUND:
            return no('No such script', 'NONEXISTENT');
          case ErrorReason.NOT_ALLOWED:
            return no('The active script cannot be deleted', 'ACTIVE');
          case ErrorReason.INVALID_ARGUMENT:
            // The validation error, with line and column (§2.6: a human-readable reason).
            return no(error.details);
          case ErrorReason.INVALID_NAME:
            return no('Invalid script name');
          case ErrorReason.LIMIT_EXCEEDED:
            return no(error.details, 'QUOTA/MAXSCRIPTS');
          default:
            break;
        }
      }
      if (error instanceof StorageUnavailableError) {
        this.#logger.warn({ err: error }, 'storage unavailable');
        return no('Script storage is unavailable; try again later', 'TRYLATER');
      }
      this.#logger.error({ err: error }, 'script command failed');
      return no('Internal error; the server log has details');
    }
  }

  // ---- closing --------------------------------------------------------------------------------

  async #end(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    const socket = this.#socket;
    // Let the client read the last lines: close our side, drop what it still sends (at most 1 s).
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.on('data', () => undefined);
      socket.resume();
      socket.end();
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, 1000).unref();
    });
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#socket.destroy();
    this.options.onClose();
  }

  #finished = false;
}

function ok(text: string, condition: 'OK' | 'continue' = 'OK'): Reply {
  return { text, condition };
}

function no(message: string, code?: string): Reply {
  return { text: response('NO', message, code), condition: 'NO' };
}

function text(arg: Argument | undefined): string {
  return arg?.kind === 'string' ? arg.value.toString('utf8') : '';
}

/** §1.6: a script name is non-empty UTF-8 without controls; storage bounds its length. */
function scriptName(arg: Argument | undefined): string | null {
  if (arg?.kind !== 'string' || arg.value.length === 0) return null;
  return utf8(arg.value);
}

function scriptContent(arg: Argument | undefined): string | null {
  return arg?.kind === 'string' ? utf8(arg.value) : null;
}

function fromBase64(value: string): string | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) return null;
  return Buffer.from(value, 'base64').toString('utf8');
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

interface Handler {
  /** Fewest and most arguments, and the kind of each (default string). */
  readonly arity: readonly [number, number, readonly ('string' | 'number')[]];
  readonly needsAuth: boolean;
  readonly syntax: string;
  readonly run: (session: ManageSieveSession, args: readonly Argument[]) => Reply | Promise<Reply>;
}

const HANDLERS: Readonly<Record<string, Handler>> = {
  CAPABILITY: { arity: [0, 0, []], needsAuth: false, syntax: 'CAPABILITY', run: (s) => s.capability() },
  STARTTLS: { arity: [0, 0, []], needsAuth: false, syntax: 'STARTTLS', run: (s) => s.starttls() },
  AUTHENTICATE: {
    arity: [1, 2, []],
    needsAuth: false,
    syntax: 'AUTHENTICATE <mechanism> [<initial response>]',
    run: (s, a) => s.authenticate(a),
  },
  LOGOUT: { arity: [0, 0, []], needsAuth: false, syntax: 'LOGOUT', run: (s) => s.logout() },
  NOOP: { arity: [0, 1, []], needsAuth: false, syntax: 'NOOP [<tag>]', run: (s, a) => s.noop(a) },
  UNAUTHENTICATE: {
    arity: [0, 0, []],
    needsAuth: false,
    syntax: 'UNAUTHENTICATE',
    run: (s) => s.unauthenticate(),
  },
  HAVESPACE: {
    arity: [2, 2, ['string', 'number']],
    needsAuth: true,
    syntax: 'HAVESPACE <name> <size>',
    run: (s, a) => s.havespace(a),
  },
  PUTSCRIPT: {
    arity: [2, 2, []],
    needsAuth: true,
    syntax: 'PUTSCRIPT <name> <script>',
    run: (s, a) => s.putscript(a),
  },
  CHECKSCRIPT: {
    arity: [1, 1, []],
    needsAuth: true,
    syntax: 'CHECKSCRIPT <script>',
    run: (s, a) => s.checkscript(a),
  },
  GETSCRIPT: {
    arity: [1, 1, []],
    needsAuth: true,
    syntax: 'GETSCRIPT <name>',
    run: (s, a) => s.getscript(a),
  },
  LISTSCRIPTS: { arity: [0, 0, []], needsAuth: true, syntax: 'LISTSCRIPTS', run: (s) => s.listscripts() },
  SETACTIVE: {
    arity: [1, 1, []],
    needsAuth: true,
    syntax: 'SETACTIVE <name>',
    run: (s, a) => s.setactive(a),
  },
  DELETESCRIPT: {
    arity: [1, 1, []],
    needsAuth: true,
    syntax: 'DELETESCRIPT <name>',
    run: (s, a) => s.deletescript(a),
  },
  RENAMESCRIPT: {
    arity: [2, 2, []],
    needsAuth: true,
    syntax: 'RENAMESCRIPT <old name> <new name>',
    run: (s, a) => s.renamescript(a),
  },
};
