// The Grafana dashboard the chart ships, docs/metrics.md and the code agree: every query names a
// metric the list documents (with a suffix its type has), every documented metric is registered
// by a service or library, every registered `postmesh_*` metric is documented, and the
// dashboard is well-formed (unique ids, panels on the 24-column grid, the data source a
// variable, balanced PromQL). The negative cases show each check can fail.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const dashboardFile = join(repoRoot, 'charts', 'postmesh', 'dashboards', 'postmesh.json');

type MetricType = 'counter' | 'gauge' | 'histogram';

interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: { x: number; y: number; w: number; h: number };
  readonly datasource?: { type: string; uid: string };
  readonly targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
}

interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly panels: Panel[];
  readonly templating: { list: { name: string; type: string; query?: unknown }[] };
}

/** `| \`postmesh_x\` | type | …` rows of docs/metrics.md. */
function documentedMetrics(markdown: string): Map<string, MetricType> {
  const metrics = new Map<string, MetricType>();
  for (const m of markdown.matchAll(
    /^\|\s*`(postmesh_[a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram)\s*\|/gm,
  )) {
    metrics.set(m[1] as string, m[2] as MetricType);
  }
  return metrics;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (path.endsWith('.ts') && !path.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** `postmesh_*` names given to prom-client metrics in the services' and libraries' sources. */
function registeredMetrics(): Set<string> {
  const names = new Set<string>();
  for (const top of ['libs', 'services']) {
    for (const pkg of readdirSync(join(repoRoot, top))) {
      const src = join(repoRoot, top, pkg, 'src');
      if (!statSync(join(repoRoot, top, pkg)).isDirectory()) continue;
      let files: string[];
      try {
        files = sourceFiles(src);
      } catch {
        continue;
      }
      for (const file of files) {
        const text = readFileSync(file, 'utf8');
        // `name: 'postmesh_x'` in a metric's options, or a name passed to a small metric factory.
        for (const m of text.matchAll(/name: '(postmesh_[a-z0-9_]+)'/g)) names.add(m[1] as string);
      }
    }
  }
  return names;
}

const SUFFIXES: Record<MetricType, readonly string[]> = {
  counter: [''],
  gauge: [''],
  histogram: ['_bucket', '_sum', '_count'],
};

/** Problems of one query against the documented metrics; empty when it is fine. */
function queryProblems(expr: string, documented: Map<string, MetricType>): string[] {
  const problems: string[] = [];
  const names = [...expr.matchAll(/\b(postmesh_[a-z0-9_]+)/g)].map((m) => m[1] as string);
  if (names.length === 0) problems.push(`names no postmesh_ metric: ${expr}`);
  for (const name of names) {
    const found = [...documented].find(([base, type]) => SUFFIXES[type].some((s) => `${base}${s}` === name));
    if (found === undefined) problems.push(`${name} is not an exported metric (docs/metrics.md)`);
  }
  let depth = 0;
  for (const c of expr) {
    if ('({['.includes(c)) depth += 1;
    if (')}]'.includes(c)) depth -= 1;
    if (depth < 0) break;
  }
  if (depth !== 0) problems.push(`unbalanced brackets: ${expr}`);
  return problems;
}

/** Structural problems of the dashboard. */
function dashboardProblems(dashboard: Dashboard): string[] {
  const problems: string[] = [];
  if (!/^[a-z0-9-]{1,40}$/.test(dashboard.uid)) problems.push('uid missing or invalid');
  if (dashboard.title === '' || dashboard.schemaVersion < 36) problems.push('title or schemaVersion');
  const variables = new Set(dashboard.templating.list.map((v) => v.name));
  if (!dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource')) {
    problems.push('no datasource variable');
  }
  const ids = new Set<number>();
  for (const panel of dashboard.panels) {
    if (ids.has(panel.id)) problems.push(`duplicate panel id ${panel.id}`);
    ids.add(panel.id);
    const { x, w, h } = panel.gridPos;
    if (x < 0 || w < 1 || x + w > 24 || h < 1) problems.push(`panel ${panel.title} off the grid`);
    if (panel.type === 'row') continue;
    if (panel.datasource?.uid !== '${datasource}')
      problems.push(`panel ${panel.title}: data source not the variable`);
    if (panel.targets === undefined || panel.targets.length === 0)
      problems.push(`panel ${panel.title}: no query`);
    for (const target of panel.targets ?? []) {
      for (const used of target.expr.matchAll(/\$([a-z_]+)/g)) {
        if (!variables.has(used[1] as string))
          problems.push(`panel ${panel.title}: unknown variable $${used[1]}`);
      }
    }
  }
  return problems;
}

const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as Dashboard;
const documented = documentedMetrics(readFileSync(join(repoRoot, 'docs', 'metrics.md'), 'utf8'));

describe('Grafana dashboard', () => {
  it('is well-formed', () => {
    expect(dashboardProblems(dashboard)).toEqual([]);
    expect(dashboard.panels.filter((p) => p.type !== 'row').length).toBeGreaterThan(10);
  });

  it('queries only metrics the services export (docs/metrics.md)', () => {
    const problems = dashboard.panels.flatMap((p) =>
      (p.targets ?? []).flatMap((t) => queryProblems(t.expr, documented)),
    );
    expect(problems).toEqual([]);
  });

  it('docs/metrics.md lists exactly the postmesh_ metrics the code registers', () => {
    const registered = registeredMetrics();
    expect(registered.size).toBeGreaterThan(15);
    expect([...documented.keys()].filter((name) => !registered.has(name))).toEqual([]);
    expect([...registered].filter((name) => !documented.has(name))).toEqual([]);
  });

  it('each check fails on what it is for', () => {
    expect(queryProblems('rate(postmesh_no_such_metric_total[5m])', documented)).toHaveLength(1);
    expect(queryProblems('sum(rate(postmesh_smtp_messages_total[5m])', documented)).toHaveLength(1);
    // A counter has no buckets.
    expect(queryProblems('postmesh_smtp_messages_total_bucket', documented)).toHaveLength(1);
    expect(queryProblems('up', documented)).toHaveLength(1);
    expect(
      queryProblems('histogram_quantile(0.9, rate(postmesh_smtp_accept_seconds_bucket[5m]))', documented),
    ).toEqual([]);
    const broken: Dashboard = {
      ...dashboard,
      panels: [
        ...dashboard.panels,
        { ...(dashboard.panels[1] as Panel), gridPos: { x: 20, y: 0, w: 8, h: 8 } },
      ],
    };
    expect(dashboardProblems(broken)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/duplicate panel id/),
        expect.stringMatching(/off the grid/),
      ]),
    );
  });
});
