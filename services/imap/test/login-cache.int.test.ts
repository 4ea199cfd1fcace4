/**
 * LOGIN with storage's verified-credentials cache (services/storage/src/directory/
 * credential-cache.ts) seen from a real client (imapflow): logging in again is answered from
 * memory, yet a wrong password, a disabled user, a changed password and the failed-login lockout
 * are refused exactly as without it.
 */
import { ImapFlow } from 'imapflow';
import { directory } from '@postmesh/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImapStack, type ImapStack } from './harness.js';

let stack: ImapStack;

beforeAll(async () => {
  stack = await startImapStack({ imapEnv: { POSTMESH_AUTH_LOCKOUT_ACCOUNT: '3' } });
});
afterAll(async () => {
  await stack?.stop();
});

/** Logs in with imapflow and out again: `ok`, or the server's response code for the refusal. */
async function login(user: string, pass: string): Promise<string> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: stack.imapPort,
    secure: false,
    doSTARTTLS: false,
    auth: { user, pass },
    logger: false,
  });
  try {
    await client.connect();
  } catch (error) {
    const failure = error as { authenticationFailed?: boolean; serverResponseCode?: string };
    client.close();
    if (failure.authenticationFailed === true) return failure.serverResponseCode ?? 'no code';
    throw error;
  }
  await client.logout();
  return 'ok';
}

describe('LOGIN with verified credentials in memory', () => {
  it('refuses a wrong password after the right one was accepted (and remembered)', async () => {
    const user = await stack.createUser();
    expect(await login(user.address, user.password)).toBe('ok');
    expect(await login(user.address, user.password)).toBe('ok');
    expect(await login(user.address, `${user.password}x`)).toBe('AUTHENTICATIONFAILED');
    expect(await login(user.address, user.password.slice(0, -1))).toBe('AUTHENTICATIONFAILED');
    expect(await login(user.address, user.password)).toBe('ok');
  });

  it('refuses a user disabled after logging in, and lets them in once enabled again', async () => {
    const user = await stack.createUser();
    expect(await login(user.address, user.password)).toBe('ok');
    await stack.grpc.directory.updateUser({ userId: user.id, status: directory.UserStatus.DISABLED });
    expect(await login(user.address, user.password)).toBe('AUTHENTICATIONFAILED');
    await stack.grpc.directory.updateUser({ userId: user.id, status: directory.UserStatus.ACTIVE });
    expect(await login(user.address, user.password)).toBe('ok');
  });

  it('refuses the old password once it was changed', async () => {
    const user = await stack.createUser();
    expect(await login(user.address, user.password)).toBe('ok');
    const changed = 'Another-pass-phrase-77';
    await stack.grpc.directory.setPassword({ userId: user.id, password: changed, revokeAppPasswords: false });
    expect(await login(user.address, user.password)).toBe('AUTHENTICATIONFAILED');
    expect(await login(user.address, changed)).toBe('ok');
  });

  it('still locks the account after repeated failures, even for the remembered password', async () => {
    const user = await stack.createUser();
    expect(await login(user.address, user.password)).toBe('ok');
    for (let i = 0; i < 3; i++) expect(await login(user.address, `wrong-${i}`)).toBe('AUTHENTICATIONFAILED');
    expect(await login(user.address, user.password)).toBe('AUTHENTICATIONFAILED');
  }, 30_000);
});
