/**
 * A user's team mailboxes (docs/shared-mailboxes.md): pick a mailbox of the account, see who may
 * use it and with which rights (RFC 4314), add or change a member, take one off. Adding a member
 * to a mailbox that does not exist yet creates it (with its parents).
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiFailure, qs } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';
import { isMailboxPath, isMember, isRights, rightsText } from '../validate.js';

interface AclEntry {
  identifier: string;
  rights: string;
}
interface TeamMailbox {
  mailbox: { id: string; path: string };
  acl: AclEntry[];
}

/** A field error of the create call (`members[0].rights`) shown under the form's own field. */
function asFormField(error: unknown): unknown {
  if (!(error instanceof ApiFailure)) return error;
  const field = /^members\[0\]\.(identifier|rights)$/.exec(error.error.field ?? '')?.[1];
  return field === undefined ? error : new ApiFailure({ ...error.error, field });
}

export function TeamMailboxes(props: {
  readonly userId: string;
  readonly address: string;
  readonly canWrite: boolean;
}) {
  const base = `/v1/users/${encodeURIComponent(props.userId)}/team-mailboxes`;
  const [path, setPath] = useState('INBOX');
  /** undefined: loading; null: the mailbox does not exist (yet). */
  const [acl, setAcl] = useState<AclEntry[] | null | undefined>();
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  /** The mailbox on screen: reloading it keeps its table and forms (and their notices) in place. */
  const shown = useRef('');
  const show = useCallback(
    async (wanted: string) => {
      if (wanted !== shown.current) setAcl(undefined);
      shown.current = wanted;
      setPath(wanted);
      try {
        const found = await api<TeamMailbox>('GET', `${base}/acl${qs({ path: wanted })}`);
        setAcl(found.acl);
        setError(undefined);
      } catch (e) {
        if (e instanceof ApiFailure && e.error.status === 404) setAcl(null);
        else setError(e);
      }
    },
    [base],
  );
  useEffect(() => {
    void show('INBOX');
  }, [show]);
  const remove = async (entry: AclEntry) => {
    const choice = await ask({
      title: `Take ${entry.identifier} off ${path}?`,
      body: 'Their mail program no longer shows the mailbox; the mailbox and its mail stay.',
      choices: [{ label: 'Remove member', value: 'yes', danger: true }],
    });
    if (choice !== 'yes') return;
    try {
      await api('DELETE', `${base}/acl${qs({ path, identifier: entry.identifier })}`);
      await show(path);
      setNotice(`${entry.identifier} no longer has access to ${path}.`);
    } catch (e) {
      setNotice('');
      setError(e);
    }
  };
  const owner = props.address.toLowerCase();
  return (
    <section aria-labelledby={`team-${props.userId}`}>
      <h2 id={`team-${props.userId}`}>Team mailboxes of {props.address}</h2>
      <p className="hint">
        Members see a shared mailbox in their mail program under “Other Users/{props.address}/”. Mail to{' '}
        {props.address} arrives in its INBOX.
      </p>
      <Form
        title="Mailbox"
        submitLabel="Show members"
        keepValues
        fields={[
          {
            name: 'path',
            label: 'Mailbox',
            required: true,
            initial: 'INBOX',
            validate: isMailboxPath,
            hint: 'INBOX, or a folder such as Queue/Escalations',
          },
        ]}
        onSubmit={async (v) => {
          setNotice('');
          await show((v.path ?? 'INBOX').trim());
        }}
      />
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      {acl === null && (
        <p role="status">
          {path} does not exist yet{props.canWrite ? ': adding a member creates it.' : '.'}
        </p>
      )}
      {acl !== undefined && acl !== null && (
        <table aria-label={`Members of ${path}`}>
          <thead>
            <tr>
              <th scope="col">Member</th>
              <th scope="col">Rights</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {acl.map((entry) => (
              <tr key={entry.identifier}>
                <td>
                  {entry.identifier === 'anyone' ? `anyone (every user of the domain)` : entry.identifier}
                </td>
                <td>
                  <code>{entry.rights}</code> {rightsText(entry.rights)}
                </td>
                <td>
                  {entry.identifier.toLowerCase() === owner ? (
                    <span className="hint">owner</span>
                  ) : (
                    props.canWrite && (
                      <button
                        type="button"
                        className="danger"
                        aria-label={`Remove ${entry.identifier}`}
                        onClick={() => void remove(entry)}
                      >
                        Remove
                      </button>
                    )
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.canWrite && acl !== undefined && (
        <Form
          key={path}
          title={`Add or change a member of ${path}`}
          submitLabel="Save member"
          fields={[
            {
              name: 'identifier',
              label: 'Member',
              required: true,
              validate: isMember,
              hint: "A user's address, or anyone (every user of the owner's domain)",
            },
            {
              name: 'rights',
              label: 'Rights',
              required: true,
              initial: 'lrswite',
              validate: isRights,
              hint: 'lr = read; lrs = read and mark seen; lrswite = work the queue; add a to let them share it too',
            },
          ]}
          onSubmit={async (v) => {
            const identifier = (v.identifier ?? '').trim();
            const rights = (v.rights ?? '').trim();
            if (acl === null) {
              try {
                await api('POST', base, { path, members: [{ identifier, rights }] });
              } catch (e) {
                throw asFormField(e);
              }
            } else {
              await api('PATCH', `${base}/acl`, { path, identifier, rights });
            }
            await show(path);
            setNotice('');
            return `${identifier} has ${rights} on ${path}.`;
          }}
        />
      )}
      {dialog}
    </section>
  );
}
