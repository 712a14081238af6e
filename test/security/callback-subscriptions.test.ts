// Status callback subscriptions against the internal network and against the process, with the
// outbound policy at its default (no loopback allowed): a URL at a loopback, private, link-local
// or metadata address, or a name resolving to one, is refused at creation with a problem code and
// nothing stored; a subscription that reaches the table anyway (written before a policy change,
// or a name that now resolves elsewhere) is refused at send time, and its messages die without a
// byte sent; an invalid or oversized body is refused and changes nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { bodyServer, closeServer, listenOnLoopback } from '../helpers/loopback-server.js';
import { callbackEventTypes } from '../../src/domain/callbacks.js';

let db: TestDatabase;
let h: TestHerald;
let receiver: Server;
let receiverUrl = '';
let hits = 0;

/** Names resolve as a rebinding attacker's DNS would have them: to internal addresses. */
const lookup = (name: string) =>
  Promise.resolve(
    name === 'inside.example'
      ? [{ address: '10.1.2.3', family: 4 }]
      : name === 'loop.example'
        ? [
            { address: '93.184.216.34', family: 4 },
            { address: '127.0.0.1', family: 4 },
          ]
        : [{ address: '93.184.216.34', family: 4 }],
  );

before(async () => {
  db = await createTestDatabase();
  receiver = bodyServer((_req, res) => {
    hits++;
    res.writeHead(200).end();
  });
  receiverUrl = await listenOnLoopback(receiver);
  h = await startTestHerald(db, {
    roles: ['api', 'worker'],
    env: { OUTBOUND_ALLOWED_NETWORKS: '', CALLBACK_RETRY_BASE_MS: '20', CALLBACK_RETRY_MAX_MS: '100' },
    outboundLookup: lookup,
  });
});
after(async () => {
  await h.stop();
  await closeServer(receiver);
  await db.drop();
});

const stored = async () =>
  (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM callback_subscriptions')).rows[0]?.n;

test('a URL at an internal address, or a name resolving to one, is refused at creation', async () => {
  for (const url of [
    'http://127.0.0.1:8080/hook',
    'http://10.0.0.5/hook',
    'http://169.254.169.254/latest/meta-data',
    'http://[::1]:8080/hook',
    'http://localhost:8080/hook',
    'http://inside.example/hook',
    'https://loop.example/hook',
  ]) {
    const res = await h.call('POST', '/v1/callback-subscriptions', { url, event_types: ['delivery.sent'] });
    assert.equal(res.status, 400, url);
    assert.equal(res.body.code, 'target_blocked', url);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
  }
  assert.equal(await stored(), 0);
  const ok = await h.call('POST', '/v1/callback-subscriptions', {
    url: 'https://hooks.example/herald',
    event_types: ['delivery.sent'],
  });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  // A change to an internal URL is refused the same way and leaves the subscription as it was.
  const patched = await h.call('PATCH', `/v1/callback-subscriptions/${String(ok.body.id)}`, {
    url: 'http://inside.example/x',
  });
  assert.equal(patched.status, 400);
  assert.equal(patched.body.code, 'target_blocked');
  const kept = await h.call('GET', `/v1/callback-subscriptions/${String(ok.body.id)}`);
  assert.equal(kept.body.url, 'https://hooks.example/herald');
  assert.equal((await h.call('DELETE', `/v1/callback-subscriptions/${String(ok.body.id)}`)).status, 204);
});

test('an invalid or oversized body is refused and changes nothing', async () => {
  const bodies: unknown[] = [
    { url: 'https://hooks.example/x' },
    { url: 'https://hooks.example/x', event_types: [] },
    { url: 'https://hooks.example/x', event_types: ['delivery.exploded'] },
    { url: 'https://hooks.example/x', event_types: [...callbackEventTypes, 'delivery.sent'] },
    { url: `https://hooks.example/${'a'.repeat(3000)}`, event_types: ['delivery.sent'] },
    { url: 'ftp://hooks.example/x', event_types: ['delivery.sent'] },
    { url: 'https://hooks.example/x', event_types: ['delivery.sent'], secret: 'whsec_mine' },
    { url: 'https://hooks.example/x', event_types: ['delivery.sent'], pad: 'x'.repeat(400_000) },
  ];
  for (const body of bodies) {
    const res = await h.call('POST', '/v1/callback-subscriptions', body);
    assert.ok(
      res.status === 400 || res.status === 413,
      `${JSON.stringify(body).slice(0, 80)}: ${res.status}`,
    );
    assert.equal(typeof res.body.code, 'string');
  }
  assert.equal(await stored(), 0);
  const bad = await h.call('PATCH', `/v1/callback-subscriptions/${randomUUID()}`, {});
  assert.equal(bad.status, 400, 'an empty change');
  const notUuid = await h.call('GET', '/v1/callback-subscriptions/nope');
  assert.equal(notUuid.status, 400);
  const replay = await h.call('POST', '/v1/callback-dead-letters/replay', {});
  assert.equal(replay.status, 400);
});

test('at send time, a subscription at a refused address gets no byte and its messages die', async () => {
  for (const url of [`${receiverUrl}/hook`, 'http://inside.example:9/hook']) {
    await db.pool.query(
      `INSERT INTO callback_subscriptions (id, service_id, service_name, url, event_types, secret)
       SELECT $1, id, name, $2, ARRAY['notification.accepted'], 'whsec_AAAA' FROM services WHERE name = 'shop'`,
      [randomUUID(), url],
    );
  }
  const sent = await h.call('POST', '/v1/notifications', {
    recipients: ['ann'],
    channels: ['in_app'],
    content: { default: { title: 'Hi', body: 'there' } },
  });
  assert.equal(sent.status, 202);
  const dead = await waitFor('both messages dead', async () => {
    const list = await h.call('GET', '/v1/callback-dead-letters');
    const rows = list.body.dead_letters as { last_error: string; payload: Record<string, unknown> }[];
    return rows.length === 2 ? rows : undefined;
  });
  for (const d of dead) {
    assert.equal(d.last_error, 'blocked');
    assert.equal(d.payload['notification_id'], sent.body.id);
  }
  assert.equal(hits, 0, 'the receiver on loopback was never called');
});

test('the limit of subscriptions per service holds', async () => {
  await db.pool.query('DELETE FROM callback_subscriptions');
  for (let i = 0; i < 20; i++) {
    const res = await h.call('POST', '/v1/callback-subscriptions', {
      url: `https://hooks.example/${String(i)}`,
      event_types: ['delivery.sent'],
    });
    assert.equal(res.status, 201);
  }
  const over = await h.call('POST', '/v1/callback-subscriptions', {
    url: 'https://hooks.example/21',
    event_types: ['delivery.sent'],
  });
  assert.equal(over.status, 409);
  assert.equal(over.body.code, 'callback_subscription_limit');
  assert.equal(await stored(), 20);
});
