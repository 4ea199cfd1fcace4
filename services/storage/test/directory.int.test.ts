import { status } from '@grpc/grpc-js';
import { ErrorReason, errorDetailOf, directory } from '@postmesh/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, callError, startStorageHarness, type StorageHarness } from './harness.js';

let h: StorageHarness;
beforeAll(async () => {
  h = await startStorageHarness();
});
afterAll(async () => {
  await h.stop();
});

const d = {
  createDomain: (r: Partial<directory.CreateDomainRequest> & { name: string }) =>
    call(h.directory.createDomain.bind(h.directory), { defaultQuotaBytes: 0, ...r }),
  listDomains: (r: Partial<directory.ListDomainsRequest> = {}) =>
    call(h.directory.listDomains.bind(h.directory), { pageSize: 0, pageToken: '', ...r }),
  getDomain: (r: directory.GetDomainRequest) => call(h.directory.getDomain.bind(h.directory), r),
};

async function expectFailure(promise: Promise<unknown>, code: status, reason: ErrorReason, field?: string) {
  const error = await callError(promise);
  expect(error.code).toBe(code);
  const detail = errorDetailOf(error);
  expect(detail?.reason).toBe(reason);
  if (field !== undefined) expect(detail?.field).toBe(field);
}

describe('domains', () => {
  it('creates a domain, lower-cased, and refuses a duplicate', async () => {
    const { domain } = await d.createDomain({ name: 'Alpha.TEST' });
    expect(domain?.name).toBe('alpha.test');
    expect(domain?.status).toBe(directory.DomainStatus.ACTIVE);
    await expectFailure(
      d.createDomain({ name: 'alpha.test' }),
      status.ALREADY_EXISTS,
      ErrorReason.ALREADY_EXISTS,
      'name',
    );
    const got = await d.getDomain({ selector: { $case: 'name', value: 'ALPHA.test' } });
    expect(got.domain?.id).toBe(domain?.id);
  });
});
