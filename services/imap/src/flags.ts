/**
 * IMAP flags ↔ Mailstore flags: the five storable system flags (RFC 9051 §2.3.2) are an enum on
 * the wire, keywords are atoms. `\Recent` is per session and never stored (RFC 3501 §2.3.2).
 */
import { mailstore } from '@postmesh/contracts';

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
