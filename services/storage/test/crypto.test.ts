import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@postmesh/config';
import { Binary } from 'mongodb';
import { describe, expect, it } from 'vitest';
import type { WrappedKey } from '../src/db/schema.js';
import { KeyIntegrityError, LocalKeyProvider, bytesOf, loadLocalKeyProvider } from '../src/crypto/index.js';

const kek = (): Uint8Array => new Uint8Array(randomBytes(32));

function flip(value: Binary, index = 0): Binary {
  const copy = Buffer.from(bytesOf(value));
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return new Binary(copy);
}

describe('LocalKeyProvider', () => {
  it('round-trips a key and never stores it in the clear', async () => {
    const provider = new LocalKeyProvider(kek());
    const secret = new Uint8Array(randomBytes(32));
    const wrapped = await provider.wrap(secret, 'user:abc');
    expect(wrapped.by).toBe(provider.currentKekId);
    expect(Buffer.from(bytesOf(wrapped.ciphertext)).equals(Buffer.from(secret))).toBe(false);
    expect(bytesOf(wrapped.iv)).toHaveLength(12);
    expect(bytesOf(wrapped.tag)).toHaveLength(16);
    expect(await provider.unwrap(wrapped, 'user:abc')).toEqual(secret);
  });

  it('uses a fresh IV for every wrap', async () => {
    const provider = new LocalKeyProvider(kek());
    const secret = new Uint8Array(32);
    const a = await provider.wrap(secret, 'c');
    const b = await provider.wrap(secret, 'c');
    expect(Buffer.from(bytesOf(a.iv)).equals(Buffer.from(bytesOf(b.iv)))).toBe(false);
  });

  it('names the KEK by a short hash, never by the key', () => {
    const key = kek();
    const provider = new LocalKeyProvider(key);
    expect(provider.currentKekId).toMatch(/^local:[0-9a-f]{16}$/);
    expect(provider.currentKekId).not.toContain(Buffer.from(key).toString('hex').slice(0, 16));
    expect(new LocalKeyProvider(key).currentKekId).toBe(provider.currentKekId);
    expect(new LocalKeyProvider(kek()).currentKekId).not.toBe(provider.currentKekId);
  });

  const tamperings: [string, (w: WrappedKey) => WrappedKey][] = [
    ['iv', (w) => ({ ...w, iv: flip(w.iv, 5) })],
    ['tag', (w) => ({ ...w, tag: flip(w.tag, 15) })],
    ['ciphertext', (w) => ({ ...w, ciphertext: flip(w.ciphertext, 31) })],
    ['truncated tag', (w) => ({ ...w, tag: new Binary(bytesOf(w.tag).subarray(0, 12)) })],
  ];
  for (const [what, tamper] of tamperings) {
    it(`detects a flipped byte in the ${what}`, async () => {
      const provider = new LocalKeyProvider(kek());
      const wrapped = await provider.wrap(new Uint8Array(randomBytes(32)), 'user:1');
      await expect(provider.unwrap(tamper(wrapped), 'user:1')).rejects.toBeInstanceOf(KeyIntegrityError);
    });
  }

  it('refuses a wrapped key moved to another context', async () => {
    const provider = new LocalKeyProvider(kek());
    const wrapped = await provider.wrap(new Uint8Array(randomBytes(32)), 'user:alice');
    await expect(provider.unwrap(wrapped, 'user:mallory')).rejects.toBeInstanceOf(KeyIntegrityError);
  });

  it('refuses a key wrapped by an unknown KEK', async () => {
    const wrapped = await new LocalKeyProvider(kek()).wrap(new Uint8Array(32), 'c');
    await expect(new LocalKeyProvider(kek()).unwrap(wrapped, 'c')).rejects.toBeInstanceOf(KeyIntegrityError);
  });

  it('during rotation unwraps under the old and the new KEK, and wraps under the new', async () => {
    const oldKek = kek();
    const newKek = kek();
    const secret = new Uint8Array(randomBytes(32));
    const before = await new LocalKeyProvider(oldKek).wrap(secret, 'user:1');
    const rotating = new LocalKeyProvider(newKek, [oldKek]);
    expect(await rotating.unwrap(before, 'user:1')).toEqual(secret);
    const after = await rotating.wrap(secret, 'user:1');
    expect(after.by).toBe(new LocalKeyProvider(newKek).currentKekId);
    expect(after.by).not.toBe(before.by);
    // Once the old KEK is gone, only the re-wrapped form opens.
    const rotated = new LocalKeyProvider(newKek);
    expect(await rotated.unwrap(after, 'user:1')).toEqual(secret);
    await expect(rotated.unwrap(before, 'user:1')).rejects.toBeInstanceOf(KeyIntegrityError);
  });
});

describe('loadLocalKeyProvider', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-kek-'));
  const write = (name: string, content: string): string => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  it('reads a base64 KEK file and an optional previous one', async () => {
    const current = kek();
    const previous = kek();
    const provider = loadLocalKeyProvider({
      kekFile: write('current', `${Buffer.from(current).toString('base64')}\n`),
      previousKekFile: write('previous', Buffer.from(previous).toString('base64')),
    });
    expect(provider.currentKekId).toBe(new LocalKeyProvider(current).currentKekId);
    const old = await new LocalKeyProvider(previous).wrap(new Uint8Array(32), 'x');
    expect(await provider.unwrap(old, 'x')).toEqual(new Uint8Array(32));
  });

  const failures: [string, () => string | undefined, string][] = [
    ['missing', () => undefined, 'POSTMESH_KEK_FILE'],
    ['unreadable', () => join(dir, 'does-not-exist'), 'POSTMESH_KEK_FILE'],
    ['too short', () => write('short', Buffer.from(randomBytes(16)).toString('base64')), 'POSTMESH_KEK_FILE'],
    ['not base64', () => write('text', 'this is not a key at all!!!!!!!!!!!!!!!!!'), 'POSTMESH_KEK_FILE'],
  ];
  for (const [what, path, variable] of failures) {
    it(`fails with a config error naming ${variable} when the file is ${what}`, () => {
      let error: unknown;
      try {
        loadLocalKeyProvider({ kekFile: path() });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.map((p) => p.variable)).toEqual([variable]);
      expect((error as ConfigError).message).toContain(variable);
    });
  }

  it('names POSTMESH_KEK_PREVIOUS_FILE when only the previous KEK is bad', () => {
    expect(() =>
      loadLocalKeyProvider({
        kekFile: write('good', Buffer.from(kek()).toString('base64')),
        previousKekFile: write('bad', 'QUJD'),
      }),
    ).toThrow(/POSTMESH_KEK_PREVIOUS_FILE/);
  });
});
