/** The validated, typed form of a script that the interpreter runs. */

export const SUPPORTED_EXTENSIONS = [
  'fileinto',
  'envelope',
  'imap4flags',
  'vacation',
  'reject',
  'ereject',
  'copy',
  'body',
  'comparator-i;octet',
  'comparator-i;ascii-casemap',
] as const;
export type Extension = (typeof SUPPORTED_EXTENSIONS)[number];

export type MatchType = 'is' | 'contains' | 'matches';
export type Comparator = 'i;octet' | 'i;ascii-casemap';
export type AddressPart = 'all' | 'localpart' | 'domain';

export interface Match {
  readonly type: MatchType;
  readonly comparator: Comparator;
  readonly keys: readonly string[];
}

export type BodyTransform =
  | { readonly kind: 'raw' }
  | { readonly kind: 'text' }
  | { readonly kind: 'content'; readonly types: readonly string[] };

export type Test =
  | {
      readonly kind: 'address';
      readonly part: AddressPart;
      readonly match: Match;
      readonly headers: readonly string[];
    }
  | {
      readonly kind: 'envelope';
      readonly part: AddressPart;
      readonly match: Match;
      readonly parts: readonly ('from' | 'to')[];
    }
  | { readonly kind: 'header'; readonly match: Match; readonly headers: readonly string[] }
  | { readonly kind: 'exists'; readonly headers: readonly string[] }
  | { readonly kind: 'size'; readonly over: boolean; readonly limit: number }
  | { readonly kind: 'allof' | 'anyof'; readonly tests: readonly Test[] }
  | { readonly kind: 'not'; readonly test: Test }
  | { readonly kind: 'true' | 'false' }
  | { readonly kind: 'hasflag'; readonly match: Match }
  | { readonly kind: 'body'; readonly match: Match; readonly transform: BodyTransform };

export interface VacationCommand {
  readonly kind: 'vacation';
  readonly days: number | null;
  readonly subject: string | null;
  readonly from: string | null;
  readonly addresses: readonly string[];
  readonly mime: boolean;
  readonly handle: string | null;
  readonly reason: string;
}

export type Command =
  | {
      readonly kind: 'if';
      readonly branches: readonly { readonly test: Test | null; readonly block: readonly Command[] }[];
    }
  | { readonly kind: 'stop' }
  | { readonly kind: 'keep'; readonly flags: readonly string[] | null }
  | { readonly kind: 'discard' }
  | { readonly kind: 'redirect'; readonly address: string; readonly copy: boolean }
  | {
      readonly kind: 'fileinto';
      readonly mailbox: string;
      readonly copy: boolean;
      readonly flags: readonly string[] | null;
    }
  | { readonly kind: 'setflag' | 'addflag' | 'removeflag'; readonly flags: readonly string[] }
  | { readonly kind: 'reject' | 'ereject'; readonly reason: string }
  | VacationCommand;

export interface Program {
  readonly extensions: ReadonlySet<Extension>;
  readonly commands: readonly Command[];
}
