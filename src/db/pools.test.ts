// Calendar days (date columns, e.g. archive_progress.month) survive a process whose time zone
// is not UTC: sent and read as UTC midnight.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

test('a month start goes to a date column and comes back as the same UTC midnight in any time zone', async () => {
  const zone = process.env['TZ'];
  try {
    for (const tz of ['Pacific/Kiritimati', 'America/Los_Angeles', 'UTC']) {
      process.env['TZ'] = tz;
      const june = new Date(Date.UTC(2026, 5, 1));
      const { rows } = await db.pool.query<{ sent: string; back: Date }>(
        "SELECT $1::date::text AS sent, '2026-06-01'::date AS back",
        [june],
      );
      const [row] = rows;
      assert.ok(row !== undefined);
      assert.equal(row.sent, '2026-06-01', tz);
      assert.equal(row.back.toISOString(), june.toISOString(), tz);
    }
  } finally {
    if (zone === undefined) delete process.env['TZ'];
    else process.env['TZ'] = zone;
  }
});
