// A digest under four worker processes on one database: 50 notifications with the same digest
// key for one user in one window give exactly one summary carrying all 50 items (whichever
// workers join the items and close the digest), and a late arrival opens the next window.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { startWorkerProcesses, type HeraldProcess } from '../helpers/spawn-herald.js';
import { waitFor as waitForWhat } from '../helpers/wait-for.js';

let db: TestDatabase;
let h: TestHerald;
let workers: HeraldProcess[] = [];

before(async () => {
  db = await createTestDatabase();
  // The api in this process; every worker is a process of its own.
  h = await startTestHerald(db, { roles: ['api'] });
  const put = await h.call('PUT', '/v1/templates/digest.updates', {
    category: 'updates',
    params: { what: 'string' },
    fallback_locale: 'en',
    variants: {
      in_app: {
        en: { title: '{{ item_count }} updates', body: '{% for i in items %}{{ i.what }};{% endfor %}' },
      },
    },
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  workers = await startWorkerProcesses(db.pool, 4, { DATABASE_URL: db.url, POLL_INTERVAL_MS: '200' });
});
after(async () => {
  for (const w of workers) w.kill('SIGTERM');
  for (const w of workers) assert.equal(await w.exited, 0, w.output());
  await h.stop();
  await db.drop();
});

const waitFor = <T>(check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> =>
  waitForWhat('the digest to get there', check, timeoutMs);

async function count(sql: string, params: unknown[]): Promise<number> {
  return (await db.pool.query<{ n: number }>(sql, params)).rows[0]?.n ?? 0;
}

const deliveriesOf = (id: string, channel: string) =>
  count('SELECT count(*)::int AS n FROM deliveries WHERE notification_id = $1 AND channel = $2', [
    id,
    channel,
  ]);

test('a digest of 50 events in one window gives exactly one summary with 50 items, under four worker processes', async () => {
  assert.equal((await h.call('PUT', '/v1/users/dana', {})).status, 200);
  // The window is long and max_items closes it: the 50 runs join as four workers advance them,
  // which on a loaded machine takes longer than a short window would wait.
  const steps = [{ type: 'digest', key: 'comments', window: '60s', max_items: 50 }];
  const posts = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      h.call('POST', '/v1/notifications', {
        recipients: ['dana'],
        channels: ['in_app'],
        template: 'digest.updates',
        params: { what: `c${String(i)}` },
        steps,
      }),
    ),
  );
  assert.deepEqual(new Set(posts.map((p) => p.status)), new Set([202]));
  const summaries = await waitFor(async () => {
    const r = await db.pool.query<{ summary_id: string; item_count: number }>(
      "SELECT summary_id, item_count FROM digests WHERE user_id = 'dana' AND state = 'sent'",
    );
    const open = await count(
      "SELECT count(*)::int AS n FROM digests WHERE user_id = 'dana' AND state IN ('open', 'full')",
      [],
    );
    return r.rows.length > 0 && open === 0 ? r.rows : undefined;
  }, 20_000);
  assert.equal(summaries.length, 1, 'one summary');
  const summary = summaries[0]!;
  assert.equal(summary.item_count, 50);
  const items = await db.pool.query<{ params: { items: { what: string }[]; item_count: number } }>(
    'SELECT params FROM notifications WHERE id = $1',
    [summary.summary_id],
  );
  const params = items.rows[0]!.params;
  assert.equal(params.item_count, 50);
  assert.deepEqual(
    new Set(params.items.map((i) => i.what)),
    new Set(Array.from({ length: 50 }, (_, i) => `c${String(i)}`)),
  );
  await waitFor(async () => ((await deliveriesOf(summary.summary_id, 'in_app')) === 1 ? true : undefined));
  // The 50 notifications themselves sent nothing: the summary is the only thing in the inbox.
  assert.equal(await count("SELECT count(*)::int AS n FROM inbox_items WHERE user_id = 'dana'", []), 1);
  // A late arrival opens the next window.
  const late = await h.call('POST', '/v1/notifications', {
    recipients: ['dana'],
    channels: ['in_app'],
    template: 'digest.updates',
    params: { what: 'late' },
    steps: [{ type: 'digest', key: 'comments', window: '2s' }],
  });
  assert.equal(late.status, 202);
  await waitFor(
    async () =>
      (await count(
        "SELECT count(*)::int AS n FROM digests WHERE user_id = 'dana' AND state = 'sent'",
        [],
      )) === 2
        ? true
        : undefined,
    20_000,
  );
  const second = await db.pool.query<{ item_count: number }>(
    "SELECT item_count FROM digests WHERE user_id = 'dana' ORDER BY opened_at DESC LIMIT 1",
  );
  assert.equal(second.rows[0]?.item_count, 1);
});
