// @herald/client against a real Herald, through a loopback proxy that loses answers, answers
// 503 and 429, or never answers, as networks and busy servers do: sends are retried with their
// Idempotency-Key and accepted once, reads are retried, a POST without a key is repeated only
// after a 429 (refused before anything was done), and Retry-After is honoured.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../../test/helpers/test-herald.js';
import { listenOnLoopback, closeServer } from '../../../test/helpers/loopback-server.js';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { HeraldClient, HeraldProblem, HeraldTimeout } from '../src/index.js';

type Fault = 'lose-answer' | 'status-503' | 'retry-after-1' | 'hang';

/** Forwards to Herald, applying the next scripted fault to each request (none: pass through). */
class FaultyProxy {
  readonly faults: Fault[] = [];
  readonly seen: { method: string; url: string; key: string | undefined; at: number }[] = [];
  private server: Server | undefined;
  base = '';

  constructor(private readonly target: string) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const fault = this.faults.shift();
      const key = req.headers['idempotency-key'];
      this.seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        key: typeof key === 'string' ? key : undefined,
        at: Date.now(),
      });
      if (fault === 'hang') return;
      if (fault === 'status-503' || fault === 'retry-after-1') {
        req.resume();
        const status = fault === 'status-503' ? 503 : 429;
        const code = fault === 'status-503' ? 'service_unavailable' : 'rate_limited';
        res.writeHead(status, {
          'content-type': 'application/problem+json',
          ...(fault === 'retry-after-1' ? { 'retry-after': '1' } : {}),
        });
        res.end(JSON.stringify({ type: `urn:herald:problem:${code}`, title: code, status, code }));
        return;
      }
      this.forward(req, (upstream, body) => {
        // The request reached Herald and was answered; the answer is lost on the way back.
        if (fault === 'lose-answer') {
          res.destroy();
          return;
        }
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        res.end(body);
      });
    });
    this.base = await listenOnLoopback(this.server);
  }

  private forward(req: IncomingMessage, answer: (upstream: IncomingMessage, body: Buffer) => void): void {
    const target = new URL(req.url ?? '/', this.target);
    const out = httpRequest(target, { method: req.method, headers: req.headers }, (upstream) => {
      const chunks: Buffer[] = [];
      upstream.on('data', (c: Buffer) => chunks.push(c));
      upstream.on('end', () => answer(upstream, Buffer.concat(chunks)));
    });
    req.pipe(out);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await closeServer(this.server);
  }
}

let db: TestDatabase;
let h: TestHerald;
let proxy: FaultyProxy;
let client: HeraldClient;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api', 'query', 'worker'] });
  proxy = new FaultyProxy(h.herald.apiUrl ?? '');
  await proxy.start();
  client = new HeraldClient({
    baseUrl: proxy.base,
    queryUrl: h.herald.queryUrl ?? '',
    apiKey: h.apiKey,
    timeoutMs: 2000,
    retries: 2,
    backoffMs: 20,
  });
});

after(async () => {
  await proxy.stop();
  await h.stop();
  await db.drop();
});

const notificationsOf = async (userId: string) =>
  Number(
    (await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM recipients WHERE user_id = $1', [userId]))
      .rows[0]?.n,
  );

describe('@herald/client', () => {
  test('a send whose answer is lost is retried with the same key and accepted once', async () => {
    proxy.faults.push('lose-answer');
    proxy.seen.length = 0;
    const accepted = await client.notifications.send({
      recipients: ['lost-answer'],
      channels: ['in_app'],
      content: { default: { title: 'Once' } },
    });
    assert.equal(accepted.status, 'accepted');
    assert.equal(proxy.seen.length, 2);
    assert.ok(proxy.seen[0]?.key !== undefined && proxy.seen[0].key === proxy.seen[1]?.key);
    assert.equal(await notificationsOf('lost-answer'), 1);
    const read = await client.notifications.get(accepted.id);
    assert.equal(read.id, accepted.id);
  });

  test("the caller's own idempotency key is the one sent, and a 503 is retried", async () => {
    proxy.faults.push('status-503', 'status-503');
    proxy.seen.length = 0;
    const body = {
      recipients: ['own-key'],
      channels: ['in_app' as const],
      content: { default: { title: 'Mine' } },
    };
    const first = await client.notifications.send(body, { idempotencyKey: 'order-7-shipped' });
    const again = await client.notifications.send(body, { idempotencyKey: 'order-7-shipped' });
    assert.equal(again.id, first.id);
    assert.deepEqual(
      proxy.seen.map((s) => s.key),
      ['order-7-shipped', 'order-7-shipped', 'order-7-shipped', 'order-7-shipped'],
    );
    assert.equal(await notificationsOf('own-key'), 1);
  });

  test('a POST without a key is not repeated after a 503, but is after a 429, waiting Retry-After', async () => {
    proxy.faults.push('status-503');
    await assert.rejects(client.deadLetters.replay({ all: true }), (error: unknown) => {
      assert.ok(error instanceof HeraldProblem);
      assert.equal(error.code, 'service_unavailable');
      return true;
    });
    proxy.faults.push('retry-after-1');
    proxy.seen.length = 0;
    const replayed = await client.deadLetters.replay({ all: true });
    assert.equal(replayed.replayed, 0);
    assert.equal(proxy.seen.length, 2);
    const waited = (proxy.seen[1]?.at ?? 0) - (proxy.seen[0]?.at ?? 0);
    assert.ok(waited >= 950, `retried after ${String(waited)} ms, not after Retry-After: 1`);
  });

  test('no answer within timeoutMs is a HeraldTimeout after every retry', async () => {
    const impatient = new HeraldClient({
      baseUrl: proxy.base,
      apiKey: h.apiKey,
      timeoutMs: 300,
      retries: 1,
      backoffMs: 10,
    });
    proxy.faults.push('hang', 'hang');
    proxy.seen.length = 0;
    await assert.rejects(impatient.service.get(), HeraldTimeout);
    assert.equal(proxy.seen.length, 2);
  });

  test('an error answer is a typed problem with its code and request id', async () => {
    await assert.rejects(client.notifications.get('not-an-id'), (error: unknown) => {
      assert.ok(error instanceof HeraldProblem);
      assert.equal(error.code, 'invalid_notification_id');
      assert.equal(error.status, 400);
      assert.match(error.requestId ?? '', /\S/);
      return true;
    });
    const wrongKey = new HeraldClient({ baseUrl: h.herald.apiUrl ?? '', apiKey: 'hk_not-a-key', retries: 0 });
    await assert.rejects(wrongKey.users.get('ana'), { code: 'unauthenticated', status: 401 });
  });

  test('pagination walks every page; a user token from the SDK reads the inbox', async () => {
    for (let i = 0; i < 5; i++)
      await client.notifications.send({
        recipients: ['pages'],
        channels: ['in_app'],
        content: { default: { title: `n${String(i)}` } },
      });
    await waitFor('five items in the inbox', async () => (await client.inbox.count('pages')).unread === 5);
    const titles: string[] = [];
    for await (const item of client.inbox.all('pages', {}, 2)) titles.push(item.title ?? '');
    assert.deepEqual(titles, ['n4', 'n3', 'n2', 'n1', 'n0']);

    const issued = await client.userTokens.issue('pages', 300);
    const asUser = new HeraldClient({ baseUrl: h.herald.queryUrl ?? '', apiKey: () => issued.token });
    const page = await asUser.inbox.list('pages', { limit: 1 });
    const [newest] = page.items;
    assert.ok(newest !== undefined);
    assert.equal(newest.title, 'n4');
    const read = await asUser.inbox.mark('pages', newest.id, 'read');
    assert.equal(read.read, true);
    // Engagement: the user's click is recorded once; the service's figures count it.
    assert.deepEqual(await asUser.engagement.inboxClicked('pages', newest.id), { recorded: true });
    assert.deepEqual(await asUser.engagement.inboxClicked('pages', newest.id), { recorded: false });
    const today = new Date().toISOString().slice(0, 10);
    const figures = await client.engagement.figures({ from: today, to: today, group_by: 'channel' });
    const inApp = figures.groups.find((g) => g.key === 'in_app');
    assert.equal(inApp?.clicked, 1);
    assert.equal(inApp.read, 1);
    // Another user's inbox is as unknown to this token as one that does not exist.
    await assert.rejects(asUser.inbox.list('someone-else'), { code: 'not_found' });

    const dead: string[] = [];
    for await (const letter of client.deadLetters.all(10)) dead.push(letter.id);
    assert.deepEqual(dead, []);
  });

  test('topics and schedules: subscribe, page through subscribers, send to a topic, schedule and cancel', async () => {
    await client.users.upsert('topic-a', {});
    await client.users.upsert('topic-b', {});
    await client.topics.create('sdk-news', 'SDK news');
    assert.deepEqual(await client.topics.subscribe('sdk-news', ['topic-a', 'topic-b', 'nobody']), {
      added: 2,
      unknown: ['nobody'],
    });
    const subscribers: string[] = [];
    for await (const s of client.topics.subscribers('sdk-news', 1)) subscribers.push(s.user_id);
    assert.deepEqual(subscribers, ['topic-a', 'topic-b']);
    await client.topics.optOut('topic-b', 'sdk-news');
    const sent = await client.notifications.send({
      topic: 'sdk-news',
      channels: ['in_app'],
      content: { default: { title: 'News' } },
    });
    assert.equal(sent.recipients, 2);
    const schedule = await client.schedules.create({
      cron: '0 9 * * *',
      notification: { topic: 'sdk-news', channels: ['in_app'], content: { default: { title: 'Daily' } } },
    });
    assert.equal((await client.schedules.pause(schedule.id)).state, 'paused');
    const ids: string[] = [];
    for await (const s of client.schedules.all()) ids.push(s.id);
    assert.ok(ids.includes(schedule.id));
    await client.schedules.delete(schedule.id);
    await assert.rejects(client.schedules.get(schedule.id), { code: 'not_found' });
    await assert.rejects(
      client.schedules.create({
        cron: 'nope',
        notification: { recipients: ['topic-a'], channels: ['in_app'], content: { default: { title: 'x' } } },
      }),
      { code: 'cron_invalid' },
    );
  });
});
