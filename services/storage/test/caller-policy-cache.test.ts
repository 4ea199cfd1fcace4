/**
 * The caller policy reads a connection's certificate once and caches the identity per TLS
 * connection (src/grpc/caller-policy.ts). Real mutual TLS with the test PKI and a real grpc-js
 * server and clients; the only instrumentation is a count of certificate reads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import {
  Client,
  Server,
  status,
  type ChannelCredentials,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { createLogger } from '@postmesh/telemetry';
import { InternalPki, pkiSecurity } from '@postmesh/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { callerPolicyInterceptor } from '../src/grpc/caller-policy.js';

// Two real RPC paths: one every identity below may call, one only the operator may.
const GET_DOMAIN = '/postmesh.directory.v1.DirectoryService/GetDomain';
const CREATE_DOMAIN = '/postmesh.directory.v1.DirectoryService/CreateDomain';

const passThrough = {
  requestStream: false,
  responseStream: false,
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
} as const;
const definition: ServiceDefinition = {
  getDomain: { path: GET_DOMAIN, ...passThrough },
  createDomain: { path: CREATE_DOMAIN, ...passThrough },
};
const echo = (call: { request: Buffer }, callback: (e: null, r: Buffer) => void): void => {
  callback(null, call.request);
};

const dir = mkdtempSync(join(tmpdir(), 'postmesh-caller-cache-'));
let pki: InternalPki;
let server: Server;
let target: string;

beforeAll(async () => {
  pki = InternalPki.ensure(dir, ['storage', 'operator', 'smtp-inbound']);
  server = new Server({ interceptors: [callerPolicyInterceptor(createLogger('test', 'error'))] });
  server.addService(definition, { getDomain: echo, createDomain: echo });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', pkiSecurity(pki, 'storage').grpcServerCredentials(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  target = `127.0.0.1:${port}`;
}, 30_000);
afterAll(() => {
  server?.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** A server side TLS socket (the tls.Server that accepted it sets `server`; a client's has none). */
const onServerSide = (socket: unknown): boolean => (socket as { server?: unknown }).server !== undefined;

/** A client on its own connection (grpc-js shares channels unless their options differ). */
function clientAs(identity: string, connection: number): Client {
  const creds: ChannelCredentials = pkiSecurity(pki, identity).grpcClientCredentials();
  return new Client(target, creds, { 'grpc.postmesh_test_connection': connection });
}

function unary(client: Client, path: string): Promise<{ ok: true } | { ok: false; code: number }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from('x'),
      (error: ServiceError | null) =>
        resolve(error === null ? { ok: true } : { ok: false, code: error.code }),
    );
  });
}

describe('caller identity cached per connection', () => {
  it('reads the certificate once for many calls on one connection', async () => {
    const reads = vi.spyOn(TLSSocket.prototype, 'getPeerCertificate');
    const client = clientAs('smtp-inbound', 1);
    try {
      for (let i = 0; i < 20; i++) expect(await unary(client, GET_DOMAIN)).toEqual({ ok: true });
      // Every call still goes through the policy: smtp-inbound may not create domains.
      expect(await unary(client, CREATE_DOMAIN)).toEqual({ ok: false, code: status.PERMISSION_DENIED });
      // The server's read for this connection (the client's own reads of the server's
      // certificate are made by the client side socket, also a TLSSocket: at most one).
      const serverReads = reads.mock.contexts.filter(onServerSide);
      expect(serverReads).toHaveLength(1);
    } finally {
      client.close();
    }
  });

  it('reads a new connection afresh, so each connection gets its own identity', async () => {
    const smtp = clientAs('smtp-inbound', 2);
    const operator = clientAs('operator', 3);
    try {
      expect(await unary(smtp, CREATE_DOMAIN)).toEqual({ ok: false, code: status.PERMISSION_DENIED });
      expect(await unary(operator, CREATE_DOMAIN)).toEqual({ ok: true });
      // Interleaved on both connections: neither sees the other's cached identity.
      for (let i = 0; i < 5; i++) {
        expect(await unary(smtp, CREATE_DOMAIN)).toEqual({ ok: false, code: status.PERMISSION_DENIED });
        expect(await unary(operator, CREATE_DOMAIN)).toEqual({ ok: true });
      }
    } finally {
      smtp.close();
      operator.close();
    }
    // A closed connection's entry goes with its socket: the same identity reconnecting (a new
    // socket) is read again and judged by its own certificate.
    const reads = vi.spyOn(TLSSocket.prototype, 'getPeerCertificate');
    const again = clientAs('smtp-inbound', 4);
    try {
      expect(await unary(again, CREATE_DOMAIN)).toEqual({ ok: false, code: status.PERMISSION_DENIED });
      expect(reads.mock.contexts.filter(onServerSide)).toHaveLength(1);
    } finally {
      again.close();
    }
  });
});
