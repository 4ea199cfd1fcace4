// Runs the pinned helm binary (<repo>/.bin/helm, built by `npm run deps` from tools/deps.json).
// Offline by construction: `lint` and `template` never contact a cluster or a chart repository,
// and helm's config/cache/data directories point at a private temporary directory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class HelmNotFoundError extends Error {
  override readonly name = 'HelmNotFoundError';
  constructor(readonly path: string) {
    super(
      `helm not found at ${path}. Install the pinned version with \`npm run deps\` ` +
        `(it builds .bin/helm from tools/deps.json: GOBIN=$PWD/.bin go install helm.sh/helm/v3/cmd/helm@<version>).`,
    );
  }
}

export interface HelmRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export type Rendered =
  { readonly ok: true; readonly manifests: string } | { readonly ok: false; readonly error: string };

export interface ChartOptions {
  readonly chartDir: string;
  /** Values files, applied in order (later wins). */
  readonly valuesFiles?: readonly string[];
  /** `--set-string`-free `--set key=value` pairs. */
  readonly set?: Readonly<Record<string, string>>;
  readonly releaseName?: string;
  readonly namespace?: string;
  /** Kubernetes version for capabilities; a `go install`ed helm otherwise assumes v1.20. */
  readonly kubeVersion?: string;
}

export const DEFAULT_KUBE_VERSION = '1.31.0';

/** Path of the project's pinned helm binary. */
export function helmPath(repoRoot: string): string {
  return join(repoRoot, '.bin', 'helm');
}

/** The pinned helm binary, or a HelmNotFoundError that says how to install it. */
export function requireHelm(repoRoot: string): string {
  const path = helmPath(repoRoot);
  if (!existsSync(path)) throw new HelmNotFoundError(path);
  return path;
}

let helmHome: string | undefined;
function isolatedEnv(): NodeJS.ProcessEnv {
  helmHome ??= mkdtempSync(join(tmpdir(), 'postmesh-helm-'));
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: helmHome,
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_DATA_HOME: join(helmHome, 'data'),
    // No kubeconfig: nothing here may reach a cluster.
    KUBECONFIG: join(helmHome, 'no-kubeconfig'),
  };
}

export function runHelm(helm: string, args: readonly string[]): HelmRun {
  const result = spawnSync(helm, args, {
    env: isolatedEnv(),
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return { exitCode: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function valueArgs(options: ChartOptions): string[] {
  const args: string[] = ['--kube-version', options.kubeVersion ?? DEFAULT_KUBE_VERSION];
  for (const file of options.valuesFiles ?? []) args.push('--values', file);
  for (const [key, value] of Object.entries(options.set ?? {})) args.push('--set', `${key}=${value}`);
  return args;
}

/** `helm lint --strict`: warnings fail too. */
export function lintChart(helm: string, options: ChartOptions): HelmRun {
  return runHelm(helm, ['lint', '--strict', options.chartDir, ...valueArgs(options)]);
}

/** `helm template`: the manifests a `helm install` would apply, or helm's error. */
export function renderChart(helm: string, options: ChartOptions): Rendered {
  const run = runHelm(helm, [
    'template',
    options.releaseName ?? 'postmesh',
    options.chartDir,
    '--namespace',
    options.namespace ?? 'postmesh',
    ...valueArgs(options),
  ]);
  if (run.exitCode !== 0) return { ok: false, error: run.stderr.trim() || `helm exited ${run.exitCode}` };
  return { ok: true, manifests: run.stdout };
}
