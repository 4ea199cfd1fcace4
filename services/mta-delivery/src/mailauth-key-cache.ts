/**
 * mailauth 4.13.3 turns the PEM private key into a KeyObject (`crypto.createPrivateKey`) for
 * every signature (measured: ~0.4 ms of the ~0.95 ms of CPU that signing a 10 KB message took).
 * Its signer takes `getPrivateKey` from `mailauth/lib/tools` when it is first loaded, so this
 * module (imported before the signer) wraps that function with a small in-memory cache keyed by
 * the PEM text. The version is pinned exactly in package.json; the DKIM integration test checks
 * the signatures still verify. Keys stay in memory only, as the Directory contract requires.
 */
import { createRequire } from 'node:module';
import type { KeyObject } from 'node:crypto';

const require = createRequire(import.meta.url);
const tools = require('mailauth/lib/tools.js') as { getPrivateKey: (key: string | Buffer) => KeyObject };
const parse = tools.getPrivateKey;
const cache = new Map<string, KeyObject>();
const MAX_KEYS = 256;

tools.getPrivateKey = (key) => {
  const text = typeof key === 'string' ? key : key.toString('latin1');
  let parsed = cache.get(text);
  if (parsed === undefined) {
    parsed = parse(key);
    if (cache.size >= MAX_KEYS) cache.clear();
    cache.set(text, parsed);
  }
  return parsed;
};
