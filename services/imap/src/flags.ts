/**
 * IMAP flags ↔ Mailstore flags: the five storable system flags (RFC 9051 §2.3.2) are an enum on
 * the wire, keywords are atoms. `\Recent` is per session and never stored (RFC 3501 §2.3.2).
 */
import { mailstore } from '@postmesh/contracts';
import { serializeFlags, serializeStatus } from '@postmesh/imap-protocol';

const SYSTEM: ReadonlyMap<string, mailstore.Flag> = new Map([
  ['\\SEEN', mailstore.Flag.SEEN],
  ['\\ANSWERED', mailstore.Flag.ANSWERED],
  ['\\FLAGGED', mailstore.Flag.FLAGGED],
  ['\\DELETED', mailstore.Flag.DELETED],
  ['\\DRAFT', mailstore.Flag.DRAFT],
]);

const NAMES: Readonly<Record<string, string>> = {
  [mailstore.Flag.SEEN]: '\\Seen',
  [mailstore.Flag.ANSWERED]: '\\Answered',
  [mailstore.Flag.FLAGGED]: '\\Flagged',
  [mailstore.Flag.DELETED]: '\\Deleted',
  [mailstore.Flag.DRAFT]: '\\Draft',
};

export const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'] as const;

/** Flags listed in the SELECT `FLAGS` response besides the system flags. */
export const COMMON_KEYWORDS = ['$Forwarded', '$MDNSent', '$Junk', '$NotJunk'] as const;

export interface SplitFlags {
  readonly flags: mailstore.Flag[];
  readonly keywords: string[];
}

/**
 * Splits client flags into system flags and keywords. `\Recent` and other unknown `\` flags are
 * dropped: RFC 9051 §6.4.6 lets a server ignore flags it does not store.
 */
export function splitFlags(input: readonly string[]): SplitFlags {
  const flags: mailstore.Flag[] = [];
  const keywords: string[] = [];
  for (const flag of input) {
    if (flag.startsWith('\\')) {
      const system = SYSTEM.get(flag.toUpperCase());
      if (system !== undefined && !flags.includes(system)) flags.push(system);
    } else if (!keywords.some((k) => k.toLowerCase() === flag.toLowerCase())) {
      keywords.push(flag);
    }
  }
  return { flags, keywords };
}

/** Flags of a message as sent in FETCH FLAGS. */
export function imapFlags(
  flags: readonly mailstore.Flag[],
  keywords: readonly string[],
  recent: boolean,
): string[] {
  const out: string[] = [];
  for (const flag of flags) {
    const name = NAMES[flag];
    if (name !== undefined) out.push(name);
  }
  if (recent) out.push('\\Recent');
  for (const keyword of keywords) out.push(keyword);
  return out;
}

/** A keyword set seeded with the ones always listed in `* FLAGS`. */
export function initialKeywords(): Map<string, string> {
  return new Map(COMMON_KEYWORDS.map((k) => [k.toLowerCase(), k]));
}

/** Adds keywords to the set; true when one was new. */
export function learnKeywords(known: Map<string, string>, keywords: readonly string[]): boolean {
  let added = false;
  for (const keyword of keywords) {
    const key = keyword.toLowerCase();
    if (!known.has(key)) {
      known.set(key, keyword);
      added = true;
    }
  }
  return added;
}

/**
 * `* FLAGS` and `* OK [PERMANENTFLAGS]` for the mailbox's keywords (RFC 9051 §7.3.5, §7.1):
 * sent on SELECT, and again whenever a keyword appears that the session has not announced.
 */
export function flagsResponses(
  known: ReadonlyMap<string, string>,
  readOnly: boolean,
  rights?: string,
): Uint8Array[] {
  const flags = [...SYSTEM_FLAGS, ...known.values()];
  const permanent = readOnly ? [] : permittedBy(rights, [...flags, '\\*']);
  return [
    serializeFlags(flags),
    serializeStatus({
      tag: null,
      condition: 'OK',
      code: { code: 'PERMANENTFLAGS', flags: permanent },
      text: permanent.length === 0 ? 'No permanent flags permitted' : 'Flags permitted',
    }),
  ];
}

/**
 * RFC 4314 §5.1.1: PERMANENTFLAGS reflects the user's rights on a shared mailbox — \Seen with
 * "s", \Deleted with "t", every other flag (and `\*`, new keywords) with "w". Without `rights`
 * (the user's own mailbox) every flag.
 */
function permittedBy(rights: string | undefined, flags: readonly string[]): string[] {
  if (rights === undefined) return [...flags];
  return flags.filter((flag) => {
    const lower = flag.toLowerCase();
    if (lower === '\\seen') return rights.includes('s');
    if (lower === '\\deleted') return rights.includes('t');
    return rights.includes('w');
  });
}

/**
 * The `* FLAGS` / PERMANENTFLAGS update to send before a FETCH that shows `keywords`, or nothing
 * when the session already announced them all.
 */
export function announceKeywords(
  mailbox: { readonly keywords: Map<string, string>; readonly readOnly: boolean; readonly rights?: string },
  keywords: readonly string[],
): Uint8Array[] {
  return learnKeywords(mailbox.keywords, keywords)
    ? flagsResponses(mailbox.keywords, mailbox.readOnly, mailbox.rights)
    : [];
}
