/**
 * An example operator plugin for Postmesh's SMTP plugin API, version 1 (docs/smtp-plugins.md):
 *
 * - refuses senders from the domains in POSTMESH_EXAMPLE_BLOCKED_SENDER_DOMAINS (comma-separated)
 *   at MAIL FROM, with 550 5.7.1;
 * - defers (451) recipients whose local part is in POSTMESH_EXAMPLE_PAUSED_LOCAL_PARTS, e.g. a
 *   mailbox being migrated;
 * - at end of DATA, refuses messages whose Subject contains one of
 *   POSTMESH_EXAMPLE_BLOCKED_SUBJECT_WORDS (case-insensitive), and marks every other message
 *   with an `X-Example-Policy` header saying what it checked.
 *
 * Copy it into the directory named by POSTMESH_SMTP_PLUGIN_DIR and adapt it; it uses nothing but
 * the plugin API (no Haraka objects, no imports).
 */
const list = (name) =>
  (process.env[name] ?? '')
    .split(',')
    .map((v) => v.trim().toLowerCase())
    .filter((v) => v !== '');

const blockedDomains = list('POSTMESH_EXAMPLE_BLOCKED_SENDER_DOMAINS');
const pausedLocalParts = list('POSTMESH_EXAMPLE_PAUSED_LOCAL_PARTS');
const blockedWords = list('POSTMESH_EXAMPLE_BLOCKED_SUBJECT_WORDS');

export default {
  apiVersion: 1,
  name: 'local-policy',
  hooks: {
    mail(session, transaction) {
      const domain = transaction.mailFrom.slice(transaction.mailFrom.lastIndexOf('@') + 1).toLowerCase();
      if (transaction.mailFrom !== '' && blockedDomains.includes(domain)) {
        return { action: 'reject', status: '5.7.1', text: `Mail from ${domain} is not accepted here` };
      }
      return undefined;
    },
    rcpt(session, transaction, recipient) {
      const local = recipient.slice(0, recipient.lastIndexOf('@')).toLowerCase();
      if (pausedLocalParts.includes(local)) {
        return { action: 'tempfail', status: '4.2.1', text: 'Mailbox is being moved, try again later' };
      }
      return undefined;
    },
    data(session, message) {
      const subject = (message.header('Subject')[0] ?? '').toLowerCase();
      const word = blockedWords.find((w) => subject.includes(w));
      if (word !== undefined)
        return { action: 'reject', status: '5.7.1', text: 'Message refused by local policy' };
      return {
        addHeaders: [
          ['X-Example-Policy', `checked; spf=${message.auth?.spf ?? 'n/a'}; size=${message.size}`],
        ],
      };
    },
  },
};
