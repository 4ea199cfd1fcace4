import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@postmesh/testing';
import { describe, expect, it } from 'vitest';
import { natsPermissionsJson } from '../src/main.js';

describe('NATS permissions in the Helm chart', () => {
  it('are the allow-lists the services are tested with (libs/bus natsPermissions)', () => {
    const chartFile = join(repoRoot(), 'charts', 'postmesh', 'files', 'nats-permissions.json');
    // On a difference, after a build:
    //   POSTMESH_SKIP_BUILD=1 node tools/stack/bin/postmesh-stack.mjs nats-permissions > <chartFile>
    // (then prettier --write it).
    expect(JSON.parse(readFileSync(chartFile, 'utf8'))).toEqual(JSON.parse(natsPermissionsJson()));
  });
});
