#!/usr/bin/env node
// `postmesh`: the admin API from a shell (e.g. through `kubectl exec`). Build first: npm run build -w @postmesh/cli
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
