/**
 * The key provider for one machine and for Kubernetes: the key-encryption key (KEK) is a file
 * holding 32 random bytes in base64 (a mounted Secret in the chart). During a rotation the old
 * KEK stays readable through `POSTMESH_KEK_PREVIOUS_FILE` until `rotateKek` has re-wrapped every
 * data key (docs/adr/0002-encryption-at-rest.md). A KMS-backed provider implements the same
 * `KeyProvider` interface.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '@postmesh/config';
import type { WrappedKey } from '../db/schema.js';
import { KEY_BYTES, open, seal } from './aead.js';
import { KeyIntegrityError, type KeyProvider } from './types.js';

/**
 * A KEK's public name: a short hash of the key, so operators can tell keys apart in stored
 * documents and logs without the key itself ever being written anywhere. Domain-separated so it
 * is not a plain SHA-256 of the key.
 */
export function kekIdOf(key: Uint8Array): string {
  const digest = createHash('sha256').update('postmesh kek id v1\0').update(key).digest('hex');
  return `local:${digest.slice(0, 16)}`;
}

export class LocalKeyProvider implements KeyProvider {
  readonly currentKekId: string;
  private readonly keys = new Map<string, Uint8Array>();

  /** `current` wraps and unwraps; each of `previous` only unwraps (during a rotation). */
  constructor(current: Uint8Array, previous: readonly Uint8Array[] = []) {
    for (const key of [current, ...previous]) {
      if (key.length !== KEY_BYTES) throw new RangeError(`a KEK must be ${KEY_BYTES} bytes`);
      this.keys.set(kekIdOf(key), Uint8Array.from(key));
    }
    this.currentKekId = kekIdOf(current);
  }

  /** Ids of every KEK this provider can unwrap with, current first. */
  get knownKekIds(): readonly string[] {
    return [...this.keys.keys()];
  }

  wrap(key: Uint8Array, context: string): Promise<WrappedKey> {
    const kek = this.keys.get(this.currentKekId);
    if (kek === undefined) throw new Error('current KEK missing'); // unreachable: set in the constructor
    return Promise.resolve(seal(kek, this.currentKekId, key, context));
  }

  unwrap(wrapped: WrappedKey, context: string): Promise<Uint8Array> {
    const kek = this.keys.get(wrapped.by);
    if (kek === undefined) {
      return Promise.reject(
        new KeyIntegrityError(
          `wrapped by KEK ${wrapped.by}, which is neither the current nor the previous KEK`,
        ),
      );
    }
    try {
      return Promise.resolve(open(kek, wrapped, context));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

export interface LocalKekFiles {
  /** Path from POSTMESH_KEK_FILE (required). */
  readonly kekFile: string | undefined;
  /** Path from POSTMESH_KEK_PREVIOUS_FILE (optional). */
  readonly previousKekFile?: string | undefined;
}

/**
 * Reads the KEK files. Fails fast with a ConfigError naming the variable when a file is unset,
 * unreadable, or not exactly 32 bytes of base64 (the service exits 78 at start).
 */
export function loadLocalKeyProvider(files: LocalKekFiles): LocalKeyProvider {
  const problems: { variable: string; problem: string }[] = [];
  const current = readKek('POSTMESH_KEK_FILE', files.kekFile, true, problems);
  const previous = readKek('POSTMESH_KEK_PREVIOUS_FILE', files.previousKekFile, false, problems);
  if (problems.length > 0 || current === undefined) {
    throw new ConfigError(
      problems.length > 0 ? problems : [{ variable: 'POSTMESH_KEK_FILE', problem: 'required' }],
    );
  }
  return new LocalKeyProvider(current, previous === undefined ? [] : [previous]);
}

/** The key in one KEK file; a ConfigError naming `variable` when it is unusable. */
export function readKekFile(variable: string, path: string): Uint8Array {
  const problems: { variable: string; problem: string }[] = [];
  const key = readKek(variable, path, true, problems);
  if (problems.length > 0 || key === undefined) {
    throw new ConfigError(problems.length > 0 ? problems : [{ variable, problem: 'required' }]);
  }
  return key;
}

function readKek(
  variable: string,
  path: string | undefined,
  required: boolean,
  problems: { variable: string; problem: string }[],
): Uint8Array | undefined {
  if (path === undefined || path === '') {
    if (required) {
      problems.push({
        variable,
        problem: 'required: path of a file holding a base64 32-byte key (e.g. `openssl rand -base64 32`)',
      });
    }
    return undefined;
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    problems.push({ variable, problem: `cannot read ${JSON.stringify(path)} (${code})` });
    return undefined;
  }
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || key.length !== KEY_BYTES) {
    // Never echo the file's content: it may be a key of the wrong size.
    problems.push({
      variable,
      problem: `${JSON.stringify(path)} must hold exactly ${KEY_BYTES} bytes in base64`,
    });
    return undefined;
  }
  return new Uint8Array(key);
}
