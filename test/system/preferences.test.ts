// A preference changed through the api of one process is honoured at once by a worker in
// another process that has the user's preferences cached (invalidated by NOTIFY herald_settings).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { spawnHerald, type HeraldProcess } from '../helpers/spawn-herald.js';
import { waitFor } from '../helpers/wait-for.js';

let db: TestDatabase;
let h: TestHerald;
let worker: HeraldProcess | undefined;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api'] });
});
after(async () => {
  worker?.kill('SIGTERM');
  if (worker !== undefined) await worker.exited;
  await h.stop();
  await db.drop();
});

test("a preference changed through another process's api is honoured by a worker's cache", async () => {
  worker = spawnHerald(['worker'], { DATABASE_URL: db.url, POLL_INTERVAL_MS: '200', OPS_PORT: '0' });
  assert.equal((await h.call('PUT', '/v1/users/pia', {})).status, 200);
  const send = async () => {
    const res = await h.call('POST', '/v1/notifications', {
      recipients: ['pia'],
      channels: ['in_app'],
      category: 'news',
      content: { default: { title: 'Hi' } },
    });
    assert.equal(res.status, 202);
    return res.body.id as string;
  };
  const stateOf = (id: string) =>
    waitFor(
      `the in-app delivery of ${id}`,
      async () => {
        const { rows } = await db.pool.query<{ state: string; last_error: string | null }>(
          'SELECT state, last_error FROM deliveries WHERE notification_id = $1',
          [id],
        );
        return rows[0];
      },
      30_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; the worker said: ${worker?.output() ?? ''}`);
    });

  // The worker caches pia's (empty) preferences while fanning this out.
  assert.equal((await stateOf(await send())).state, 'delivered');

  const changed = await h.call('PUT', '/v1/users/pia/preferences', {
    preferences: [{ channel: 'in_app', category: 'news', enabled: false }],
  });
  assert.equal(changed.status, 200);
  assert.deepEqual(await stateOf(await send()), {
    state: 'suppressed',
    last_error: 'preference: opted out of in_app/news',
  });

  await h.call('PUT', '/v1/users/pia/preferences', { preferences: [] });
  assert.equal((await stateOf(await send())).state, 'delivered');
});
