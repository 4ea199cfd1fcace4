/**
 * Who may call what on storage's gRPC server. Every caller presents a certificate from the
 * internal CA (mutual TLS; the server refuses a TLS session without one), and the certificate
 * names the caller: its SAN URI `spiffe://postmesh/<identity>`, or else its subject CN. Each
 * identity gets only the RPCs its service uses, so a compromised smtp-inbound can resolve
 * recipients but not read mailboxes, mint admin sessions, or fetch DKIM private keys.
 * An unknown identity, or an RPC outside the caller's list, is PERMISSION_DENIED.
 */
import {
  ServerInterceptingCall,
  status,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerListener,
} from '@grpc/grpc-js';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import type { Logger } from '@postmesh/telemetry';

const DIRECTORY = 'postmesh.directory.v1.DirectoryService';
const MAILSTORE = 'postmesh.mailstore.v1.MailstoreService';
const TRACE = 'postmesh.trace.v1.TraceService';
const ADMIN = 'postmesh.admin.v1.AdminService';

/** `Service/*` allows every RPC of a service; `Service/Method` one RPC. */
export const CALLER_ALLOW_LIST: Readonly<Record<string, readonly string[]>> = {
  // RCPT checks, submission AUTH, and "is the sender's domain ours" (DMARC / relay decisions);
  // GetUser names the account a login belongs to, so the login throttle counts per account.
  'smtp-inbound': [
    `${DIRECTORY}/ResolveRecipient`,
    `${DIRECTORY}/Authenticate`,
    `${DIRECTORY}/GetDomain`,
    `${DIRECTORY}/GetUser`,
  ],
  // IMAP LOGIN/AUTHENTICATE (and GetUser for the per-account throttle) and every mailbox
  // operation of a session.
  imap: [`${DIRECTORY}/Authenticate`, `${DIRECTORY}/GetUser`, `${MAILSTORE}/*`],
  // DKIM signing of outbound mail.
  'mta-delivery': [`${DIRECTORY}/GetSigningKey`],
  // The console and REST API: directory management, admins, sessions, tokens, audit, trace, a
  // mail user's Sieve scripts (their filters and vacation reply) and team mailboxes' ACLs, but no
  // mail.
  admin: [
    `${DIRECTORY}/*`,
    `${ADMIN}/*`,
    `${TRACE}/*`,
    `${MAILSTORE}/PutSieveScript`,
    `${MAILSTORE}/GetSieveScript`,
    `${MAILSTORE}/ListSieveScripts`,
    `${MAILSTORE}/SetActiveSieveScript`,
    `${MAILSTORE}/DeleteSieveScript`,
    `${MAILSTORE}/CreateSharedMailbox`,
    `${MAILSTORE}/GetMailboxAcl`,
    `${MAILSTORE}/SetMailboxAcl`,
    `${MAILSTORE}/DeleteMailboxAcl`,
  ],
  // Operators' tools and the test harness.
  operator: [`${DIRECTORY}/*`, `${MAILSTORE}/*`, `${TRACE}/*`, `${ADMIN}/*`],
};

const URI_PREFIX = 'spiffe://postmesh/';

/** The caller a verified peer certificate names, or undefined when it names none. */
export function callerIdentity(certificate: PeerCertificate | undefined): string | undefined {
  if (certificate === undefined || Object.keys(certificate).length === 0) return undefined;
  // `subjectaltname` is Node's rendering, e.g. "URI:spiffe://postmesh/imap, DNS:imap".
  for (const entry of (certificate.subjectaltname ?? '').split(/,\s*/)) {
    if (entry.startsWith(`URI:${URI_PREFIX}`)) return entry.slice(`URI:${URI_PREFIX}`.length);
  }
  const cn = certificate.subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}

/**
 * Answers of `mayCall` by identity and path (the list is fixed; an unknown identity is never
 * remembered): a call looks up a map instead of splitting and searching strings.
 */
const decided = new Map<string, Map<string, boolean>>();

/** `/pkg.Service/Method` → may `identity` call it? */
export function mayCall(identity: string | undefined, path: string): boolean {
  if (identity === undefined) return false;
  const allowed = CALLER_ALLOW_LIST[identity];
  if (allowed === undefined) return false;
  let byPath = decided.get(identity);
  const known = byPath?.get(path);
  if (known !== undefined) return known;
  const [service = '', method = ''] = path.replace(/^\//, '').split('/');
  const answer = allowed.includes(`${service}/${method}`) || allowed.includes(`${service}/*`);
  // Only the paths of the methods the server defines reach the interceptor (grpc-js answers any
  // other UNIMPLEMENTED first): the maps hold at most the identities times those methods.
  if (byPath === undefined) {
    byPath = new Map<string, boolean>();
    decided.set(identity, byPath);
  }
  byPath.set(path, answer);
  return answer;
}

/**
 * The caller identity of each TLS connection, read from its certificate once. Reading the peer
 * certificate converts it from OpenSSL on every call (a tenth of storage's CPU under IMAP load,
 * one connection carries thousands of calls). A connection's certificate cannot change: HTTP/2
 * forbids TLS renegotiation (RFC 9113 §9.2.1; Node's http2 disables it), so the entry lives
 * exactly as long as the socket (a WeakMap: a closed connection drops it; a new connection, even
 * from the same address and port, is a new socket and is read afresh).
 */
const identityOfConnection = new WeakMap<TLSSocket, string | undefined>();

/**
 * The TLS socket under a call, when grpc-js lets us see it: the base call it hands the first
 * interceptor keeps its HTTP/2 stream (not part of grpc-js's typed API, hence the guarded cast).
 */
function socketOf(call: ServerInterceptingCallInterface): TLSSocket | undefined {
  const socket = (call as { stream?: { session?: { socket?: unknown } } }).stream?.session?.socket;
  return socket instanceof TLSSocket ? socket : undefined;
}

/** The caller of a call: cached per connection, else read from the auth context. */
export function callerOf(call: ServerInterceptingCallInterface): string | undefined {
  const socket = socketOf(call);
  // Only a verified peer is cached (grpc-js's auth context is empty for an unauthorized one).
  if (socket === undefined || !socket.authorized)
    return callerIdentity(call.getAuthContext().sslPeerCertificate);
  if (identityOfConnection.has(socket)) return identityOfConnection.get(socket);
  const identity = callerIdentity(call.getAuthContext().sslPeerCertificate);
  identityOfConnection.set(socket, identity);
  return identity;
}

/** Enforces `CALLER_ALLOW_LIST` before any handler runs (the metadata stage of every call). */
export function callerPolicyInterceptor(logger: Logger): ServerInterceptor {
  return (methodDescriptor, call) =>
    new ServerInterceptingCall(call, {
      start(next) {
        const listener: ServerListener = {
          onReceiveMetadata(metadata, mdNext) {
            const identity = callerOf(call);
            if (mayCall(identity, methodDescriptor.path)) {
              mdNext(metadata);
              return;
            }
            logger.warn(
              { caller: identity ?? null, rpc: methodDescriptor.path },
              'refused a gRPC call outside the caller allow-list',
            );
            call.sendStatus({
              code: status.PERMISSION_DENIED,
              details: `${identity ?? 'an unidentified caller'} may not call ${methodDescriptor.path}`,
            });
          },
        };
        next(listener);
      },
    });
}
