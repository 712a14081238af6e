// Topics: a send to a topic is accepted without reading its subscribers, and the worker fans it
// out straight from them, one recipient per subscriber (opted-out ones skipped), a page per
// transaction with a cursor, so an interrupted send resumes without duplicates. Another service's key finds
// none of a service's topics (404), and request sizes are bounded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../../test/helpers/test-herald.js';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { createApiKey, ensureService } from '../../db/stores/api-key-store.js';
import { permissions } from '../../domain/permissions.js';
import { withTransaction } from '../../db/pools.js';
import { claimTopicPage } from '../../db/stores/topic-store.js';

let db: TestDatabase;
let api: TestHerald;
let worker: TestHerald;
let otherKey: string;

before(async () => {
  db = await createTestDatabase();
  api = await startTestHerald(db, { roles: ['api', 'query'] });
  // A worker whose fan-out loops are stopped: the tests below fan topic pages out one at a time.
  worker = await startTestHerald(db, { roles: ['worker'], env: { TOPIC_FAN_OUT_CHUNK: '100' } });
  await worker.herald.fanOut?.stop();
  otherKey = await createApiKey(db.pool, await ensureService(db.pool, 'other'), permissions);
});

after(async () => {
  await worker.stop();
  await api.stop();
  await db.drop();
});

/** Fans out the next page of a due topic send (100 subscribers); false when there was none. */
const fanOutPage = async () => (await worker.herald.fanOut?.fanOutTopicPage()) ?? false;

/** Users u<prefix>-00000 … in one statement. */
async function makeUsers(prefix: string, n: number): Promise<string[]> {
  const result = await db.pool.query<{ id: string }>(
    `INSERT INTO users (id) SELECT $1 || '-' || lpad(g::text, 5, '0') FROM generate_series(1, $2) g RETURNING id`,
    [prefix, n],
  );
  return result.rows.map((r) => r.id).sort();
}

async function topicWith(key: string, users: string[]): Promise<void> {
  assert.equal((await api.call('POST', '/v1/topics', { key })).status, 201);
  for (let i = 0; i < users.length; i += 10_000) {
    const res = await api.call('POST', `/v1/topics/${key}/subscribers`, {
      user_ids: users.slice(i, i + 10_000),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
}

const send = (body: Record<string, unknown>, key?: string) =>
  api.call(
    'POST',
    '/v1/notifications',
    { channels: ['in_app'], content: { default: { title: 'News' } }, ...body },
    key === undefined ? {} : { key },
  );

/** Each recipient row's user and state, and how many rows and deliveries the user has. */
const recipientsOf = async (id: string) =>
  (
    await db.pool.query<{ user_id: string; n: string; state: string; deliveries: number }>(
      `SELECT r.user_id, count(*) AS n, min(r.state) AS state,
              (SELECT count(*)::int FROM deliveries d WHERE d.notification_id = $1 AND d.user_id = r.user_id) AS deliveries
         FROM recipients r WHERE r.notification_id = $1 GROUP BY r.user_id ORDER BY r.user_id`,
      [id],
    )
  ).rows;

describe('topics', () => {
  test('create, list in pages, read, subscribe (unknown ids reported), list subscribers in pages, unsubscribe', async () => {
    const users = await makeUsers('crud', 5);
    for (const key of ['b-news', 'a-news', 'c-news'])
      assert.equal((await api.call('POST', '/v1/topics', { key, name: key.toUpperCase() })).status, 201);
    const again = await api.call('POST', '/v1/topics', { key: 'a-news' });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'topic_exists');
    const first = await api.call('GET', '/v1/topics?limit=2');
    assert.deepEqual(
      first.body.topics.map((t: { key: string }) => t.key),
      ['a-news', 'b-news'],
    );
    const second = await api.call('GET', `/v1/topics?limit=2&after=${first.body.next_after as string}`);
    assert.deepEqual(
      second.body.topics.map((t: { key: string }) => t.key),
      ['c-news'],
    );
    assert.equal(second.body.next_after, null);

    const added = await api.call('POST', '/v1/topics/a-news/subscribers', {
      user_ids: [...users, users[0], 'nobody'],
    });
    assert.deepEqual(added.body, { added: 5, unknown: ['nobody'] });
    const repeat = await api.call('POST', '/v1/topics/a-news/subscribers', { user_ids: users.slice(0, 2) });
    assert.deepEqual(repeat.body, { added: 0, unknown: [] });
    assert.equal((await api.call('GET', '/v1/topics/a-news')).body.subscribers, 5);

    const page1 = await api.call('GET', '/v1/topics/a-news/subscribers?limit=3');
    const page2 = await api.call(
      'GET',
      `/v1/topics/a-news/subscribers?limit=3&after=${page1.body.next_after as string}`,
    );
    const listed = [...page1.body.subscribers, ...page2.body.subscribers].map(
      (s: { user_id: string }) => s.user_id,
    );
    assert.deepEqual(listed, users);
    assert.equal(page2.body.next_after, null);

    const removed = await api.call('POST', '/v1/topics/a-news/subscribers/remove', {
      user_ids: [users[0], 'nobody'],
    });
    assert.deepEqual(removed.body, { removed: 1 });
    assert.equal((await api.call('GET', '/v1/topics/a-news')).body.subscribers, 4);
    assert.equal((await api.call('DELETE', '/v1/topics/c-news')).status, 204);
    assert.equal((await api.call('GET', '/v1/topics/c-news')).status, 404);
  });

  test('a topic send is stored with its topic, not its subscribers; the worker expands it once per subscriber, skipping opt-outs, and resumes after an interruption', async () => {
    const users = await makeUsers('fan', 450);
    await topicWith('fan', users);
    const optedOut = [users[3], users[200], users[449]] as string[];
    for (const user of optedOut)
      assert.equal((await api.call('PUT', `/v1/users/${user}/topic-opt-outs/fan`)).status, 204);
    // Opting back in counts: this one is delivered.
    await api.call('PUT', `/v1/users/${users[10] as string}/topic-opt-outs/fan`);
    assert.equal(
      (await api.call('DELETE', `/v1/users/${users[10] as string}/topic-opt-outs/fan`)).status,
      204,
    );
    assert.deepEqual((await api.call('GET', `/v1/users/${users[3] as string}/topic-opt-outs`)).body, {
      topics: ['fan'],
    });

    const accepted = await send({ topic: 'fan' });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    assert.equal(accepted.body.recipients, 450);
    const id = accepted.body.id as string;
    assert.deepEqual(await recipientsOf(id), [], 'the 202 wrote no recipient rows');
    const read = await api.call('GET', `/v1/notifications/${encodeURIComponent(id)}`);
    assert.equal(read.body.status, 'accepted', 'not completed while its subscribers wait to be expanded');

    // A worker killed mid-page: its transaction rolls back, the cursor stays where it was.
    await assert.rejects(
      withTransaction(db.pool, async (client) => {
        const page = await claimTopicPage(client, 100);
        assert.equal(page?.paged, 100);
        throw new Error('killed');
      }),
      /killed/,
    );
    assert.deepEqual(await recipientsOf(id), []);
    // Two pages commit: their recipients are written once, already fanned out, with their deliveries.
    for (let i = 0; i < 2; i += 1) assert.equal(await fanOutPage(), true);
    const cursor = await db.pool.query<{ cursor_user_id: string }>(
      'SELECT cursor_user_id FROM topic_sends WHERE notification_id = $1',
      [id],
    );
    assert.equal(cursor.rows[0]?.cursor_user_id, users[199]);
    const first = await recipientsOf(id);
    assert.equal(first.length, 199, 'users 1–200 minus one opt-out');
    assert.ok(first.every((r) => r.state === 'fanned_out' && r.deliveries === 1));
    // A repeated page (a cursor set back) creates nothing twice.
    await db.pool.query('UPDATE topic_sends SET cursor_user_id = $2 WHERE notification_id = $1', [
      id,
      users[149],
    ]);
    while (await fanOutPage());
    const rows = await recipientsOf(id);
    const expected = users.filter((u) => !optedOut.includes(u));
    assert.deepEqual(
      rows.map((r) => r.user_id),
      expected,
    );
    assert.ok(rows.every((r) => Number(r.n) === 1 && r.deliveries === 1));
    assert.equal(
      (await db.pool.query('SELECT 1 FROM topic_sends WHERE notification_id = $1', [id])).rowCount,
      0,
    );
    const done = await api.call('GET', `/v1/notifications/${encodeURIComponent(id)}`);
    assert.equal(done.body.status, 'completed');
  });

  test('end to end with a worker: every subscriber gets one in-app delivery', async () => {
    const users = await makeUsers('e2e', 250);
    await topicWith('e2e', users);
    await api.call('PUT', `/v1/users/${users[0] as string}/topic-opt-outs/e2e`);
    const worker = await startTestHerald(db, { roles: ['worker'], env: { TOPIC_FAN_OUT_CHUNK: '100' } });
    try {
      const accepted = await send({ topic: 'e2e' });
      assert.equal(accepted.status, 202);
      const id = accepted.body.id as string;
      const delivered = await waitFor('all deliveries', async () => {
        const r = await db.pool.query<{ user_id: string; n: string }>(
          `SELECT user_id, count(*) AS n FROM deliveries WHERE notification_id = $1 AND state = 'delivered'
            GROUP BY user_id ORDER BY user_id`,
          [id],
        );
        return r.rows.length === 249 ? r.rows : undefined;
      });
      assert.deepEqual(
        delivered.map((d) => d.user_id),
        users.slice(1),
      );
      assert.ok(delivered.every((d) => Number(d.n) === 1));
    } finally {
      await worker.stop();
    }
  });

  test('canceling a topic send stops its fan-out', async () => {
    const users = await makeUsers('cancel', 150);
    await topicWith('cancel', users);
    const id = (await send({ topic: 'cancel' })).body.id as string;
    assert.equal(await fanOutPage(), true);
    const canceled = await api.call('POST', `/v1/notifications/${encodeURIComponent(id)}/cancel`);
    assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
    assert.equal(await fanOutPage(), false);
    const states = await db.pool.query<{ state: string; n: string }>(
      'SELECT state, count(*)::int AS n FROM recipients WHERE notification_id = $1 GROUP BY state',
      [id],
    );
    assert.deepEqual(states.rows, [{ state: 'fanned_out', n: 100 }], 'the first page only');
    // Canceled before any subscriber was fanned out: nothing is left to fan out.
    const early = (await send({ topic: 'cancel' })).body.id as string;
    const canceledEarly = await api.call('POST', `/v1/notifications/${encodeURIComponent(early)}/cancel`);
    assert.deepEqual(canceledEarly.body, { id: early, canceled_recipients: 0, canceled_deliveries: 0 });
    assert.equal(await fanOutPage(), false);
  });
});

describe('attacks', () => {
  test("another service cannot send to, read, list, change or delete a service's topic: 404", async () => {
    const users = await makeUsers('own', 3);
    await topicWith('private', users);
    const before = await db.pool.query('SELECT count(*) FROM notifications');
    const sent = await send({ topic: 'private' }, otherKey);
    assert.equal(sent.status, 404);
    assert.equal(sent.body.code, 'topic_not_found');
    assert.deepEqual((await db.pool.query('SELECT count(*) FROM notifications')).rows, before.rows);
    const calls: [string, string, unknown?][] = [
      ['GET', '/v1/topics/private'],
      ['GET', '/v1/topics/private/subscribers'],
      ['POST', '/v1/topics/private/subscribers', { user_ids: ['own-00001'] }],
      ['POST', '/v1/topics/private/subscribers/remove', { user_ids: users }],
      ['DELETE', '/v1/topics/private'],
      ['PUT', '/v1/users/own-00001/topic-opt-outs/private'],
    ];
    for (const [method, path, body] of calls) {
      const res = await api.call(method, path, body, { key: otherKey });
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    assert.deepEqual((await api.call('GET', '/v1/topics', undefined, { key: otherKey })).body.topics, []);
    const topic = await api.call('GET', '/v1/topics/private');
    assert.equal(topic.body.subscribers, 3, 'unchanged');
    assert.equal(
      (
        await db.pool.query(
          "SELECT 1 FROM topic_opt_outs o JOIN topics t ON t.id = o.topic_id WHERE t.key = 'private'",
        )
      ).rowCount,
      0,
    );
  });

  test('bounded requests: subscriber batches, pages, exactly one of recipients and topic, no steps with a topic; refused requests change nothing', async () => {
    await api.call('POST', '/v1/topics', { key: 'bounds' });
    const tooMany = Array.from({ length: 10_001 }, (_, i) => `x${String(i)}`);
    const big = await api.call('POST', '/v1/topics/bounds/subscribers', { user_ids: tooMany });
    assert.equal(big.status, 400);
    assert.equal(big.body.code, 'validation_failed');
    assert.equal((await api.call('GET', '/v1/topics/bounds/subscribers?limit=1001')).status, 400);
    assert.equal((await api.call('POST', '/v1/topics', { key: 'Bad Key' })).status, 400);
    const count = async () =>
      (await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM notifications')).rows;
    const before = await count();
    const both = await send({ topic: 'bounds', recipients: ['own-00001'] });
    assert.equal(both.status, 400);
    assert.equal(both.body.code, 'validation_failed');
    const neither = await send({});
    assert.equal(neither.status, 400);
    const missing = await send({ topic: 'no-such-topic' });
    assert.equal(missing.status, 404);
    // Workflow steps run per recipient from the accept on: a topic send cannot carry them.
    const stepped = await send({ topic: 'bounds', steps: [{ type: 'delay', for: '1m' }] });
    assert.equal(stepped.body.code, 'workflow_invalid');
    assert.deepEqual(await count(), before);
  });

  test("query role: a user's token opts out of any service's topic; another user's token or service's key cannot", async () => {
    const [u1, u2] = await makeUsers('tok', 2);
    await topicWith('tok', [u1 as string, u2 as string]);
    const query = { base: api.herald.queryUrl ?? '' };
    const tokenOf = async (user: string) =>
      (await api.call('POST', `/v1/users/${user}/token`, { ttl_seconds: 600 }, query)).body.token as string;
    const t1 = await tokenOf(u1 as string);
    const t2 = await tokenOf(u2 as string);
    const path = (user: string) => `/v1/users/${user}/topic-opt-outs/shop/tok`;
    const before = await db.pool.query('SELECT * FROM topic_opt_outs ORDER BY user_id');
    // u2's token for u1, another service's key, a topic of no such service: all 404, nothing written.
    for (const [p, key] of [
      [path(u1 as string), t2],
      [path(u1 as string), otherKey],
      [`/v1/users/${u1 as string}/topic-opt-outs/nosuch/tok`, t1],
    ] as const) {
      const res = await api.call('PUT', p, undefined, { ...query, key });
      assert.equal(res.status, 404, `${p} ${res.status}`);
    }
    assert.deepEqual(
      (await db.pool.query('SELECT * FROM topic_opt_outs ORDER BY user_id')).rows,
      before.rows,
    );
    assert.equal((await api.call('PUT', path(u1 as string), undefined, { ...query, key: t1 })).status, 204);
    const mine = await api.call('GET', `/v1/users/${u1 as string}/topic-opt-outs`, undefined, {
      ...query,
      key: t1,
    });
    assert.deepEqual(mine.body, { opt_outs: [{ service: 'shop', topic: 'tok' }] });
    const others = await api.call('GET', `/v1/users/${u1 as string}/topic-opt-outs`, undefined, {
      ...query,
      key: otherKey,
    });
    assert.deepEqual(others.body, { opt_outs: [] }, "another service's key sees none of shop's topics");
    assert.equal(
      (await api.call('GET', `/v1/users/${u1 as string}/topic-opt-outs`, undefined, { ...query, key: t2 }))
        .status,
      404,
    );
    const id = (await send({ topic: 'tok' })).body.id as string;
    while (await fanOutPage());
    assert.deepEqual(
      (await recipientsOf(id)).map((r) => r.user_id),
      [u2],
    );
    assert.equal(
      (await api.call('DELETE', path(u1 as string), undefined, { ...query, key: t1 })).status,
      204,
    );
    assert.deepEqual(
      (await api.call('GET', `/v1/users/${u1 as string}/topic-opt-outs`, undefined, { ...query, key: t1 }))
        .body,
      { opt_outs: [] },
    );
  });

  test('a topic send naming a rate budget is written as pending recipients that its budget paces', async () => {
    const users = await makeUsers('paced', 5);
    await topicWith('paced', users);
    assert.equal((await api.call('PUT', '/v1/rate-budgets/paced', { per_second: 2 })).status, 200);
    const sent = await send({ topic: 'paced', lane: 'bulk', budget: 'paced' });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const id = sent.body.id as string;
    while (await fanOutPage());
    const pending = await recipientsOf(id);
    assert.deepEqual(
      pending.map((r) => r.user_id),
      users,
    );
    assert.ok(pending.every((r) => r.state === 'pending' && r.deliveries === 0));
    const fanOut = worker.herald.fanOut;
    assert.ok(fanOut !== undefined);
    // The transactional loop's batch never takes a budgeted recipient; a bulk batch takes one second's room.
    await fanOut.fanOutBatch(['transactional']);
    assert.ok((await recipientsOf(id)).every((r) => r.state === 'pending'));
    await fanOut.fanOutBatch(['bulk']);
    const first = await recipientsOf(id);
    assert.equal(first.filter((r) => r.state === 'fanned_out' && r.deliveries === 1).length, 2);
    await waitFor('every paced recipient fanned out', async () => {
      await fanOut.fanOutBatch(['bulk']);
      return (await recipientsOf(id)).every((r) => r.state === 'fanned_out' && r.deliveries === 1);
    });
  });

  test('a key without users:write cannot manage topics; a sender may send to them', async () => {
    const sender = await createApiKey(db.pool, await ensureService(db.pool, 'shop'), ['send']);
    const res = await api.call('POST', '/v1/topics', { key: 'nope' }, { key: sender });
    assert.equal(res.status, 403);
    await makeUsers('snd', 1);
    await topicWith('snd', ['snd-00001']);
    assert.equal((await send({ topic: 'snd' }, sender)).status, 202);
  });
});
