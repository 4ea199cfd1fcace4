/**
 * Sender authentication at end of DATA (DESIGN §2 step 1): SPF (RFC 7208), DKIM (RFC 6376),
 * DMARC (RFC 7489) and ARC (RFC 8617) with mailauth, recorded in an Authentication-Results
 * header (RFC 8601), and the sender domain's DMARC policy enforced.
 */
import { PassThrough } from 'node:stream';
import { authenticate, type AuthenticateResult } from 'mailauth';
import type { InboundAuthVerdict } from '@postmesh/bus';
import type { RecipientDirectory } from '../directory.js';
import { DSN, HookCode, type HarakaHeader, type PluginHooks } from '../haraka/types.js';

/** mailauth's resolver contract: `(name, rrtype) → answers`, throwing `{code:'ENOTFOUND'}` when none. */
export type DnsResolver = (name: string, rrtype: string) => Promise<unknown>;

export type SenderDecision =
  | { readonly kind: 'accept'; readonly verdict: InboundAuthVerdict; readonly header: string }
  | { readonly kind: 'reject'; readonly dsn: DSN; readonly verdict: InboundAuthVerdict };

export interface SenderFacts {
  readonly result: AuthenticateResult;
  /** Domains of MAIL FROM and From: that are hosted here (unauthenticated use is spoofing). */
  readonly ownDomainsClaimed: readonly string[];
  readonly hostname: string;
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** The strongest DKIM result of all signatures: one passing signature is a pass. */
function dkimResult(result: AuthenticateResult): string {
  const results = result.dkim.results;
  if (results.length === 0) return 'none';
  if (results.some((r) => r.status.result === 'pass')) return 'pass';
  return results[0]?.status.result ?? 'none';
}

export function verdictOf(result: AuthenticateResult): InboundAuthVerdict {
  const dmarc = result.dmarc ? result.dmarc.status.result : 'none';
  const policy = result.dmarc && dmarc === 'fail' ? result.dmarc.policy || 'none' : '';
  return {
    spf: result.spf ? result.spf.status.result : 'none',
    dkim: dkimResult(result),
    dmarc,
    arc: result.arc ? result.arc.status.result : 'none',
    dmarcPolicy: policy,
    junk: policy === 'quarantine',
  };
}

/** The RFC 8601 §2.2 header value: `authserv-id; resinfo; resinfo ...`, folded with CRLF+TAB. */
export function authenticationResultsValue(result: AuthenticateResult, hostname: string): string {
  const methods: string[] = [];
  for (const r of result.dkim.results) if (r.info) methods.push(r.info);
  if (result.spf && result.spf.info) methods.push(result.spf.info);
  if (result.arc && result.arc.info) methods.push(result.arc.info);
  if (result.dmarc && result.dmarc.info) methods.push(result.dmarc.info);
  // RFC 8601 §2.2: "none" when no method produced a result.
  if (methods.length === 0) return `${hostname}; none`;
  return [hostname, ...methods.map((m) => m.replace(/[\r\n]+\s*/g, ' '))].join(';\n\t');
}

/** Pure policy: reject, or accept with a verdict and the header to add. */
export function senderDecision(facts: SenderFacts): SenderDecision {
  const verdict = verdictOf(facts.result);
  if (verdict.dmarc === 'fail' && verdict.dmarcPolicy === 'reject') {
    // RFC 7489 §6.6.3 / §7.3: reject under the domain owner's p=reject, X.7.1 (RFC 7372 §3.2).
    return {
      kind: 'reject',
      verdict,
      dsn: new DSN(550, "5.7.1 Rejected by the sender domain's DMARC policy"),
    };
  }
  const authenticated = verdict.dmarc === 'pass' || verdict.spf === 'pass' || verdict.dkim === 'pass';
  if (facts.ownDomainsClaimed.length > 0 && verdict.dmarc !== 'pass' && !authenticated) {
    // Our own domains never arrive unauthenticated over MX: that is spoofing.
    return {
      kind: 'reject',
      verdict,
      dsn: new DSN(550, '5.7.1 Unauthenticated mail claiming a local domain is refused'),
    };
  }
  return { kind: 'accept', verdict, header: authenticationResultsValue(facts.result, facts.hostname) };
}

/** RFC 8601 §5: Authentication-Results claiming our authserv-id are forged and must go. */
export function forgedAuthResults(header: HarakaHeader, hostname: string): string[] {
  const id = hostname.toLowerCase();
  return header.get_all('Authentication-Results').filter((value) => {
    const first =
      value
        .replace(/\([^)]*\)/g, '')
        .trim()
        .split(/[;\s]/, 1)[0] ?? '';
    return first.toLowerCase() === id;
  });
}

/**
 * Header fields whose presence makes the body part of verification: a DKIM signature covers a
 * hash of the body (RFC 6376 §3.7), and so does an ARC-Message-Signature (RFC 8617 §4.1.2); an
 * ARC set is verified as a whole.
 */
const BODY_BOUND_FIELDS = [
  'DKIM-Signature',
  'ARC-Seal',
  'ARC-Message-Signature',
  'ARC-Authentication-Results',
];

/**
 * The message as mailauth needs to see it. Without any DKIM or ARC signature, nothing it checks
 * reads the body (SPF: the envelope; DMARC: the From: field and the other results; DKIM and
 * ARC: "none"), so it gets the header section alone, exactly as `message_stream` would write it,
 * and the body is not read and parsed once more per message. Otherwise, or when Haraka has no
 * parsed header section, undefined: the whole message is needed.
 */
export function headerOnlyMessage(header: HarakaHeader): Buffer | undefined {
  const fields = header.header_list;
  if (fields === undefined || fields.length === 0) return undefined;
  if (BODY_BOUND_FIELDS.some((name) => header.get_all(name).length > 0)) return undefined;
  // haraka-message-stream writes each field with CRLF line ends, then the empty line.
  return Buffer.from(`${fields.map((f) => f.replace(/\r?\n/g, '\r\n')).join('')}\r\n`);
}

export interface SenderAuthOptions {
  readonly hostname: string;
  readonly directory: RecipientDirectory;
  readonly resolver?: DnsResolver;
  readonly onError: (error: unknown) => void;
}

/** Addresses in a From: header value (RFC 5322 §3.6.2), good enough to find their domains. */
function fromDomains(value: string): string[] {
  const found = value.match(/[^\s<>,;:"()]+@[A-Za-z0-9.-]+/g) ?? [];
  return found.map(domainOf);
}

export function senderAuthHooks(options: SenderAuthOptions): PluginHooks {
  return {
    hook_data_post(next, connection) {
      const transaction = connection.transaction;
      // Submitted mail (authenticated, postmesh_submission) is checked by ownership, not SPF/DMARC.
      if (transaction === null || transaction.notes.postmeshSubmitter !== undefined) {
        next();
        return;
      }
      const run = async (): Promise<void> => {
        const mailFrom = transaction.mail_from.isNull() ? '' : transaction.mail_from.address;
        let input: Buffer | PassThrough | undefined = headerOnlyMessage(transaction.header);
        if (input === undefined) {
          input = new PassThrough();
          // Default options undo SMTP dot-stuffing (RFC 5321 §4.5.2): mailauth sees the real message.
          transaction.message_stream.pipe(input);
        }
        const result = await authenticate(input, {
          ip: connection.remote.ip,
          helo: connection.hello.host ?? '',
          sender: mailFrom,
          mta: options.hostname,
          disableBimi: true,
          ...(options.resolver ? { resolver: options.resolver as never } : {}),
        });
        const claimed = new Set<string>();
        if (mailFrom !== '') claimed.add(domainOf(mailFrom));
        for (const d of fromDomains(transaction.header.get_all('From').join(','))) claimed.add(d);
        const ours: string[] = [];
        for (const domain of claimed) {
          const ownership = await options.directory.domainOwnership(domain);
          if (ownership.kind === 'unavailable') throw new Error(ownership.reason);
          if (ownership.kind === 'ours') ours.push(domain);
        }
        const decision = senderDecision({ result, ownDomainsClaimed: ours, hostname: options.hostname });
        transaction.notes.postmeshAuth = decision.verdict;
        switch (decision.kind) {
          case 'reject':
            next(HookCode.DENY, decision.dsn);
            return;
          case 'accept': {
            if (forgedAuthResults(transaction.header, options.hostname).length > 0) {
              // Keep the others (other authserv-ids) in place; re-add them after removing all.
              const keep = transaction.header
                .get_all('Authentication-Results')
                .filter(
                  (v) => !forgedAuthResults({ get_all: () => [v], get: () => v }, options.hostname).length,
                );
              transaction.remove_header('Authentication-Results');
              for (const v of keep) transaction.add_header('Authentication-Results', v.trimEnd());
            }
            transaction.add_leading_header('Authentication-Results', decision.header);
            next();
            return;
          }
        }
      };
      run().catch((error: unknown) => {
        options.onError(error);
        next(
          HookCode.DENYSOFT,
          new DSN(451, '4.3.0 Temporary failure verifying the sender, try again later'),
        );
      });
    },
  };
}
