/**
 * Storage's one gRPC adapter (src/grpc/unary.ts) as the Mailstore and Directory services use it:
 * a refusal carries its ErrorDetail, a database outage is UNAVAILABLE (the caller may retry), a
 * tampered body DATA_LOSS, and anything else INTERNAL without the internal message.
 */
import { status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { ErrorReason, errorDetailOf, type mailstore } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { describe, expect, it } from 'vitest';
import { unary } from '../src/grpc/unary.js';
import { BlobIntegrityError, MailstoreError, type Mailstore } from '../src/mailstore/index.js';
import { mailstoreServer } from '../src/mailstore/service.js';

const logger = createLogger('grpc-adapter-test', 'silent');

class MongoNetworkError extends Error {
  override readonly name = 'MongoNetworkError';
}

/** The status a ListMailboxes call ends with when the mailstore throws `error`. */
function listMailboxesFailure(error: Error): Promise<Error & { code?: number; details?: string }> {
  const store = {
    listMailboxes: () => Promise.reject(error),
  } as unknown as Mailstore;
  const handler = mailstoreServer(store, logger).listMailboxes;
  return new Promise((resolve) => {
    const call = { request: { userId: 'u1', pattern: '*' } } as unknown as ServerUnaryCall<
      mailstore.ListMailboxesRequest,
      mailstore.ListMailboxesResponse
    >;
    const callback: sendUnaryData<mailstore.ListMailboxesResponse> = (failure) => resolve(failure as Error);
    handler(call, callback);
  });
}

describe('storage gRPC adapter', () => {
  it('a mailstore refusal carries its reason and field', async () => {
    const failure = await listMailboxesFailure(
      new MailstoreError(ErrorReason.NOT_FOUND, 'mailbox not found', 'mailbox'),
    );
    expect(failure.code).toBe(status.NOT_FOUND);
    expect(errorDetailOf(failure)).toMatchObject({ reason: ErrorReason.NOT_FOUND, field: 'mailbox' });
  });

  it('a database outage in the mailstore is UNAVAILABLE, as in the directory', async () => {
    const failure = await listMailboxesFailure(new MongoNetworkError('connection reset by 10.0.0.7'));
    expect(failure.code).toBe(status.UNAVAILABLE);
    expect(failure.details).not.toContain('10.0.0.7');

    const directoryFailure = await new Promise<Error & { code?: number }>((resolve) => {
      unary(logger, 'GetUser', () => Promise.reject(new MongoNetworkError('down')))(
        { request: {} } as ServerUnaryCall<unknown, unknown>,
        (error) => resolve(error as Error),
      );
    });
    expect(directoryFailure.code).toBe(status.UNAVAILABLE);
  });

  it('a body that fails authentication is DATA_LOSS; any other failure INTERNAL, without its message', async () => {
    expect((await listMailboxesFailure(new BlobIntegrityError('tag mismatch'))).code).toBe(status.DATA_LOSS);
    const failure = await listMailboxesFailure(new TypeError('secret detail'));
    expect(failure.code).toBe(status.INTERNAL);
    expect(failure.details).not.toContain('secret detail');
  });
});
