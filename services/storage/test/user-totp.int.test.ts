/**
 * Two-factor sign-in for mail users (TOTP, RFC 6238) through the Directory RPCs on the real
 * storage app and FerretDB: enrolment counts only once confirmed, the web sign-in then needs a
 * code that works once, IMAP/SMTP accept app passwords only, turning it off restores the password,
 * and KEK rotation re-wraps the seed.
 */
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { directory, ErrorReason, errorDetailOf } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base32Decode, totpCode } from '../src/totp/index.js';
import { LocalKeyProvider, rotateKek } from '../src/crypto/index.js';
import { DirectoryService } from '../src/directory/directory-service.js';
import {
  callError,
  directoryApi,
  startStorageHarness,
  type DirectoryApi,
  type StorageHarness,
} from './harness.js';

let h: StorageHarness;
let d: DirectoryApi;
beforeAll(async () => {
  h = await startStorageHarness();
  d = directoryApi(h.directory);
  await d.createDomain({ name: 'totp.test' });
});
afterAll(async () => {
  await h.stop();
});

const PASSWORD = 'totp user password 1';
const logger = createLogger('user-totp-test', 'silent');

async function newUser(address: string): Promise<string> {
  const { user } = await d.createUser({ address, password: PASSWORD });
  if (user === undefined) throw new Error('no user');
  return user.id;
}

async function signIn(address: string, password: string, protocol: directory.Protocol, code = '') {
  const { result } = await d.authenticate({
    address,
    password,
    protocol,
    remoteIp: '192.0.2.7',
    totpCode: code,
  });
  return result?.$case === 'success' ? 'success' : result?.value.reason;
}

/** Enrols `userId` now and returns the seed (the confirming code used the current step). */
async function enrol(userId: string): Promise<Buffer> {
  const begun = await d.beginUserTotpEnrollment({ userId });
  expect(begun.otpauthUri).toMatch(/^otpauth:\/\/totp\/Postmesh%3A.+\?secret=[A-Z2-7]+&issuer=Postmesh/);
  const seed = base32Decode(begun.secretBase32);
  const confirmed = await d.confirmUserTotpEnrollment({ userId, code: totpCode(seed, new Date()) });
  expect(confirmed.user?.totpEnabled).toBe(true);
  return seed;
}

/** A code one step ahead: inside the drift window, and later than the step just used. */
const nextCode = (seed: Buffer): string => totpCode(seed, new Date(Date.now() + 30_000));

describe('two-factor sign-in for mail users', () => {
  it('counts an enrolment only once it is confirmed with a right code', async () => {
    const userId = await newUser('pending@totp.test');
    const begun = await d.beginUserTotpEnrollment({ userId });
    const seed = base32Decode(begun.secretBase32);
    // Begun but not confirmed: the password alone still signs in everywhere.
    expect(await signIn('pending@totp.test', PASSWORD, directory.Protocol.WEB)).toBe('success');
    expect(await signIn('pending@totp.test', PASSWORD, directory.Protocol.IMAP)).toBe('success');
    const wrong = String((Number(totpCode(seed, new Date())) + 1) % 1_000_000).padStart(6, '0');
    const error = await callError(d.confirmUserTotpEnrollment({ userId, code: wrong }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(errorDetailOf(error)?.reason).toBe(ErrorReason.INVALID_ARGUMENT);
    expect((await d.getUser({ selector: { $case: 'id', value: userId } })).user?.totpEnabled).toBe(false);
    // Confirming without a begun enrolment says so.
    const other = await newUser('never-begun@totp.test');
    const none = await callError(d.confirmUserTotpEnrollment({ userId: other, code: '123456' }));
    expect(none.code).toBe(status.INVALID_ARGUMENT);
    expect(none.details).toContain('no TOTP enrollment');
  });

  it('then needs a code on the web, accepts each code once, and takes no wrong password', async () => {
    const userId = await newUser('web@totp.test');
    const seed = await enrol(userId);
    expect(await signIn('web@totp.test', PASSWORD, directory.Protocol.WEB)).toBe(
      directory.AuthFailureReason.TOTP_REQUIRED,
    );
    expect(await signIn('web@totp.test', 'not the password', directory.Protocol.WEB, nextCode(seed))).toBe(
      directory.AuthFailureReason.INVALID_CREDENTIALS,
    );
    expect(await signIn('web@totp.test', PASSWORD, directory.Protocol.WEB, '000000')).toBe(
      directory.AuthFailureReason.INVALID_CREDENTIALS,
    );
    const code = nextCode(seed);
    expect(await signIn('web@totp.test', PASSWORD, directory.Protocol.WEB, code)).toBe('success');
    // RFC 6238 §5.2: the same code a second time is refused.
    expect(await signIn('web@totp.test', PASSWORD, directory.Protocol.WEB, code)).toBe(
      directory.AuthFailureReason.INVALID_CREDENTIALS,
    );
  });

  it('accepts only app passwords over IMAP and SMTP while it is on, and the password again once off', async () => {
    const userId = await newUser('mailapp@totp.test');
    await enrol(userId);
    for (const protocol of [directory.Protocol.IMAP, directory.Protocol.SMTP]) {
      expect(await signIn('mailapp@totp.test', PASSWORD, protocol)).toBe(
        directory.AuthFailureReason.PROTOCOL_NOT_ALLOWED,
      );
    }
    const { secret } = await d.createAppPassword({
      userId,
      label: 'phone',
      protocols: [directory.Protocol.IMAP, directory.Protocol.SMTP],
    });
    expect(await signIn('mailapp@totp.test', secret, directory.Protocol.IMAP)).toBe('success');
    expect(await signIn('mailapp@totp.test', secret, directory.Protocol.SMTP)).toBe('success');

    const off = await d.disableUserTotp({ userId });
    expect(off.user?.totpEnabled).toBe(false);
    expect(await signIn('mailapp@totp.test', PASSWORD, directory.Protocol.IMAP)).toBe('success');
    expect(await signIn('mailapp@totp.test', PASSWORD, directory.Protocol.WEB)).toBe('success');
  });

  it('survives a KEK rotation: the seed is re-wrapped and signs in under the new KEK alone', async () => {
    const userId = await newUser('rotate@totp.test');
    const seed = await enrol(userId);
    const newKek = new Uint8Array(randomBytes(32));
    const onlyNew = new LocalKeyProvider(newKek);
    const moving = new LocalKeyProvider(newKek, [await currentKek()]);
    await rotateKek({ db: h.db, keyProvider: moving, logger });
    const later = new Date(Date.now() + 120_000);
    const service = new DirectoryService({
      db: h.db,
      keyProvider: onlyNew,
      logger,
      createDefaultMailboxes: () => Promise.resolve(),
      now: () => later,
    });
    const result = await service.authenticate(
      directory.AuthenticateRequest.fromPartial({
        address: 'rotate@totp.test',
        password: PASSWORD,
        protocol: directory.Protocol.WEB,
        totpCode: totpCode(seed, later),
      }),
    );
    expect(result.ok && result.value.result?.$case).toBe('success');
  });
});

async function currentKek(): Promise<Uint8Array> {
  const { readFile } = await import('node:fs/promises');
  return new Uint8Array(Buffer.from((await readFile(h.kekFile, 'utf8')).trim(), 'base64'));
}
