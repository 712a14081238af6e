// The Prometheus alerting rules in ops/prometheus/: every metric they name is one Herald
// publishes (checked against a real registry, so a renamed metric breaks this test, not an
// alert in production), and with promtool (installed in CI, HERALD_REQUIRE_PROMTOOL=1) the
// rules pass `promtool check rules` and their unit tests (`promtool test rules`), in which each
// alert fires on the series that mean trouble and stays quiet on healthy ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/db/package-root.js';
import { createMetrics } from '../../src/observability/metrics.js';

const promtool = '/usr/bin/promtool';
const dir = join(packageRoot, 'ops', 'prometheus');

test('every metric an alert names is one Herald publishes', async () => {
  const rules = readFileSync(join(dir, 'herald-alerts.yml'), 'utf8');
  const named = new Set(rules.match(/\bherald_[a-z_]+/g) ?? []);
  assert.ok(named.size >= 8, 'the rules name Herald metrics');
  // A scheduler process publishes everything, the backlog gauges included.
  const metrics = createMetrics(() => Promise.resolve([]));
  const published = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  for (const name of named) assert.ok(published.has(name), `${name} is published`);
});

test('promtool: the rules are valid and their unit tests pass', () => {
  if (!existsSync(promtool) && process.env['HERALD_REQUIRE_PROMTOOL'] !== '1') return;
  for (const args of [
    ['check', 'rules', 'herald-alerts.yml'],
    ['test', 'rules', 'herald-alerts.test.yml'],
  ]) {
    const run = spawnSync(promtool, args, { cwd: dir, encoding: 'utf8' });
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(run.status, 0, `promtool ${args.join(' ')}:\n${run.stdout}${run.stderr}`);
  }
});
