/**
 * Checking credentials for LOGIN and AUTHENTICATE: Directory.Authenticate (account passwords and
 * app passwords), behind the shared brute-force throttle (DESIGN §5; issue item 4). A failure
 * answers `NO [AUTHENTICATIONFAILED]` after the throttle's delay (RFC 5530 §3), never saying
 * whether the address exists.
 */
import { directory } from '@postmesh/contracts';
import type { StatusResponse } from '@postmesh/imap-protocol';
import type { CommandContext } from './commands/context.js';

export async function authenticate(
  ctx: CommandContext,
  tag: string,
  username: string,
  password: string,
): Promise<StatusResponse> {
  const { throttle, directory: dir } = ctx.services;
  // Counts the attempt before the password is checked (libs/bus auth-throttle).
  const verdict = await throttle.attempt(ctx.remoteAddress, username);
  if (verdict.kind === 'locked') {
    ctx.logger.warn({ scope: verdict.scope }, 'login refused: too many failures');
    await sleep(verdict.delayMs);
    return failed(ctx, tag, 'Too many failed logins; try again later');
  }
  await sleep(verdict.delayMs);
  let response;
  try {
    response = await dir.authenticate({
      address: username,
      password,
      protocol: directory.Protocol.IMAP,
      remoteIp: ctx.remoteAddress,
      // No second factor over IMAP/SMTP: with TOTP on, only app passwords are accepted.
      totpCode: '',
    });
  } catch (error) {
    // No password was checked (storage unreachable): the attempt is no failure, and attempts
    // waiting for it to settle must not wait in vain.
    await throttle.release(verdict.ticket);
    throw error;
  }
  const result = response.result;
  if (result?.$case === 'success' && result.value.user !== undefined) {
    const user = result.value.user;
    // Not waited for: the client need not wait for the counters (the throttle logs a failure),
    // and the attempt does not count as a failure in the meantime.
    void throttle.succeeded(verdict.ticket);
    ctx.setState({ kind: 'authenticated', user: { id: user.id, address: user.address } });
    ctx.watchUser(user.id);
    ctx.logger.info({ user: user.id, appPassword: result.value.appPasswordId !== '' }, 'logged in');
    return {
      tag,
      condition: 'OK',
      code: { code: 'CAPABILITY', capabilities: ctx.capabilities() },
      text: 'Logged in',
    };
  }
  throttle.failed(verdict.ticket);
  const reason = result?.$case === 'failure' ? result.value.reason : 'none';
  ctx.logger.info({ reason }, 'login failed');
  return failed(ctx, tag, 'Invalid credentials');
}

function failed(ctx: CommandContext, tag: string, text: string): StatusResponse {
  // Too many failures on one connection: BYE after the tagged NO.
  if (ctx.authFailed()) ctx.closeAfterReply('Too many failed authentication attempts');
  return { tag, condition: 'NO', code: { code: 'AUTHENTICATIONFAILED' }, text };
}

export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
