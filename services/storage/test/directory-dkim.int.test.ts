/**
 * DKIM keys (RFC 6376 §3.6.1, RFC 8463 §4.2): generated pairs sign, the published TXT record's
 * `p=` verifies, the private half is stored only encrypted, and the lifecycle holds.
 */
import { createPublicKey, sign, verify } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { ErrorReason, directory, errorDetailOf } from '@postmesh/contracts';
import { BSON, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collections } from '../src/db/schema.js';
import {
  callError,
  directoryApi,
  startStorageHarness,
  type DirectoryApi,
  type StorageHarness,
} from './harness.js';

let h: StorageHarness;
let d: DirectoryApi;
let domain: directory.Domain;
beforeAll(async () => {
  h = await startStorageHarness();
  d = directoryApi(h.directory);
  const created = await d.createDomain({ name: 'dkim.test' });
  if (created.domain === undefined) throw new Error('no domain');
  domain = created.domain;
});
afterAll(async () => {
  await h.stop();
});

/** The `p=` of a DKIM TXT record as a node KeyObject. */
function publicKeyOf(txt: string) {
  const tags = Object.fromEntries(
    txt.split(';').map((tag) => {
      const [name = '', ...value] = tag.trim().split('=');
      return [name, value.join('=')];
    }),
  );
  const p = Buffer.from(tags.p ?? '', 'base64');
  if (tags.k === 'ed25519') {
    // RFC 8463 §4.2: p= is the raw 32-byte key; wrap it in an Ed25519 SubjectPublicKeyInfo.
    expect(p).toHaveLength(32);
    return createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), p]),
      format: 'der',
      type: 'spki',
    });
  }
  expect(tags.k).toBe('rsa');
  return createPublicKey({ key: p, format: 'der', type: 'spki' });
}

async function expectFailure(promise: Promise<unknown>, code: status, reason: ErrorReason, field?: string) {
  const error = await callError(promise);
  expect(error.code).toBe(code);
  expect(errorDetailOf(error)?.reason).toBe(reason);
  if (field !== undefined) expect(errorDetailOf(error)?.field).toBe(field);
}

describe('DKIM keys', () => {
  it.each([
    [directory.DkimAlgorithm.ED25519, 'ed', /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/],
    [directory.DkimAlgorithm.RSA2048, 'rs', /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/],
  ])(
    'generates a %s key whose signature the TXT record verifies',
    async (algorithm, selector, txtPattern) => {
      const { key } = await d.generateDkimKey({ domainId: domain.id, selector, algorithm });
      expect(key).toMatchObject({
        domain: 'dkim.test',
        selector,
        algorithm,
        status: directory.DkimKeyStatus.PENDING,
        dnsName: `${selector}._domainkey.dkim.test`,
      });
      expect(key?.dnsTxtValue).toMatch(txtPattern);
      // Pending keys do not sign.
      expect((await d.getSigningKey({ domain: 'dkim.test' })).key?.selector).not.toBe(selector);

      await d.activateDkimKey({ keyId: key?.id ?? '' });
      const signing = (await d.getSigningKey({ domain: 'DKIM.test' })).key;
      expect(signing).toMatchObject({ domain: 'dkim.test', selector, algorithm, keyId: key?.id });
      expect(signing?.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);

      const data = Buffer.from('dkim-signature header hash input');
      const hash = algorithm === directory.DkimAlgorithm.ED25519 ? null : 'sha256';
      const signature = sign(hash, data, signing?.privateKeyPem ?? '');
      expect(verify(hash, data, publicKeyOf(key?.dnsTxtValue ?? ''), signature)).toBe(true);
      expect(verify(hash, Buffer.from('tampered'), publicKeyOf(key?.dnsTxtValue ?? ''), signature)).toBe(
        false,
      );

      // The private key is stored only wrapped: its DER appears nowhere in the raw document.
      const der = Buffer.from(
        (signing?.privateKeyPem ?? '').replace(/-----[^-]+-----/g, '').replace(/\s/g, ''),
        'base64',
      );
      const raw = await h.db.collection(Collections.dkimKeys).findOne({ _id: new ObjectId(key?.id) });
      expect(raw).not.toBeNull();
      const bytes = Buffer.from(BSON.serialize(raw ?? {}));
      expect(bytes.includes(der.subarray(der.length - 32))).toBe(false);
      expect(bytes.toString('latin1')).not.toContain('PRIVATE KEY');
    },
  );

  it('keeps one active key per algorithm: activating another of the same algorithm retires the previous', async () => {
    const { key: a } = await d.generateDkimKey({
      domainId: domain.id,
      selector: 'life-a',
      algorithm: directory.DkimAlgorithm.ED25519,
    });
    const { key: b } = await d.generateDkimKey({
      domainId: domain.id,
      selector: 'life-b',
      algorithm: directory.DkimAlgorithm.ED25519,
    });
    const first = await d.activateDkimKey({ keyId: a?.id ?? '' });
    expect(first.key?.status).toBe(directory.DkimKeyStatus.ACTIVE);
    expect(first.key?.activateTime).toBeInstanceOf(Date);
    const second = await d.activateDkimKey({ keyId: b?.id ?? '' });
    expect(second.key?.status).toBe(directory.DkimKeyStatus.ACTIVE);
    expect(second.replaced).toMatchObject({ id: a?.id, status: directory.DkimKeyStatus.RETIRED });
    // The RSA key activated by the test above stays active next to the new Ed25519 key.
    const signing = await d.getSigningKey({ domain: 'dkim.test' });
    expect(signing.keys.map((k) => k.selector)).toEqual(['life-b', 'rs']);
    expect(signing.key?.selector).toBe('rs');
    await expectFailure(
      d.activateDkimKey({ keyId: a?.id ?? '' }),
      status.FAILED_PRECONDITION,
      ErrorReason.NOT_ALLOWED,
    );

    const listed = await d.listDkimKeys({ domainId: domain.id });
    expect(
      listed.keys.filter((k) => k.status === directory.DkimKeyStatus.ACTIVE).map((k) => k.selector),
    ).toEqual(['life-b', 'rs']);
    expect(listed.keys[0]?.selector).toBe('life-b'); // newest first

    const retired = await d.retireDkimKey({ keyId: b?.id ?? '' });
    expect(retired.key?.status).toBe(directory.DkimKeyStatus.RETIRED);
    expect(retired.key?.retireTime).toBeInstanceOf(Date);
    const left = await d.getSigningKey({ domain: 'dkim.test' });
    expect(left.keys.map((k) => k.selector)).toEqual(['rs']);
    expect(left.key?.selector).toBe('rs');
    const rs = listed.keys.find((k) => k.selector === 'rs');
    await d.retireDkimKey({ keyId: rs?.id ?? '' });
    const none = await d.getSigningKey({ domain: 'dkim.test' });
    expect(none.key).toBeUndefined();
    expect(none.keys).toEqual([]);
  });

  it('signs with Ed25519 and RSA at once (RFC 8463 §3), each rotating on its own', async () => {
    const created = await d.createDomain({ name: 'dual.dkim.test' });
    const domainId = created.domain?.id ?? '';
    const make = async (selector: string, algorithm: directory.DkimAlgorithm) => {
      const { key } = await d.generateDkimKey({ domainId, selector, algorithm });
      await d.activateDkimKey({ keyId: key?.id ?? '' });
      return key;
    };
    const rsa1 = await make('rsa1', directory.DkimAlgorithm.RSA2048);
    const ed1 = await make('ed1', directory.DkimAlgorithm.ED25519);
    const both = await d.getSigningKey({ domain: 'dual.dkim.test' });
    expect(both.keys.map((k) => [k.selector, k.algorithm])).toEqual([
      ['ed1', directory.DkimAlgorithm.ED25519],
      ['rsa1', directory.DkimAlgorithm.RSA2048],
    ]);
    expect(both.key?.selector).toBe('rsa1'); // old callers keep signing with the RSA key
    // Each private key verifies against its own published record.
    const data = Buffer.from('both signatures');
    for (const [k, pub] of [
      [both.keys[0], ed1],
      [both.keys[1], rsa1],
    ] as const) {
      const hash = k?.algorithm === directory.DkimAlgorithm.ED25519 ? null : 'sha256';
      const signature = sign(hash, data, k?.privateKeyPem ?? '');
      expect(verify(hash, data, publicKeyOf(pub?.dnsTxtValue ?? ''), signature)).toBe(true);
    }
    // Rotating the RSA key replaces only the RSA key.
    const rsa2 = await d.generateDkimKey({
      domainId,
      selector: 'rsa2',
      algorithm: directory.DkimAlgorithm.RSA2048,
    });
    const rotated = await d.activateDkimKey({ keyId: rsa2.key?.id ?? '' });
    expect(rotated.replaced?.id).toBe(rsa1?.id);
    const after = await d.getSigningKey({ domain: 'dual.dkim.test' });
    expect(after.keys.map((k) => k.selector)).toEqual(['ed1', 'rsa2']);
    const listed = await d.listDkimKeys({ domainId });
    expect(Object.fromEntries(listed.keys.map((k) => [k.selector, k.status]))).toEqual({
      rsa1: directory.DkimKeyStatus.RETIRED,
      ed1: directory.DkimKeyStatus.ACTIVE,
      rsa2: directory.DkimKeyStatus.ACTIVE,
    });
  });

  it('refuses bad selectors, duplicates, unknown domains and keys, and a missing algorithm', async () => {
    const missing = new ObjectId().toHexString();
    await d.generateDkimKey({
      domainId: domain.id,
      selector: 'dup',
      algorithm: directory.DkimAlgorithm.ED25519,
    });
    await expectFailure(
      d.generateDkimKey({ domainId: domain.id, selector: 'DUP', algorithm: directory.DkimAlgorithm.ED25519 }),
      status.ALREADY_EXISTS,
      ErrorReason.ALREADY_EXISTS,
      'selector',
    );
    for (const selector of ['', 'has space', 'a.b', '-lead', 'x'.repeat(64)]) {
      await expectFailure(
        d.generateDkimKey({ domainId: domain.id, selector, algorithm: directory.DkimAlgorithm.ED25519 }),
        status.INVALID_ARGUMENT,
        ErrorReason.INVALID_NAME,
        'selector',
      );
    }
    await expectFailure(
      d.generateDkimKey({ domainId: domain.id, selector: 'noalg' }),
      status.INVALID_ARGUMENT,
      ErrorReason.INVALID_ARGUMENT,
      'algorithm',
    );
    await expectFailure(
      d.generateDkimKey({ domainId: missing, selector: 's1', algorithm: directory.DkimAlgorithm.ED25519 }),
      status.NOT_FOUND,
      ErrorReason.NOT_FOUND,
    );
    await expectFailure(d.listDkimKeys({ domainId: missing }), status.NOT_FOUND, ErrorReason.NOT_FOUND);
    await expectFailure(d.activateDkimKey({ keyId: missing }), status.NOT_FOUND, ErrorReason.NOT_FOUND);
    await expectFailure(d.retireDkimKey({ keyId: missing }), status.NOT_FOUND, ErrorReason.NOT_FOUND);
    expect((await d.getSigningKey({ domain: 'unknown.test' })).key).toBeUndefined();
  });
});
