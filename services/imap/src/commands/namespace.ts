/**
 * NAMESPACE — RFC 9051 §6.3.10, RFC 2342 §5: the personal namespace, and the "Other Users"
 * namespace where mailboxes other users shared (RFC 4314 ACL) appear as
 * `Other Users/<owner address>/<path>` (shared-mailstore.ts). No shared (public) namespace.
 */
import { serializeNamespace } from '@postmesh/imap-protocol';
import { OTHER_USERS } from '../shared-mailstore.js';
import type { CommandOf, Handler } from './context.js';

export const namespace: Handler<CommandOf<'NAMESPACE'>> = async (ctx, command) => {
  await ctx.send(
    serializeNamespace(
      [{ prefix: '', delimiter: '/' }],
      [{ prefix: `${OTHER_USERS}/`, delimiter: '/' }],
      [],
      {
        utf8: ctx.utf8,
      },
    ),
  );
  return { tag: command.tag, condition: 'OK', text: 'NAMESPACE completed' };
};
