// CORS on the query role: with CORS_ORIGINS set, a page of an allowed origin may read a user's
// inbox and open its stream (the preflight answered, the answer carrying the allow-origin
// header, also on the hijacked event stream); another origin gets no CORS headers, so its page
// cannot read the answer; the api role never answers CORS. With no CORS_ORIGINS, no CORS at all.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';

const allowed = 'https://app.example.com';
let db: TestDatabase;
let h: TestHerald;
let query: string;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    roles: ['api', 'query'],
    env: { CORS_ORIGINS: `${allowed}, http://localhost:5173` },
  });
  query = h.herald.queryUrl ?? '';
});
after(async () => {
  await h.stop();
  await db.drop();
});

async function token(userId: string): Promise<string> {
  const res = await h.call('POST', `/v1/users/${userId}/token`, {}, { base: query });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token as string;
}

function preflight(base: string, path: string, origin: string, method = 'GET'): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'authorization, content-type',
    },
  });
}

test('an allowed origin gets its preflight answered and the allow-origin header on reads', async () => {
  const answer = await preflight(query, '/v1/users/ann/inbox', allowed);
  assert.equal(answer.status, 204);
  assert.equal(answer.headers.get('access-control-allow-origin'), allowed);
  assert.match(answer.headers.get('access-control-allow-headers') ?? '', /authorization/);
  assert.match(answer.headers.get('access-control-allow-methods') ?? '', /PATCH/);
  assert.equal(answer.headers.get('access-control-allow-credentials'), null, 'no cookies across origins');

  const bearer = await token('ann');
  const list = await fetch(`${query}/v1/users/ann/inbox`, {
    headers: { origin: 'http://localhost:5173', authorization: `Bearer ${bearer}` },
  });
  assert.equal(list.status, 200);
  assert.equal(list.headers.get('access-control-allow-origin'), 'http://localhost:5173');
  assert.match(list.headers.get('vary') ?? '', /origin/i);
});

test('the realtime stream carries the allow-origin header', async () => {
  const bearer = await token('bob');
  const stop = new AbortController();
  const stream = await fetch(`${query}/v1/users/bob/inbox/stream`, {
    headers: { origin: allowed, authorization: `Bearer ${bearer}`, accept: 'text/event-stream' },
    signal: stop.signal,
  });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get('content-type') ?? '', /text\/event-stream/);
  assert.equal(stream.headers.get('access-control-allow-origin'), allowed);
  stop.abort();
});

test('another origin gets no CORS headers, and the api role answers none', async () => {
  for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'null']) {
    const answer = await preflight(query, '/v1/users/ann/inbox', origin);
    assert.equal(answer.headers.get('access-control-allow-origin'), null, origin);
    const bearer = await token('ann');
    const list = await fetch(`${query}/v1/users/ann/inbox`, {
      headers: { origin, authorization: `Bearer ${bearer}` },
    });
    assert.equal(list.headers.get('access-control-allow-origin'), null, origin);
  }
  const api = await preflight(h.herald.apiUrl ?? '', '/v1/notifications', allowed, 'POST');
  assert.equal(api.headers.get('access-control-allow-origin'), null);
});

test('without CORS_ORIGINS the query role answers no CORS; a malformed setting is refused', async () => {
  const plain = await startTestHerald(db, { roles: ['query'] });
  try {
    const answer = await preflight(plain.herald.queryUrl ?? '', '/v1/users/ann/inbox', allowed);
    assert.equal(answer.headers.get('access-control-allow-origin'), null);
  } finally {
    await plain.stop();
  }
  for (const bad of ['*', 'https://app.example.com/', 'app.example.com', 'https://app.example.com/path']) {
    await assert.rejects(
      startTestHerald(db, { roles: ['query'], env: { CORS_ORIGINS: bad } }),
      /CORS_ORIGINS/,
      bad,
    );
  }
});
