// /metrics as Prometheus and stock dashboards read it: names that pass `promtool check metrics`
// (run when promtool is installed, and required in CI by HERALD_REQUIRE_PROMTOOL=1; the same
// naming rules are checked here either way), Node's and the process's metrics under their
// standard names, HTTP requests counted by route template, and the backlog: a notification
// waiting with no worker running shows in the gauges, which only a scheduler process publishes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';

const promtool = '/usr/bin/promtool';
let db: TestDatabase;
let h: TestHerald;

before(async () => {
  db = await createTestDatabase();
  // No worker: what is accepted waits.
  h = await startTestHerald(db, { roles: ['api', 'scheduler'] });
});
after(async () => {
  await h.stop();
  await db.drop();
});

const scrape = (base: string) => fetch(`${base}/metrics`).then((r) => r.text());

/** The naming rules promtool's `check metrics` applies that Herald could break. */
function namingProblems(exposition: string): string[] {
  const problems: string[] = [];
  const types = new Map<string, string>();
  for (const line of exposition.split('\n')) {
    const typed = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (typed?.[1] !== undefined && typed[2] !== undefined) types.set(typed[1], typed[2]);
  }
  for (const [name, type] of types) {
    if (!/^[a-z_:][a-z0-9_:]*$/.test(name)) problems.push(`${name}: not snake_case`);
    if (type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: a counter without _total`);
    if (type !== 'counter' && name.endsWith('_total')) problems.push(`${name}: a ${type} named _total`);
    if (/_(milli|micro)seconds|_ms$/.test(name)) problems.push(`${name}: time not in seconds`);
    if (!exposition.includes(`# HELP ${name} `)) problems.push(`${name}: no help`);
  }
  return problems;
}

test('a waiting notification shows in the backlog gauges within 10 s while no worker runs', async () => {
  const sent = await h.call('POST', '/v1/notifications', {
    recipients: ['ann', 'bob'],
    channels: ['in_app'],
    content: { default: { title: 'Waiting', body: 'for a worker' } },
  });
  assert.equal(sent.status, 202);
  const metrics = await waitFor(
    'the waiting recipients gauge above 0',
    async () => {
      const text = await scrape(h.herald.apiUrl ?? '');
      return /herald_waiting_recipients\{lane="transactional"\} 2\b/.test(text) ? text : undefined;
    },
    10_000,
  );
  assert.match(metrics, /herald_oldest_waiting_recipient_age_seconds\{lane="transactional"\} [\d.]+/);
  assert.match(metrics, /herald_pending_deliveries\{lane="transactional"\} 0/);
  assert.match(
    metrics,
    /herald_http_requests_total\{role="api",method="POST",route="\/v1\/notifications",status="202"\} 1\b/,
  );
  assert.match(
    metrics,
    /herald_http_request_duration_seconds_bucket\{le="0\.5",role="api",method="POST",route="\/v1\/notifications"\} 1\b/,
  );
});

test('process and Node.js metrics keep their standard names; every name passes the naming rules', async () => {
  await h.call('GET', '/v1/notifications/shop%23nosuch');
  const metrics = await scrape(h.herald.apiUrl ?? '');
  assert.match(metrics, /^process_cpu_seconds_total /m);
  assert.match(metrics, /^nodejs_heap_size_used_bytes /m);
  assert.doesNotMatch(metrics, /herald_process_/);
  assert.match(metrics, /route="\/v1\/notifications\/:id"/, 'the route template, not the URL');
  assert.doesNotMatch(metrics, /nosuch/);
  assert.deepEqual(namingProblems(metrics), []);
  if (existsSync(promtool) || process.env['HERALD_REQUIRE_PROMTOOL'] === '1') {
    const checked = spawnSync(promtool, ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    assert.equal(checked.error, undefined, `promtool: ${String(checked.error)}`);
    assert.equal(checked.status, 0, checked.stdout + checked.stderr);
  }
});

test('a process without the scheduler role does not publish the database-wide backlog', async () => {
  const api = await startTestHerald(db, { roles: ['api'] });
  try {
    const metrics = await scrape(api.herald.apiUrl ?? '');
    assert.match(metrics, /herald_recipients_accepted_total/);
    assert.doesNotMatch(metrics, /herald_waiting_recipients|herald_pending_deliveries/);
  } finally {
    await api.stop();
  }
});
