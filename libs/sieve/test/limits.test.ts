import { describe, expect, it } from 'vitest';
import { compileScript, runScript } from '../src/index.js';
import { message } from './helpers.js';

describe('bounded execution', () => {
  it('a :matches pattern that costs |value| x |pattern| comparisons runs out of its step budget instead of looping', () => {
    const long = 'a'.repeat(3000);
    const msg = message(`Subject: ${long}\r\n\r\n`);
    // One star then 200 literals: each of the 3000 start positions compares up to 200 characters.
    const script = `if header :matches "subject" "*${'a'.repeat(200)}b" { discard; }`;
    const result = runScript(compileScript(script), msg, {
      maxSteps: 50_000,
      maxActions: 32,
      maxRedirects: 4,
    });
    expect(result).toMatchObject({ ok: false, error: 'the script ran out of its 50000-step budget' });
  });

  it('a long but honest script stays within the default budget', () => {
    const script = Array.from(
      { length: 500 },
      (_, i) => `if header :contains "subject" "word${i}" { discard; }`,
    ).join('\n');
    const result = runScript(compileScript(script), message());
    expect(result.ok).toBe(true);
  });

  it('refuses more redirects than allowed, and more actions than allowed', () => {
    const redirects = Array.from({ length: 5 }, (_, i) => `redirect "r${i}@example.org";`).join(' ');
    expect(runScript(compileScript(redirects), message())).toMatchObject({
      ok: false,
      error: 'too many redirects (the limit is 4)',
    });
    const files =
      'require "fileinto"; ' + Array.from({ length: 40 }, (_, i) => `fileinto "f${i}";`).join(' ');
    expect(runScript(compileScript(files), message())).toMatchObject({
      ok: false,
      error: 'too many actions (the limit is 32)',
    });
  });
});
