/**
 * The queue operation requests (src/queue-operations-contract.ts) that the admin service sends
 * to mta-delivery: each is a schema; a request that does not match is refused with the field.
 */
import { describe, expect, it } from 'vitest';
import { QueueRequestChecks } from '../src/queue-operations-contract.js';

const caller = { actor: 'admin-1', role: 'domain-admin', domains: ['example.test'] };
const id = '0m4x1k2abCDEFghij_-1234:example.org';

describe('queue operation requests', () => {
  it('accepts what the admin service sends (and ignores fields it does not know)', () => {
    expect(QueueRequestChecks.list({ caller })).toMatchObject({ ok: true });
    expect(QueueRequestChecks.list({ caller, domain: 'Example.TEST', limit: 500, cursor: id })).toMatchObject(
      {
        ok: true,
      },
    );
    expect(QueueRequestChecks.retry({ caller, id, sentBy: 'a newer admin' })).toMatchObject({ ok: true });
    expect(
      QueueRequestChecks.cancel({ caller: { ...caller, role: 'owner', domains: [] }, id, dsn: false }),
    ).toEqual({
      ok: true,
      value: { caller: { ...caller, role: 'owner', domains: [] }, id, dsn: false },
    });
  });

  it.each<[string, 'list' | 'retry' | 'cancel', unknown, string]>([
    ['no caller', 'list', {}, 'caller: is required'],
    [
      'a caller without domains',
      'list',
      { caller: { actor: 'a', role: 'owner' } },
      'caller.domains: is required',
    ],
    [
      'an unknown role',
      'list',
      { caller: { ...caller, role: 'root' } },
      'caller.role: expected one of owner, domain-admin, helpdesk, auditor, user',
    ],
    [
      'a numeric domain',
      'list',
      { caller: { ...caller, domains: [1] } },
      'caller.domains[0]: expected a string',
    ],
    ['a limit of 0', 'list', { caller, limit: 0 }, 'limit: must be at least 1'],
    ['a limit of 501', 'list', { caller, limit: 501 }, 'limit: must be at most 500'],
    ['a limit in text', 'list', { caller, limit: '10' }, 'limit: expected an integer'],
    ['no id', 'retry', { caller }, 'id: is required'],
    [
      'an id without domain',
      'retry',
      { caller, id: 'abcdefgh' },
      'id: expected an entry id, <spoolId>:<domain>',
    ],
    ['no dsn', 'cancel', { caller, id }, 'dsn: is required'],
    ['a dsn in words', 'cancel', { caller, id, dsn: 'yes' }, 'dsn: expected true or false'],
    ['not an object', 'cancel', [caller], 'expected an object'],
  ])('refuses %s', (_what, operation, request, problem) => {
    expect(QueueRequestChecks[operation](request)).toMatchObject({ ok: false, problem });
  });
});
