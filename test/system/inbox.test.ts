// The user's inbox on the query role: user tokens, listing with cursors and filters, read state,
// cross-user isolation, the 90-day window, and the realtime stream with Last-Event-ID replay.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { openSse, type SseClient } from '../helpers/sse-client.js';
import { ensurePartitions } from '../../src/db/partitions.js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { bodyServer, closeServer, listenOnLoopback } from '../helpers/loopback-server.js';

let db: TestDatabase;
let h: TestHerald;
let query: string;
const streams: SseClient[] = [];

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { env: { STREAM_POLL_MS: '60000' } });
  query = h.herald.queryUrl ?? '';
});
after(async () => {
  for (const s of streams) s.close();
  await h.stop();
  await db.drop();
});

async function tokenFor(userId: string): Promise<string> {
  const res = await h.call('POST', `/v1/users/${userId}/token`, {}, { base: query });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return res.body.token as string;
}

/** Calls the query role with a user token. */
function as(token: string) {
  return (method: string, path: string, body?: unknown) =>
    h.call(method, path, body, { base: query, key: token });
}

async function send(userIds: string[], title: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await h.call('POST', '/v1/notifications', {
    recipients: userIds,
    channels: ['in_app'],
    content: { default: { title, body: `${title} body` } },
    ...extra,
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
}

async function inboxHas(userId: string, id: string): Promise<void> {
  await waitFor(`${id} in ${userId}'s inbox`, async () => {
    const { rowCount } = await db.pool.query(
      'SELECT 1 FROM inbox_items WHERE user_id = $1 AND notification_id = $2',
      [userId, id],
    );
    return rowCount === 1;
  });
}

describe('user tokens', () => {
  test('a token is issued to a service key only and lets the user read their own inbox', async () => {
    const id = await send(['ada'], 'Welcome');
    await inboxHas('ada', id);
    const ada = as(await tokenFor('ada'));
    const list = await ada('GET', '/v1/users/ada/inbox');
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.items.map((i: { id: string; title: string; read: boolean }) => [i.id, i.title, i.read]),
      [[id, 'Welcome', false]],
    );
    // No body at all is fine too.
    const bare = await h.call('POST', '/v1/users/ada/token', undefined, { base: query });
    assert.equal(bare.status, 201, JSON.stringify(bare.body));
    // A user token cannot mint tokens; no credential is 401; a garbled token is 401.
    assert.equal((await ada('POST', '/v1/users/ada/token', {})).status, 401);
    assert.equal(
      (await h.call('GET', '/v1/users/ada/inbox', undefined, { base: query, key: null })).status,
      401,
    );
    // One signature character changed (not the last: its low bits are padding).
    const genuine = await tokenFor('ada');
    const at = genuine.length - 10;
    const forged = `${genuine.slice(0, at)}${genuine[at] === 'A' ? 'B' : 'A'}${genuine.slice(at + 1)}`;
    const bad = await as(forged)('GET', '/v1/users/ada/inbox');
    assert.equal(bad.status, 401);
    assert.equal(bad.body.code, 'unauthenticated');
  });

  test('an expired token is refused', async () => {
    const res = await h.call('POST', '/v1/users/ada/token', { ttl_seconds: 60 }, { base: query });
    const [, payload] = (res.body.token as string).split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as {
      exp: number;
      iat: number;
    };
    assert.equal(claims.exp - claims.iat, 60);
    // A token issued an hour-long minute ago: from a second query process, sharing the signing
    // key in the database, whose clock runs two hours behind.
    const past = await startTestHerald(db, { roles: ['query'], now: () => new Date(Date.now() - 7_200_000) });
    try {
      const old = await past.call(
        'POST',
        '/v1/users/ada/token',
        { ttl_seconds: 60 },
        { base: past.herald.queryUrl ?? '' },
      );
      assert.equal(old.status, 201);
      const refused = await as(old.body.token as string)('GET', '/v1/users/ada/inbox');
      assert.equal(refused.status, 401);
      assert.match(refused.body.detail as string, /expired/);
    } finally {
      await past.stop();
    }
  });

  test("with USER_JWKS_URL, the app's identity provider's tokens open the inbox they name", async () => {
    const pair = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
    const idp = bodyServer((_req, res) => res.writeHead(200).end(JSON.stringify({ keys: [jwk] })));
    const jwksUrl = `${await listenOnLoopback(idp)}/jwks.json`;
    const other = await startTestHerald(db, {
      roles: ['query'],
      env: {
        USER_JWKS_URL: jwksUrl,
        USER_JWT_ISSUER: 'https://id.example.com',
        USER_JWT_AUDIENCE: 'shop-app',
      },
    });
    try {
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer('https://id.example.com')
        .setAudience('shop-app')
        .setSubject('ada')
        .setExpirationTime('5m')
        .sign(pair.privateKey);
      const base = other.herald.queryUrl ?? '';
      const own = await other.call('GET', '/v1/users/ada/inbox', undefined, { base, key: token });
      assert.equal(own.status, 200);
      assert.equal(own.body.items[0]?.title, 'Welcome');
      const foreign = await other.call('GET', '/v1/users/bob/inbox', undefined, { base, key: token });
      assert.equal(foreign.status, 404);
    } finally {
      await other.stop();
      await closeServer(idp);
    }
  });
});

describe('cross-user access', () => {
  test("another user's inbox, items, cursors and stream all fail without data", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await send(['bob'], `Bob ${String(i)}`));
    const mine = await send(['eve'], 'Eve 0');
    for (const id of ids) await inboxHas('bob', id);
    await inboxHas('eve', mine);
    const eve = as(await tokenFor('eve'));
    const bob = as(await tokenFor('bob'));
    const target = ids[0] ?? '';
    const attempts: [string, string, unknown?][] = [
      ['GET', '/v1/users/bob/inbox'],
      ['GET', '/v1/users/bob/inbox/count'],
      ['GET', `/v1/users/bob/inbox/${idPath(target)}`],
      ['POST', `/v1/users/bob/inbox/${idPath(target)}/read`],
      ['POST', `/v1/users/bob/inbox/${idPath(target)}/archive`],
      ['DELETE', `/v1/users/bob/inbox/${idPath(target)}`],
      ['POST', '/v1/users/bob/inbox/read-all', {}],
      ['GET', '/v1/users/bob/preferences'],
      // Bob's item id under Eve's own inbox: not hers, so not found either.
      ['GET', `/v1/users/eve/inbox/${idPath(target)}`],
      ['POST', `/v1/users/eve/inbox/${idPath(target)}/read`],
      ['DELETE', `/v1/users/eve/inbox/${idPath(target)}`],
    ];
    for (const [method, path, body] of attempts) {
      const res = await eve(method, path, body);
      assert.equal(res.status, 404, `${method} ${path}: ${String(res.status)}`);
      assert.doesNotMatch(JSON.stringify(res.body), /Bob/);
    }
    // Her own preferences she may read (once a service has registered her).
    assert.equal((await h.call('PUT', '/v1/users/eve', {})).status, 200);
    assert.equal((await eve('GET', '/v1/users/eve/preferences')).status, 200);
    // Bob's cursor in Eve's listing.
    const page = await bob('GET', '/v1/users/bob/inbox?limit=1');
    assert.equal(typeof page.body.next_cursor, 'string');
    const stolen = await eve(
      'GET',
      `/v1/users/eve/inbox?cursor=${encodeURIComponent(page.body.next_cursor as string)}`,
    );
    assert.equal(stolen.status, 400);
    assert.equal(stolen.body.code, 'cursor_invalid');
    // Bob's stream with Eve's token (header or query).
    const eveToken = await tokenFor('eve');
    const viaHeader = await openSse(`${query}/v1/users/bob/inbox/stream`, {
      authorization: `Bearer ${eveToken}`,
    });
    const viaQuery = await openSse(`${query}/v1/users/bob/inbox/stream?access_token=${eveToken}`);
    viaHeader.close();
    viaQuery.close();
    assert.deepEqual([viaHeader.status, viaQuery.status], [404, 404]);
    // Nothing of Bob's changed.
    const state = await db.pool.query(
      `SELECT count(*) FILTER (WHERE read_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL) AS untouched
         FROM inbox_items WHERE user_id = 'bob'`,
    );
    assert.equal(state.rows[0].untouched, 3);
  });
});

describe('listing', () => {
  test('pages newest first with a cursor, stable while new items arrive', async () => {
    const sent: string[] = [];
    for (let i = 0; i < 12; i++) sent.push(await send(['cai'], `Cai ${String(i)}`));
    for (const id of sent) await inboxHas('cai', id);
    const cai = as(await tokenFor('cai'));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await cai(
        'GET',
        `/v1/users/cai/inbox?limit=5${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
      );
      assert.equal(res.status, 200);
      seen.push(...res.body.items.map((i: { id: string }) => i.id));
      cursor = res.body.next_cursor as string | null;
      // New items arriving between pages land on top and do not shift later pages.
      if (pages === 0) await inboxHas('cai', await send(['cai'], 'Cai late'));
      pages += 1;
    } while (cursor !== null);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...sent].reverse());
  });

  test('filters by unread, category and archived; counts unread and unseen', async () => {
    const a = await send(['dan'], 'A', { category: 'orders' });
    const b = await send(['dan'], 'B', { category: 'news' });
    const c = await send(['dan'], 'C', { category: 'news' });
    for (const id of [a, b, c]) await inboxHas('dan', id);
    const dan = as(await tokenFor('dan'));
    const ids = async (query: string) =>
      (await dan('GET', `/v1/users/dan/inbox${query}`)).body.items.map((i: { title: string }) => i.title);
    assert.deepEqual((await dan('GET', '/v1/users/dan/inbox/count')).body, { unread: 3, unseen: 3 });

    const read = await dan('POST', `/v1/users/dan/inbox/${idPath(a)}/read`);
    assert.equal(read.status, 200);
    assert.equal(read.body.read, true);
    assert.equal((await dan('POST', `/v1/users/dan/inbox/${idPath(b)}/seen`)).body.seen, true);
    assert.equal((await dan('POST', `/v1/users/dan/inbox/${idPath(c)}/archive`)).body.archived, true);
    assert.deepEqual(await ids('?unread=true'), ['B']);
    assert.deepEqual(await ids('?category=news'), ['B']);
    assert.deepEqual(await ids('?archived=true'), ['C']);
    assert.deepEqual((await dan('GET', '/v1/users/dan/inbox/count')).body, { unread: 1, unseen: 0 });

    assert.equal((await dan('POST', `/v1/users/dan/inbox/${idPath(a)}/unread`)).body.read, false);
    assert.deepEqual((await dan('POST', '/v1/users/dan/inbox/read-all', { category: 'orders' })).body, {
      changed: 1,
    });
    assert.deepEqual((await dan('POST', '/v1/users/dan/inbox/read-all', {})).body, { changed: 1 });
    assert.deepEqual((await dan('GET', '/v1/users/dan/inbox/count')).body, { unread: 0, unseen: 0 });

    assert.equal((await dan('DELETE', `/v1/users/dan/inbox/${idPath(b)}`)).status, 204);
    assert.equal((await dan('GET', `/v1/users/dan/inbox/${idPath(b)}`)).status, 404);
    assert.deepEqual(await ids(''), ['A']);
    const bad = await dan('GET', '/v1/users/dan/inbox?limit=0');
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  });

  test('a PATCHed notification shows its latest version', async () => {
    const id = await send(['fay'], 'Order placed');
    await inboxHas('fay', id);
    const patched = await h.call('PATCH', `/v1/notifications/${idPath(id)}`, {
      version: 2,
      content: { in_app: { title: 'Order shipped' } },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    const fay = as(await tokenFor('fay'));
    const item = await fay('GET', `/v1/users/fay/inbox/${idPath(id)}`);
    assert.equal(item.body.title, 'Order shipped');
    assert.equal(item.body.version, 2);
  });

  test('items older than 90 days are not shown', async () => {
    const old = new Date(Date.now() - 100 * 86_400_000);
    await ensurePartitions(db.pool, new Date(), 1, old);
    await db.pool.query(
      `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
       SELECT 'shop#00000000-0000-4000-8000-000000000001', $1, id, 'transactional', 'x', '{in_app}',
              '{"default":{"title":"Ancient"}}', $1 FROM services WHERE name = 'shop'`,
      [old],
    );
    await db.pool.query(
      `INSERT INTO inbox_items (notification_id, notification_created_at, user_id, category, created_at)
       VALUES ('shop#00000000-0000-4000-8000-000000000001', $1, 'gus', 'x', $1)`,
      [old],
    );
    const recent = await send(['gus'], 'Recent');
    await inboxHas('gus', recent);
    const gus = as(await tokenFor('gus'));
    const list = await gus('GET', '/v1/users/gus/inbox');
    assert.deepEqual(
      list.body.items.map((i: { title: string }) => i.title),
      ['Recent'],
    );
    assert.deepEqual((await gus('GET', '/v1/users/gus/inbox/count')).body, { unread: 1, unseen: 1 });
    assert.equal(
      (await gus('POST', '/v1/users/gus/inbox/shop%2300000000-0000-4000-8000-000000000001/read')).status,
      404,
    );
  });
});

describe('realtime stream', () => {
  test('pushes new and changed items with the unread count; Last-Event-ID replays exactly what was missed', async () => {
    const token = await tokenFor('hal');
    const hal = as(token);
    const first = await openSse(`${query}/v1/users/hal/inbox/stream`, { authorization: `Bearer ${token}` });
    streams.push(first);
    assert.equal(first.status, 200);
    const [ready] = await first.waitForEvents(1);
    assert.deepEqual(ready?.data, { seq: 0, unread_count: 0 });

    const one = await send(['hal'], 'One');
    const two = await send(['hal'], 'Two');
    const live = await first.waitForEvents(2, (e) => e.event === 'created');
    assert.deepEqual(
      live.map((e) => [e.id, e.data.item.title]),
      [
        ['1', 'One'],
        ['2', 'Two'],
      ],
    );
    assert.equal(live[1]?.data.unread_count, 2);
    first.close();

    // While disconnected: one read, one PATCH, one new item, one delete.
    await hal('POST', `/v1/users/hal/inbox/${idPath(one)}/read`);
    await h.call('PATCH', `/v1/notifications/${idPath(two)}`, {
      version: 2,
      content: { in_app: { title: 'Two v2' } },
    });
    const three = await send(['hal'], 'Three');
    await inboxHas('hal', three);
    await hal('DELETE', `/v1/users/hal/inbox/${idPath(one)}`);

    const again = await openSse(`${query}/v1/users/hal/inbox/stream?access_token=${token}`, {
      'last-event-id': '2',
    });
    streams.push(again);
    const events = await again.waitForEvents(1, (e) => e.event === 'ready');
    assert.deepEqual(
      again.events.map((e) => [e.id, e.event, e.data.item?.title ?? null]),
      [
        // Items show their current state: One has been deleted since.
        ['3', 'read', null],
        ['4', 'updated', 'Two v2'],
        ['5', 'created', 'Three'],
        ['6', 'deleted', null],
        ['6', 'ready', null],
      ],
    );
    assert.equal(events[0]?.data.unread_count, 2);

    // And it goes on live, without repeating anything.
    await hal('POST', '/v1/users/hal/inbox/read-all', {});
    const [allRead] = await again.waitForEvents(1, (e) => e.event === 'read_all');
    assert.deepEqual(allRead?.data, { seq: 7, kind: 'read_all', id: null, item: null, unread_count: 0 });
    assert.deepEqual(
      again.events.map((e) => e.id),
      ['3', '4', '5', '6', '6', '7'],
    );
    const metrics = await (await fetch(`${query}/metrics`)).text();
    assert.match(metrics, /herald_inbox_streams_open 1\n/);
    assert.match(metrics, /herald_inbox_stream_events_total\{event="created"\} 3\n/);
  });

  test('an id the stream never sent gets a reset, not a partial history', async () => {
    const token = await tokenFor('ivy');
    const s = await openSse(`${query}/v1/users/ivy/inbox/stream`, {
      authorization: `Bearer ${token}`,
      'last-event-id': '99',
    });
    streams.push(s);
    const [reset] = await s.waitForEvents(1, (e) => e.event === 'reset');
    assert.deepEqual(reset?.data, { seq: 0, unread_count: 0 });
    s.close();
    const bad = await openSse(`${query}/v1/users/ivy/inbox/stream`, {
      authorization: `Bearer ${token}`,
      'last-event-id': 'x',
    });
    assert.equal(bad.status, 400);
  });
});
