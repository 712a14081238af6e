// The query role is its own process: with the api role's process killed, users still list,
// mark read and receive realtime events. And with DATABASE_READ_URL it reads from there, and
// publishes that server's replication lag.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald } from '../helpers/test-herald.js';
import { spawnHerald, type HeraldProcess } from '../helpers/spawn-herald.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';
import { openSse } from '../helpers/sse-client.js';
import { createApiKey, ensureService } from '../../src/db/stores/api-key-store.js';
import { senderPermissions } from '../../src/domain/permissions.js';

let db: TestDatabase;
const processes: HeraldProcess[] = [];

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  for (const p of processes) p.kill('SIGKILL');
  await Promise.all(processes.map((p) => p.exited));
  await db.drop();
});

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

async function listening(url: string, process: HeraldProcess): Promise<void> {
  await waitFor(`${url} to answer`, async () => (await fetch(`${url}/healthz`)).ok, 30_000).catch(
    (error: unknown) => {
      throw new Error(`${String(error)}; it said: ${process.output()}`);
    },
  );
}

test('with the api process killed, the query process still lists, marks read and streams', async () => {
  const key = await createApiKey(db.pool, await ensureService(db.pool, 'shop'), [
    ...senderPermissions,
    'user_tokens',
  ]);
  const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const [apiPort, queryPort] = [await freePort(), await freePort()];
  const api = spawnHerald(['api', 'worker', 'scheduler'], {
    DATABASE_URL: db.url,
    API_PORT: String(apiPort),
    POLL_INTERVAL_MS: '200',
  });
  const query = spawnHerald(['query'], { DATABASE_URL: db.url, QUERY_PORT: String(queryPort) });
  processes.push(api, query);
  const apiUrl = `http://127.0.0.1:${String(apiPort)}`;
  const queryUrl = `http://127.0.0.1:${String(queryPort)}`;
  await Promise.all([listening(apiUrl, api), listening(queryUrl, query)]);

  const token = (await json(`${queryUrl}/v1/users/una/token`, { method: 'POST', headers: auth, body: '{}' }))
    .body.token as string;
  const user = { authorization: `Bearer ${token}` };
  const stream = await openSse(`${queryUrl}/v1/users/una/inbox/stream`, user);
  await stream.waitForEvents(1, (e) => e.event === 'ready');
  const ids: string[] = [];
  for (const title of ['First', 'Second']) {
    const res = await json(`${apiUrl}/v1/notifications`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ recipients: ['una'], channels: ['in_app'], content: { default: { title } } }),
    });
    assert.equal(res.status, 202);
    ids.push(res.body.id as string);
  }
  await stream.waitForEvents(2, (e) => e.event === 'created', 30_000);

  api.kill('SIGKILL');
  assert.equal(await api.exited, 'SIGKILL');
  await assert.rejects(fetch(`${apiUrl}/healthz`));

  const list = await json(`${queryUrl}/v1/users/una/inbox`, { headers: user });
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.body.items.map((i: { title: string }) => i.title),
    ['Second', 'First'],
  );
  const read = await json(`${queryUrl}/v1/users/una/inbox/${idPath(ids[0] ?? '')}/read`, {
    method: 'POST',
    headers: user,
  });
  assert.equal(read.status, 200);
  const [event] = await stream.waitForEvents(1, (e) => e.event === 'read');
  assert.equal(event?.data.unread_count, 1);
  assert.deepEqual((await json(`${queryUrl}/v1/users/una/inbox/count`, { headers: user })).body, {
    unread: 1,
    unseen: 1,
  });
  stream.close();
  // Without DATABASE_READ_URL there is no replica, and no lag gauge.
  assert.doesNotMatch(await (await fetch(`${queryUrl}/metrics`)).text(), /herald_read_replica_lag_seconds/);
});

test('with DATABASE_READ_URL the query role reads through it and writes read state to the primary', async () => {
  const role = `herald_reader_${randomBytes(4).toString('hex')}`;
  const database = new URL(db.url).pathname.slice(1);
  await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'reader'`);
  await db.pool.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}`);
  await db.pool.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
  const readUrl = new URL(db.url);
  readUrl.username = role;
  readUrl.password = 'reader';
  const h = await startTestHerald(db, {
    roles: ['api', 'query', 'worker'],
    env: { DATABASE_READ_URL: readUrl.toString() },
  });
  try {
    const sent = await h.call('POST', '/v1/notifications', {
      recipients: ['vic'],
      channels: ['in_app'],
      content: { default: { title: 'Via the replica' } },
    });
    assert.equal(sent.status, 202);
    const base = h.herald.queryUrl ?? '';
    const token = (await h.call('POST', '/v1/users/vic/token', {}, { base })).body.token as string;
    const list = await waitFor('the item on the read connection', async () => {
      const res = await h.call('GET', '/v1/users/vic/inbox', undefined, { base, key: token });
      return res.body.items.length === 1 ? res : undefined;
    });
    assert.equal(list.body.items[0].title, 'Via the replica');
    // The read role may only SELECT: marking read works because it goes to the primary.
    const read = await h.call(
      'POST',
      `/v1/users/vic/inbox/${idPath(sent.body.id as string)}/read`,
      undefined,
      {
        base,
        key: token,
      },
    );
    assert.equal(read.status, 200);
    const reader = await db.pool.query(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1 AND application_name = 'herald-read'`,
      [role],
    );
    assert.ok(reader.rows[0].n >= 1, 'the query role holds connections as the read role');
    // The lag, read as the unprivileged read role: this server is not a replica, so 0.
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^herald_read_replica_lag_seconds 0$/m);
  } finally {
    await h.stop();
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${role}`);
    await admin.query(`REVOKE ALL ON DATABASE ${new URL(db.url).pathname.slice(1)} FROM ${role}`);
    await admin.query(`DROP ROLE ${role}`);
    await admin.end();
  }
});
