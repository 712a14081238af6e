// The monitoring files in ops/: the Prometheus alerting rules and the Grafana dashboard. Every
// metric they name is one Herald publishes (checked against a real registry, so a renamed
// metric breaks this test, not an alert or a panel in production). With promtool (installed in
// CI, HERALD_REQUIRE_PROMTOOL=1) the rules pass `promtool check rules` and their unit tests
// (`promtool test rules`: each alert fires on the series that mean trouble and stays quiet on
// healthy ones), and every dashboard query parses as PromQL. docs/observability.md lists every
// metric family and every alert, and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/db/package-root.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { registerStatementCounter } from '../../src/observability/statement-metrics.js';

const promtool = '/usr/bin/promtool';
const dir = join(packageRoot, 'ops', 'prometheus');
const dashboardFile = join(packageRoot, 'ops', 'grafana', 'herald-dashboard.json');
const withPromtool = existsSync(promtool) || process.env['HERALD_REQUIRE_PROMTOOL'] === '1';

/** The queries of the dashboard's panels, with Grafana's $__rate_interval made concrete. */
function dashboardQueries(): string[] {
  const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
    panels: { targets: { expr: string }[] }[];
  };
  return dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr.replaceAll('$__rate_interval', '5m')));
}

/** The metric names a text uses: Herald's, and the standard process and Node.js ones. */
function metricNames(text: string): Set<string> {
  const names = text.match(/\b(?:herald|process|nodejs)_[a-z_]+/g) ?? [];
  // A histogram is queried through its series: name_bucket, name_sum, name_count.
  return new Set(names.map((n) => n.replace(/_(bucket|sum|count)$/, '')));
}

/**
 * Every metric some process publishes: a scheduler's backlog gauges, a replica reader's lag, the
 * statement counter every process registers beside them (src/composition/infrastructure.ts).
 */
function allMetrics(): ReturnType<typeof createMetrics> {
  const metrics = createMetrics({
    readPending: () => Promise.resolve([]),
    readReplicaLag: () => Promise.resolve(0),
    readCallbackBacklog: () => Promise.resolve({ pending: 0, dead: 0 }),
  });
  registerStatementCounter(metrics.registry, () => new Map([['write', 1]]));
  return metrics;
}

test('every metric an alert or a dashboard panel names is one Herald publishes', async () => {
  const metrics = allMetrics();
  const published = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  const rules = metricNames(readFileSync(join(dir, 'herald-alerts.yml'), 'utf8'));
  const panels = metricNames(dashboardQueries().join('\n'));
  assert.ok(rules.size >= 8 && panels.size >= 12, 'the files name metrics');
  for (const name of [...rules, ...panels]) assert.ok(published.has(name), `${name} is published`);
});

test('docs/observability.md lists every Herald metric family and every alert, and only those', async () => {
  const doc = readFileSync(join(packageRoot, 'docs', 'observability.md'), 'utf8');
  const firstCell = (line: string) => /^\| `([A-Za-z_]+)`/.exec(line)?.[1];
  const documented = doc.split('\n').flatMap((line) => firstCell(line) ?? []);
  const metrics = allMetrics();
  const families = (await metrics.registry.getMetricsAsJSON())
    .map((m) => m.name)
    .filter((n) => n.startsWith('herald_'));
  assert.deepEqual(documented.filter((n) => n.startsWith('herald_')).sort(), families.sort());
  const rules = readFileSync(join(dir, 'herald-alerts.yml'), 'utf8');
  const alerts = [...rules.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]);
  assert.deepEqual(documented.filter((n) => n.startsWith('Herald')).sort(), alerts.sort());
});

test('promtool: every dashboard query parses as PromQL', () => {
  if (!withPromtool) return;
  const scratch = mkdtempSync(join(tmpdir(), 'herald-dashboard-'));
  try {
    const rules = dashboardQueries()
      .map(
        (expr, i) => `      - record: herald:dashboard_${String(i)}\n        expr: ${JSON.stringify(expr)}`,
      )
      .join('\n');
    writeFileSync(join(scratch, 'queries.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
    const run = spawnSync(promtool, ['check', 'rules', 'queries.yml'], { cwd: scratch, encoding: 'utf8' });
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(run.status, 0, run.stdout + run.stderr);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('promtool: the rules are valid and their unit tests pass', () => {
  if (!withPromtool) return;
  for (const args of [
    ['check', 'rules', 'herald-alerts.yml'],
    ['test', 'rules', 'herald-alerts.test.yml'],
  ]) {
    const run = spawnSync(promtool, args, { cwd: dir, encoding: 'utf8' });
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(run.status, 0, `promtool ${args.join(' ')}:\n${run.stdout}${run.stderr}`);
  }
});
