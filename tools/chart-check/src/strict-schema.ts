// Strict Kubernetes API schemas, where an unknown field is an error (a misspelt `readOnlyRootFilesytem`
// would otherwise be dropped by the API server without a word and the pod would run without it).
// Uses `kubernetes-validate` (PyPI), which ships the strict OpenAPI-derived JSON schemas of each
// Kubernetes version and runs offline; `npm run deps` installs it into .bin/python (tools/deps.json).
// CRD kinds (cert-manager, KEDA, Prometheus Operator) have no schema there: schema.ts covers them.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { K8sObject } from './manifests.js';
import type { SchemaIssue } from './schema.js';

const ERROR = /^ERROR .* did not validate for resource (\S+) against version [\d.]+: (.*)$/;

/**
 * Every strict-schema violation in `objects` for `kubeVersion` (e.g. "1.31.0"); empty when they
 * all validate. `validator` is the path of the `kubernetes-validate` executable.
 */
export function validateStrict(
  validator: string,
  objects: readonly K8sObject[],
  kubeVersion: string,
): Promise<SchemaIssue[]> {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-strict-'));
  const file = join(dir, 'objects.yaml');
  writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'));
  return new Promise((resolve, reject) => {
    execFile(
      validator,
      ['--strict', '--quiet', '--no-warn', '-k', kubeVersion, file],
      { encoding: 'utf8', timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        rmSync(dir, { recursive: true, force: true });
        const issues: SchemaIssue[] = [];
        for (const line of `${stdout}\n${stderr}`.split('\n')) {
          const match = ERROR.exec(line.trim());
          if (match !== null) issues.push({ object: match[1] ?? '', message: match[2] ?? '' });
        }
        // A failure that is not a validation report (a crash, a missing version) must not pass.
        if (error !== null && issues.length === 0) {
          reject(new Error(`kubernetes-validate failed: ${`${stderr}${stdout}`.trim() || error.message}`));
          return;
        }
        resolve(issues);
      },
    );
  });
}
