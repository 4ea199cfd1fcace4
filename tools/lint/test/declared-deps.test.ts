import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const checker = join(dirname(fileURLToPath(import.meta.url)), '..', 'declared-deps.mjs');
const roots: string[] = [];

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'declared-deps-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function check(root: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [checker, '--root', root], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

const rootPkg = JSON.stringify({ name: 'root', devDependencies: { vitest: '*' } });
const servicePkg = (deps: object, dev: object = {}): string =>
  JSON.stringify({ name: '@x/svc', dependencies: deps, devDependencies: dev });

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe('declared-deps', () => {
  it('passes when every import is declared (builtins, relative paths and the root test runner need nothing)', () => {
    const root = tree({
      'package.json': rootPkg,
      'services/svc/package.json': servicePkg({ pino: '*' }),
      'services/svc/src/main.ts':
        "import { readFileSync } from 'node:fs';\nimport pino from 'pino';\nimport './local.js';\n",
      'services/svc/test/main.test.ts': "import { it } from 'vitest';\n",
    });
    const r = check(root);
    expect(r.out).toContain('every import declared');
    expect(r.code).toBe(0);
  });

  it('sees a require() made through createRequire, which the module-boundary lint does not', () => {
    const root = tree({
      'package.json': rootPkg,
      'services/svc/package.json': servicePkg({}),
      'services/svc/src/main.ts':
        "import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nrequire('Haraka/server.js');\n",
    });
    const r = check(root);
    expect(r.code).toBe(1);
    expect(r.out).toContain("'Haraka' is not declared in services/svc/package.json");
  });

  it('refuses a devDependency imported by production code, and a dynamic import of an undeclared scope package', () => {
    const root = tree({
      'package.json': rootPkg,
      'services/svc/package.json': servicePkg({}, { nodemailer: '*' }),
      'services/svc/src/a.ts': "import nodemailer from 'nodemailer';\n",
      'services/svc/src/b.ts': "const m = await import('@nats-io/kv/internal');\n",
    });
    const r = check(root);
    expect(r.code).toBe(1);
    expect(r.out).toContain("'nodemailer' is a devDependency of @x/svc but production code imports it");
    expect(r.out).toContain("'@nats-io/kv' is not declared");
  });
});
