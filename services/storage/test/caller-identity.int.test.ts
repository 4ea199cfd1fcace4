/**
 * Storage's gRPC server trusts no caller by default: mutual TLS with the internal CA, the caller
 * named by its certificate, and each identity held to the RPCs its service uses
 * (src/grpc/caller-policy.ts). Real TLS handshakes against the real server.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status, type ChannelCredentials } from '@grpc/grpc-js';
import {
  AdminServiceClient,
  DirectoryServiceClient,
  MailstoreServiceClient,
  admin,
  directory,
  mailstore,
} from '@postmesh/contracts';
import { InternalPki, pkiSecurity } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, callError, startStorageHarness, type StorageHarness } from './harness.js';

let h: StorageHarness;
const foreignDir = mkdtempSync(join(tmpdir(), 'postmesh-foreign-ca-'));

beforeAll(async () => {
  h = await startStorageHarness();
  await call(h.directory.createDomain.bind(h.directory), {
    name: 'identity.test',
    defaultQuotaBytes: 0,
  });
}, 60_000);
afterAll(async () => {
  await h?.stop();
  rmSync(foreignDir, { recursive: true, force: true });
});

const as = (identity: string): ChannelCredentials => pkiSecurity(h.env.pki, identity).grpcClientCredentials();

const listDomains = (creds: ChannelCredentials) => {
  const client = new DirectoryServiceClient(h.target, creds);
  return call(client.listDomains.bind(client), directory.ListDomainsRequest.fromPartial({})).finally(() =>
    client.close(),
  );
};

describe('storage refuses callers without an internal certificate', () => {
  it('refuses a plaintext client', async () => {
    const error = await callError(listDomains(credentials.createInsecure()));
    expect(error.code).toBe(status.UNAVAILABLE);
  });

  it('refuses a TLS client without a certificate', async () => {
    const error = await callError(listDomains(credentials.createSsl(readFileSync(h.env.pki.caFile))));
    expect(error.code).toBe(status.UNAVAILABLE);
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    const foreign = InternalPki.ensure(foreignDir);
    const id = foreign.identity('admin');
    // It trusts our CA (so the server is fine to it); the server does not trust its CA.
    const creds = credentials.createSsl(
      readFileSync(h.env.pki.caFile),
      readFileSync(id.keyFile),
      readFileSync(id.certFile),
    );
    const error = await callError(listDomains(creds));
    expect(error.code).toBe(status.UNAVAILABLE);
  });

  it('answers the operator identity (the control: the same call with a good certificate)', async () => {
    const response = await listDomains(as('operator'));
    expect(response.domains.map((d) => d.name)).toContain('identity.test');
  });
});

describe('each identity may call only the RPCs its service uses', () => {
  it('denies smtp-inbound every Admin RPC', async () => {
    const client = new AdminServiceClient(h.target, as('smtp-inbound'));
    try {
      const error = await callError(
        call(client.listAdmins.bind(client), admin.ListAdminsRequest.fromPartial({})),
      );
      expect(error.code).toBe(status.PERMISSION_DENIED);
      const session = await callError(
        call(client.createSession.bind(client), admin.CreateSessionRequest.fromPartial({ principalId: 'x' })),
      );
      expect(session.code).toBe(status.PERMISSION_DENIED);
    } finally {
      client.close();
    }
  });

  it('lets smtp-inbound resolve recipients but not read mailboxes or signing keys', async () => {
    const dir = new DirectoryServiceClient(h.target, as('smtp-inbound'));
    const store = new MailstoreServiceClient(h.target, as('smtp-inbound'));
    try {
      const resolved = await call(
        dir.resolveRecipient.bind(dir),
        directory.ResolveRecipientRequest.fromPartial({ address: 'nobody@identity.test' }),
      );
      expect(resolved.result?.$case).toBeDefined();
      const key = await callError(
        call(
          dir.getSigningKey.bind(dir),
          directory.GetSigningKeyRequest.fromPartial({ domain: 'identity.test' }),
        ),
      );
      expect(key.code).toBe(status.PERMISSION_DENIED);
      const boxes = await callError(
        call(store.listMailboxes.bind(store), mailstore.ListMailboxesRequest.fromPartial({ userId: 'u' })),
      );
      expect(boxes.code).toBe(status.PERMISSION_DENIED);
    } finally {
      dir.close();
      store.close();
    }
  });

  it('lets imap use the Mailstore but not manage the directory', async () => {
    const error = await callError(
      (() => {
        const client = new DirectoryServiceClient(h.target, as('imap'));
        return call(
          client.createDomain.bind(client),
          directory.CreateDomainRequest.fromPartial({ name: 'evil.test' }),
        ).finally(() => client.close());
      })(),
    );
    expect(error.code).toBe(status.PERMISSION_DENIED);
    const store = new MailstoreServiceClient(h.target, as('imap'));
    try {
      // Allowed through to the handler, which answers about the unknown user itself.
      const answer = await call(
        store.listMailboxes.bind(store),
        mailstore.ListMailboxesRequest.fromPartial({ userId: '000000000000000000000000' }),
      ).catch((e: { code: number }) => e);
      expect((answer as { code?: number }).code).not.toBe(status.PERMISSION_DENIED);
    } finally {
      store.close();
    }
  });

  it('denies mta-delivery everything but signing keys', async () => {
    const error = await callError(listDomains(as('mta-delivery')));
    expect(error.code).toBe(status.PERMISSION_DENIED);
    const dir = new DirectoryServiceClient(h.target, as('mta-delivery'));
    try {
      const key = await call(
        dir.getSigningKey.bind(dir),
        directory.GetSigningKeyRequest.fromPartial({ domain: 'identity.test' }),
      ).catch((e: { code: number }) => e);
      expect((key as { code?: number }).code).not.toBe(status.PERMISSION_DENIED);
    } finally {
      dir.close();
    }
  });

  it('denies an identity the CA issued but no allow-list names', async () => {
    InternalPki.ensure(h.env.pki.dir, ['intruder']);
    const error = await callError(listDomains(as('intruder')));
    expect(error.code).toBe(status.PERMISSION_DENIED);
  });
});
