// The image's build layout, read from the Dockerfile (there is no container engine here to build
// it; pod-runtime.int.test.ts runs the runtime tree it lays out): the dependency install is cached
// apart from the sources, the runtime holds no tools and no dev dependencies, and the base image is
// the Node version the project tests on.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

interface Stage {
  readonly name: string;
  readonly from: string;
  /** Instructions with continuation lines joined. */
  readonly instructions: readonly string[];
}

function parseStages(dockerfile: string): Stage[] {
  const joined = dockerfile.replace(/\\\n/g, ' ');
  const stages: { name: string; from: string; instructions: string[] }[] = [];
  let inHeredoc: string | undefined;
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (inHeredoc !== undefined) {
      if (line === inHeredoc) inHeredoc = undefined;
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const heredoc = /<<-?'?(\w+)'?/.exec(line);
    if (heredoc?.[1] !== undefined) inHeredoc = heredoc[1];
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from !== null) {
      stages.push({ name: from[2] ?? String(stages.length), from: from[1] ?? '', instructions: [] });
      continue;
    }
    stages.at(-1)?.instructions.push(line.replace(/\s+/g, ' '));
  }
  return stages;
}

const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const stages = parseStages(dockerfile);
const stage = (name: string): Stage => {
  const found = stages.find((s) => s.name === name);
  if (found === undefined) throw new Error(`no stage ${name}`);
  return found;
};
const indexOf = (s: Stage, pattern: RegExp): number => s.instructions.findIndex((i) => pattern.test(i));

describe('Dockerfile', () => {
  it('installs dependencies from the manifests alone, before the sources are copied', () => {
    const build = stage('build');
    const install = indexOf(build, /^RUN npm ci\b/);
    const sources = indexOf(build, /^COPY \. /);
    expect(install).toBeGreaterThanOrEqual(0);
    expect(sources).toBeGreaterThan(install);
    expect(build.instructions.slice(0, install).filter((i) => i.startsWith('COPY'))).toEqual([
      'COPY --from=manifests /manifests/ ./',
    ]);
    expect(stage('prod-deps').instructions.filter((i) => i.startsWith('COPY'))).toEqual([
      'COPY --from=manifests /manifests/ ./',
    ]);
  });

  it('gives the runtime only production dependencies of the services and their compiled output', () => {
    const prodDeps = stage('prod-deps').instructions.join('\n');
    expect(prodDeps).toMatch(/npm ci --omit=dev/);
    for (const service of [
      'admin',
      'imap',
      'mta-delivery',
      'smtp-inbound',
      'storage',
      'storage-imap',
      'imap-proxy',
    ]) {
      expect(prodDeps).toContain(`--workspace=services/${service}`);
    }
    expect(prodDeps).toMatch(/rm -rf [^\n]*libs\/testing[^\n]* tools\b/);
    const runtime = stage('runtime');
    expect(runtime.instructions.filter((i) => /^COPY --from=/.test(i))).toEqual([
      'COPY --from=prod-deps --chown=0:0 /app/ ./',
      'COPY --from=build --chown=0:0 /out/ ./',
    ]);
    expect(stage('build').instructions.join('\n')).toContain('tools/image/stage.sh runtime /src /out');
  });

  it('runs as a numeric non-root user and bases every stage on the tested Node major', () => {
    const runtime = stage('runtime');
    expect(runtime.instructions).toContain('USER 10001:10001');
    const nvmrc = readFileSync(join(repoRoot, '.nvmrc'), 'utf8').trim();
    const image = /^ARG NODE_IMAGE=node:(\d+)\.\d+\.\d+-\S+$/m.exec(dockerfile);
    expect(image?.[1]).toBe(nvmrc);
    for (const s of stages) expect(s.from).toBe('${NODE_IMAGE}');
  });
});
