// scripts/check.mjs must notice generated code that no longer matches proto/ (CI runs it as
// `npm run proto:check`). Works on copies so the real src/gen is never touched.
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const genDir = join(packageDir, 'src', 'gen');

function runCheck(against: string): { status: number | null; output: string } {
  const result = spawnSync(
    process.execPath,
    [join(packageDir, 'scripts', 'check.mjs'), '--against', against],
    {
      encoding: 'utf8',
    },
  );
  return { status: result.status, output: result.stdout + result.stderr };
}

describe('scripts/check.mjs', () => {
  let copy = '';
  beforeEach(() => {
    copy = join(mkdtempSync(join(tmpdir(), 'contracts-check-')), 'gen');
    cpSync(genDir, copy, { recursive: true });
  });
  afterEach(() => {
    rmSync(dirname(copy), { recursive: true, force: true });
  });

  it('passes on an exact copy of the committed code', () => {
    const { status, output } = runCheck(copy);
    expect(output).toContain('up to date');
    expect(status).toBe(0);
  });

  it('fails and names the file when generated code was edited by hand', () => {
    appendFileSync(join(copy, 'postmesh/mailstore/v1/mailstore.ts'), '\nexport const handEdit = 1;\n');
    const { status, output } = runCheck(copy);
    expect(status).toBe(1);
    expect(output).toContain('changed: postmesh/mailstore/v1/mailstore.ts');
    expect(output).toContain('npm run proto');
    expect(output).not.toContain('directory.ts');
  });

  it('reports files that are missing and files that are no longer generated', () => {
    unlinkSync(join(copy, 'postmesh/trace/v1/trace.ts'));
    writeFileSync(join(copy, 'postmesh/trace/v1/old.ts'), 'export {};\n');
    const { status, output } = runCheck(copy);
    expect(status).toBe(1);
    expect(output).toContain('missing: postmesh/trace/v1/trace.ts');
    expect(output).toContain('not generated (remove): postmesh/trace/v1/old.ts');
  });
});
