/**
 * One IMAP connection: reads commands with the pure receiver of @postmesh/imap-protocol, checks
 * each against the session state, runs its handler and writes the serialized responses.
 *
 * RFC 9051 §2.2 (client/server protocol, one command at a time here), §3 (states), §5.4
 * (autologout timer), §7.5.1 (when unsolicited EXISTS/EXPUNGE may be sent), §11.1 (STARTTLS
 * discards buffered plaintext); RFC 7888 §4 (literal limits); RFC 5530 (response codes).
 *
 * Memory per idling connection is kept small (≤ 20 KB: thousands of idle clients per process): no timer per session (the
 * autologout deadline and the IDLE poll are checked by the server's shared SessionClock), one
 * pending wake-up instead of a promise per event kind, and the raw command bytes (slices of the
 * socket's read buffer) are not kept alive while a long command such as IDLE runs.
 */
import { Socket } from 'node:net';
import {
  constants as zlibConstants,
  createDeflateRaw,
  createInflateRaw,
  type DeflateRaw,
  type InflateRaw,
} from 'node:zlib';
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import {
  COMMAND_STATES,
  CommandReceiver,
  parseCommand,
  parseErrorResponse,
  capabilityList,
  receiverErrorResponse,
  serializeContinuation,
  serializeExists,
  serializeFetch,
  serializeRecent,
  serializeStatus,
  type Command,
  type OutputChunk,
  type RawCommand,
  type ReceiverLimits,
  type StatusResponse,
} from '@postmesh/imap-protocol';
import type { MailboxChange } from '@postmesh/bus';
import { SpanKind, inSpan, type Logger } from '@postmesh/telemetry';
import { COMMANDS } from './commands/index.js';
import type { CommandContext, EnableableCapability, ImapServices } from './commands/context.js';
import type { SessionClock, Ticking } from './clock.js';
import { storageFailure } from './errors.js';
import { expungeResponses } from './expunged.js';
import { flagsResponses, imapFlags, learnKeywords } from './flags.js';
import type { SelectedMailbox, SessionState } from './state.js';
import { StorageError, ErrorReason } from './storage.js';
import { SharedNamespaceMailstore } from './shared-mailstore.js';

export interface SessionOptions {
  /** The connection (a socket, a TLS socket, or the stream after a PROXY header). */
  readonly socket: Duplex;
  readonly remoteAddress: string;
  readonly tls: boolean;
  readonly secureContext: SecureContext | null;
  readonly services: ImapServices;
  readonly id: number;
  /** Subscribes to `mailbox.changed.<userId>`; returns the unsubscribe function. */
  readonly subscribeChanges: (userId: string, onChange: (change?: MailboxChange) => void) => () => void;
  readonly onClose: () => void;
  /** The shared clock that checks the autologout deadline and wakes IDLE polls. */
  readonly clock: SessionClock;
}

type Parsed = ReturnType<typeof parseCommand>;

/** Held output written at once when it reaches this (see Session #output). */
const OUTPUT_FLUSH_BYTES = 64 * 1024;

export class Session implements CommandContext, Ticking {
  #socket: Duplex;
  #tls: boolean;
  readonly #secureContext: SecureContext | null;
  /** Once authenticated, the mailstore is seen through the user's namespaces (shared-mailstore.ts). */
  services: ImapServices;
  #namespaces: SharedNamespaceMailstore | null = null;
  /** Change events of the owner of the selected shared mailbox reach this session too. */
  #watchedOwner: { readonly id: string; readonly unsubscribe: () => void } | null = null;
  readonly logger: Logger;
  readonly remoteAddress: string;
  #receiver: CommandReceiver;
  #state: SessionState = { kind: 'notAuthenticated' };
  #closed = false;
  /** Resolves the one pending wait (input, mailbox changes, IDLE poll, close). */
  #wake: (() => void) | null = null;
  #changesPending = false;
  #utf8 = false;
  #rev2 = false;
  /** RFC 7162 §3.1: a CONDSTORE enabling command was issued (QRESYNC implies it, §3.2.3). */
  #condstore = false;
  /** RFC 7162 §3.2.3: ENABLE QRESYNC was issued; expunges are announced as VANISHED. */
  #qresync = false;
  #authFailures = 0;
  #unsubscribe: (() => void) | null = null;
  /** Autologout when the clock passes this (ms since the epoch). */
  #deadline = Infinity;
  /** While IDLE waits: when to poll storage for missed changes. */
  #pollAt = Infinity;
  #tokens: number;
  #tokensAt = Date.now();
  readonly #options: SessionOptions;
  #commandInProgress = false;
  #closeReason: string | null = null;
  /** Literal budget held by the command being received or run, and the literal last counted. */
  #literalBytes = 0;
  #literalCounted: object | null = null;
  /** COMPRESS=DEFLATE (RFC 4978): both directions once the tagged OK went out. */
  #compression: { readonly inflate: InflateRaw; readonly deflate: DeflateRaw } | null = null;
  /**
   * Output not written yet. While a command runs, its responses are gathered here and written
   * together (one write system call, one DEFLATE sync flush) when it ends, when they pass
   * OUTPUT_FLUSH_BYTES, or before the session waits for the client (a continuation request, IDLE).
   */
  #output: Uint8Array[] = [];
  #outputBytes = 0;
  /** A command is running: its output is held until it ends (see #output). */
  #holdOutput = false;

  constructor(options: SessionOptions) {
    this.#options = options;
    this.#socket = options.socket;
    this.#tls = options.tls;
    this.#secureContext = options.secureContext;
    this.services = options.services;
    this.remoteAddress = normalizeAddress(options.remoteAddress);
    this.logger = options.services.logger.child({ session: options.id, remote: this.remoteAddress });
    this.#receiver = this.#newReceiver();
    this.#tokens = options.services.limits.commandBurst;
    this.#attach(this.#socket);
    this.#socket.resume();
    options.clock.add(this);
  }

  get state(): SessionState {
    return this.#state;
  }
  setState(state: SessionState): void {
    this.#state = state;
    if (state.kind === 'authenticated' && this.#namespaces === null) {
      this.#namespaces = new SharedNamespaceMailstore(this.#options.services.mailstore, state.user.id);
      this.services = { ...this.#options.services, mailstore: this.#namespaces };
    }
    this.#watchOwner(state.kind === 'selected' ? this.#namespaces?.ownerOf(state.mailbox.id)?.id : undefined);
    this.#receiver.setLimits(this.#receiverLimits());
    this.#armTimer();
  }
  get tls(): boolean {
    return this.#tls;
  }
  get utf8(): boolean {
    return this.#utf8 || this.#rev2;
  }
  get rev2(): boolean {
    return this.#rev2;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** Running a command (not idle between commands): shutdown lets it finish first. */
  get busy(): boolean {
    return this.#commandInProgress;
  }

  get condstore(): boolean {
    return this.#condstore;
  }
  get qresync(): boolean {
    return this.#qresync;
  }

  enable(capability: EnableableCapability): boolean {
    if (capability === 'IMAP4REV2') {
      const was = this.#rev2;
      this.#rev2 = true;
      return !was;
    }
    if (capability === 'CONDSTORE') {
      const was = this.#condstore;
      this.#condstore = true;
      return !was;
    }
    if (capability === 'QRESYNC') {
      const was = this.#qresync;
      this.#qresync = true;
      this.#condstore = true;
      return !was;
    }
    const was = this.#utf8;
    this.#utf8 = true;
    return !was;
  }

  capabilities(): string[] {
    return capabilityList({
      state: this.#state.kind,
      tls: this.#tls,
      starttls: this.services.starttls,
      allowPlaintext: this.services.allowPlaintext,
      appendLimit: this.services.limits.appendLimit,
      compressed: this.#compression !== null,
    });
  }

  get compressed(): boolean {
    return this.#compression !== null;
  }

  /**
   * RFC 4978 §3: after the tagged OK of COMPRESS DEFLATE, everything in both directions is raw
   * DEFLATE (RFC 1951, no zlib header). Each batch of responses is flushed with Z_SYNC_FLUSH
   * (§4), so the client can decode every response as soon as it arrives, IDLE updates included.
   * Like STARTTLS, anything pipelined behind the command is discarded: it cannot be known
   * whether the client compressed it.
   */
  startCompression(): void {
    if (this.#compression !== null || this.#closed) return;
    // The tagged OK (still held) goes out uncompressed.
    this.#writeOutputNow();
    const socket = this.#socket;
    const inflate = createInflateRaw();
    const deflate = createDeflateRaw({ level: 6 });
    this.#compression = { inflate, deflate };
    this.#receiver = this.#newReceiver();
    socket.off('data', this.#onData);
    socket.on('data', (chunk: Buffer) => {
      if (!inflate.write(chunk)) socket.pause();
    });
    inflate.on('drain', () => {
      if (this.#receiver.buffered <= 4 * this.services.limits.maxLineLength) socket.resume();
    });
    inflate.on('data', this.#onData);
    inflate.on('error', (error) => {
      // Not a DEFLATE stream: nothing the client sends can be read any more.
      this.logger.debug({ err: error }, 'compressed input is corrupt; closing');
      this.#finish();
    });
    // Back-pressure: a full socket pauses the compressor, whose full buffer then holds `send`.
    deflate.on('data', (chunk: Buffer) => {
      if (!socket.write(chunk)) deflate.pause();
    });
    socket.on('drain', () => deflate.resume());
  }

  #newReceiver(): CommandReceiver {
    return new CommandReceiver(this.#receiverLimits());
  }

  /**
   * Before authentication only small literals (LOGIN / AUTHENTICATE arguments) are taken, of both
   * kinds: a non-synchronizing literal arrives without an invitation, so the limit must be the
   * receiver's, not only the continuation's (RFC 7888 §4, LITERAL- is what is advertised then).
   */
  #receiverLimits(): ReceiverLimits {
    const limits = this.services.limits;
    const literal = this.#state.kind === 'notAuthenticated' ? limits.preAuthLiteralLimit : limits.appendLimit;
    return {
      maxLineLength: limits.maxLineLength,
      maxLiteralSize: literal,
      maxCommandSize: literal + 2 * limits.maxLineLength,
    };
  }

  #attach(socket: Duplex): void {
    if (socket instanceof Socket) socket.setNoDelay(true);
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  #detach(socket: Duplex): void {
    socket.off('data', this.#onData);
    socket.off('error', this.#onError);
    socket.off('close', this.#onClose);
  }

  readonly #onData = (chunk: Buffer): void => {
    // Logging out: input is read (so the connection closes cleanly) and dropped.
    if (this.#state.kind === 'logout') return;
    this.#receiver.push(chunk);
    // Before authentication the deadline runs from the last complete command, not from the last
    // byte: a client trickling one octet at a time cannot hold the connection open for ever.
    if (this.#state.kind !== 'notAuthenticated') this.#armTimer();
    // Back-pressure: stop reading while a command runs and input piles up (memory stays bounded
    // by the receiver limits plus one socket buffer).
    if (this.#receiver.buffered > 4 * this.services.limits.maxLineLength) this.#socket.pause();
    this.#wakeUp();
  };
  readonly #onError = (error: Error): void => {
    this.logger.debug({ err: error }, 'connection error');
  };
  readonly #onClose = (): void => {
    this.#finish();
  };

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#state = { kind: 'logout' };
    this.#options.clock.delete(this);
    this.#releaseLiterals();
    this.#output = [];
    this.#outputBytes = 0;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#watchOwner(undefined);
    this.#wakeUp();
    this.#compression?.inflate.destroy();
    this.#compression?.deflate.destroy();
    this.#socket.destroy();
    this.#options.onClose();
  }

  /** Restarts the inactivity deadline (checked by the shared clock in `tick`). */
  #armTimer(): void {
    if (this.#closed) return;
    const limits = this.services.limits;
    const ms = this.#state.kind === 'notAuthenticated' ? limits.preAuthTimeoutMs : limits.idleTimeoutMs;
    this.#deadline = Date.now() + ms;
  }

  /** Called by the shared clock. */
  tick(now: number): void {
    if (this.#closed) return;
    if (now >= this.#deadline) {
      this.#deadline = Infinity;
      // RFC 9051 §5.4 autologout; §7.1.5 BYE first.
      void this.close('Autologout; idle for too long');
      return;
    }
    if (now >= this.#pollAt) this.#wakeUp();
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /**
   * Waits for the next wake-up (input, changes, IDLE poll time, close). What is held goes out
   * first: the client may be waiting for it (a continuation request, an IDLE update).
   */
  #sleep(): Promise<void> {
    this.#writeOutputNow();
    return new Promise<void>((resolve) => {
      const earlier = this.#wake;
      this.#wake =
        earlier === null
          ? resolve
          : () => {
              earlier();
              resolve();
            };
    });
  }

  /** Sends the greeting and serves commands until the connection ends. */
  async run(): Promise<void> {
    try {
      // RFC 9051 §7.1.1: the greeting may carry the capabilities.
      await this.send(
        serializeStatus({
          tag: null,
          condition: 'OK',
          code: { code: 'CAPABILITY', capabilities: this.capabilities() },
          text: `${this.services.serverName} ready`,
        }),
      );
      this.#armTimer();
      for (;;) {
        const parsed = await this.#nextCommand();
        if (parsed === null) break;
        await this.#rateLimit();
        this.#commandInProgress = true;
        this.#holdOutput = true;
        try {
          await this.#execute(parsed);
        } finally {
          this.#holdOutput = false;
          await this.flush();
          this.#commandInProgress = false;
          // The command's literals are garbage now (APPEND handed its message to storage).
          this.#releaseLiterals();
        }
        if (this.#closed) break;
      }
    } catch (error) {
      this.logger.error({ err: error }, 'session failed; closing');
    } finally {
      this.#finish();
    }
  }

  /**
   * The next command, parsed. The raw bytes are dropped here: they are slices of the socket's read
   * buffer, which would otherwise stay alive for as long as the command runs (hours for IDLE).
   */
  async #nextCommand(): Promise<Parsed | null> {
    const raw = await this.readCommand();
    if (raw === null) return null;
    this.#armTimer();
    return parseCommand(raw, { utf8: this.utf8 });
  }

  async #rateLimit(): Promise<void> {
    const { commandRate, commandBurst } = this.services.limits;
    const now = Date.now();
    this.#tokens = Math.min(commandBurst, this.#tokens + ((now - this.#tokensAt) / 1000) * commandRate);
    this.#tokensAt = now;
    if (this.#tokens < 1) {
      const waitMs = Math.ceil(((1 - this.#tokens) / commandRate) * 1000);
      await new Promise((r) => setTimeout(r, waitMs));
      this.#tokens = 1;
      this.#tokensAt = Date.now();
    }
    this.#tokens -= 1;
  }

  /** The next complete command, answering continuations and receiver errors on the way. */
  async readCommand(): Promise<RawCommand | null> {
    for (;;) {
      if (this.#closed) return null;
      const event = this.#receiver.next();
      switch (event.kind) {
        case 'command':
          return event.command;
        case 'continue': {
          const pending = this.#receiver.pendingLiteral;
          if (!(await this.#reserveLiteral(event.size))) {
            if (this.#closed) return null;
            // RFC 9051 §7.5: a tagged response instead of "+", and the client does not send it.
            if (pending !== null && this.#receiver.pendingLiteral?.received === 0)
              this.#receiver.refuseLiteral();
            else this.#receiver.skipLiteral();
            this.#releaseLiterals();
            await this.send(serializeStatus(busy(event.tag)));
            continue;
          }
          this.#literalCounted = pending?.marker ?? null;
          await this.send(serializeContinuation());
          continue;
        }
        case 'error': {
          this.#releaseLiterals();
          const error = event.error;
          const preAuth = this.#state.kind === 'notAuthenticated';
          const tooBig = error.code === 'literalTooLarge' || error.code === 'commandTooLarge';
          await this.send(
            serializeStatus(
              preAuth && tooBig
                ? { ...receiverErrorResponse(error), text: 'Literal too large before authentication' }
                : receiverErrorResponse(error),
              { utf8: this.utf8 },
            ),
          );
          // RFC 7888 §4: after refusing a non-synchronizing literal the server may close the
          // connection instead of reading the octets. Before authentication it does: nobody is
          // accountable for them. (A synchronizing one is never sent, so that session goes on.)
          if (preAuth && error.recovery === 'skipping') {
            await this.close('Literal too large before authentication');
            return null;
          }
          continue;
        }
        case 'needMore': {
          const pending = this.#receiver.pendingLiteral;
          if (pending !== null && pending.marker !== this.#literalCounted) {
            // A non-synchronizing literal (RFC 7888) arrives uninvited: count it against the
            // budget before reading more of it, and skip it if the budget stays spent.
            this.#literalCounted = pending.marker;
            this.#socket.pause();
            const reserved = await this.#reserveLiteral(pending.size);
            if (this.#closed) return null;
            if (!reserved) {
              this.#receiver.skipLiteral();
              this.#releaseLiterals();
              await this.send(serializeStatus(busy(pending.tag)));
              continue;
            }
          }
          if (this.#socket.isPaused()) this.#socket.resume();
          await this.#sleep();
          continue;
        }
      }
    }
  }

  /** Reserves literal memory for the current command (see LiteralBudget). */
  async #reserveLiteral(size: number): Promise<boolean> {
    const memory = this.services.literalMemory;
    if (memory === undefined) return true;
    const reserved = await memory.budget.reserve(size, memory.waitMs);
    if (!reserved) return false;
    this.#literalBytes += size;
    if (this.#closed) {
      this.#releaseLiterals();
      return false;
    }
    return true;
  }

  #releaseLiterals(): void {
    if (this.#literalBytes > 0) this.services.literalMemory?.budget.release(this.#literalBytes);
    this.#literalBytes = 0;
    this.#literalCounted = null;
  }

  hasBufferedInput(): boolean {
    return this.#receiver.buffered > 0;
  }

  async waitForInputOrChanges(timeoutMs: number): Promise<'input' | 'changes' | 'timeout' | 'closed'> {
    // The poll time is checked by the shared clock (`tick`), so it fires up to one clock period late.
    this.#pollAt = Date.now() + timeoutMs;
    try {
      for (;;) {
        if (this.#closed) return 'closed';
        if (this.#changesPending) return 'changes';
        if (this.#receiver.buffered > 0) return 'input';
        if (Date.now() >= this.#pollAt) return 'timeout';
        if (this.#socket.isPaused()) this.#socket.resume();
        await this.#sleep();
      }
    } finally {
      this.#pollAt = Infinity;
    }
  }

  /** Storage publishes a shared mailbox's changes on its owner's subject (DESIGN §3). */
  #watchOwner(ownerId: string | undefined): void {
    if (this.#watchedOwner?.id === ownerId) return;
    this.#watchedOwner?.unsubscribe();
    this.#watchedOwner =
      ownerId === undefined
        ? null
        : {
            id: ownerId,
            unsubscribe: this.#options.subscribeChanges(ownerId, (change) => this.#changed(change)),
          };
  }

  watchUser(userId: string): void {
    this.#unsubscribe?.();
    this.#unsubscribe = this.#options.subscribeChanges(userId, (change) => this.#changed(change));
  }

  /**
   * A change notification: the session catches up before its next response (or at once in IDLE),
   * unless the notification names another mailbox than the selected one, or a mod-sequence the
   * session already knows (RFC 7162 §3.1.1: HIGHESTMODSEQ only grows, so nothing it has not seen
   * happened at or below it) — then asking storage would only tell it what it knows.
   */
  #changed(change: MailboxChange | undefined): void {
    const state = this.#state;
    if (
      change !== undefined &&
      state.kind === 'selected' &&
      (change.mailboxId !== state.mailbox.id || change.highestModseq <= state.mailbox.knownModseq)
    ) {
      return;
    }
    this.#changesPending = true;
    this.#wakeUp();
  }

  closeAfterReply(reason: string): void {
    this.#closeReason = reason;
  }

  authFailed(): boolean {
    this.#authFailures++;
    return this.#authFailures >= this.services.limits.maxAuthFailuresPerConnection;
  }

  async #execute(parsed: Parsed): Promise<void> {
    if (!parsed.ok) {
      await this.send(serializeStatus(parseErrorResponse(parsed.error), { utf8: this.utf8 }));
      return;
    }
    const command = parsed.command;
    const entry = COMMANDS[command.name];
    const state = this.#state.kind;
    if (state === 'logout') return;
    if (!COMMAND_STATES[command.name].includes(state)) {
      await this.send(
        serializeStatus({
          tag: command.tag,
          condition: 'BAD',
          text: `${command.name} is not allowed ${stateText(state)}`, // RFC 9051 §6
        }),
      );
      return;
    }
    const policy = entry.updates(command);
    const started = performance.now();
    let response: StatusResponse;
    // NOOP and CHECK poll storage after the command; when pending changes were just fetched before
    // it, that was the poll (a change notified meanwhile is pending again and still fetched).
    const pollAfter = policy === 'always' && !(this.#changesPending && this.#state.kind === 'selected');
    try {
      // Pending updates go first where allowed, so the command sees (and the client is told
      // about) the current mailbox: a UID SEARCH finds a message delivered a moment ago.
      if (policy !== 'none' && this.#state.kind === 'selected') await this.#syncQuietly(false);
      // One span per command, naming its session: the storage calls it makes carry its trace
      // context. IDLE gets none: it lasts as long as the client idles (up to 29 minutes at a
      // time, RFC 2177), and a span open for that long would keep each idle session's trace
      // state in memory.
      response =
        command.name === 'IDLE'
          ? await entry.run(this, command)
          : await inSpan(
              `imap ${command.name}`,
              { kind: SpanKind.SERVER, attributes: { 'postmesh.imap.session': this.#options.id } },
              async (span) => {
                const answer = await entry.run(this, command);
                span.setAttribute('postmesh.imap.condition', answer.condition);
                return answer;
              },
            );
    } catch (error) {
      response = this.#failure(command, error);
    }
    this.services.onCommand?.(command.name, response.condition, (performance.now() - started) / 1_000);
    if (this.#closed) return;
    if (policy !== 'none' && this.#state.kind === 'selected') await this.#syncQuietly(pollAfter);
    await this.send(serializeStatus(response, { utf8: this.utf8 }));
    if (command.name === 'STARTTLS' && response.condition === 'OK') await this.startTls();
    if (command.name === 'COMPRESS' && response.condition === 'OK') this.startCompression();
    if (command.name === 'LOGOUT') {
      await this.#end();
    } else if (this.#closeReason !== null) {
      await this.close(this.#closeReason);
    }
  }

  /** Mailbox updates are best effort here: a failure is logged and retried at the next chance. */
  async #syncQuietly(force: boolean): Promise<void> {
    try {
      await this.syncMailbox(force);
    } catch (error) {
      this.logger.warn({ err: error }, 'could not apply mailbox changes; will retry');
    }
  }

  #failure(command: Command, error: unknown): StatusResponse {
    const failure = storageFailure(error);
    if (failure.log) this.logger.error({ err: error, command: command.name }, 'command failed');
    return { tag: command.tag, condition: 'NO', code: { code: failure.code }, text: failure.text };
  }

  async syncMailbox(force: boolean): Promise<void> {
    const state = this.#state;
    if (this.#closed || (!force && !this.#changesPending)) return;
    this.#changesPending = false;
    if (state.kind !== 'selected') return;
    const mailbox = state.mailbox;
    let changes;
    try {
      changes = await this.services.mailstore.getChanges({
        userId: state.user.id,
        mailboxId: mailbox.id,
        sinceModseq: mailbox.knownModseq,
        uidValidity: mailbox.uidValidity,
        knownUids: undefined,
      });
    } catch (error) {
      if (error instanceof StorageError && error.reason === ErrorReason.NOT_FOUND) {
        await this.#mailboxGone();
        return;
      }
      this.#changesPending = true;
      throw error;
    }
    if (this.#state !== state) return;
    if (changes.uidValidityChanged) {
      await this.#mailboxGone();
      return;
    }
    const map = mailbox.map;
    const out: Uint8Array[] = [];
    // Expunges first (RFC 9051 §7.4.1), each MSN valid after the earlier ones.
    const vanished: number[] = [];
    for (const range of changes.vanished?.ranges ?? []) {
      const last = range.last === 0 ? map.maxUid : range.last;
      vanished.push(...map.uidsInUidRange(Math.min(range.first, last), Math.max(range.first, last)));
    }
    out.push(...expungeResponses(map, vanished, this.#qresync));
    const before = map.size;
    const fetches: Uint8Array[] = [];
    const added: number[] = [];
    let newKeywords = false;
    for (const message of changes.changed) {
      if (map.has(message.uid)) {
        if (message.modseq <= map.modseqOf(message.uid)) continue;
        map.setModseq(message.uid, message.modseq);
        newKeywords = learnKeywords(mailbox.keywords, message.keywords) || newKeywords;
        const recent = !this.rev2 && mailbox.recent.has(message.uid);
        fetches.push(
          ...(serializeFetch(map.msnOf(message.uid), [
            { item: 'UID', uid: message.uid },
            { item: 'FLAGS', flags: imapFlags(message.flags, message.keywords, recent) },
            // RFC 7162 §3.1: MODSEQ in every unsolicited FETCH once CONDSTORE is enabled.
            ...(this.#condstore ? [{ item: 'MODSEQ' as const, modseq: message.modseq }] : []),
          ]) as Uint8Array[]),
        );
      } else if (message.uid > map.maxUid) {
        map.append(message.uid, message.modseq);
        newKeywords = learnKeywords(mailbox.keywords, message.keywords) || newKeywords;
        added.push(message.uid);
      }
    }
    // RFC 9051 §7.3.5: a keyword is in `* FLAGS` before any FETCH shows it.
    if (newKeywords) out.push(...flagsResponses(mailbox.keywords, mailbox.readOnly, mailbox.rights));
    out.push(...fetches);
    if (map.size !== before) {
      out.push(serializeExists(map.size));
      if (!this.rev2) {
        await this.#claimRecent(state.user.id, mailbox, added);
        out.push(serializeRecent(mailbox.recent.known(map).length));
      }
    }
    mailbox.knownModseq = Math.max(mailbox.knownModseq, changes.highestModseq);
    if (out.length > 0) await this.send(out);
  }

  /**
   * RFC 3501 §2.3.2: new messages are \Recent in the first session told about them. A read-write
   * session claims them in storage (which moves the mailbox's recent floor atomically, so only
   * one session gets each); a read-only one (EXAMINE) takes the ones no session has claimed
   * without claiming them (RFC 3501 §6.3.2).
   */
  async #claimRecent(userId: string, mailbox: SelectedMailbox, added: readonly number[]): Promise<void> {
    if (added.length === 0) return;
    const response = await this.services.mailstore.getMailboxStatus({
      userId,
      mailbox: { selector: { $case: 'id', value: mailbox.id } },
      claimRecent: !mailbox.readOnly,
    });
    const counters = response.status;
    if (counters === undefined) return;
    let floor: number;
    if (mailbox.readOnly) {
      const below = mailbox.map.uidsInUidRange(1, counters.uidNext - 1);
      floor =
        counters.recent > 0
          ? (below[Math.max(0, below.length - counters.recent)] ?? counters.uidNext)
          : counters.uidNext;
    } else {
      floor = response.firstRecentUid || counters.uidNext;
    }
    for (const uid of added) if (uid >= floor && uid < counters.uidNext) mailbox.recent.add(uid, uid);
  }

  async #mailboxGone(): Promise<void> {
    const state = this.#state;
    if (state.kind !== 'selected') return;
    // The mailbox was deleted (or recreated) by another session: leave it (RFC 9051 §7.1, CLOSED).
    this.#state = { kind: 'authenticated', user: state.user };
    await this.send(
      serializeStatus({ tag: null, condition: 'OK', code: { code: 'CLOSED' }, text: 'Mailbox was deleted' }),
    );
  }

  /**
   * Queues responses. Outside a command they are written at once; while one runs they are held
   * and written together (see #output), a streamed literal (a body section) included, so a
   * small FETCH answer is one write however many pieces it is made of.
   */
  async send(data: Uint8Array | readonly OutputChunk[]): Promise<void> {
    if (this.#closed) return;
    if (data instanceof Uint8Array) {
      if (this.#hold(data) || !this.#holdOutput) await this.flush();
      return;
    }
    for (const chunk of data) {
      if (chunk instanceof Uint8Array) {
        if (this.#hold(chunk)) await this.flush();
      } else {
        let written = 0;
        for await (const piece of chunk.source) {
          written += piece.length;
          if (this.#hold(piece)) await this.flush();
        }
        // The literal announced its size: a short stream would desynchronise the client.
        if (written !== chunk.size) {
          this.logger.error({ expected: chunk.size, written }, 'streamed literal size mismatch');
          this.#finish();
          return;
        }
      }
    }
    if (!this.#holdOutput) await this.flush();
  }

  /** Adds bytes to the held output; true when enough is held to be written now. */
  #hold(bytes: Uint8Array): boolean {
    if (bytes.length === 0 || this.#closed) return false;
    this.#output.push(bytes);
    this.#outputBytes += bytes.length;
    return this.#outputBytes >= OUTPUT_FLUSH_BYTES;
  }

  /**
   * Writes the held output, then waits while the connection (or the compressor) is full:
   * back-pressure, so a large FETCH holds at most OUTPUT_FLUSH_BYTES plus one piece.
   */
  async flush(): Promise<void> {
    const bytes = this.#takeOutput();
    if (bytes === null || this.#closed) return;
    const compression = this.#compression;
    if (compression === null) {
      if (!this.#socket.write(bytes)) await this.#drained(this.#socket);
      return;
    }
    if (!compression.deflate.write(bytes)) await this.#drained(compression.deflate);
    // RFC 4978 §4: Z_SYNC_FLUSH ends each batch, so the client can decode it as it arrives.
    if (!this.#closed) {
      await new Promise<void>((resolve) =>
        compression.deflate.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()),
      );
    }
  }

  /** The held output as one buffer (null when none), no longer held. */
  #takeOutput(): Uint8Array | null {
    if (this.#outputBytes === 0) return null;
    const output = this.#output;
    this.#output = [];
    this.#outputBytes = 0;
    return output.length === 1 ? output[0]! : Buffer.concat(output);
  }

  /** Hands the held output to the connection (see `flush`) without waiting for it to drain. */
  #writeOutputNow(): void {
    const bytes = this.#takeOutput();
    if (bytes === null || this.#closed) return;
    const compression = this.#compression;
    if (compression === null) {
      this.#socket.write(bytes);
      return;
    }
    compression.deflate.write(bytes);
    compression.deflate.flush(zlibConstants.Z_SYNC_FLUSH);
  }

  /** Resolves once `stream` drained (or the connection closed). */
  #drained(stream: Duplex): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        stream.off('drain', done);
        this.#socket.off('close', done);
        resolve();
      };
      stream.on('drain', done);
      this.#socket.on('close', done);
    });
  }

  async startTls(): Promise<void> {
    if (this.#secureContext === null || this.#tls) return;
    // The tagged OK (still held) goes out in plaintext, before the handshake.
    await this.flush();
    const plain = this.#socket;
    this.#detach(plain);
    // RFC 9051 §6.2.1 / RFC 8314: anything the client sent after STARTTLS before the handshake
    // is discarded (command injection).
    this.#receiver = this.#newReceiver();
    const secure = new TLSSocket(plain, {
      isServer: true,
      secureContext: this.#secureContext,
    });
    this.#socket = secure;
    this.#tls = true;
    this.#attach(secure);
    plain.resume();
    await new Promise<void>((resolve) => {
      secure.once('secure', () => resolve());
      secure.once('close', () => resolve());
      secure.once('error', () => resolve());
    });
  }

  /**
   * Sends `* BYE` and closes (LOGOUT, autologout, shutdown); `unavailable` adds the
   * `[UNAVAILABLE]` code (RFC 5530 §3: try again, e.g. after a partition hand-off).
   */
  async close(reason: string, options: { readonly unavailable?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    await this.send(
      serializeStatus({
        tag: null,
        condition: 'BYE',
        ...(options.unavailable === true ? { code: { code: 'UNAVAILABLE' as const } } : {}),
        text: reason,
      }),
    );
    await this.#end();
  }

  async #end(): Promise<void> {
    this.#state = { kind: 'logout' };
    await this.flush();
    // Wait for the client to close its side too (at most a second), reading and dropping what it
    // still sends: closing with unread input makes TCP reset the connection, and the client may
    // then lose our last responses (a refused literal's BAD and the BYE).
    await new Promise<void>((resolve) => {
      this.#socket.once('close', () => resolve());
      this.#socket.resume();
      this.#socket.end();
      setTimeout(resolve, 1000).unref();
    });
    this.#finish();
  }
}

/** RFC 5530 §3 LIMIT: the server's literal memory is taken by other sessions for now. */
function busy(tag: string | null): StatusResponse {
  return {
    tag,
    condition: 'NO',
    code: { code: 'LIMIT' },
    text: 'Too much mail being received at once; try again shortly',
  };
}

function stateText(state: SessionState['kind']): string {
  switch (state) {
    case 'notAuthenticated':
      return 'in the not authenticated state';
    case 'authenticated':
      return 'in the authenticated state';
    case 'selected':
      return 'in the selected state';
    case 'logout':
      return 'after LOGOUT';
  }
}

function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
