/**
 * Two-factor sign-in with an authenticator app (TOTP, RFC 6238) for the signed-in administrator or
 * mail user: enrol (a new seed, confirmed with a current code before it counts) or turn it off.
 */
import { useState } from 'react';
import { api } from '../api.js';
import { ErrorBanner, Notice } from '../components/Banner.js';
import { useConfirm } from '../components/ConfirmDialog.js';
import { Form } from '../components/Form.js';

/** `ABCDEFGH…` → `ABCD EFGH …`, easier to type into an app by hand. */
const grouped = (secret: string): string => secret.replace(/(.{4})/g, '$1 ').trim();

export function TotpSection(props: {
  readonly enabled: boolean;
  readonly onChange: () => void;
  /** What else changes while it is on (mail users: app passwords for mail programs). */
  readonly note?: string;
}) {
  const [enrolment, setEnrolment] = useState<{ secretBase32: string; otpauthUri: string } | undefined>();
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>();
  const [ask, dialog] = useConfirm();
  const begin = async () => {
    try {
      setEnrolment(await api<{ secretBase32: string; otpauthUri: string }>('POST', '/v1/me/totp', {}));
      setNotice('');
      setError(undefined);
    } catch (e) {
      setError(e);
    }
  };
  const disable = async () => {
    const choice = await ask({
      title: 'Turn off the authenticator code?',
      body: 'Signing in will need only your password.',
      choices: [{ label: 'Turn off', value: 'yes', danger: true }],
    });
    if (choice !== 'yes') return;
    try {
      await api('DELETE', '/v1/me/totp');
      setNotice('The authenticator code is off.');
      setError(undefined);
      props.onChange();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section className="card" aria-labelledby="totp-title">
      <h2 id="totp-title">Authenticator code (two-factor sign-in)</h2>
      <p>
        Status:{' '}
        <span className={`badge ${props.enabled ? 'ok' : 'missing'}`}>{props.enabled ? 'on' : 'off'}</span>
      </p>
      {props.note !== undefined && <p className="hint">{props.note}</p>}
      {notice !== '' && <Notice>{notice}</Notice>}
      <ErrorBanner error={error} />
      {enrolment === undefined && (
        <div className="row-actions">
          <button type="button" onClick={() => void begin()}>
            {props.enabled ? 'Replace the authenticator' : 'Set up an authenticator'}
          </button>
          {props.enabled && (
            <button type="button" className="danger" onClick={() => void disable()}>
              Turn off
            </button>
          )}
        </div>
      )}
      {enrolment !== undefined && (
        <>
          <ol>
            <li>
              In your authenticator app, add an account with this key (time-based, 6 digits, 30 seconds):{' '}
              <code className="mono secret" aria-label="Authenticator key">
                {grouped(enrolment.secretBase32)}
              </code>
              <br />
              <small className="hint">
                Or open the setup link on the device with the app:{' '}
                <a href={enrolment.otpauthUri}>otpauth link</a>
              </small>
            </li>
            <li>Type the code the app shows now.</li>
          </ol>
          <Form
            title="Confirm the authenticator"
            submitLabel="Turn on"
            fields={[
              {
                name: 'code',
                label: 'Code from the app',
                required: true,
                inputMode: 'numeric',
                autoComplete: 'one-time-code',
                validate: (v) => (/^\d{6}$/.test(v.trim()) ? undefined : 'Enter the 6 digits the app shows.'),
              },
            ]}
            onSubmit={async (v) => {
              await api('POST', '/v1/me/totp/confirm', { code: (v.code ?? '').trim() });
              setEnrolment(undefined);
              setNotice('The authenticator code is on: you will be asked for it when you sign in.');
              props.onChange();
            }}
          />
        </>
      )}
      {dialog}
    </section>
  );
}
