/** The key-encryption key and its re-wrap (docs/operations.md §8). */
import { useCallback, useEffect, useState } from 'react';
import { api, type Me } from '../api.js';
import { ErrorBanner } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { when } from '../format.js';
import { type KekStatus } from '../types.js';

/**
 * The key-encryption key (docs/operations.md §8): what is still wrapped by a previous KEK, and
 * the re-wrap that lets the previous KEK be removed.
 */
export function KekSection({ me }: { readonly me: Me }) {
  const [status, setStatus] = useState<KekStatus | undefined>();
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const refresh = useCallback(() => {
    api<KekStatus>('GET', '/v1/keys/kek').then(setStatus, setError);
  }, []);
  useEffect(refresh, [refresh]);
  useEffect(() => {
    // While a re-wrap runs, follow it.
    if (status?.running !== true) return undefined;
    const timer = setTimeout(refresh, 1_000);
    return () => clearTimeout(timer);
  }, [status, refresh]);
  const rewrap = async () => {
    const choice = await ask({
      title: 'Re-wrap keys under the current KEK?',
      body: 'User data keys, DKIM keys and TOTP seeds still wrapped by a previous key-encryption key are re-wrapped with the current one, in the background. Mail keeps flowing. Remove the previous KEK only once nothing remains under it.',
      choices: [{ label: 'Re-wrap now', value: 'yes' }],
    });
    if (choice !== 'yes') return;
    try {
      setStatus(await api<KekStatus>('POST', '/v1/keys/kek/rewrap', {}));
      setError(undefined);
      setTimeout(refresh, 500);
    } catch (e) {
      setError(e);
    }
  };
  const remaining =
    status === undefined
      ? 0
      : status.remaining.userKeys + status.remaining.dkimKeys + status.remaining.totpSeeds;
  const last = status?.lastRewrap ?? null;
  return (
    <section aria-labelledby="kek-title">
      <h2 id="kek-title">Key-encryption key</h2>
      <ErrorBanner error={error} />
      {status !== undefined && (
        <>
          <table>
            <caption>Keys wrapped by a previous KEK</caption>
            <thead>
              <tr>
                <th scope="col">Current KEK</th>
                <th scope="col">User data keys</th>
                <th scope="col">DKIM keys</th>
                <th scope="col">TOTP seeds</th>
                <th scope="col">Last re-wrap</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <td>{status.currentKekId}</td>
                <td>{status.remaining.userKeys}</td>
                <td>{status.remaining.dkimKeys}</td>
                <td>{status.remaining.totpSeeds}</td>
                <td>
                  {status.running
                    ? 'running…'
                    : last === null
                      ? 'never'
                      : last.error !== ''
                        ? `stopped: ${last.error}`
                        : last.finishedAt !== null
                          ? `finished ${when(last.finishedAt)} (${last.userKeys} user keys, ${last.dkimKeys} DKIM keys, ${last.totpSeeds} TOTP seeds)`
                          : `started ${when(last.startedAt)}`}
                </td>
              </tr>
            </tbody>
          </table>
          <p role="status">
            {remaining === 0
              ? 'Nothing is wrapped by a previous KEK: it can be removed.'
              : `${remaining} keys still need the previous KEK: re-wrap them before removing it.`}
          </p>
          {me.permissions.includes('keys.write') && (
            <button type="button" onClick={() => void rewrap()} disabled={status.running}>
              Re-wrap keys under the current KEK
            </button>
          )}
        </>
      )}
      {dialog}
    </section>
  );
}
