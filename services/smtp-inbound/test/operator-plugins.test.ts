/** The plugin contract's checks and the verdict → SMTP answer mapping, without a server. */
import { describe, expect, it } from 'vitest';
import { validatePlugin } from '../src/operator-plugins/loader.js';
import { answerFor } from '../src/plugins/operator.js';
import { HookCode } from '../src/haraka/types.js';

describe('validatePlugin', () => {
  const ok = { apiVersion: 1, name: 'p-1', hooks: { mail: () => undefined } };
  it('accepts a plugin of this API version', () => {
    expect(validatePlugin(ok, 'f.mjs')).toBe(ok);
  });
  it.each([
    [null, /no plugin object/],
    [{ ...ok, apiVersion: 2 }, /apiVersion must be 1/],
    [{ ...ok, name: 'has space' }, /name must be/],
    [{ ...ok, hooks: { queue: () => undefined } }, /unknown hook "queue"/],
    [{ ...ok, hooks: { rcpt: 'nope' } }, /"rcpt" is not a function/],
  ])('refuses %j', (candidate, reason) => {
    expect(() => validatePlugin(candidate, 'f.mjs')).toThrow(reason);
  });
});

describe('answerFor', () => {
  it('continues on nothing or continue', () => {
    expect(answerFor(undefined)).toBeUndefined();
    expect(answerFor({ action: 'continue' })).toBeUndefined();
  });
  it('keeps codes within their class and texts on one printable line', () => {
    expect(answerFor({ action: 'reject', text: 'no', code: 250 })).toMatchObject({
      code: HookCode.DENY,
      dsn: { code: 550, reply: '5.7.1 no' },
    });
    expect(answerFor({ action: 'reject', text: 'x\r\n250 OK', status: '2.0.0' })?.dsn.reply).toBe(
      '5.7.1 Refused by local policy',
    );
    expect(answerFor({ action: 'tempfail', text: 'later', code: 452, status: '4.2.2' })).toMatchObject({
      code: HookCode.DENYSOFT,
      dsn: { code: 452, reply: '4.2.2 later' },
    });
    expect(answerFor({ action: 'disconnect', text: 'bye' })).toMatchObject({
      code: HookCode.DENYSOFTDISCONNECT,
      dsn: { code: 421 },
    });
  });
  it('treats an unknown verdict as a plugin error', () => {
    expect(() => answerFor({ action: 'accept' } as never)).toThrow(/unknown verdict/);
  });
});
