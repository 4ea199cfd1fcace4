/**
 * Team mailboxes through the admin API (docs/shared-mailboxes.md) and the users' message count
 * quota. Real storage, admin and imap processes with partition ownership on (ADR 0007: admin
 * reads the ownership map and sends each user's Mailstore calls to the owner), NATS and
 * FerretDB; members check what they were given with a real IMAP client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { freePort, startService, type RunningService } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness, type ApiResponse } from './harness.js';

const PASSWORD = 'team mailbox password 2026';
const OWNERSHIP = { POSTMESH_STORAGE_OWNERSHIP: 'true', POSTMESH_STORAGE_PARTITIONS: '8' };

let h: AdminHarness;
let imap: RunningService;
let imapPort = 0;
const imapDir = mkdtempSync(join(tmpdir(), 'postmesh-admin-team-'));
let owner: ApiClient;
let domainAdmin: ApiClient;
let helpdesk: ApiClient;
let auditor: ApiClient;
let agentSession: ApiClient;
const ids = { support: '', agent: '', viewer: '', bob: '' };

async function ok(response: Promise<ApiResponse>): Promise<Record<string, unknown>> {
  const r = await response;
  if (r.status >= 300) throw new Error(`${r.status} ${r.text}`);
  return r.body as Record<string, unknown>;
}

async function signedIn(email: string): Promise<ApiClient> {
  const client = new ApiClient(h.baseUrl);
  const r = await client.login(email, PASSWORD);
  if (r.status !== 200) throw new Error(`${email} cannot sign in: ${r.text}`);
  return client;
}

/** The mailboxes a user sees under "Other Users" (RFC 2342 §5), over IMAP. */
async function sharedWith(address: string): Promise<string[]> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: imapPort,
    secure: false,
    auth: { user: address, pass: PASSWORD },
    // STARTTLS meets the self-signed certificate imap made for itself.
    tls: { rejectUnauthorized: false },
    logger: false,
  });
  await client.connect();
  try {
    const found = await client.list({ statusQuery: {} });
    return found
      .map((m) => m.path)
      .filter((p) => p.startsWith('Other Users/') && p.split('/').length > 2)
      .sort();
  } finally {
    await client.logout();
  }
}

const aclOf = async (client: ApiClient, userId: string, path: string) =>
  (await ok(client.get(`/api/v1/users/${userId}/team-mailboxes/acl?path=${encodeURIComponent(path)}`)))
    .acl as { identifier: string; rights: string }[];
const rightsOf = (acl: { identifier: string; rights: string }[], identifier: string) =>
  acl.find((e) => e.identifier.toLowerCase() === identifier)?.rights;
/** Rights as a sorted set of letters (storage adds RFC 4314 §2.1.1 `c`/`d` for their members). */
const letters = (rights: string | undefined) => [...(rights ?? '')].sort().join('');

beforeAll(async () => {
  h = await startAdminHarness({ storageEnv: OWNERSHIP, adminEnv: OWNERSHIP });
  owner = new ApiClient(h.baseUrl);
  await owner.login(OWNER.email, OWNER.password);
  for (const name of ['alpha.test', 'beta.test']) await ok(owner.post('/api/v1/domains', { name }));
  for (const [key, address] of [
    ['support', 'support@alpha.test'],
    ['agent', 'agent@alpha.test'],
    ['viewer', 'viewer@alpha.test'],
    ['bob', 'bob@beta.test'],
  ] as const) {
    ids[key] = String((await ok(owner.post('/api/v1/users', { address, password: PASSWORD }))).id);
  }
  const admin = (email: string, role: string, domains: string[]) =>
    ok(owner.post('/api/v1/admins', { email, password: PASSWORD, role, domains }));
  await admin('da@example.test', 'domain-admin', ['alpha.test']);
  await admin('hd@example.test', 'helpdesk', ['alpha.test']);
  await admin('aud@example.test', 'auditor', []);
  [domainAdmin, helpdesk, auditor, agentSession] = await Promise.all([
    signedIn('da@example.test'),
    signedIn('hd@example.test'),
    signedIn('aud@example.test'),
    signedIn('agent@alpha.test'),
  ]);
  imapPort = await freePort();
  imap = await startService('imap', {
    env: h.env,
    dir: imapDir,
    vars: {
      ...OWNERSHIP,
      POSTMESH_STORAGE_GRPC: h.storageGrpc,
      POSTMESH_IMAP_PORT: String(imapPort),
      POSTMESH_IMAPS_PORT: String(await freePort()),
      POSTMESH_IMAP_DATA_DIR: join(imapDir, 'imap-data'),
      // A self-signed certificate is made in the data directory; the test signs in over plain text.
      POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
    },
  });
}, 180_000);

afterAll(async () => {
  await imap?.stop(10_000).catch(() => imap.kill());
  await h?.stop();
  rmSync(imapDir, { recursive: true, force: true });
});

describe('team mailboxes', () => {
  it("creates one, shows its ACL, changes and removes members, and the members' IMAP clients follow", async () => {
    const created = await owner.post(`/api/v1/users/${ids.support}/team-mailboxes`, {
      path: 'INBOX',
      members: [
        { identifier: 'agent@alpha.test', rights: 'lrswitea' },
        { identifier: 'Viewer@Alpha.test', rights: 'lr' },
      ],
    });
    expect(created.status, created.text).toBe(201);
    const body = created.body as { mailbox: { id: string; path: string }; acl: { identifier: string }[] };
    expect(body.mailbox.path).toBe('INBOX');
    expect(body.mailbox.id).not.toBe('');
    // The owner first, with every right.
    expect(body.acl[0]?.identifier).toBe('support@alpha.test');
    let acl = await aclOf(owner, ids.support, 'INBOX');
    expect(letters(rightsOf(acl, 'agent@alpha.test'))).toBe(letters('lrswitead'));
    expect(rightsOf(acl, 'viewer@alpha.test')).toBe('lr');
    expect(await sharedWith('agent@alpha.test')).toEqual(['Other Users/support@alpha.test/INBOX']);
    expect(await sharedWith('viewer@alpha.test')).toEqual(['Other Users/support@alpha.test/INBOX']);

    const changed = await owner.patch(`/api/v1/users/${ids.support}/team-mailboxes/acl`, {
      path: 'INBOX',
      identifier: 'agent@alpha.test',
      rights: 'lrs',
    });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body).toEqual({ identifier: 'agent@alpha.test', rights: 'lrs' });

    const removed = await owner.delete(
      `/api/v1/users/${ids.support}/team-mailboxes/acl?path=INBOX&identifier=viewer%40alpha.test`,
    );
    expect(removed.status, removed.text).toBe(200);
    acl = await aclOf(owner, ids.support, 'INBOX');
    expect(acl.map((e) => e.identifier.toLowerCase())).toEqual(['support@alpha.test', 'agent@alpha.test']);
    expect(rightsOf(acl, 'agent@alpha.test')).toBe('lrs');
    expect(await sharedWith('viewer@alpha.test')).toEqual([]);
    expect(await sharedWith('agent@alpha.test')).toEqual(['Other Users/support@alpha.test/INBOX']);
  });

  it('creates a nested path with its parents, and answers 404 for a mailbox that does not exist', async () => {
    const created = await owner.post(`/api/v1/users/${ids.support}/team-mailboxes`, {
      path: 'Queue/Escalations',
      members: [{ identifier: 'anyone', rights: 'lr' }],
    });
    expect(created.status, created.text).toBe(201);
    expect(rightsOf(await aclOf(owner, ids.support, 'Queue/Escalations'), 'anyone')).toBe('lr');
    const missing = await owner.get(`/api/v1/users/${ids.support}/team-mailboxes/acl?path=Nowhere`);
    expect(missing.status, missing.text).toBe(404);
  });

  it('refuses every bad member, rights string or path with a 400 naming the field, and changes nothing', async () => {
    const before = await aclOf(owner, ids.support, 'INBOX');
    const cases: [unknown, string][] = [
      [{ path: 'INBOX', members: [{ identifier: 'agent@alpha.test', rights: 'lrX' }] }, 'members[0].rights'],
      [{ path: 'INBOX', members: [{ identifier: 'agent@alpha.test', rights: '+lr' }] }, 'members[0].rights'],
      [{ path: 'INBOX', members: [{ identifier: 'agent@alpha.test', rights: '' }] }, 'members[0].rights'],
      [{ path: 'INBOX', members: [{ identifier: 'agent@alpha.test', rights: 'lr0' }] }, 'members[0].rights'],
      [{ path: 'INBOX', members: [{ identifier: 'not an address', rights: 'lr' }] }, 'members[0].identifier'],
      [{ path: 'INBOX', members: [{ identifier: 'Anyone', rights: 'lr' }] }, 'members[0].identifier'],
      [
        { path: 'INBOX', members: [{ identifier: 'support@alpha.test', rights: 'lr' }] },
        'members[0].identifier',
      ],
      [
        {
          path: 'INBOX',
          members: [
            { identifier: 'viewer@alpha.test', rights: 'lr' },
            { identifier: 'VIEWER@alpha.test', rights: 'l' },
          ],
        },
        'members[1].identifier',
      ],
      // An unknown user, after a good member: storage checks them all before changing anything.
      [
        {
          path: 'INBOX',
          members: [
            { identifier: 'viewer@alpha.test', rights: 'lr' },
            { identifier: 'nobody@alpha.test', rights: 'lr' },
          ],
        },
        'members[1].identifier',
      ],
      [
        { path: 'INBOX', members: [{ identifier: 'agent@alpha.test', rights: 'lr', extra: 1 }] },
        'members[0].extra',
      ],
      [{ path: 'INBOX', members: [] }, 'members'],
      [{ path: 'INBOX', members: 'agent@alpha.test lr' }, 'members'],
      [{ path: 'Team/*', members: [{ identifier: 'anyone', rights: 'lr' }] }, 'path'],
      [{ path: '/Team', members: [{ identifier: 'anyone', rights: 'lr' }] }, 'path'],
      [{ path: 'A//B', members: [{ identifier: 'anyone', rights: 'lr' }] }, 'path'],
      [{ path: 'Team\r\nX', members: [{ identifier: 'anyone', rights: 'lr' }] }, 'path'],
      [{ path: '', members: [{ identifier: 'anyone', rights: 'lr' }] }, 'path'],
      [{ members: [{ identifier: 'anyone', rights: 'lr' }] }, 'path'],
      [{ path: 'INBOX', members: [{ identifier: 'anyone', rights: 'lr' }], owner: 'x' }, 'owner'],
    ];
    for (const [body, field] of cases) {
      const r = await owner.post(`/api/v1/users/${ids.support}/team-mailboxes`, body);
      expect(r.status, `${JSON.stringify(body)} → ${r.text}`).toBe(400);
      expect(r.body, JSON.stringify(body)).toMatchObject({ error: { code: 'invalid_argument', field } });
    }
    const set = (body: unknown) => owner.patch(`/api/v1/users/${ids.support}/team-mailboxes/acl`, body);
    for (const [body, field] of [
      [{ path: 'INBOX', identifier: 'agent@alpha.test', rights: '-l' }, 'rights'],
      [{ path: 'INBOX', identifier: 'agent@alpha.test' }, 'rights'],
      [{ path: 'INBOX', identifier: 'support@alpha.test', rights: 'lr' }, 'identifier'],
      [{ path: 'INBOX', identifier: 'nobody@alpha.test', rights: 'lr' }, 'identifier'],
      [{ path: 'INBOX', identifier: 12345, rights: 'lr' }, 'identifier'],
    ] as const) {
      const r = await set(body);
      expect(r.status, `${JSON.stringify(body)} → ${r.text}`).toBe(400);
      expect(r.body).toMatchObject({ error: { code: 'invalid_argument', field } });
    }
    const removeOwner = await owner.delete(
      `/api/v1/users/${ids.support}/team-mailboxes/acl?path=INBOX&identifier=support%40alpha.test`,
    );
    expect(removeOwner.status).toBe(400);
    expect(await aclOf(owner, ids.support, 'INBOX')).toEqual(before);
    // Nothing was created for the refused requests either.
    const never = await owner.get(`/api/v1/users/${ids.support}/team-mailboxes/acl?path=Team`);
    expect(never.status).toBe(404);
  });

  it('lets a domain-admin manage accounts of their domains with members of their domains only', async () => {
    const r = await domainAdmin.post(`/api/v1/users/${ids.support}/team-mailboxes`, {
      path: 'Sales',
      members: [{ identifier: 'agent@alpha.test', rights: 'lr' }],
    });
    expect(r.status, r.text).toBe(201);
    // Another domain's user is not theirs to grant, and whether that user exists is not told.
    for (const identifier of ['bob@beta.test', 'nobody@beta.test']) {
      const outside = await domainAdmin.patch(`/api/v1/users/${ids.support}/team-mailboxes/acl`, {
        path: 'Sales',
        identifier,
        rights: 'lr',
      });
      expect(outside.status, outside.text).toBe(400);
      expect(outside.body).toMatchObject({
        error: { field: 'identifier', message: `identifier: ${identifier} is outside your domains` },
      });
    }
    const otherAccount = await domainAdmin.post(`/api/v1/users/${ids.bob}/team-mailboxes`, {
      path: 'Sales',
      members: [{ identifier: 'anyone', rights: 'lr' }],
    });
    expect(otherAccount.status).toBe(403);
    expect((await domainAdmin.get(`/api/v1/users/${ids.bob}/team-mailboxes/acl?path=INBOX`)).status).toBe(
      403,
    );
    // The owner may share across domains.
    const across = await owner.patch(`/api/v1/users/${ids.support}/team-mailboxes/acl`, {
      path: 'Sales',
      identifier: 'bob@beta.test',
      rights: 'lr',
    });
    expect(across.status, across.text).toBe(200);
  });

  it('lets read-only roles read the ACL but not change it, and a mail user neither', async () => {
    for (const reader of [helpdesk, auditor]) {
      expect(rightsOf(await aclOf(reader, ids.support, 'INBOX'), 'agent@alpha.test')).toBe('lrs');
      const write = await reader.patch(`/api/v1/users/${ids.support}/team-mailboxes/acl`, {
        path: 'INBOX',
        identifier: 'agent@alpha.test',
        rights: 'lrswitea',
      });
      expect(write.status).toBe(403);
      const remove = await reader.delete(
        `/api/v1/users/${ids.support}/team-mailboxes/acl?path=INBOX&identifier=agent%40alpha.test`,
      );
      expect(remove.status).toBe(403);
      const create = await reader.post(`/api/v1/users/${ids.support}/team-mailboxes`, {
        path: 'Other',
        members: [{ identifier: 'anyone', rights: 'lr' }],
      });
      expect(create.status).toBe(403);
    }
    // A member manages the ACL over IMAP (with "a"), not through the console.
    expect(
      (await agentSession.get(`/api/v1/users/${ids.support}/team-mailboxes/acl?path=INBOX`)).status,
    ).toBe(403);
    expect((await agentSession.get(`/api/v1/users/${ids.agent}/team-mailboxes/acl?path=INBOX`)).status).toBe(
      403,
    );
    expect(rightsOf(await aclOf(owner, ids.support, 'INBOX'), 'agent@alpha.test')).toBe('lrs');
  });

  it('audits each change with the account, mailbox, member and rights', async () => {
    await ok(
      owner.patch(`/api/v1/users/${ids.support}/team-mailboxes/acl`, {
        path: 'INBOX',
        identifier: 'viewer@alpha.test',
        rights: 'lr',
      }),
    );
    const entries = (
      (await ok(owner.get('/api/v1/audit?action=teammailboxes.write&pageSize=100'))).items as {
        action: string;
        target: string;
        result: string;
      }[]
    ).filter((e) => e.action === 'teammailboxes.write');
    const targets = entries.map((e) => e.target);
    expect(targets).toContain('support@alpha.test INBOX viewer@alpha.test=lr');
    expect(targets).toContain('support@alpha.test INBOX viewer@alpha.test');
    expect(targets).toContain('support@alpha.test Queue/Escalations');
  });
});

describe("users' message count quota", () => {
  it('is set on create and update, shown with the usage, and refused when not a count', async () => {
    const created = await ok(
      owner.post('/api/v1/users', { address: 'quota@alpha.test', password: PASSWORD, quotaMessages: 2 }),
    );
    expect(created).toMatchObject({ quotaMessages: 2, usage: { messages: 0, quotaMessages: 2 } });
    const id = String(created.id);
    const updated = await ok(owner.patch(`/api/v1/users/${id}`, { quotaMessages: 500 }));
    expect(updated).toMatchObject({ quotaMessages: 500, usage: { quotaMessages: 500 } });
    // Another change leaves it as it is.
    await ok(owner.patch(`/api/v1/users/${id}`, { displayName: 'Quota' }));
    expect(await ok(owner.get(`/api/v1/users/${id}`))).toMatchObject({
      quotaMessages: 500,
      displayName: 'Quota',
    });
    for (const bad of [-1, 1.5, 'many', 1_000_000_001, true]) {
      const r = await owner.patch(`/api/v1/users/${id}`, { quotaMessages: bad });
      expect(r.status, `${JSON.stringify(bad)} → ${r.text}`).toBe(400);
      expect(r.body).toMatchObject({ error: { field: 'quotaMessages' } });
    }
    // Helpdesk reads users but may not change them.
    expect((await helpdesk.patch(`/api/v1/users/${id}`, { quotaMessages: 0 })).status).toBe(403);
    const listed = (await ok(owner.get('/api/v1/users?domain=alpha.test&q=quota'))).items as unknown[];
    expect(listed).toEqual([expect.objectContaining({ quotaMessages: 500 })]);
  });
});
