/**
 * A session's view of its selected mailbox, rebuilt only from what the server sent, with the
 * protocol rules a client relies on checked on every response:
 * - RFC 9051 §7.3.1: EXISTS never decreases the number of messages (only EXPUNGE does);
 * - RFC 9051 §7.5.1: EXPUNGE names a sequence number the client has (1 … current count);
 * - RFC 9051 §7.5.2: FETCH names a sequence number the client has;
 * - RFC 9051 §7.3.5: a keyword shown by FETCH FLAGS was announced in `* FLAGS` first;
 * - RFC 3501 §2.3.2: a message is \Recent in at most one read-write session (a session that
 *   only EXAMINEs it leaves it recent for the next one, so its sightings claim nothing);
 * - no BAD to a well-formed command, no BYE.
 */

const SYSTEM_FLAGS = new Set(['\\SEEN', '\\ANSWERED', '\\FLAGGED', '\\DELETED', '\\DRAFT', '\\RECENT']);

/** Who saw which message as \Recent, shared by all sessions of a run. */
export class RecentRegistry {
  readonly #seen = new Map<string, string>();

  /** Returns the other read-write session that saw it first, or undefined. */
  claim(key: string, session: string, readOnly: boolean): string | undefined {
    if (readOnly) return undefined;
    const first = this.#seen.get(key);
    if (first === undefined) this.#seen.set(key, session);
    return first !== undefined && first !== session ? first : undefined;
  }
}

export class SessionView {
  readonly violations: string[] = [];
  mailbox: string | null = null;
  readOnly = false;
  uidValidity = 0;
  /** UID of each message by sequence number (0 = not known yet). */
  uids: number[] = [];
  announced = new Set<string>();

  constructor(
    readonly name: string,
    readonly user: string,
    private readonly recent: RecentRegistry,
  ) {}

  get count(): number {
    return this.uids.length;
  }

  #violation(what: string, line: string): void {
    this.violations.push(`${this.name} (${this.mailbox ?? '-'}): ${what}: ${line}`);
  }

  /** Feeds the complete response to one command (untagged lines and the tagged one). */
  consume(command: string, tag: string, response: string): void {
    const selecting = /^(SELECT|EXAMINE) /i.exec(command);
    if (selecting !== null) {
      this.mailbox = null;
      this.uids = [];
      this.announced = new Set();
    }
    for (const line of response.split('\r\n')) {
      if (line === '') continue;
      this.#line(line);
    }
    const tagged = response.split('\r\n').find((l) => l.startsWith(`${tag} `)) ?? '';
    if (tagged.startsWith(`${tag} BAD`)) this.#violation(`BAD to ${command.slice(0, 40)}`, tagged);
    if (selecting !== null) {
      if (tagged.startsWith(`${tag} OK`)) {
        this.mailbox = command.split(' ')[1] ?? null;
        this.readOnly = tagged.includes('[READ-ONLY]');
      } else {
        this.uids = [];
      }
    }
  }

  #line(line: string): void {
    if (line.startsWith('* BYE')) {
      this.#violation('BYE', line);
      return;
    }
    const exists = /^\* (\d+) EXISTS$/.exec(line);
    if (exists !== null) {
      const n = Number(exists[1]);
      // RFC 9051 §7.3.1: the count only grows through EXISTS.
      if (n < this.count) this.#violation(`EXISTS ${n} below the ${this.count} messages known`, line);
      while (this.uids.length < n) this.uids.push(0);
      return;
    }
    const expunge = /^\* (\d+) EXPUNGE$/.exec(line);
    if (expunge !== null) {
      const n = Number(expunge[1]);
      // RFC 9051 §7.5.1: a sequence number the client knows.
      if (n < 1 || n > this.count) this.#violation(`EXPUNGE ${n} with ${this.count} messages`, line);
      else this.uids.splice(n - 1, 1);
      return;
    }
    const uidValidity = /^\* OK \[UIDVALIDITY (\d+)\]/.exec(line);
    if (uidValidity !== null) {
      this.uidValidity = Number(uidValidity[1]);
      return;
    }
    const flags = /^\* FLAGS \(([^)]*)\)$/.exec(line);
    if (flags !== null) {
      this.announced = new Set(
        (flags[1] ?? '')
          .split(' ')
          .filter((f) => f !== '')
          .map((f) => f.toUpperCase()),
      );
      return;
    }
    const fetch = /^\* (\d+) FETCH \((.*)\)$/.exec(line);
    if (fetch !== null) {
      const n = Number(fetch[1]);
      // RFC 9051 §7.5.2: FETCH of a message the client has.
      if (n < 1 || n > this.count) {
        this.#violation(`FETCH ${n} with ${this.count} messages`, line);
        return;
      }
      const items = fetch[2] ?? '';
      const uid = /(?:^| )UID (\d+)/.exec(items);
      if (uid !== null) this.uids[n - 1] = Number(uid[1]);
      const flagList = /(?:^| )FLAGS \(([^)]*)\)/.exec(items);
      if (flagList !== null) {
        for (const flag of (flagList[1] ?? '').split(' ').filter((f) => f !== '')) {
          const upper = flag.toUpperCase();
          // RFC 9051 §7.3.5 / RFC 3501 §7.2.6: keywords in use are announced in FLAGS first.
          if (!SYSTEM_FLAGS.has(upper) && !this.announced.has(upper)) {
            this.#violation(`keyword ${flag} not announced in FLAGS`, line);
          }
          if (upper === '\\RECENT') {
            const known = this.uids[n - 1] ?? 0;
            if (known > 0) {
              const key = `${this.user}/${this.mailbox ?? ''}/${this.uidValidity}/${known}`;
              const other = this.recent.claim(key, this.name, this.readOnly);
              // RFC 3501 §2.3.2: no two sessions see the same message as \Recent.
              if (other !== undefined) this.#violation(`\\Recent also seen by ${other}`, line);
            }
          }
        }
      }
    }
  }
}
