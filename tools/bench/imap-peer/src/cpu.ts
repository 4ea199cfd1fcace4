/**
 * CPU time of the servers under test, per process, from /proc (Linux): rates on a shared machine
 * are noisy, CPU milliseconds per command much less so. A root process stands for its whole tree:
 * each live process in it is labelled (a Postmesh service by the name `npm start` gives it in
 * POSTMESH_STACK_PROCESS, else by its `services/<name>/dist/main.js`; a native tool by its
 * executable name) and counts its own time plus that of the children it has
 * reaped (`cutime`/`cstime`), so Dovecot's per-connection `imap` processes that exit during a
 * phase still count against their parent. Per-process figures of short-lived processes are thus
 * approximate; the total of a tree is exact up to the clock tick.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc/<pid>/stat times; 100 on every Linux we run. */
const TICK_MS = 10;

interface Stat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime + cutime + cstime, in ms. */
  readonly cpuMs: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name is in parentheses and may itself contain spaces or parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return { pid, ppid: Number(fields[1]), cpuMs: ticks * TICK_MS };
  } catch {
    return undefined; // exited meanwhile
  }
}

function labelOf(pid: number): string {
  // A process of `npm start` carries its name (storage-imap-1, storage-imap-2 … when several
  // replicas run one package), so that each is counted on its own.
  const stackName = stackProcessName(pid);
  if (stackName !== undefined) return stackName;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
    for (const arg of argv) {
      const service = /services\/([^/]+)\/dist\/main\.js$/.exec(arg);
      if (service !== null) return service[1]!;
    }
    return (argv[0] ?? '').split('/').pop() ?? String(pid);
  } catch {
    return String(pid);
  }
}

function stackProcessName(pid: number): string | undefined {
  try {
    const entry = readFileSync(`/proc/${pid}/environ`, 'latin1')
      .split('\0')
      .find((e) => e.startsWith('POSTMESH_STACK_PROCESS='));
    return entry?.slice('POSTMESH_STACK_PROCESS='.length) || undefined;
  } catch {
    return undefined; // exited, or not ours to read
  }
}

/** Label → CPU ms of every process under `root` (inclusive), labelled `prefix:label`. */
export function cpuOfTree(prefix: string, root: number): Map<string, number> {
  const stats: Stat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat !== undefined) stats.push(stat);
  }
  const children = new Map<number, Stat[]>();
  for (const s of stats) {
    const list = children.get(s.ppid) ?? [];
    list.push(s);
    children.set(s.ppid, list);
  }
  const out = new Map<string, number>();
  const walk = (stat: Stat): void => {
    const own = labelOf(stat.pid);
    const label = own === prefix ? prefix : `${prefix}:${own}`;
    out.set(label, (out.get(label) ?? 0) + stat.cpuMs);
    for (const child of children.get(stat.pid) ?? []) walk(child);
  };
  const rootStat = stats.find((s) => s.pid === root);
  if (rootStat !== undefined) walk(rootStat);
  return out;
}

/**
 * CPU ms per label spent between two snapshots of the same trees. Negative when a process exited
 * and its time moved to its parent's label: kept, so that the sum over a tree stays right.
 */
export function cpuDelta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [label, ms] of after) {
    const delta = ms - (before.get(label) ?? 0);
    if (delta !== 0) out[label] = delta;
  }
  for (const [label, ms] of before) if (!after.has(label)) out[label] = -ms;
  return out;
}
