// The error-detail convention: ErrorDetail travels encoded under `postmesh-error-bin`.
import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  ContractError,
  ERROR_DETAIL_METADATA_KEY,
  ErrorDetail,
  ErrorReason,
  errorDetailOf,
  grpcCodeFor,
  isServiceError,
  toGrpcError,
} from '../src/index.js';

describe('toGrpcError', () => {
  it('builds a grpc-js status whose metadata carries the encoded detail', () => {
    const err = toGrpcError(status.ALREADY_EXISTS, {
      reason: ErrorReason.ALREADY_EXISTS,
      message: 'mailbox "Archive" exists',
      field: 'path',
    });
    expect(err).toBeInstanceOf(ContractError);
    expect(err.name).toBe('ContractError');
    expect(err.code).toBe(status.ALREADY_EXISTS);
    expect(err.details).toBe('mailbox "Archive" exists');
    const [raw] = err.metadata.get(ERROR_DETAIL_METADATA_KEY);
    expect(Buffer.isBuffer(raw)).toBe(true);
    expect(ErrorDetail.decode(raw as Buffer)).toEqual({
      reason: ErrorReason.ALREADY_EXISTS,
      message: 'mailbox "Archive" exists',
      field: 'path',
    });
  });

  it('keeps the cause for the server log', () => {
    const cause = new Error('E11000 duplicate key');
    const err = toGrpcError(
      status.ALREADY_EXISTS,
      { reason: ErrorReason.ALREADY_EXISTS, message: 'x' },
      { cause },
    );
    expect(err.cause).toBe(cause);
    expect(errorDetailOf(err)?.field).toBe('');
  });
});

describe('errorDetailOf', () => {
  it('reads the detail back from anything with such metadata', () => {
    const err = toGrpcError(status.RESOURCE_EXHAUSTED, { reason: ErrorReason.OVER_QUOTA, message: 'full' });
    expect(errorDetailOf(err)).toEqual({ reason: ErrorReason.OVER_QUOTA, message: 'full', field: '' });
  });

  it('is undefined for errors without a detail, non-errors and undecodable bytes', () => {
    expect(errorDetailOf(new Error('plain'))).toBeUndefined();
    expect(errorDetailOf(undefined)).toBeUndefined();
    expect(errorDetailOf('NOT_FOUND')).toBeUndefined();
    expect(errorDetailOf({ metadata: { get: () => [Buffer.from([8, 1])] } })).toBeUndefined();
    const garbage = new Metadata();
    garbage.set(ERROR_DETAIL_METADATA_KEY, Buffer.from([0x0a, 0xff])); // length-delimited field cut short
    expect(errorDetailOf({ code: status.INTERNAL, metadata: garbage })).toBeUndefined();
  });
});

describe('isServiceError', () => {
  it('recognises grpc-js errors only', () => {
    expect(
      isServiceError(toGrpcError(status.NOT_FOUND, { reason: ErrorReason.NOT_FOUND, message: 'x' })),
    ).toBe(true);
    expect(isServiceError(new Error('x'))).toBe(false);
    expect(isServiceError({ code: 5, metadata: new Metadata() })).toBe(false);
  });
});

describe('grpcCodeFor', () => {
  it('gives every reason the code errors.proto documents', () => {
    expect(grpcCodeFor(ErrorReason.NOT_FOUND)).toBe(status.NOT_FOUND);
    expect(grpcCodeFor(ErrorReason.ALREADY_EXISTS)).toBe(status.ALREADY_EXISTS);
    expect(grpcCodeFor(ErrorReason.OVER_QUOTA)).toBe(status.RESOURCE_EXHAUSTED);
    expect(grpcCodeFor(ErrorReason.TOO_BIG)).toBe(status.RESOURCE_EXHAUSTED);
    expect(grpcCodeFor(ErrorReason.LIMIT_EXCEEDED)).toBe(status.RESOURCE_EXHAUSTED);
    expect(grpcCodeFor(ErrorReason.INVALID_NAME)).toBe(status.INVALID_ARGUMENT);
    expect(grpcCodeFor(ErrorReason.INVALID_ARGUMENT)).toBe(status.INVALID_ARGUMENT);
    expect(grpcCodeFor(ErrorReason.WEAK_PASSWORD)).toBe(status.INVALID_ARGUMENT);
    expect(grpcCodeFor(ErrorReason.NOT_ALLOWED)).toBe(status.FAILED_PRECONDITION);
    expect(grpcCodeFor(ErrorReason.DOMAIN_SUSPENDED)).toBe(status.FAILED_PRECONDITION);
    expect(grpcCodeFor(ErrorReason.USER_DISABLED)).toBe(status.FAILED_PRECONDITION);
    expect(grpcCodeFor(ErrorReason.PERMISSION_DENIED)).toBe(status.PERMISSION_DENIED);
    expect(grpcCodeFor(ErrorReason.CONFLICT)).toBe(status.ABORTED);
    expect(grpcCodeFor(ErrorReason.UNRECOGNIZED)).toBe(status.UNKNOWN);
  });
});
