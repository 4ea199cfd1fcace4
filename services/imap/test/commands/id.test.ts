/** ID — RFC 2971 §3.1, §3.3. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('ID', () => {
  it('answers with the server identification in any state (RFC 2971 §3.1)', async () => {
    const c = await imap.connect();
    const expected = [
      '* ID ("name" "Postmesh IMAP" "vendor" "Postmesh" "version" "test")',
      'a OK ID completed',
    ];
    expect(await c.command('a ID ("name" "imaplib" "version" "3.12")')).toEqual(expected);
    // RFC 2971 §3.1: NIL instead of a parameter list.
    expect(await c.command('a ID NIL')).toEqual(expected);
    await c.command('l LOGIN alice@example.test alice-pw');
    expect(await c.command('a ID NIL')).toEqual(expected);
  });

  it('is BAD with a malformed list (RFC 2971 §4: field-value pairs)', async () => {
    const c = await imap.connect();
    expect((await c.command('a ID ("name")'))[0]).toMatch(/^a BAD /);
    expect((await c.command('b ID'))[0]).toMatch(/^b BAD /);
  });
});
