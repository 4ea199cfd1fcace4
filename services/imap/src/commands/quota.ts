/**
 * GETQUOTA and GETQUOTAROOT — RFC 9208 §4.2, §4.3. Every mailbox of a user is under one quota
 * root, `""`, whose resources come from Mailstore GetQuota: STORAGE (RFC 9208 §5.1, in units of
 * 1024 octets) when the user has a storage limit, and MESSAGE (§5.2) when there is a message
 * limit. A user without any limit has no quota root (§4.3: the QUOTAROOT response then names
 * none). APPEND / COPY over quota are `NO [OVERQUOTA]` (§4.1, via storage's OVER_QUOTA).
 */
import type { mailstore } from '@postmesh/contracts';
import { serializeQuota, serializeQuotaRoot, type QuotaResource } from '@postmesh/imap-protocol';
import { isNotFound } from '../errors.js';
import type { CommandContext, CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';

const ROOT = '';

function resources(quota: mailstore.GetQuotaResponse): QuotaResource[] {
  const out: QuotaResource[] = [];
  if (quota.limitBytes > 0) {
    // RFC 9208 §5.1: units of 1024 octets; usage rounded up so a nearly full quota shows it.
    out.push({
      name: 'STORAGE',
      usage: Math.ceil(quota.usedBytes / 1024),
      limit: Math.floor(quota.limitBytes / 1024),
    });
  }
  if (quota.limitMessages > 0) {
    out.push({ name: 'MESSAGE', usage: quota.usedMessages, limit: quota.limitMessages });
  }
  return out;
}

async function userResources(ctx: CommandContext, userId: string): Promise<QuotaResource[]> {
  return resources(await ctx.services.mailstore.getQuota({ userId }));
}

export const getQuota: Handler<CommandOf<'GETQUOTA'>> = async (ctx, command) => {
  const user = userOf(ctx);
  const found = command.root === ROOT ? await userResources(ctx, user.id) : [];
  if (found.length === 0) {
    return { tag: command.tag, condition: 'NO', code: { code: 'NONEXISTENT' }, text: 'No such quota root' };
  }
  await ctx.send(serializeQuota(ROOT, found));
  return { tag: command.tag, condition: 'OK', text: 'GETQUOTA completed' };
};

export const getQuotaRoot: Handler<CommandOf<'GETQUOTAROOT'>> = async (ctx, command) => {
  const user = userOf(ctx);
  try {
    await ctx.services.mailstore.getMailboxStatus({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: command.mailbox } },
      claimRecent: false,
    });
  } catch (error) {
    if (isNotFound(error)) {
      return { tag: command.tag, condition: 'NO', code: { code: 'NONEXISTENT' }, text: 'No such mailbox' };
    }
    throw error;
  }
  const found = await userResources(ctx, user.id);
  const out = [serializeQuotaRoot(command.mailbox, found.length > 0 ? [ROOT] : [], { utf8: ctx.utf8 })];
  if (found.length > 0) out.push(serializeQuota(ROOT, found));
  await ctx.send(out);
  return { tag: command.tag, condition: 'OK', text: 'GETQUOTAROOT completed' };
};
