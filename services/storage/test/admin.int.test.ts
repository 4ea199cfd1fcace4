/**
 * AdminService over real gRPC and FerretDB: accounts and scopes, login with lockout and TOTP,
 * sessions with idle expiry and revocation, hashed API tokens, and the append-only audit log.
 */
import { admin, AdminServiceClient, ErrorReason, errorDetailOf } from '@postmesh/contracts';
import { serialize } from 'bson';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_SESSIONS } from '../src/administrators/index.js';
import { TotpEnrolment, base32Decode, totpCode, type TotpFields } from '../src/totp/index.js';
import { Collections, type TotpClaimDoc } from '../src/db/schema.js';
import { call, callError, startStorageHarness, type StorageHarness } from './harness.js';

let h: StorageHarness;
let client: AdminServiceClient;
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  h = await startStorageHarness();
  client = new AdminServiceClient(h.target, h.clientCredentials);
});
afterAll(async () => {
  client.close();
  await h.stop();
});

const api = {
  createAdmin: (r: Partial<admin.CreateAdminRequest>) =>
    call(client.createAdmin.bind(client), admin.CreateAdminRequest.fromPartial(r)),
  getAdmin: (r: admin.GetAdminRequest) => call(client.getAdmin.bind(client), r),
  listAdmins: (r: Partial<admin.ListAdminsRequest>) =>
    call(client.listAdmins.bind(client), admin.ListAdminsRequest.fromPartial(r)),
  updateAdmin: (r: Partial<admin.UpdateAdminRequest>) =>
    call(client.updateAdmin.bind(client), admin.UpdateAdminRequest.fromPartial(r)),
  auth: (r: Partial<admin.AuthenticateAdminRequest>) =>
    call(client.authenticateAdmin.bind(client), admin.AuthenticateAdminRequest.fromPartial(r)),
  session: (r: Partial<admin.CreateSessionRequest>) =>
    call(client.createSession.bind(client), admin.CreateSessionRequest.fromPartial(r)),
  resolve: (secret: string) => call(client.resolveSession.bind(client), { secret }),
  audit: (r: Partial<admin.QueryAuditRequest>) =>
    call(client.queryAudit.bind(client), admin.QueryAuditRequest.fromPartial(r)),
};

const reasonOf = async (promise: Promise<unknown>): Promise<ErrorReason | undefined> =>
  errorDetailOf(await callError(promise))?.reason;

describe('administrator accounts', () => {
  it('creates, reads and lists admins with their domain scope; stores only an argon2id hash', async () => {
    const { admin: created } = await api.createAdmin({
      email: 'Ops@Example.TEST',
      password: PASSWORD,
      role: admin.AdminRole.DOMAIN_ADMIN,
      domains: ['b.test', 'A.test', 'a.test'],
    });
    expect(created).toMatchObject({
      email: 'ops@example.test',
      domains: ['a.test', 'b.test'],
      totpEnabled: false,
    });
    const byEmail = await api.getAdmin({ selector: { $case: 'email', value: 'OPS@example.test' } });
    expect(byEmail.admin?.id).toBe(created?.id);
    const scoped = await api.listAdmins({ domain: 'b.test' });
    expect(scoped.admins.map((a) => a.email)).toEqual(['ops@example.test']);
    const raw = Buffer.from(
      serialize((await h.db.collection(Collections.admins).findOne({ email: 'ops@example.test' })) ?? {}),
    );
    expect(raw.includes(Buffer.from(PASSWORD))).toBe(false);
    expect(raw.toString('latin1')).toContain('$argon2id$');
  });

  it('refuses bad input with typed reasons', async () => {
    expect(
      await reasonOf(
        api.createAdmin({ email: 'ops@example.test', password: PASSWORD, role: admin.AdminRole.AUDITOR }),
      ),
    ).toBe(ErrorReason.ALREADY_EXISTS);
    expect(
      await reasonOf(
        api.createAdmin({ email: 'not an email', password: PASSWORD, role: admin.AdminRole.AUDITOR }),
      ),
    ).toBe(ErrorReason.INVALID_NAME);
    expect(
      await reasonOf(
        api.createAdmin({ email: 'x@example.test', password: 'short', role: admin.AdminRole.AUDITOR }),
      ),
    ).toBe(ErrorReason.WEAK_PASSWORD);
    // A domain-scoped role needs domains; a system-wide one takes none.
    expect(
      await reasonOf(
        api.createAdmin({ email: 'x@example.test', password: PASSWORD, role: admin.AdminRole.HELPDESK }),
      ),
    ).toBe(ErrorReason.INVALID_ARGUMENT);
    expect(
      await reasonOf(
        api.createAdmin({
          email: 'x@example.test',
          password: PASSWORD,
          role: admin.AdminRole.OWNER,
          domains: ['a.test'],
        }),
      ),
    ).toBe(ErrorReason.INVALID_ARGUMENT);
    expect(await reasonOf(api.createAdmin({ email: 'x@example.test', password: PASSWORD }))).toBe(
      ErrorReason.INVALID_ARGUMENT,
    );
  });

  it('bootstraps the owner once and leaves an existing owner alone', async () => {
    const first = await call(client.ensureOwner.bind(client), {
      email: 'owner@example.test',
      password: PASSWORD,
    });
    expect(first).toMatchObject({ created: true, admin: { role: admin.AdminRole.OWNER } });
    const second = await call(client.ensureOwner.bind(client), {
      email: 'owner@example.test',
      password: 'another password 42',
    });
    expect(second.created).toBe(false);
    const login = await api.auth({ email: 'owner@example.test', password: PASSWORD });
    expect(login.result?.$case).toBe('success');
  });
});

describe('administrator login', () => {
  it('refuses wrong passwords, locks the account after five failures, and unlock clears it', async () => {
    const { admin: a } = await api.createAdmin({
      email: 'lock@example.test',
      password: PASSWORD,
      role: admin.AdminRole.AUDITOR,
    });
    for (let i = 0; i < 5; i++) {
      const r = await api.auth({ email: 'lock@example.test', password: `wrong password ${i}` });
      expect(r.result).toEqual({
        $case: 'failure',
        value: { reason: admin.AdminAuthFailureReason.INVALID_CREDENTIALS, retryAfterSeconds: 0 },
      });
    }
    const locked = await api.auth({ email: 'lock@example.test', password: PASSWORD });
    expect(locked.result?.$case === 'failure' && locked.result.value.reason).toBe(
      admin.AdminAuthFailureReason.LOCKED,
    );
    expect(locked.result?.$case === 'failure' && locked.result.value.retryAfterSeconds).toBeGreaterThan(0);
    await api.updateAdmin({ adminId: a?.id ?? '', unlock: true });
    expect((await api.auth({ email: 'lock@example.test', password: PASSWORD })).result?.$case).toBe(
      'success',
    );
    const unknown = await api.auth({ email: 'nobody@example.test', password: PASSWORD });
    expect(unknown.result?.$case === 'failure' && unknown.result.value.reason).toBe(
      admin.AdminAuthFailureReason.INVALID_CREDENTIALS,
    );
  });

  it('refuses a disabled admin', async () => {
    const { admin: a } = await api.createAdmin({
      email: 'off@example.test',
      password: PASSWORD,
      role: admin.AdminRole.AUDITOR,
    });
    await api.updateAdmin({ adminId: a?.id ?? '', status: admin.AdminStatus.DISABLED });
    const r = await api.auth({ email: 'off@example.test', password: PASSWORD });
    expect(r.result?.$case === 'failure' && r.result.value.reason).toBe(
      admin.AdminAuthFailureReason.DISABLED,
    );
  });

  it('requires TOTP once enrolled, accepts a code once, and keeps the seed encrypted', async () => {
    const { admin: a } = await api.createAdmin({
      email: 'totp@example.test',
      password: PASSWORD,
      role: admin.AdminRole.OWNER,
    });
    const adminId = a?.id ?? '';
    const begun = await call(client.beginTotpEnrollment.bind(client), { adminId });
    expect(begun.otpauthUri).toMatch(
      /^otpauth:\/\/totp\/Postmesh%3Atotp%40example\.test\?secret=[A-Z2-7]{32}&/,
    );
    const seed = base32Decode(begun.secretBase32);
    expect(
      await reasonOf(
        call(client.confirmTotpEnrollment.bind(client), {
          adminId,
          code: '000000' === totpCode(seed, new Date()) ? '111111' : '000000',
        }),
      ),
    ).toBe(ErrorReason.INVALID_ARGUMENT);
    const confirmed = await call(client.confirmTotpEnrollment.bind(client), {
      adminId,
      code: totpCode(seed, new Date()),
    });
    expect(confirmed.admin?.totpEnabled).toBe(true);
    const doc = await h.db.collection(Collections.admins).findOne({ email: 'totp@example.test' });
    const raw = Buffer.from(serialize(doc ?? {}));
    expect(raw.includes(seed)).toBe(false);
    expect(raw.includes(Buffer.from(begun.secretBase32))).toBe(false);

    const noCode = await api.auth({ email: 'totp@example.test', password: PASSWORD });
    expect(noCode.result?.$case === 'failure' && noCode.result.value.reason).toBe(
      admin.AdminAuthFailureReason.TOTP_REQUIRED,
    );
    // The code used to confirm cannot be replayed (RFC 6238 §5.2); wait for the next step.
    const step = Math.floor(Date.now() / 30_000);
    await new Promise((r) => setTimeout(r, (step + 1) * 30_000 - Date.now() + 50));
    const code = totpCode(seed, new Date());
    // Sign-ins racing with one code: the step is claimed by an insert with a unique key, atomic
    // on FerretDB too, so exactly one gets through (four: fewer failures than lock the account).
    const raced = await Promise.all(
      [1, 2, 3, 4].map(() => api.auth({ email: 'totp@example.test', password: PASSWORD, totpCode: code })),
    );
    expect(raced.map((r) => r.result?.$case).sort()).toEqual(['failure', 'failure', 'failure', 'success']);
    for (const r of raced.filter((r) => r.result?.$case === 'failure'))
      expect(r.result?.$case === 'failure' && r.result.value.reason).toBe(
        admin.AdminAuthFailureReason.TOTP_INVALID,
      );
    const replay = await api.auth({ email: 'totp@example.test', password: PASSWORD, totpCode: code });
    expect(replay.result?.$case === 'failure' && replay.result.value.reason).toBe(
      admin.AdminAuthFailureReason.TOTP_INVALID,
    );
  }, 60_000);
});

describe('one TOTP code, many sign-ins at once', () => {
  it('lets exactly one of the sign-ins racing with one code through, and none after it', async () => {
    // Straight at the enrolment, without the password hashing of a sign-in in front, so the
    // claims reach the database together; the clock is the test's, so no waiting for a new step.
    let clock = new Date();
    const accounts = h.db.collection<TotpFields>('totp_race_accounts');
    const enrolment = new TotpEnrolment<TotpFields>({
      accounts,
      claims: h.db.collection<TotpClaimDoc>(Collections.totpClaims),
      keyProvider: h.keyProvider,
      context: (id) => `race-totp:${id}`,
      label: () => 'race@example.test',
      now: () => clock,
    });
    const read = async (id: ObjectId): Promise<TotpFields> => {
      const doc = await accounts.findOne({ _id: id });
      if (doc === null) throw new Error('account gone');
      return doc;
    };
    for (let round = 0; round < 3; round++) {
      const _id = new ObjectId();
      await accounts.insertOne({ _id, updatedAt: clock });
      const seed = base32Decode((await enrolment.begin(await read(_id))).secretBase32);
      const confirmed = await enrolment.confirm(await read(_id), totpCode(seed, clock));
      expect(confirmed.kind).toBe('ok');
      clock = new Date(clock.getTime() + 30_000);
      const code = totpCode(seed, clock);
      // Every sign-in read the account before any of them claimed the step.
      const snapshot = await read(_id);
      const verdicts = await Promise.all(Array.from({ length: 8 }, () => enrolment.verify(snapshot, code)));
      expect(verdicts.filter((v) => v === 'accepted')).toHaveLength(1);
      expect(verdicts.filter((v) => v === 'wrong')).toHaveLength(7);
      expect(await enrolment.verify(await read(_id), code)).toBe('wrong');
      expect(await enrolment.verify(snapshot, code)).toBe('wrong');
    }
  });
});

describe('sessions', () => {
  it('resolves a live session, ends it on logout, and stores only a hash of the secret', async () => {
    const { session, secret } = await api.session({
      principalKind: admin.PrincipalKind.ADMIN,
      principalId:
        (await api.getAdmin({ selector: { $case: 'email', value: 'ops@example.test' } })).admin?.id ?? '',
      idleTimeoutSeconds: 600,
      absoluteTimeoutSeconds: 3600,
      remoteIp: '127.0.0.1',
    });
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await api.resolve(secret)).session?.id).toBe(session?.id);
    const raw = Buffer.from(serialize((await h.db.collection(ADMIN_SESSIONS).findOne({})) ?? {}));
    expect(raw.includes(Buffer.from(secret))).toBe(false);
    await call(client.deleteSession.bind(client), { secret });
    expect((await api.resolve(secret)).session).toBeUndefined();
    expect((await api.resolve('made-up')).session).toBeUndefined();
  });

  it('ends a session after its idle timeout and after its absolute lifetime', async () => {
    const idle = await api.session({
      principalKind: admin.PrincipalKind.USER,
      principalId: 'u1',
      idleTimeoutSeconds: 1,
      absoluteTimeoutSeconds: 60,
    });
    const absolute = await api.session({
      principalKind: admin.PrincipalKind.USER,
      principalId: 'u1',
      idleTimeoutSeconds: 60,
      absoluteTimeoutSeconds: 2,
    });
    expect((await api.resolve(idle.secret)).session).toBeDefined();
    await new Promise((r) => setTimeout(r, 1_300));
    expect((await api.resolve(idle.secret)).session).toBeUndefined();
    expect((await api.resolve(absolute.secret)).session).toBeDefined();
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await api.resolve(absolute.secret)).session).toBeUndefined();
  });
});

describe('session revocation', () => {
  it("ends every session of one principal but the one to keep, and nobody else's", async () => {
    const open = (principalId: string) =>
      api.session({
        principalKind: admin.PrincipalKind.USER,
        principalId,
        idleTimeoutSeconds: 600,
        absoluteTimeoutSeconds: 3600,
      });
    const [kept, ended, other] = await Promise.all([open('u-revoke'), open('u-revoke'), open('u-other')]);
    const revoke = (r: Partial<admin.RevokeSessionsRequest>) =>
      call(client.revokeSessions.bind(client), admin.RevokeSessionsRequest.fromPartial(r));
    expect(
      await revoke({
        principalKind: admin.PrincipalKind.USER,
        principalId: 'u-revoke',
        keepSecret: kept.secret,
      }),
    ).toEqual({ revoked: 1 });
    expect((await api.resolve(kept.secret)).session).toBeDefined();
    expect((await api.resolve(ended.secret)).session).toBeUndefined();
    expect((await api.resolve(other.secret)).session).toBeDefined();
    // The same id as an administrator is another principal.
    expect(await revoke({ principalKind: admin.PrincipalKind.ADMIN, principalId: 'u-revoke' })).toEqual({
      revoked: 0,
    });
    expect(await revoke({ principalKind: admin.PrincipalKind.USER, principalId: 'u-revoke' })).toEqual({
      revoked: 1,
    });
    expect((await api.resolve(kept.secret)).session).toBeUndefined();
    expect(await reasonOf(revoke({ principalId: 'u-revoke' }))).toBe(ErrorReason.INVALID_ARGUMENT);
    expect(await reasonOf(revoke({ principalKind: admin.PrincipalKind.USER }))).toBe(
      ErrorReason.INVALID_ARGUMENT,
    );
  });
});

describe('API tokens', () => {
  it('creates a scoped token shown once, resolves it by secret, and revokes it', async () => {
    const owner = (await api.getAdmin({ selector: { $case: 'email', value: 'ops@example.test' } })).admin;
    const created = await call(
      client.createApiToken.bind(client),
      admin.CreateApiTokenRequest.fromPartial({
        adminId: owner?.id ?? '',
        name: 'ci',
        scopes: ['users:read', 'users:read'],
        domains: ['a.test'],
      }),
    );
    expect(created.secret).toMatch(/^pmt_[A-Za-z0-9_-]{43}$/);
    expect(created.token).toMatchObject({ scopes: ['users:read'], domains: ['a.test'] });
    const raw = Buffer.from(serialize((await h.db.collection(Collections.apiTokens).findOne({})) ?? {}));
    expect(raw.includes(Buffer.from(created.secret))).toBe(false);
    const resolved = await call(client.resolveApiToken.bind(client), { secret: created.secret });
    expect(resolved.admin?.email).toBe('ops@example.test');
    expect(resolved.token?.lastUseTime).toBeInstanceOf(Date);
    const listed = await call(
      client.listApiTokens.bind(client),
      admin.ListApiTokensRequest.fromPartial({ adminId: owner?.id ?? '' }),
    );
    expect(JSON.stringify(listed)).not.toContain(created.secret);
    await call(client.revokeApiToken.bind(client), { tokenId: created.token?.id ?? '' });
    expect(
      (await call(client.resolveApiToken.bind(client), { secret: created.secret })).token,
    ).toBeUndefined();
    expect(
      await reasonOf(
        call(
          client.createApiToken.bind(client),
          admin.CreateApiTokenRequest.fromPartial({ adminId: owner?.id ?? '', scopes: ['everything'] }),
        ),
      ),
    ).toBe(ErrorReason.INVALID_ARGUMENT);
  });
});

describe('audit log', () => {
  it('appends entries with a server time and answers filtered, newest-first pages', async () => {
    const append = (entry: Partial<admin.AuditEntry>) =>
      call(client.appendAudit.bind(client), { entry: admin.AuditEntry.fromPartial(entry) });
    const before = new Date();
    await append({
      actor: 'admin:a@x.test',
      action: 'users.create',
      target: 'u@a.test',
      domain: 'a.test',
      result: admin.AuditResult.SUCCESS,
      sourceIp: '10.0.0.1',
    });
    await append({
      actor: 'admin:b@x.test',
      action: 'users.delete',
      target: 'v@b.test',
      domain: 'b.test',
      result: admin.AuditResult.DENIED,
    });
    const stored = await append({
      actor: 'admin:a@x.test',
      action: 'domains.create',
      target: 'c.test',
      domain: 'c.test',
      result: admin.AuditResult.SUCCESS,
      time: new Date(0),
    });
    expect(stored.entry?.time?.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1000);

    const users = await api.audit({ action: 'users.' });
    expect(users.entries.map((e) => e.action)).toEqual(['users.delete', 'users.create']);
    const denied = await api.audit({ result: admin.AuditResult.DENIED });
    expect(denied.entries.map((e) => e.target)).toEqual(['v@b.test']);
    const scoped = await api.audit({ domains: ['a.test', 'c.test'] });
    expect(scoped.entries.map((e) => e.domain)).toEqual(['c.test', 'a.test']);
    const first = await api.audit({ pageSize: 2 });
    expect(first.entries).toHaveLength(2);
    const second = await api.audit({ pageSize: 2, pageToken: first.nextPageToken });
    expect(second.entries.map((e) => e.id)).not.toContain(first.entries[0]?.id);
    expect(await reasonOf(api.audit({ pageToken: '!!' }))).toBe(ErrorReason.INVALID_ARGUMENT);
    // Append-only: the service offers no way to change or remove an entry.
    expect(Object.keys(admin.AdminServiceService).filter((rpc) => /audit/i.test(rpc))).toEqual([
      'appendAudit',
      'queryAudit',
    ]);
  });
});
