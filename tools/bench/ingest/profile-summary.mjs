#!/usr/bin/env node
/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, e.g. from `side-by-side.py --profile DIR`):
 * self time by function and by package or source area, so the largest costs of a service under
 * load are visible without a browser.
 *
 *   node tools/bench/ingest/profile-summary.mjs FILE.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
const topIndex = args.indexOf('--top');
const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 30;
if (file === undefined) {
  console.error('usage: profile-summary.mjs FILE.cpuprofile [--top N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i += 1) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const isIdle = (id) => byId.get(id)?.callFrame.functionName === '(idle)';
const idle = [...selfUs].filter(([id]) => isIdle(id)).reduce((a, [, us]) => a + us, 0);
/** Busy time: percentages below are of the time the process was not idle. */
const total = [...selfUs].filter(([id]) => !isIdle(id)).reduce((a, [, us]) => a + us, 0);

/** The package (node_modules/<name>), our source area, or node's internals, of a call frame. */
function areaOf(url) {
  if (url === '') return '(native / V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm !== null) return nm[1];
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const ours = /\/(services\/[^/]+\/(?:dist|src)\/[^/]+|libs\/[^/]+)/.exec(url);
  return ours !== null ? ours[1] : url;
}

const byFunction = new Map();
const byArea = new Map();
for (const [id, us] of selfUs) {
  if (isIdle(id)) continue;
  const node = byId.get(id);
  const frame = node.callFrame;
  const name = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(services|libs)\//, '$1/')}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const area = areaOf(frame.url);
  byArea.set(area, (byArea.get(area) ?? 0) + us);
}
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s busy, ${(idle / 1e6).toFixed(1)} s idle`);
console.log('\nself time by package / area');
for (const [area, us] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${pct(us)}  ${area}`);
console.log('\nself time by function');
for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${pct(us)}  ${name}`);
