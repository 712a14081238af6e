// The server settings check: what it reports for given values, and that the job reads the real
// server's values (this machine's server may run with autovacuum on or off; the warning follows it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { logLines } from '../../test/helpers/log-lines.js';
import { createLogger } from '../observability/logger.js';
import { serverSettingsCheck, settingProblems } from './server-settings-check.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

test('names every setting that is off, and nothing when all are on', () => {
  assert.deepEqual(
    settingProblems(
      new Map([
        ['autovacuum', 'on'],
        ['track_counts', 'on'],
      ]),
    ),
    [],
  );
  const problems = settingProblems(new Map([['autovacuum', 'off']]));
  assert.equal(problems.length, 2);
  assert.match(problems[0] ?? '', /^autovacuum is off, should be on/);
  assert.match(problems[1] ?? '', /^track_counts is unknown, should be on/);
});

test('the job warns exactly when the server has autovacuum or track_counts off', async () => {
  const shown = await db.pool.query<{ a: string; t: string }>(
    "SELECT current_setting('autovacuum') AS a, current_setting('track_counts') AS t",
  );
  const row = shown.rows[0];
  assert.ok(row);
  const off = row.a !== 'on' || row.t !== 'on';
  const { sink, lines } = logLines();
  await serverSettingsCheck({ pool: db.pool, logger: createLogger('info', sink) })();
  const warnings = lines.filter((l) => l['msg'] === 'PostgreSQL settings Herald needs are off');
  assert.equal(warnings.length, off ? 1 : 0);
});
