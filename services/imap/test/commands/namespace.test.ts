/** NAMESPACE — RFC 2342 §5, RFC 9051 §6.3.10. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('NAMESPACE', () => {
  it('lists the personal namespace and the "Other Users" one, no shared one (RFC 9051 §6.3.10)', async () => {
    const c = await imap.login();
    expect(await c.command('a NAMESPACE')).toEqual([
      '* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL',
      'a OK NAMESPACE completed',
    ]);
  });

  it('is BAD before authentication', async () => {
    const c = await imap.connect();
    expect(await c.command('a NAMESPACE')).toEqual([
      'a BAD NAMESPACE is not allowed in the not authenticated state',
    ]);
  });
});
